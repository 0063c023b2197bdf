"""A REAL OpenID provider for tests: panva's certified npm ``oidc-provider`` (tests/realop/op.mjs), run as
a Node process on a free loopback port, plus ``OPUser``, a person at a browser who signs in on its login
page and clicks Authorize or Deny. Tests skip with ``realop_available()``'s reason when Node or the npm
package (``make real-op-deps``) is missing.

    config = op_config(redirect_uris=["http://localhost/auth/oidc/callback"])
    op = RealOP(config)                  # op.issuer == "http://127.0.0.1:PORT"; RealOP(config, path="/oidc")
    back = OPUser("alice", ALICE_PASSWORD).authorize(authorization_url)   # the redirect back to the client
    op.stop()
"""
import contextlib
import copy
import json
import os
import pathlib
import re
import select
import shutil
import subprocess
import tempfile
import time
from html import unescape
from urllib.parse import urljoin, urlsplit

import requests

from tests.fakes import stop_process

ROOT = pathlib.Path(__file__).resolve().parents[1]
OP_DIR = ROOT / "tests" / "realop"
SCRIPT = OP_DIR / "op.mjs"

CLIENT_ID = "geologin"
CLIENT_SECRET = "realop-client-secret-0123456789abcdef"
ALICE_PASSWORD = "alice-password-at-the-op"
BOB_PASSWORD = "bob-password-at-the-op"
ACCOUNTS = [
    {"sub": "3f2c9a7e-alice", "password": ALICE_PASSWORD, "preferred_username": "alice",
     "email": "alice@example.org", "email_verified": True, "name": "Alice Example"},
    {"sub": "8d41b0c2-bob", "password": BOB_PASSWORD, "preferred_username": "bob",
     "email": "bob@example.org", "email_verified": False, "name": "Bob Example"},
]


def op_config(redirect_uris, post_logout_redirect_uris=(), *, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
              accounts=None, **client_extra):
    """A config with one confidential client and the accounts alice and bob (``ACCOUNTS``).

    ``client_extra`` adds client metadata, e.g. ``id_token_signed_response_alg="ES256"`` or
    ``token_endpoint_auth_method="client_secret_post"``. Add top-level keys to the returned dict yourself
    (``"conformIdTokenClaims": False``, ``"claims": {...}``, more ``"clients"``)."""
    client = {"client_id": client_id, "client_secret": client_secret, "redirect_uris": list(redirect_uris),
              "post_logout_redirect_uris": list(post_logout_redirect_uris), **client_extra}
    return {"clients": [client], "accounts": copy.deepcopy(ACCOUNTS if accounts is None else accounts)}


_available = None


def realop_available():
    """(True, "") when ``node`` and the pinned npm package are installed, else (False, why)."""
    global _available
    if _available is None:
        _available = _check_available()
    return _available


def _check_available():
    node = shutil.which("node")
    if not node:
        return False, "Node.js is not installed (apt-get install nodejs npm), so the real OpenID provider cannot run"
    wanted = json.loads((OP_DIR / "package.json").read_text())["dependencies"]["oidc-provider"]
    installed = OP_DIR / "node_modules" / "oidc-provider" / "package.json"
    if not installed.exists():
        return False, "oidc-provider is not installed in tests/realop/node_modules: run `make real-op-deps`"
    version = json.loads(installed.read_text())["version"]
    if version != wanted:
        return False, f"tests/realop has oidc-provider {version}, package.json pins {wanted}: run `make real-op-deps`"
    return True, ""


class RealOP:
    """One ``op.mjs`` process serving ``issuer`` (``http://127.0.0.1:PORT`` + ``path``) with ``config``."""

    def __init__(self, config, path="", timeout=20):
        self.config = copy.deepcopy(config)
        self._config_file = tempfile.NamedTemporaryFile("w", suffix=".json", prefix="realop-", delete=False)
        with self._config_file as f:
            json.dump(self.config, f)
        self.stderr = tempfile.TemporaryFile()
        cmd = ["node", str(SCRIPT), "--port", "0", "--config", self._config_file.name]
        if path:
            cmd += ["--path", path]
        self.proc = subprocess.Popen(cmd, cwd=OP_DIR, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        prefix, seen = "realop listening on ", []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith(prefix):
                    self.issuer = line[len(prefix):].strip()
                    self._forget_config()  # read at start; the client secrets need not outlive that
                    break
                if line:
                    seen.append(line)
                    continue
            if self.proc.poll() is not None:
                break
        else:
            seen.append(f"(no listening line within {timeout} s)\n")
        if not hasattr(self, "issuer"):
            self.stop()
            self.stderr.seek(0)
            raise RuntimeError(f"the real OpenID provider (node {SCRIPT.name}) did not start; stdout: "
                               f"{''.join(seen)!r}\nstderr:\n{self.stderr.read().decode(errors='replace')}")
        self.origin = "/".join(self.issuer.split("/")[:3])

    @property
    def discovery_url(self):
        return self.issuer + "/.well-known/openid-configuration"

    def discovery(self):
        resp = requests.get(self.discovery_url, timeout=5)
        resp.raise_for_status()
        return resp.json()

    def rotate_keys(self, keep_old=True):
        """Sign with a new key (new kids) from now on; ``keep_old=False`` also drops the old keys from the
        JWKS. Sessions, grants and tokens survive. Returns the JWKS's kids, newest first."""
        resp = requests.post(f"{self.origin}/__control__/rotate-keys", json={"keep_old": keep_old}, timeout=10)
        resp.raise_for_status()
        return resp.json()["kids"]

    def stderr_text(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def _forget_config(self):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._config_file.name)

    def stop(self):
        stop_process(self.proc)
        self._forget_config()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class OPError(AssertionError):
    """The OP showed a page OPUser did not expect (its error page, or the login page again after a wrong
    password: ``login_failed``). ``response`` is the last requests.Response."""

    def __init__(self, message, response):
        super().__init__(f"{message}: {response.status_code} {response.url}\n{response.text[:800]}")
        self.response = response
        self.login_failed = "Wrong username or password" in response.text


def _form(html):
    """(action, {hidden inputs}) of the page's first form, or (None, {})."""
    match = re.search(r"<form\b[^>]*>(.*?)</form>", html, re.S | re.I)
    if not match:
        return None, {}
    action = re.search(r'action="([^"]*)"', match.group(0)[:match.group(0).index(">")])
    hidden = {unescape(n): unescape(v) for n, v in
              re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', match.group(1))}
    return unescape(action.group(1)) if action else None, hidden


class OPUser:
    """A person at a browser at the real OP: a requests.Session keeps the OP's cookies, so a second
    authorization in the same session skips login (and consent, once granted), as browsers do."""

    def __init__(self, username, password):
        self.username, self.password = username, password
        self.browser = requests.Session()
        self.last_response = None
        self.pages = []  # the forms the last authorize() filled: "login", "consent"

    def _get(self, url):
        self.last_response = self.browser.get(url, allow_redirects=False, timeout=10)
        return self.last_response

    def _post(self, url, data):
        self.last_response = self.browser.post(url, data=data, allow_redirects=False, timeout=10)
        return self.last_response

    def authorize(self, authorization_url, approve=True, max_steps=12):
        """Open the authorization URL, follow the OP's own redirects, sign in on its login page, click
        Authorize (or Deny with ``approve=False``) on its consent page (``pages`` lists those it saw); return the URL the OP sends the
        browser to outside itself (the client's redirect URI with code or error, state and iss).
        Raises OPError on any other page (``.login_failed`` after a wrong password)."""
        op_origin = "/".join(authorization_url.split("/")[:3])
        self.pages = []
        response, logged_in = self._get(authorization_url), False
        for _ in range(max_steps):
            if response.is_redirect:
                location = urljoin(response.url, response.headers["Location"])
                if "/".join(location.split("/")[:3]) != op_origin:
                    return location
                response = self._get(location)
                continue
            action, _ = _form(response.text)
            if response.status_code != 200 or not action:
                raise OPError("the OP showed an unexpected page", response)
            action = urljoin(response.url, action)
            if 'name="password"' in response.text:
                if logged_in:
                    raise OPError("the OP refused the username or password", response)
                self.pages.append("login")
                response, logged_in = self._post(action, {"username": self.username,
                                                          "password": self.password}), True
                if response.status_code == 200 and 'name="password"' in response.text:
                    raise OPError("the OP refused the username or password", response)
            elif 'value="authorize"' in response.text:
                self.pages.append("consent")
                response = self._post(action, {"decision": "authorize" if approve else "deny"})
            else:
                raise OPError("the OP showed a page with an unknown form", response)
        raise OPError(f"no redirect back to the client after {max_steps} steps", response)

    def logout(self, end_session_url, confirm=True):
        """Open the OP's end_session URL (RP-initiated logout), answer its confirmation form ("Yes, log me
        out", or "No" with ``confirm=False``) and return where the OP sends the browser: the
        post_logout_redirect_uri (with state) or, without one, the OP's own "logged out" page."""
        response = self._get(end_session_url)
        action, hidden = _form(response.text)
        if response.status_code != 200 or not action:
            raise OPError("the OP did not show its logout confirmation", response)
        data = {**hidden, **({"logout": "yes"} if confirm else {})}
        response = self._post(urljoin(response.url, action), data)
        if not response.is_redirect:
            raise OPError("the OP did not redirect after the logout confirmation", response)
        return urljoin(response.url, response.headers["Location"])


def query(url):
    """The query parameters of a URL as a dict of single values (for asserting on the redirect back)."""
    from urllib.parse import parse_qs

    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def require_realop():
    """Skip the calling test (fail when ``CI`` is set: CI installs Node, so it must never pass by
    skipping) when the real OP cannot run. Call it in a fixture before starting ``RealOP``."""
    import pytest

    ok, reason = realop_available()
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so the real-OP tests must run)", pytrace=False)
        pytest.skip(reason)
