"""Forward-auth through a real nginx, for tests/test_forward_auth_nginx.py, the browser journey and `make demo`:
geologin (a `flask run` process) at http://login.geologin.test:PORT with SESSION_COOKIE_DOMAIN=geologin.test,
Debian's nginx run from a config file of our own (the site block is the one in docs/forward-auth.md, so the
docs cannot drift from what is tested), and a small site behind it (tests/fakes/site.py).

The host names are invented: nginx needs no resolver (it proxies to 127.0.0.1), Chromium maps them with
--host-resolver-rules, and Python clients inside ``loopback_names()``, which resolves *.geologin.test to
127.0.0.1 for this process only."""
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "forward-auth.md"
DOMAIN = "geologin.test"
LOGIN_HOST, SITE_HOST = f"login.{DOMAIN}", f"reports.{DOMAIN}"
CHROMIUM_RESOLVER_RULES = f"--host-resolver-rules=MAP *.{DOMAIN} 127.0.0.1"
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]
IN_CI = bool(os.environ.get("CI"))
HOW_TO_INSTALL = "apt-get install nginx; Debian's nginx has the auth_request module"


def nginx_binary():
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def nginx_missing():
    """Why nginx cannot run the forward-auth tests here, or None."""
    binary = nginx_binary()
    if binary is None:
        return f"nginx is not installed ({HOW_TO_INSTALL})"
    built = subprocess.run([binary, "-V"], capture_output=True, text=True).stderr
    if "--with-http_auth_request_module" not in built:
        return f"{binary} is built without the auth_request module ({HOW_TO_INSTALL})"
    return None


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def loopback_names():
    """Resolve *.geologin.test to 127.0.0.1 in this process (requests and urllib use socket.getaddrinfo)."""
    original = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and (host == DOMAIN or host.endswith("." + DOMAIN)):
            host = "127.0.0.1"
        return original(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = original


def site_block(site_port, upstream, geologin):
    """docs/forward-auth.md's nginx server block, on plain http on loopback: the same locations and headers."""
    block = re.search(r"```nginx\n(server \{.*?\n\})\n```", DOC.read_text(), re.S).group(1)
    replacements = [("listen 443 ssl;", f"listen 127.0.0.1:{site_port};"),
                    ("server_name reports.moh.example;", f"server_name {SITE_HOST};"),
                    ("http://127.0.0.1:3000", upstream), ("http://geologin:8000", geologin)]
    for old, new in replacements:
        assert old in block, f"docs/forward-auth.md's nginx block no longer has {old!r}"
        block = block.replace(old, new)
    return "\n".join(line for line in block.splitlines() if "ssl_certificate" not in line)


class Nginx:
    """nginx in the foreground from its own config in ``folder`` (pid, logs and temp files there too)."""

    def __init__(self, folder, server_blocks, port):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port
        temp = "\n".join(f"    {kind}_temp_path {self.folder / kind};"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        # As root, nginx would switch its workers to "nobody", who cannot write our folder.
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.config = self.folder / "nginx.conf"
        self.config.write_text(f"""{user}worker_processes 1;
pid {self.folder / 'nginx.pid'};
error_log {self.folder / 'error.log'} info;
events {{ worker_connections 128; }}
http {{
    access_log {self.folder / 'access.log'};
{temp}
{server_blocks}
}}
""")
        self.proc = subprocess.Popen([nginx_binary(), "-p", str(self.folder), "-c", str(self.config),
                                      "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start:\n{self.proc.stderr.read().decode(errors='replace')}"
                                   f"\n{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines=50):
        try:
            return "\n".join((self.folder / "error.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc.stderr.close()


class Geologin:
    """geologin as `make run` serves it, but named login.geologin.test and sharing its session cookie with
    *.geologin.test (SESSION_COOKIE_DOMAIN), as it would be in front of protected sites."""

    def __init__(self, folder, env=None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://{LOGIN_HOST}:{self.port}"
        self.local_url = f"http://127.0.0.1:{self.port}"  # how nginx reaches it
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GEOLOGIN_") and k != "DATABASE_URL"}
        self.env.update({"GEOLOGIN_ENV": "development", "GEOLOGIN_INSTANCE": str(self.folder / "instance"),
                         "GEOLOGIN_PUBLIC_URL": self.url, "GEOLOGIN_SESSION_COOKIE_DOMAIN": DOMAIN,
                         "GEOLOGIN_ALLOW_INSECURE_HTTP": "1",
                         "GEOLOGIN_LOGIN_RATE_LIMIT": "1000 per minute", **(env or {})})
        self.flask("db", "upgrade")
        self.log = self.folder / "geologin.log"
        self._log_file = open(self.log, "wb")
        self.proc = subprocess.Popen(FLASK + ["run", "--host", "127.0.0.1", "--port", str(self.port)], cwd=ROOT,
                                     env=self.env, stdout=self._log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(self.local_url + "/login", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"geologin did not start:\n{self.log_tail()}")
            time.sleep(0.1)

    def flask(self, *args, stdin=None):
        result = subprocess.run(FLASK + list(args), cwd=ROOT, env=self.env, input=stdin, capture_output=True,
                                text=True, timeout=60)
        if result.returncode:
            raise AssertionError(f"flask {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result.stdout

    def log_tail(self, lines=100):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log_file.close()


class ProtectedSite:
    """The whole setup: ``geologin``, ``site`` (the app, which records what reaches it), ``nginx`` in front
    of it, and ``url``, the site's address as a browser uses it. Registers the site in geologin as "Reports"
    for SITE_HOST:port with ``add_options`` (e.g. --allowed-users-only)."""

    def __init__(self, folder, *add_options, geologin_env=None):
        from tests.fakes.site import Site

        self.geologin = self.site = self.nginx = None
        try:
            self.geologin = Geologin(Path(folder) / "geologin", env=geologin_env)
            port = free_port()
            self.url = f"http://{SITE_HOST}:{port}"
            self.logout_url = f"{self.geologin.url}/forward-auth/logout?rd={self.url}/"
            self.site = Site("Reports", logout_url=self.logout_url)
            self.geologin.flask("apps", "add", "Reports", "--forward-auth", "--host", f"{SITE_HOST}:{port}",
                                *add_options)
            self.nginx = Nginx(Path(folder) / "nginx", site_block(port, self.site.url, self.geologin.local_url),
                               port)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        for part in (self.nginx, self.site, self.geologin):
            if part is not None:
                part.stop()
