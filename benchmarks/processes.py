"""The processes a benchmark run starts and stops: the fake DHIS2 servers, the gunicorn servers (geologin on
its throwaway instances and databases, and the two baselines), and what we read about them from /proc (CPU
shares, memory)."""
import json
import os
import re
import secrets
import select
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from plan import (BASELINE_SECRET, BENCH_PASSWORD, BENCH_USERS, CLIENT_SECRET, DHIS2_PASSWORD, FAKE_VERSION,
                  LARGE_PROVIDERS, LARGE_USERS, LOCKOUT_MAX_FAILURES, RATE_LIMIT, dhis2_uid, say)

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
    def __init__(self, name, workdir, clients):
        self.name = name
        users = [{"username": u, "password": DHIS2_PASSWORD, "uid": dhis2_uid(u)} for u in BENCH_USERS]
        config = workdir / f"fake-{name}.json"
        config.write_text(json.dumps({"users": users}))
        self.log = open(workdir / f"fake-{name}.log", "wb")
        cmd = [PY, str(FAKE), "--port", "0", "--version", FAKE_VERSION, "--quiet", "--config", str(config)]
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

    def __init__(self, label, app, port, env, workdir, ready_path):
        self.label, self.port, self.ready_path = label, port, ready_path
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**env, "BENCH_APP": app, "BENCH_LABEL": label, "BENCH_TIMINGS_DIR": str(workdir / "timings"),
                    "GEOLOGIN_BIND": f"127.0.0.1:{port}"}
        self.log = workdir / f"gunicorn-{label}.log"

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([PY, "-m", "gunicorn", "-c", "gunicorn.conf.py", "benchmarks.timed_wsgi:app"],
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


def geologin_env(instance, port, args, database):
    from cryptography.fernet import Fernet
    env = _without_geologin_settings()
    env.update({
        # Development only because plain http on loopback needs it; every key is set as in production.
        "GEOLOGIN_ENV": "development",
        "GEOLOGIN_SECRET_KEY": secrets.token_urlsafe(48),
        "GEOLOGIN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "GEOLOGIN_INSTANCE": str(instance),
        "GEOLOGIN_PUBLIC_URL": f"http://127.0.0.1:{port}",
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


def geologin_specs(fakes, large):
    """What seed.py puts in each geologin database: main (3 providers), small (1) and, unless --no-large,
    large (1 real provider among 1,000 and 100,000 users)."""
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
    return specs


def start_geologin(args, workdir, specs, ports, results):
    """Each geologin server on its own instance folder and database, seeded first; returns (servers, databases)."""
    servers, databases, results["seed"] = {}, {}, {}
    for name, spec in specs.items():
        instance = workdir / f"instance-{name}"
        instance.mkdir()
        databases[name] = Database(name, instance, args.database_url)
        env = geologin_env(instance, ports[name], args, databases[name])
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
