"""The outbound HTTP client every plugin uses: connect and read timeouts, a response size cap, no
redirects, only the instance's own hosts, pooled connections. Failures become LoginFailure subclasses."""
import json
import threading
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
            body = response.raw.read(self.max_bytes + 1, decode_content=True)
        except urllib3.exceptions.DecodeError:
            raise ProviderError(f"{host} sent a body that does not match its Content-Encoding") from None
        except urllib3.exceptions.ReadTimeoutError:
            raise ProviderUnavailable(f"{host} stopped sending its answer") from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise ProviderUnavailable(f"{host} broke off its answer: {type(error).__name__}") from None
        finally:
            response.close()
        if len(body) > self.max_bytes:
            raise ResponseTooLarge(f"response from {urlsplit(request.url).netloc} is over the "
                                   f"{self.max_bytes}-byte limit")
        response._content = body
        response._content_consumed = True
        return response


_local = threading.local()
_gates = {}
_gates_lock = threading.Lock()


def _gate(host, limit):
    """A per-server cap on calls in flight: a stalled server can hold at most ``limit`` workers."""
    with _gates_lock:
        if (host, limit) not in _gates:
            _gates[(host, limit)] = threading.BoundedSemaphore(limit)
        return _gates[(host, limit)]


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

    def __init__(self, allowed_hosts, *, connect_timeout=5, read_timeout=10, max_bytes=1024 * 1024,
                 verify=True, max_concurrent=8, queue_timeout=1.0):
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.timeout = (connect_timeout, read_timeout)
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
        gate = _gate(host, self.max_concurrent)
        if not gate.acquire(timeout=self.queue_timeout):
            raise ProviderUnavailable(f"{host} is busy: {self.max_concurrent} requests to it are already waiting")
        try:
            response = _session(self.max_bytes).request(method, url, **kwargs)
        except ResponseTooLarge:
            raise
        except requests.exceptions.SSLError as error:
            raise ProviderUnavailable(f"TLS error talking to {host}: {type(error).__name__}") from None
        except requests.exceptions.Timeout:
            raise ProviderUnavailable(f"{host} did not answer within {self.timeout[1]} s") from None
        except requests.exceptions.ConnectionError:
            raise ProviderUnavailable(f"cannot connect to {host}") from None
        except requests.exceptions.RequestException as error:
            raise ProviderUnavailable(f"request to {host} failed: {type(error).__name__}") from None
        finally:
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
