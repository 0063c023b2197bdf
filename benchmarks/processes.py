"""The processes a benchmark run starts and stops: the fake DHIS2 servers, the gunicorn servers (geologin on
its throwaway instances and databases, and the two baselines), and what we read about them from /proc (CPU
shares, memory)."""
import http.client
import json
import os
import re
import secrets
import select
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from plan import (BASELINE_SECRET, BENCH_PASSWORD, BENCH_USERS, CLIENT_SECRET, COOKIE_DOMAIN, DHIS2_PASSWORD,
                  FAKE_VERSION, PEER_FAKE_VERSION, PEER_SECRET, LARGE_PROVIDERS, LARGE_USERS, LOCKOUT_MAX_FAILURES, RATE_LIMIT, SITE_FILE_BYTES,
                  SITE_HOST, dhis2_uid, say)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
FAKE = ROOT / "tests" / "fakes" / "dhis2"   # the fake DHIS2 server, run as a folder (also named in the report)

_children = []   # every long-running process we started (fakes, gunicorn masters), stopped at the end
_roles = {}      # pid -> role, for the CPU accounting


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


class FakeDhis2:
    def __init__(self, name, workdir, clients, version=FAKE_VERSION, bcrypt_secrets=False):
        self.name = name
        users = [{"username": u, "password": DHIS2_PASSWORD, "uid": dhis2_uid(u)} for u in BENCH_USERS]
        config = workdir / f"fake-{name}.json"
        config.write_text(json.dumps({"users": users}))
        self.log = open(workdir / f"fake-{name}.log", "wb")
        cmd = [PY, str(FAKE), "--port", "0", "--version", version, "--quiet", "--config", str(config)]
        if bcrypt_secrets:
            cmd.append("--bcrypt-secrets")
        for client in clients:
            cmd += ["--client", client]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True)
        _children.append(self.proc)
        _roles[self.proc.pid] = "fake DHIS2 servers"
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else ""
        if "listening on" not in line:
            raise SystemExit(f"fake DHIS2 {name} did not start: {line!r} (see {self.log.name})")
        self.url = line.rsplit(" ", 1)[-1].strip().rstrip("/") + "/"


class Gunicorn:
    """gunicorn -c gunicorn.conf.py benchmarks.timed_wsgi:app, wrapping BENCH_APP."""

    def __init__(self, label, app, port, env, workdir, ready_path, python=PY, config="gunicorn.conf.py"):
        self.label, self.port, self.ready_path = label, port, ready_path
        self.python, self.config = python, config
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**env, "BENCH_APP": app, "BENCH_LABEL": label, "BENCH_TIMINGS_DIR": str(workdir / "timings"),
                    "GEOLOGIN_BIND": f"127.0.0.1:{port}"}
        self.log = workdir / f"gunicorn-{label}.log"

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([self.python, "-m", "gunicorn", "-c", self.config, "benchmarks.timed_wsgi:app"],
                                         cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        _children.append(self.proc)
        _roles[self.proc.pid] = self.label
        return self

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn {self.label} exited; see {self.log}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2):
                    return self
            except urllib.error.HTTPError:
                return self
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"gunicorn {self.label} did not answer in {timeout} s; see {self.log}")

    def workers(self):
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def stop_children():
    for proc in _children:
        if proc.poll() is None:
            proc.terminate()
    for proc in _children:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    _children.clear()


class CpuMeter:
    """Where the machine's CPU went during a phase, as shares of its capacity (cores x wall time): each of
    our servers (master and workers), the fake DHIS2 servers, the load generators (wrk, loadgen.py: our
    finished child processes), this driver, and everything else on the machine (other people's work)."""

    def __init__(self):
        self.before = self._snapshot()

    @staticmethod
    def _process_seconds(pid, with_children=False):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        if with_children:
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime (workers that were replaced)
        return ticks / os.sysconf("SC_CLK_TCK")

    def _snapshot(self):
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy = (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
        roles = {}
        for proc in _children:
            role = _roles.get(proc.pid, "other of ours")
            seconds = self._process_seconds(proc.pid, with_children=True)
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            if children.exists():
                seconds += sum(self._process_seconds(int(pid)) for pid in children.read_text().split())
            roles[role] = roles.get(role, 0.0) + seconds
        times = os.times()
        roles["load generators (wrk, loadgen.py)"] = times.children_user + times.children_system
        roles["benchmark driver"] = times.user + times.system
        return time.monotonic(), busy, roles

    def stop(self):
        (t0, busy0, roles0), (t1, busy1, roles1) = self.before, self._snapshot()
        capacity = (t1 - t0) * (os.cpu_count() or 1)
        shares = {role: max(0.0, roles1[role] - roles0.get(role, 0.0)) / capacity for role in roles1}
        shares = {role: share for role, share in shares.items() if share >= 0.005}
        shares["other processes on the machine"] = max(0.0, (busy1 - busy0) / capacity - sum(shares.values()))
        return shares


def memory_of(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024
    return rss, hwm


# -- databases ---------------------------------------------------------------------------------------------------
class Database:
    """SQLite in the instance folder, or a fresh PostgreSQL database on the server of --database-url."""

    def __init__(self, name, instance, server_url):
        self.server_url = server_url
        if server_url:
            from sqlalchemy.engine import make_url
            base = make_url(server_url.replace("postgres://", "postgresql://", 1))
            if base.drivername in ("postgresql", "postgres"):
                base = base.set(drivername="postgresql+psycopg")
            self.dbname = f"geologin_bench_{name}"
            self._admin_url = base
            self.url = base.set(database=self.dbname).render_as_string(hide_password=False)
            self._admin(f'DROP DATABASE IF EXISTS "{self.dbname}"', f'CREATE DATABASE "{self.dbname}"')
        else:
            self.url = None
            self.sqlalchemy_url = f"sqlite:///{instance}/geologin.sqlite3"

    def _admin(self, *statements):
        from sqlalchemy import create_engine, text
        engine = create_engine(self._admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            for statement in statements:
                connection.execute(text(statement))
        engine.dispose()

    def execute(self, statement):
        from sqlalchemy import create_engine, text
        engine = create_engine(self.url or self.sqlalchemy_url)
        with engine.begin() as connection:
            connection.execute(text(statement))
        engine.dispose()

    def drop(self):
        if self.server_url:
            self._admin(f'DROP DATABASE IF EXISTS "{self.dbname}"')


def _without_geologin_settings():
    return {k: v for k, v in os.environ.items() if not k.startswith("GEOLOGIN_") and k != "DATABASE_URL"}


def geologin_env(instance, port, args, database, public_host="127.0.0.1"):
    from cryptography.fernet import Fernet
    env = _without_geologin_settings()
    env.update({
        # Development only because plain http on loopback needs it; every key is set as in production.
        "GEOLOGIN_ENV": "development",
        "GEOLOGIN_SECRET_KEY": secrets.token_urlsafe(48),
        "GEOLOGIN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "GEOLOGIN_INSTANCE": str(instance),
        "GEOLOGIN_PUBLIC_URL": f"http://{public_host}:{port}",
        "GEOLOGIN_ALLOW_INSECURE_HTTP": "1",
        "GEOLOGIN_LOGIN_RATE_LIMIT": RATE_LIMIT,
        "GEOLOGIN_LOCKOUT_MAX_FAILURES": LOCKOUT_MAX_FAILURES,
        "GEOLOGIN_WORKERS": str(args.workers),
        "GEOLOGIN_THREADS": str(args.threads),
    })
    if database.url:
        env["DATABASE_URL"] = database.url
    if args.sqlite_journal:
        env["GEOLOGIN_SQLITE_JOURNAL_MODE"] = args.sqlite_journal
    if args.sqlite_synchronous:
        env["GEOLOGIN_SQLITE_SYNCHRONOUS"] = args.sqlite_synchronous
    return env


def seed(env, spec, workdir, name):
    path = workdir / f"seed-{name}.json"
    path.write_text(json.dumps(spec))
    out = subprocess.run([PY, str(HERE / "seed.py"), str(path)], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"seeding {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- starting everything -------------------------------------------------------------------------------------------
def start_fakes(workdir, ports):
    """Three fake DHIS2 servers, each knowing every geologin server's callbacks and the Authlib baseline."""
    callbacks = [f"http://127.0.0.1:{ports[n]}/auth/moh{i}/callback" for n in ("main", "small", "large")
                 for i in (1, 2, 3)]
    fakes = [FakeDhis2(f"dhis2-{i}", workdir, [f"geologin:{CLIENT_SECRET}:{','.join(callbacks)}",
                                               f"baseline:{BASELINE_SECRET}:http://127.0.0.1:{ports['authlib']}/callback"])
             for i in (1, 2, 3)]
    say("fake DHIS2 servers: " + ", ".join(f.url for f in fakes))
    return fakes


def geologin_specs(fakes, large, forward_auth=True):
    """What seed.py puts in each geologin database: main (3 providers), small (1), unless --no-large large (1
    real provider among 1,000 and 100,000 users) and, when nginx runs, forward (small's, for item 7)."""
    def providers(count):
        return [{"slug": f"moh{i}", "label": f"Ministry of Health {i} (DHIS2 {FAKE_VERSION})",
                 "base_url": fakes[i - 1].url, "client_secret": CLIENT_SECRET} for i in range(1, count + 1)]
    bench_users = [{"username": u, "password": BENCH_PASSWORD, "uid": dhis2_uid(u)} for u in BENCH_USERS]
    specs = {
        "main": {"providers": providers(3), "bench_users": bench_users},
        "small": {"providers": providers(1), "bench_users": bench_users},
    }
    if large:
        specs["large"] = {"providers": providers(1), "bench_users": bench_users,
                          "filler_providers": LARGE_PROVIDERS - 1, "filler_enabled": True,
                          "filler_users": LARGE_USERS - 1 - len(BENCH_USERS)}
    if forward_auth:
        specs["forward"] = specs["small"]
    return specs


def start_geologin(args, workdir, specs, ports, results):
    """Each geologin server on its own instance folder and database, seeded first; returns (servers, databases)."""
    servers, databases, results["seed"] = {}, {}, {}
    for name, spec in specs.items():
        instance = workdir / f"instance-{name}"
        instance.mkdir()
        databases[name] = Database(name, instance, args.database_url)
        # Item 7's server lives at a host under a parent domain, as a forward-auth deployment must.
        public_host = f"login.{COOKIE_DOMAIN}" if name == "forward" else "127.0.0.1"
        env = geologin_env(instance, ports[name], args, databases[name], public_host)
        if name == "forward":
            env["GEOLOGIN_SESSION_COOKIE_DOMAIN"] = COOKIE_DOMAIN
        seeded = seed(env, spec, workdir, name)
        results["seed"][name] = seeded
        say(f"seeded {name}: {seeded['counts']['users']} users, {seeded['counts']['provider_instances']} "
            f"providers in {seeded['seconds']} s")
        servers[name] = Gunicorn(f"geologin-{name}", "wsgi:app", ports[name], env, workdir, "/healthz").start()
    return servers, databases


def start_baselines(args, workdir, fakes, ports, page_bytes):
    """The bare page (padded to ``page_bytes``) and the Authlib client, started and answering."""
    base_env = _without_geologin_settings()
    base_env.update({"GEOLOGIN_WORKERS": str(args.workers), "GEOLOGIN_THREADS": str(args.threads)})
    page = Gunicorn("baseline-page", "baseline_page:app", ports["page"],
                    {**base_env, "BASELINE_PAGE_BYTES": str(page_bytes)}, workdir, "/login").start()
    authlib = Gunicorn("baseline-authlib", "baseline_authlib:app", ports["authlib"],
                       {**base_env, "BASELINE_DHIS2_URL": fakes[0].url, "BASELINE_CLIENT_ID": "baseline",
                        "BASELINE_CLIENT_SECRET": BASELINE_SECRET, "BASELINE_PUBLIC_URL": f"http://127.0.0.1:{ports['authlib']}",
                        "BASELINE_SECRET_KEY": secrets.token_urlsafe(48)}, workdir, "/").start()
    page.wait_ready()
    authlib.wait_ready()
    return page, authlib


# -- the peer: Django + django-allauth (benchmarks/peer_allauth) ------------------------------------------------------
PEER = HERE / "peer_allauth"
PEER_CALLBACK = "/accounts/oidc/dhis2/login/callback/"


def peer_python():
    """The peer site's own venv (benchmarks/peer_allauth/.venv), built or rebuilt when requirements.txt changed."""
    import hashlib
    venv = PEER / ".venv"
    python = venv / "bin" / "python"
    requirements = PEER / "requirements.txt"
    stamp, wanted = venv / ".requirements", hashlib.sha256(requirements.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return str(python)
    say(f"building the peer's venv ({venv}) from {requirements.name}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    out = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
                          str(requirements)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the peer's venv: pip install failed\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    stamp.write_text(wanted)
    return str(python)


def start_dhis2_242(workdir, ports):
    """The fake DHIS2 2.42.5 both apps of the peer comparison log in at, checking client secrets with bcrypt."""
    fake = FakeDhis2("dhis2-242", workdir, [
        f"geologin:{CLIENT_SECRET}:http://127.0.0.1:{ports['g42']}/auth/moh1/callback",
        f"peer:{PEER_SECRET}:http://127.0.0.1:{ports['peer']}{PEER_CALLBACK}"],
        version=PEER_FAKE_VERSION, bcrypt_secrets=True)
    say(f"fake DHIS2 {PEER_FAKE_VERSION} (bcrypt client secrets): {fake.url}")
    return fake


def g42_spec(fake):
    """geologin's side of the peer comparison: one DHIS2 2.42.5 provider, the bench users bound to it."""
    return {"providers": [{"slug": "moh1", "label": f"Ministry of Health (DHIS2 {PEER_FAKE_VERSION})",
                           "base_url": fake.url, "client_secret": CLIENT_SECRET, "generation": "oidc"}],
            "bench_users": [{"username": u, "password": BENCH_PASSWORD, "uid": u,
                             "subject_scheme": "dhis2-sub"} for u in BENCH_USERS]}   # 2.42+: sub is the username


def start_peer(args, workdir, fake, port, results):
    """The peer site on its own SQLite database, seeded (users, the DHIS2 app, the links) and started."""
    python = peer_python()
    instance = workdir / "instance-peer"
    instance.mkdir()
    env = _without_geologin_settings()
    env.update({"PEER_SECRET_KEY": secrets.token_urlsafe(48), "PEER_DATABASE": str(instance / "peer.sqlite3"),
                "DJANGO_SETTINGS_MODULE": "peer_site.settings", "PYTHONPATH": str(PEER),
                "GEOLOGIN_WORKERS": str(args.workers), "GEOLOGIN_THREADS": str(args.threads)})
    spec = workdir / "seed-peer.json"
    spec.write_text(json.dumps({
        "users": [{"username": u, "password": BENCH_PASSWORD} for u in BENCH_USERS],
        "dhis2": {"provider_id": "dhis2", "name": f"DHIS2 {PEER_FAKE_VERSION}", "server_url": fake.url.rstrip("/"),
                  "client_id": "peer", "secret": PEER_SECRET}}))
    out = subprocess.run([python, str(PEER / "seed.py"), str(spec)], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"seeding the peer failed:\n{out.stderr[-3000:]}")
    results.setdefault("seed", {})["peer"] = json.loads(out.stdout.strip().splitlines()[-1])
    return Gunicorn("peer-allauth", "peer_site.wsgi:application", port, env, workdir, "/accounts/login/",
                    python=python, config=str(PEER / "gunicorn.conf.py")).start()


# -- item 7: nginx in front of a static file, with and without auth_request to geologin ----------------------------
def protect_site(server):
    """Register item 7's protected site on ``server`` with geologin's own CLI (every active user may use it)."""
    out = subprocess.run([PY, "-m", "flask", "--app", "wsgi", "apps", "add", "Bench site", "--forward-auth",
                          "--host", SITE_HOST, "--all-users"], cwd=ROOT, env=server.env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"apps add --forward-auth failed:\n{out.stdout}{out.stderr}")


def _set_cookie(response, name):
    for header, value in response.getheaders():
        if header.lower() == "set-cookie" and value.startswith(name + "="):
            return value.split(";", 1)[0]
    return None


def session_cookie(server, username, password):
    """A logged-in session cookie (``name=value``) from a password login, read off the Set-Cookie headers
    (its Domain is the cookie domain, which no cookie jar would give to 127.0.0.1)."""
    name = server.env.get("GEOLOGIN_SESSION_COOKIE_NAME", "geologin_session")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/login")
    page = connection.getresponse()
    body, cookie = page.read().decode(), _set_cookie(page, name)
    token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', body).group(1)
    form = urllib.parse.urlencode({"csrf_token": token, "username": username, "password": password, "next": ""})
    connection.request("POST", "/login", body=form, headers={
        "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    answer = connection.getresponse()
    answer.read()
    connection.close()
    logged_in = _set_cookie(answer, name)
    if answer.status != 302 or not logged_in:
        raise SystemExit(f"item 7: the password login for the session cookie failed ({answer.status})")
    return logged_in


def nginx_binary():
    """Debian's nginx (``apt-get install -y nginx``; it lives in /usr/sbin), or None."""
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()), None)


class Nginx:
    """Debian's nginx from our own config file: one static file on two loopback ports, ``plain`` (no auth)
    and ``auth`` (``auth_request`` to geologin's ``/forward-auth/nginx``, as docs recipes do it)."""

    def __init__(self, binary, workdir, ports, geologin_port, workers):
        self.binary, self.ports = binary, ports
        self.root = workdir / "site"
        self.root.mkdir(exist_ok=True)
        self.file = "/report.html"
        page = "<!doctype html><title>Report</title><h1>Monthly report</h1>\n<p>"
        (self.root / self.file[1:]).write_text(page + "x" * (SITE_FILE_BYTES - len(page) - 5) + "</p>\n")
        temp = workdir / "nginx-temp"
        temp.mkdir(exist_ok=True)
        self.config = workdir / "nginx.conf"
        # As root, nginx's workers would run as nobody, who cannot enter the (private) work folder.
        self.config.write_text(NGINX_CONF.format(
            user="user root;" if os.geteuid() == 0 else "", workers=workers, work=workdir, temp=temp, root=self.root, plain=ports["plain"], auth=ports["auth"],
            geologin=geologin_port))
        self.log = workdir / "nginx-error.log"

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.config), "-p", str(self.config.parent)],
                                         stdout=log, stderr=subprocess.STDOUT)
        _children.append(self.proc)
        _roles[self.proc.pid] = "nginx"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"nginx exited; see {self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.ports["auth"]), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"nginx did not listen in 10 s; see {self.log}")

    def url(self, which):
        return f"http://127.0.0.1:{self.ports[which]}{self.file}"


# The auth server's recipe: the subrequest carries no body, names the original URL and method, and drops
# nothing else; the identity header is passed on as a real site would read it. HTTP/1.0 to geologin (nginx's
# default: one connection per subrequest), as every request to a gunicorn server in these benchmarks.
NGINX_CONF = """
{user}
daemon off;
worker_processes {workers};
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {work}/nginx-access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    default_type text/html;
    server {{
        listen 127.0.0.1:{plain};
        root {root};
    }}
    server {{
        listen 127.0.0.1:{auth};
        root {root};
        location / {{
            auth_request /_geologin;
            auth_request_set $geologin_user $upstream_http_remote_user;
            add_header X-Seen-User $geologin_user;
        }}
        location = /_geologin {{
            internal;
            proxy_pass http://127.0.0.1:{geologin}/forward-auth/nginx;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
            proxy_set_header X-Original-Method $request_method;
        }}
    }}
}}
"""
