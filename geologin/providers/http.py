"""The outbound HTTP client every plugin uses: connect and read timeouts, an overall deadline per call, a
response size cap, no redirects, only the instance's own hosts, a per-server cap on calls in flight, pooled
connections. Failures become LoginFailure subclasses."""
import json
import threading
import time
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from .base import ProviderError, ProviderUnavailable


class ResponseTooLarge(ProviderError):
    """The server sent more than the configured limit; reading stopped there."""


class _CappedAdapter(HTTPAdapter):
    """Reads at most ``max_bytes`` of a body, so a huge (or endless) answer cannot exhaust memory."""

    def __init__(self, max_bytes, **kwargs):
        self.max_bytes = max_bytes
        super().__init__(**kwargs)

    def send(self, request, stream=False, **kwargs):
        response = super().send(request, stream=True, **kwargs)
        host = urlsplit(request.url).netloc
        declared = response.headers.get("Content-Length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_bytes:
            response.close()
            raise ResponseTooLarge(f"response of {declared} bytes from {host} is over the {self.max_bytes}-byte limit")
        try:
            body = self._read_body(response.raw, host)
        except urllib3.exceptions.DecodeError:
            raise ProviderError(f"{host} sent a body that does not match its Content-Encoding") from None
        except urllib3.exceptions.ReadTimeoutError:
            raise _late(host) or ProviderUnavailable(f"{host} stopped sending its answer") from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise ProviderUnavailable(f"{host} broke off its answer: {type(error).__name__}") from None
        finally:
            response.close()
        response._content = body
        response._content_consumed = True
        return response

    def _read_body(self, raw, host):
        """The body, read as it arrives, with each wait cut to what is left of the call's deadline: a server
        dripping a byte at a time, each within the read timeout, cannot hold the call past the deadline."""
        connection = getattr(raw, "connection", None)
        sock = getattr(connection, "sock", None)
        read_timeout = sock.gettimeout() if sock is not None else None
        body = bytearray()
        while True:
            deadline = getattr(_local, "deadline", None)
            if deadline is not None and sock is not None:
                left = deadline[0] - time.monotonic()
                if left <= 0:
                    raise _late(host)
                sock.settimeout(left if read_timeout is None else min(read_timeout, left))
            # read1 returns what has arrived (read would wait for the whole chunk, byte by dripped byte).
            read = raw.read1 if sock is not None else raw.read
            chunk = read(64 * 1024, decode_content=True)
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > self.max_bytes:
                raise ResponseTooLarge(f"response from {host} is over the {self.max_bytes}-byte limit")


def _late(host):
    """The error for a call past its overall deadline, or None while there is time left."""
    deadline = getattr(_local, "deadline", None)
    if deadline is None or time.monotonic() < deadline[0]:
        return None
    return ProviderUnavailable(f"{host} did not finish its answer within {deadline[1]:g} s")


DEFAULT_WORKER_THREADS = 4  # gunicorn.conf.py's default
_local = threading.local()  # per thread: the pooled sessions, and the deadline of the call in progress
_gates = {}
_gates_lock = threading.Lock()


def _gate(host, limit):
    """A per-server cap on calls in flight: a stalled server can hold at most ``limit`` workers."""
    with _gates_lock:
        if (host, limit) not in _gates:
            _gates[(host, limit)] = threading.BoundedSemaphore(limit)
        return _gates[(host, limit)]


def per_server_cap(config):
    """Calls in flight to one server per process: below the worker's threads, so a stalled server never
    holds them all (a cap at or above the thread count would never engage)."""
    threads = int(config.get("WORKER_THREADS") or DEFAULT_WORKER_THREADS)
    ceiling = max(1, threads - 1)
    wanted = config.get("HTTP_MAX_CONCURRENT_PER_SERVER")
    return ceiling if not wanted else max(1, min(int(wanted), ceiling))


def _session(max_bytes):
    """One pooled requests.Session per thread (Session is not guaranteed thread-safe)."""
    sessions = getattr(_local, "sessions", None)
    if sessions is None:
        sessions = _local.sessions = {}
    if max_bytes not in sessions:
        session = requests.Session()
        session.trust_env = False  # no proxies or netrc credentials picked up from the environment
        # Shared by every login on this thread: a cookie one server set must never ride along in another
        # person's login (DHIS2 sets JSESSIONID on /api/me).
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        adapter = _CappedAdapter(max_bytes, pool_connections=20, pool_maxsize=20, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        sessions[max_bytes] = session
    return sessions[max_bytes]


class HttpClient:
    """Calls to one instance's server. Never follows redirects and never retries (a code is used once)."""

    def __init__(self, allowed_hosts, *, connect_timeout=5, read_timeout=10, total_timeout=15,
                 max_bytes=1024 * 1024, verify=True, max_concurrent=3, queue_timeout=1.0):
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.timeout = (connect_timeout, read_timeout)
        self.total_timeout = total_timeout
        self.max_bytes = max_bytes
        self.verify = verify
        self.max_concurrent = max_concurrent
        self.queue_timeout = queue_timeout

    def allow(self, *urls):
        """Also allow the hosts of ``urls`` (endpoints a verified discovery document names)."""
        self.allowed_hosts.update(urlsplit(url).netloc.lower() for url in urls if isinstance(url, str) and url)

    def request(self, method, url, **kwargs):
        host = urlsplit(url).netloc.lower()
        if host not in self.allowed_hosts:
            raise ProviderError(f"refused to call {host or url!r}: not this provider's server")
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("verify", self.verify)
        kwargs["allow_redirects"] = False
        started = time.monotonic()
        gate = _gate(host, self.max_concurrent)
        if not gate.acquire(timeout=self.queue_timeout):
            raise ProviderUnavailable(f"{host} is busy: {self.max_concurrent} requests to it are already waiting")
        _local.deadline = (started + self.total_timeout, self.total_timeout) if self.total_timeout else None
        try:
            response = _session(self.max_bytes).request(method, url, **kwargs)
        except ResponseTooLarge:
            raise
        except requests.exceptions.SSLError as error:
            raise ProviderUnavailable(f"TLS error talking to {host}: {type(error).__name__}") from None
        except requests.exceptions.Timeout:
            raise _late(host) or ProviderUnavailable(f"{host} did not answer within {self.timeout[1]} s") from None
        except requests.exceptions.ConnectionError:
            raise ProviderUnavailable(f"cannot connect to {host}") from None
        except requests.exceptions.RequestException as error:
            raise ProviderUnavailable(f"request to {host} failed: {type(error).__name__}") from None
        finally:
            _local.deadline = None
            gate.release()
        if response.status_code >= 500:
            raise ProviderUnavailable(f"{host} answered HTTP {response.status_code}")
        return response

    def get(self, url, **kwargs):
        return self.request("GET", url, **kwargs)

    def post(self, url, **kwargs):
        return self.request("POST", url, **kwargs)


def json_object(response, what):
    """The body of ``response`` as a JSON object, or ProviderError saying what was wrong."""
    if not response.headers.get("Content-Type", "").split(";")[0].strip().endswith("json"):
        raise ProviderError(f"{what}: expected JSON, got HTTP {response.status_code} "
                            f"{response.headers.get('Content-Type', 'without a content type')}")
    try:
        data = json.loads(response.content)
    except (ValueError, RecursionError):  # RecursionError: nesting deep enough to exhaust the parser
        raise ProviderError(f"{what}: the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProviderError(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data
