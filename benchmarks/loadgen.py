"""The benchmarks' Python load generator, run by run.py as a separate process: ``python loadgen.py SPEC``
where SPEC is a JSON object; it prints one JSON object with the results.

It plays browsers: each virtual user (VU) has its own keep-alive connections and cookie jar per server, and
walks a multi-step flow across geologin (or a baseline app) and the fake DHIS2, checking every answer. It is
a small HTTP/1.1 client on asyncio streams (one process, one thread, no third-party packages), so it costs
far less CPU per request than ``requests`` would; it still shares the machine's cores with the servers.

Flows (``flow``):
  geologin  GET /login (CSRF token), POST /auth/start, GET the DHIS2 authorize URL (the approval page),
            POST the approval, GET the callback, GET / (the landing page: "Logged in as ...")
  baseline  GET /login (Authlib's redirect), the same two DHIS2 steps, GET /callback, GET /
  peer      the peer site (Django + allauth): GET /accounts/login/, POST /accounts/oidc/dhis2/login/, the
            DHIS2 step, GET the callback, GET /. On DHIS2 2.42+ the authorize URL redirects at once (Spring's
            consent page the first time, submitted once; the consent is kept)
  password  GET /login, POST /login with username and password (a 302 is a success)
  get       GET ``path`` (a fallback for wrk) with the spec's ``headers`` if any

After each login the VU forgets the app's cookies (not DHIS2's), so every login starts as a new visitor:
a logged-in browser would be sent from /login straight to the landing page.

Requests to the app under test (``target``) carry ``Connection: close`` unless ``"close": false``: one TCP
connection per request, as a reverse proxy such as nginx (HTTP/1.0 to its upstream by default) talks to
gunicorn. With keep-alive, each connection stays with the gunicorn worker that accepted it, and a random
accept race can put most of them on one worker (one core, by the GIL) and halve a run. Connections to the
fake DHIS2 are kept alive.

Modes (``mode``):
  throughput  ``vus`` VUs loop for ``warmup`` + ``duration`` seconds; flows finished inside the measured
              window count. Reports completions per second and flow latency percentiles.
  sequential  one VU runs ``count`` flows one after the other. With ``tag``, the start and callback
              requests carry ``X-Bench-Login`` / ``X-Bench-Step`` (timed by timed_wsgi.py); with
              ``profile``, every geologin request carries ``X-Bench-Profile: <profile>``.

Before measuring, each VU signs in at its fake DHIS2 once (a person who already uses DHIS2), so a login's
DHIS2 part is the authorize page and the Authorize click.
"""
import asyncio
import json
import re
import statistics
import sys
import time
from urllib.parse import urlencode, urlsplit

CSRF = re.compile(rb'name="csrf_token"[^>]*?value="([^"]+)"')
DJANGO_CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
CONSENT_STATE = re.compile(rb'name="state" value="([^"]+)"')
CONSENT_CLIENT = re.compile(rb'name="client_id" value="([^"]+)"')
CONSENT_SCOPE = re.compile(rb'name="scope" value="([^"]+)"')


DHIS2_FLOWS = ("geologin", "baseline", "peer")


class HttpError(Exception):
    pass


class Connection:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def _open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method, target, headers, body=b""):
        for attempt in (1, 2):
            fresh = self.writer is None
            if fresh:
                await self._open()
            lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            if body or method == "POST":
                lines.append(f"Content-Length: {len(body)}")
            raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
            try:
                self.writer.write(raw)
                await self.writer.drain()
                head = await self.reader.readuntil(b"\r\n\r\n")
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                self.close()
                if fresh or attempt == 2:  # a keep-alive connection the server closed: retry once
                    raise
                continue
            return await self._read_rest(head, method)
        raise HttpError("unreachable")

    async def _read_rest(self, head, method):
        lines = head.decode("latin-1").split("\r\n")
        version, status = lines[0].split(" ", 2)[:2]
        status = int(status)
        response_headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                response_headers.append((name.strip().lower(), value.strip()))
        get = {name: value for name, value in response_headers}
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif get.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            body = b"".join(chunks)
        elif "content-length" in get:
            body = await self.reader.readexactly(int(get["content-length"]))
        else:
            body = await self.reader.read()
            self.close()
            return status, response_headers, body
        connection = get.get("connection", "").lower()
        if connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive"):
            self.close()
        return status, response_headers, body


class Browser:
    """Connections and cookies per origin (host:port); cookies ignore paths (every one here is path=/)."""

    def __init__(self, close_origins=()):
        self.connections, self.jars = {}, {}
        self.close_origins = set(close_origins)  # one connection per request to these (see the module doc)

    def forget(self, origin):
        self.jars.pop(origin, None)

    async def request(self, method, url, *, form=None, headers=None):
        parts = urlsplit(url)
        origin = (parts.hostname, parts.port or 80)
        connection = self.connections.get(origin)
        if connection is None:
            connection = self.connections[origin] = Connection(*origin)
        jar = self.jars.setdefault(origin, {})
        send = dict(headers or {})
        if origin in self.close_origins:
            send["Connection"] = "close"
        if jar:
            send["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        body = b""
        if form is not None:
            body = urlencode(form).encode()
            send["Content-Type"] = "application/x-www-form-urlencoded"
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        status, response_headers, response_body = await connection.request(method, target or "/", send, body)
        for name, value in response_headers:
            if name == "set-cookie":
                pair, _, attributes = value.partition(";")
                key, _, cookie = pair.partition("=")
                lowered = attributes.lower()
                if "max-age=0" in lowered or "expires=thu, 01 jan 1970" in lowered:
                    jar.pop(key.strip(), None)
                else:
                    jar[key.strip()] = cookie.strip()
        location = next((v for n, v in response_headers if n == "location"), None)
        if location is not None and location.startswith("/"):
            location = f"{parts.scheme}://{parts.netloc}{location}"
        return status, location, response_body

    def close(self):
        for connection in self.connections.values():
            connection.close()


def expect(condition, what):
    if not condition:
        raise HttpError(what)


class VU:
    def __init__(self, spec, user, number):
        self.spec, self.user, self.number = spec, user, number
        self.target = spec["target"].rstrip("/")
        self.counter = 0
        self.browser = self.new_browser()

    def new_browser(self):
        target = urlsplit(self.target)
        return Browser([(target.hostname, target.port or 80)] if self.spec.get("close", True) else [])

    def _tags(self, step, login_id):
        headers = {}
        if self.spec.get("tag"):
            headers["X-Bench-Step"] = step
            headers["X-Bench-Login"] = login_id
        if self.spec.get("profile"):
            headers["X-Bench-Profile"] = self.spec["profile"]
        return headers

    def _profile_only(self):
        return {"X-Bench-Profile": self.spec["profile"]} if self.spec.get("profile") else {}

    def _leave(self):
        """The next login comes from a new visitor: forget this server's cookies (the DHIS2 ones stay)."""
        target = urlsplit(self.target)
        self.browser.forget((target.hostname, target.port or 80))

    async def sign_in_at_dhis2(self):
        fake = self.user["fake"].rstrip("/")
        status, location, _ = await self.browser.request(
            "POST", fake + "/dhis-web-commons-security/login.action",
            form={"j_username": self.user["username"], "j_password": self.user["dhis2_password"]})
        expect(status == 302 and "failed" not in (location or ""), f"DHIS2 sign-in failed: {status} {location}")

    async def _dhis2_authorize(self, authorize_url):
        """The DHIS2 part: legacy (< 2.42) shows its approval page every time; 2.42+ redirects at once, or
        shows Spring's consent page the first time this user meets the client (the consent is kept)."""
        status, location, body = await self.browser.request("GET", authorize_url)
        action = authorize_url.split("?", 1)[0]
        if status == 302 and location:
            return location
        if status == 200 and b"Consent required" in body:
            state = CONSENT_STATE.search(body)
            client = CONSENT_CLIENT.search(body)
            expect(state and client, "DHIS2 consent page without its fields")
            form = [("client_id", client.group(1).decode()), ("state", state.group(1).decode())]
            form += [("scope", s.decode()) for s in CONSENT_SCOPE.findall(body)]
            status, location, _ = await self.browser.request("POST", action, form=form)
            expect(status == 302 and location, f"DHIS2 consent: {status}")
            return location
        expect(status == 200 and b"OAuth2 Confirm Access" in body, f"DHIS2 authorize page: {status}")
        status, location, _ = await self.browser.request("POST", action, form={"user_oauth_approval": "true"})
        expect(status == 303 and location, f"DHIS2 approval: {status}")
        return location

    async def flow_geologin(self, login_id):
        status, _, body = await self.browser.request("GET", self.target + "/login", headers=self._profile_only())
        expect(status == 200, f"GET /login: {status}")
        token = CSRF.search(body)
        expect(token, "no CSRF token on /login")
        status, location, _ = await self.browser.request(
            "POST", self.target + "/auth/start", headers=self._tags("start", login_id),
            form={"csrf_token": token.group(1).decode(), "provider": self.user["provider"]})
        expect(status == 302 and location and location.startswith(self.user["fake"].rstrip("/")),
               f"POST /auth/start: {status} {location}")
        callback = await self._dhis2_authorize(location)
        expect(callback.startswith(self.target), f"DHIS2 sent the browser to {callback}")
        status, location, _ = await self.browser.request("GET", callback, headers=self._tags("callback", login_id))
        expect(status == 302 and location == self.target + "/", f"callback: {status} {location}")
        status, _, body = await self.browser.request("GET", location, headers=self._profile_only())
        expect(status == 200 and b"Logged in as" in body, f"landing page: {status}")
        self._leave()

    async def flow_baseline(self, login_id):
        status, location, _ = await self.browser.request("GET", self.target + "/login",
                                                         headers=self._tags("start", login_id))
        expect(status == 302 and location and location.startswith(self.user["fake"].rstrip("/")),
               f"baseline /login: {status} {location}")
        callback = await self._dhis2_authorize(location)
        status, location, _ = await self.browser.request("GET", callback, headers=self._tags("callback", login_id))
        expect(status == 302 and location == self.target + "/", f"baseline callback: {status} {location}")
        status, _, body = await self.browser.request("GET", location)
        expect(status == 200 and b"Logged in as" in body, f"baseline landing page: {status}")
        self._leave()

    async def flow_peer(self, login_id):
        """The peer site (Django + allauth): its login page, then the "Log in with DHIS2" form posted to
        allauth's openid_connect login view (as a button on the page would), DHIS2, the callback, the landing."""
        status, _, body = await self.browser.request("GET", self.target + "/accounts/login/",
                                                     headers=self._profile_only())
        expect(status == 200, f"peer GET /accounts/login/: {status}")
        token = DJANGO_CSRF.search(body)
        expect(token, "no CSRF token on the peer's login page")
        status, location, _ = await self.browser.request(
            "POST", self.target + "/accounts/oidc/dhis2/login/", headers=self._tags("start", login_id),
            form={"csrfmiddlewaretoken": token.group(1).decode(), "process": "login"})
        expect(status == 302 and location and location.startswith(self.user["fake"].rstrip("/")),
               f"peer POST /accounts/oidc/dhis2/login/: {status} {location}")
        callback = await self._dhis2_authorize(location)
        expect(callback.startswith(self.target), f"DHIS2 sent the browser to {callback}")
        status, location, _ = await self.browser.request("GET", callback, headers=self._tags("callback", login_id))
        expect(status == 302 and location == self.target + "/", f"peer callback: {status} {location}")
        status, _, body = await self.browser.request("GET", location, headers=self._profile_only())
        expect(status == 200 and b"Logged in as" in body, f"peer landing page: {status}")
        self._leave()

    async def flow_password(self, login_id):
        status, _, body = await self.browser.request("GET", self.target + "/login", headers=self._profile_only())
        expect(status == 200, f"GET /login: {status}")
        token = CSRF.search(body)
        expect(token, "no CSRF token on /login")
        status, location, _ = await self.browser.request(
            "POST", self.target + "/login", headers=self._tags("password", login_id),
            form={"csrf_token": token.group(1).decode(), "username": self.user["username"],
                  "password": self.user["password"], "next": ""})
        expect(status == 302, f"POST /login: {status}")
        self._leave()

    async def flow_get(self, login_id):
        status, _, _ = await self.browser.request("GET", self.target + self.spec.get("path", "/login"),
                                                  headers={**self.spec.get("headers", {}), **self._profile_only()})
        expect(status == 200, f"GET: {status}")

    async def run_once(self):
        self.counter += 1
        login_id = f"{self.spec.get('login_prefix', 'l')}-{self.number}-{self.counter}"
        await getattr(self, "flow_" + self.spec["flow"])(login_id)


async def throughput(spec, users):
    vus = [VU(spec, users[i % len(users)], i) for i in range(spec["vus"])]
    if spec["flow"] in DHIS2_FLOWS:
        await asyncio.gather(*(vu.sign_in_at_dhis2() for vu in vus))
    started = time.perf_counter()
    window_start = started + spec.get("warmup", 2)
    window_end = window_start + spec["duration"]
    done, latencies, errors, finished = [0], [], {}, [0]

    async def loop(vu):
        while time.perf_counter() < window_end:
            began = time.perf_counter()
            try:
                await vu.run_once()
            except (HttpError, OSError, asyncio.IncompleteReadError, ValueError) as error:
                key = str(error)[:120]
                errors[key] = errors.get(key, 0) + 1
                vu.browser.close()
                vu.browser = vu.new_browser()
                if spec["flow"] in DHIS2_FLOWS:
                    try:
                        await vu.sign_in_at_dhis2()
                    except Exception:  # noqa: BLE001 - counted on the next attempt
                        pass
                await asyncio.sleep(0.05)
                continue
            ended = time.perf_counter()
            finished[0] += 1
            if window_start <= ended <= window_end:
                done[0] += 1
                latencies.append(ended - began)

    await asyncio.gather(*(loop(vu) for vu in vus))
    for vu in vus:
        vu.browser.close()
    latencies.sort()
    return {"completed": done[0], "per_second": done[0] / spec["duration"], "errors": errors,
            "completed_all": finished[0],
            "latency_mean_ms": 1000 * statistics.fmean(latencies) if latencies else None,
            "latency_p50_ms": 1000 * statistics.median(latencies) if latencies else None,
            "latency_p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))] if latencies else None}


async def sequential(spec, users):
    vu = VU(spec, users[0], 0)
    if spec["flow"] in DHIS2_FLOWS:
        await vu.sign_in_at_dhis2()
    errors, completed = {}, 0
    started = time.perf_counter()
    for _ in range(spec["count"]):
        try:
            await vu.run_once()
            completed += 1
        except (HttpError, OSError, asyncio.IncompleteReadError, ValueError) as error:
            key = str(error)[:120]
            errors[key] = errors.get(key, 0) + 1
            vu.browser.close()
            vu.browser = vu.new_browser()
            if spec["flow"] in DHIS2_FLOWS:
                await vu.sign_in_at_dhis2()
    elapsed = time.perf_counter() - started
    vu.browser.close()
    return {"completed": completed, "errors": errors, "seconds": elapsed}


def main():
    spec = json.loads(sys.argv[1])
    users = spec["users"]
    runner = throughput if spec["mode"] == "throughput" else sequential
    result = asyncio.run(runner(spec, users))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
