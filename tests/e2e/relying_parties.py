"""Real relying parties that this project did not write, run as processes on loopback against a geologin
process, for the end-to-end tests of its OpenID provider:

- ``Apache``: Apache httpd with mod_auth_openidc (Debian's apache2 and libapache2-mod-auth-openidc), from a
  config file of its own in a temporary folder (never the system's). ``/protected/`` is a CGI that prints
  what the module passes on: REMOTE_USER (the ``sub`` claim) and the OIDC_CLAIM_* variables.
- ``OpenIDClient``: panva's certified npm openid-client driven by tests/rp/rp.mjs, one command per step.
- ``Browser``: a person at a browser (requests.Session) who logs in to geologin by password or through a
  fake DHIS2, and clicks Allow (or Deny) on geologin's consent page.

Each ``require_*`` skips the calling test with the reason when its RP is missing, and fails it when ``CI``
is set (.ci/run installs them, so CI must never pass by skipping).
"""
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

ROOT = Path(__file__).resolve().parents[2]
RP_DIR = ROOT / "tests" / "rp"
RP_SCRIPT = RP_DIR / "rp.mjs"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
APACHE_HOW = "apt-get install apache2, then apt-get install libapache2-mod-auth-openidc (Debian)"
# Only what the test's own config uses; mod_unixd and mod_log_config are compiled into Debian's apache2.
APACHE_LOADS = ["mpm_prefork", "authn_core", "authz_core", "authz_user", "alias", "cgi", "auth_openidc"]

WHOAMI_CGI = """#!/bin/sh
# What an application behind mod_auth_openidc sees of the person: REMOTE_USER and the claims.
printf 'Content-Type: text/plain; charset=utf-8\\r\\nCache-Control: no-store\\r\\n\\r\\n'
printf 'REMOTE_USER=%s\\n' "$REMOTE_USER"
env | grep '^OIDC_CLAIM_' | sort
"""


def origin(url):
    return "/".join(url.split("/")[:3])


def query(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def unavailable(reason):
    import pytest

    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the end-to-end tests must run)", pytrace=False)
    pytest.skip(reason)


# -- Apache httpd + mod_auth_openidc ---------------------------------------------------------------
def apache_binary():
    return shutil.which("apache2", path=os.environ.get("PATH", "") + ":/usr/sbin") or shutil.which("httpd")


def require_apache():
    if not apache_binary():
        unavailable(f"Apache httpd is not installed: {APACHE_HOW}")
    missing = [name for name in APACHE_LOADS if not (APACHE_MODULES / f"mod_{name}.so").exists()]
    if missing:
        unavailable(f"Apache modules {', '.join(missing)} are missing from {APACHE_MODULES}: {APACHE_HOW}")


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Apache:
    """One Apache httpd (``-X``: one process in the foreground) on 127.0.0.1:``port`` protecting
    ``/protected/`` with mod_auth_openidc as a confidential client of ``issuer``."""

    def __init__(self, issuer, client_id, client_secret, port, scope="openid profile email", timeout=20):
        self.port = port
        self.url, self.redirect_uri, self.logged_out_url = self.urls(port)
        self.folder = Path(tempfile.mkdtemp(prefix="geologin-apache-"))
        (self.folder / "htdocs").mkdir()
        (self.folder / "htdocs" / "logged-out.html").write_text("<!doctype html><p>You left the application.</p>\n")
        (self.folder / "cgi").mkdir()
        cgi = self.folder / "cgi" / "whoami.cgi"
        cgi.write_text(WHOAMI_CGI)
        cgi.chmod(0o755)
        self.user = "www-data" if os.geteuid() == 0 else None  # Apache refuses to serve as root
        if self.user:
            shutil.chown(self.folder, self.user)  # the CGI runs as that user, and reads its folder
            os.chmod(self.folder, 0o755)
        loads = "\n".join(f"LoadModule {name}_module {APACHE_MODULES}/mod_{name}.so" for name in APACHE_LOADS)
        user = f"User {self.user}\nGroup {self.user}\n" if self.user else ""
        self.config = self.folder / "httpd.conf"
        self.config.write_text(f"""# Written by tests/e2e/relying_parties.py: an application protected by geologin.
ServerRoot "{self.folder}"
PidFile "{self.folder}/httpd.pid"
ErrorLog "{self.folder}/error.log"
LogLevel warn auth_openidc:info
Listen 127.0.0.1:{self.port}
# One process (-X) serves one connection at a time: a browser's kept-alive connection would hold it while
# geologin's back-channel logout POST waits.
KeepAlive Off
ServerName 127.0.0.1:{self.port}
{loads}
{user}DocumentRoot "{self.folder}/htdocs"
<Directory "{self.folder}/htdocs">
    Require all granted
</Directory>
ScriptAliasMatch "^/protected/(whoami)?$" "{cgi}"
<Directory "{self.folder}/cgi">
    Require all granted
</Directory>

OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
OIDCClientID "{client_id}"
OIDCClientSecret "{client_secret}"
OIDCRedirectURI {self.redirect_uri}
OIDCCryptoPassphrase "{secrets.token_urlsafe(24)}"
OIDCScope "{scope}"
OIDCPKCEMethod S256
OIDCRemoteUserClaim sub
OIDCPassClaimsAs environment
OIDCPassIDTokenAs claims
OIDCDefaultLoggedOutURL {self.logged_out_url}
<Location /protected/>
    AuthType openid-connect
    Require valid-user
</Location>
""")
        self.proc = subprocess.Popen([apache_binary(), "-X", "-f", str(self.config)], cwd=self.folder,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                requests.get(self.logged_out_url, timeout=2)
                break
            except requests.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"Apache did not start on {self.url}:\n{self.log()}")
                time.sleep(0.1)

    @staticmethod
    def urls(port):
        """(its URL, its redirect URI, its post-logout page) when it listens on ``port``: what the
        application's registration at geologin needs before Apache starts."""
        url = f"http://127.0.0.1:{port}"
        return url, url + "/protected/redirect_uri", url + "/logged-out.html"

    def log(self):
        """The error log (mod_auth_openidc says there why it refused a response), and Apache's own output."""
        text = ""
        if (self.folder / "error.log").exists():
            text = (self.folder / "error.log").read_text(errors="replace")
        if self.proc.poll() is not None and self.proc.stdout:
            text += self.proc.stdout.read()
        return text

    def logout_url(self, then=None):
        """mod_auth_openidc's logout: ends its session, then RP-initiated logout at geologin."""
        from urllib.parse import quote

        return f"{self.redirect_uri}?logout={quote(then or self.logged_out_url, safe='')}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def claims_page(text):
    """What the protected CGI printed, as a dict: REMOTE_USER and the claims without their OIDC_CLAIM_ prefix."""
    seen = {}
    for line in text.splitlines():
        name, _, value = line.partition("=")
        if name == "REMOTE_USER" or name.startswith("OIDC_CLAIM_"):
            seen[name.removeprefix("OIDC_CLAIM_")] = value
    return seen


# -- openid-client (npm) ---------------------------------------------------------------------------
def require_openid_client():
    if not shutil.which("node"):
        unavailable("Node.js is not installed (apt-get install nodejs npm), so openid-client cannot run")
    wanted = json.loads((RP_DIR / "package.json").read_text())["dependencies"]["openid-client"]
    installed = RP_DIR / "node_modules" / "openid-client" / "package.json"
    if not installed.exists():
        unavailable("openid-client is not installed in tests/rp/node_modules: run `make rp-deps`")
    version = json.loads(installed.read_text())["version"]
    if version != wanted:
        unavailable(f"tests/rp has openid-client {version}, package.json pins {wanted}: run `make rp-deps`")


class RPError(AssertionError):
    """openid-client refused a step; ``error`` is what rp.mjs reported (step, name, code, message, ...)."""

    def __init__(self, command, error):
        super().__init__(f"openid-client {command}: {json.dumps(error)}")
        self.error = error


class OpenIDClient:
    """One relying party's session in openid-client: the settings and what it remembers between steps live
    in a JSON file, as a web application keeps them in its session."""

    def __init__(self, issuer, client_id, client_secret=None, *, redirect_uri, scope="openid profile email",
                 auth="client_secret_basic", post_logout_redirect_uri=None, **extra):
        self._file = tempfile.NamedTemporaryFile("w", suffix=".json", prefix="rp-session-", delete=False)
        settings = {"issuer": issuer, "client_id": client_id, "client_secret": client_secret,
                    "auth": auth if client_secret else "none", "redirect_uri": redirect_uri, "scope": scope,
                    "post_logout_redirect_uri": post_logout_redirect_uri, **extra}
        with self._file as f:
            json.dump(settings, f)

    def run(self, command, *args, check=True):
        """The JSON that ``node rp.mjs COMMAND`` printed; RPError when it failed and ``check``."""
        result = subprocess.run(["node", str(RP_SCRIPT), command, "--session", self._file.name, *args], cwd=RP_DIR,
                                capture_output=True, text=True, timeout=60)
        try:
            answer = json.loads(result.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            raise AssertionError(f"rp.mjs {command} printed no JSON (exit {result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}") from None
        if check and "error" in answer:
            raise RPError(command, answer["error"])
        return answer

    def discover(self):
        return self.run("discover")

    def authorization_url(self):
        return self.run("start")["authorization_url"]

    def callback(self, url):
        return self.run("callback", "--url", url)

    def refresh(self, check=True):
        return self.run("refresh", check=check)

    def userinfo(self, check=True):
        return self.run("userinfo", check=check)

    def end_session_url(self):
        return self.run("logout-url")["end_session_url"]

    def session(self):
        return json.loads(Path(self._file.name).read_text())

    def close(self):
        Path(self._file.name).unlink(missing_ok=True)


# -- the person at the browser ---------------------------------------------------------------------
class _Forms(HTMLParser):
    """Every form of a page: action, method, fields (name -> value of its inputs, checked boxes only) and
    its submit buttons as (name, value, label)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms, self._form, self._button = [], None, None

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._form = {"action": attrs.get("action", ""), "method": attrs.get("method", "get").lower(),
                          "fields": {}, "inputs": [], "buttons": []}
            self.forms.append(self._form)
        elif self._form is None:
            return
        elif tag == "input":
            kind = attrs.get("type", "text").lower()
            self._form["inputs"].append((kind, attrs.get("name", "")))
            if kind == "submit":
                self._form["buttons"].append((attrs.get("name", ""), attrs.get("value", ""), attrs.get("value", "")))
            elif kind in ("checkbox", "radio"):
                if "checked" in attrs and attrs.get("name"):
                    self._form["fields"][attrs["name"]] = attrs.get("value", "on")
            elif attrs.get("name"):
                self._form["fields"][attrs["name"]] = attrs.get("value", "")
        elif tag == "button" and attrs.get("type", "submit").lower() == "submit":
            self._button = [attrs.get("name", ""), attrs.get("value", ""), ""]

    def handle_data(self, data):
        if self._button is not None:
            self._button[2] += data

    def handle_endtag(self, tag):
        if tag == "button" and self._button is not None and self._form is not None:
            self._form["buttons"].append(tuple(part.strip() if i == 2 else part for i, part in enumerate(self._button)))
            self._button = None
        elif tag == "form":
            self._form = None


def forms(html):
    parser = _Forms()
    parser.feed(html)
    return parser.forms


class BrowserError(AssertionError):
    def __init__(self, message, response):
        super().__init__(f"{message}: {response.status_code} {response.url}\n{response.text[:1500]}")
        self.response = response


class Browser:
    """A person at a browser (one cookie jar for every loopback server, as a browser's). ``visit`` follows
    redirects and geologin's pages the way the person would: the login form (password) or "Log in with
    DHIS2" (then the fake DHIS2's own login and approval), then Allow (or Deny) on the consent page; it stops at
    the first page it need not act on, or at a redirect to ``stop_at`` (a redirect URI nobody serves)."""

    def __init__(self, geologin_url, username, password=None, *, dhis2=None, approve=True):
        self.geologin = geologin_url
        self.username, self.password = username, password
        self.dhis2 = dhis2  # (provider slug, tests.fakes.Dhis2User) to log in with DHIS2 instead of a password
        self.approve = approve
        self.http = requests.Session()
        self.pages = []  # the geologin pages acted on by the last visit(): "login", "dhis2", "consent"
        self.trail = []  # every URL the last visit() went through

    def get(self, url):
        response = self.http.get(url, allow_redirects=False, timeout=20)
        self.trail.append(url)
        return response

    def submit(self, page, form, button=None, **values):
        data = {**form["fields"], **values}
        if button and button[0]:
            data[button[0]] = button[1]
        action = urljoin(page.url, form["action"] or page.url)
        self.trail.append(f"{form['method'].upper()} {action}")
        if form["method"] == "post":
            return self.http.post(action, data=data, allow_redirects=False, timeout=20)
        return self.http.get(action, params=data, allow_redirects=False, timeout=20)

    def visit(self, url, stop_at=None, max_steps=25):
        """The last response (a page, or the redirect to ``stop_at``)."""
        self.pages, self.trail = [], []
        response = self.get(url)
        for _ in range(max_steps):
            if response.is_redirect:
                location = urljoin(response.url, response.headers["Location"])
                if stop_at and location.startswith(stop_at):
                    return response
                if self.dhis2 and origin(location) not in (self.geologin, origin(url)):
                    # The DHIS2 server's own pages, with its own cookies (tests.fakes.Dhis2User)
                    self.pages.append("dhis2")
                    back = self.dhis2[1].authorize(location)
                    response = self.get(back)
                    continue
                response = self.get(location)
                continue
            if origin(response.url) != self.geologin or response.status_code != 200:
                return response
            acted = self._act(response)
            if acted is None:
                return response
            response = acted
        raise BrowserError(f"still redirecting after {max_steps} steps", response)

    def _act(self, page):
        page_forms = forms(page.text)
        for form in page_forms:
            names = {name for _, name in form["inputs"]}
            if "password" in names and "username" in names and "new_password" not in names:
                if "login" in self.pages:
                    raise BrowserError("geologin showed its login form again (refused the login?)", page)
                if self.dhis2:
                    provider_form = next((f for f in page_forms if "provider" in f["fields"]), None)
                    if provider_form is None:
                        raise BrowserError(f"no 'Log in with DHIS2' ({self.dhis2[0]}) on the login page", page)
                    self.pages.append("login")
                    return self.submit(page, provider_form, provider=self.dhis2[0])
                self.pages.append("login")
                return self.submit(page, form, username=self.username, password=self.password)
        wanted = ("allow", "authorize") if self.approve else ("deny",)
        for form in page_forms:
            for button in form["buttons"]:
                if any(word in f"{button[0]} {button[1]} {button[2]}".lower() for word in wanted):
                    self.pages.append("consent")
                    return self.submit(page, form, button)
        return None

    def logged_in_as(self):
        """The username geologin's home page names, or None when it sends the person to log in."""
        response = self.http.get(self.geologin + "/", allow_redirects=False, timeout=10)
        match = re.search(r"Logged in as ([^<]+)<", response.text) if response.status_code == 200 else None
        return match.group(1).strip() if match else None


def register_application(geologin, name, redirect_uris, post_logout_uris=(), *, public=False, refresh_tokens=False,
                         providers=(), backchannel_logout_uri=None):
    """Register an application as its administrator would, with ``flask apps add ... --json``; return
    (client_id, client_secret), the secret None for a public client."""
    args = ["apps", "add", name, "--json"]
    args += [arg for uri in redirect_uris for arg in ("--redirect-uri", uri)]
    args += [arg for uri in post_logout_uris for arg in ("--post-logout-uri", uri)]
    args += [arg for slug in providers for arg in ("--provider", slug)]
    args += ["--backchannel-logout-uri", backchannel_logout_uri] if backchannel_logout_uri else []
    args += ["--public"] * public + ["--refresh-tokens"] * refresh_tokens
    printed = json.loads(geologin.flask(*args))
    return printed["client_id"], printed["client_secret"]
