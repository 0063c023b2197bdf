#!/usr/bin/env python3
"""geologin's benchmarks (issue 8): ``make bench``, or ``.venv/bin/python benchmarks/run.py [--quick]``.

Builds throwaway instance folders and databases, seeds them, starts three fake DHIS2 2.40.3 servers and
five gunicorn servers (geologin x3 and the two baseline apps, all with the project's gunicorn.conf.py and
the same workers/threads), drives them from other processes (wrk, and benchmarks/loadgen.py for the
multi-step flows), prints a table and writes benchmarks/RESULTS.md. See benchmarks/README.md.
"""
import argparse
import importlib.metadata
import json
import os
import platform
import pstats
import re
import secrets
import select
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from hash_ceiling import cost_label, one_hash

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
FAKE = ROOT / "tests" / "fakes" / "dhis2"  # a package: python runs its __main__.py
LOADGEN = HERE / "loadgen.py"
PASSWORD_LUA = HERE / "wrk" / "password_login.lua"

FAKE_VERSION = "2.40.3"
CLIENT_SECRET = secrets.token_hex(18)      # 36 characters, like the DHIS2 Settings app makes
BASELINE_SECRET = secrets.token_hex(18)
BENCH_PASSWORD = "Bench-login-correct-horse-42"
DHIS2_PASSWORD = "Dhis2-bench-pass-42"
BENCH_USERS = [f"bench{n:02d}" for n in range(1, 10)]   # + bench-admin = 10 users in a small database
LARGE_USERS = 100_000
LARGE_PROVIDERS = 1_000
RATE_LIMIT = "1000000 per minute"
LOCKOUT_MAX_FAILURES = "1000000"

PLANS = {
    "full": dict(reps=5, page_seconds=5, page_connections=16, seq_logins=80, flow_seconds=8, flow_warmup=2,
                 vus=50, password_seconds=8, password_vus=16, scale_page_seconds=3, scale_seq_logins=50,
                 scale_flow_seconds=5, hash_samples=30, profile_logins=40, profile_pages=300,
                 profile_passwords=30),
    "quick": dict(reps=3, page_seconds=2, page_connections=16, seq_logins=30, flow_seconds=3, flow_warmup=1,
                  vus=50, password_seconds=3, password_vus=16, scale_page_seconds=2, scale_seq_logins=20,
                  scale_flow_seconds=3, hash_samples=10, profile_logins=20, profile_pages=100,
                  profile_passwords=10),
}

_children = []   # every long-running process we started (fakes, gunicorn masters), stopped at the end
_roles = {}      # pid -> role, for the CPU accounting


def say(message):
    print(message, flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the machine and the tools ----------------------------------------------------------------------------------
def ensure_wrk():
    """wrk from Debian: installed with apt-get when missing and we are root; else None (Python fallback)."""
    if shutil.which("wrk"):
        return shutil.which("wrk")
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("wrk is missing: apt-get install -y wrk")
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, **quiet).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, **quiet)
            subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, **quiet)
    if shutil.which("wrk"):
        return shutil.which("wrk")
    say("NOTE: wrk is not available (not root, or apt-get failed): items 1 and 5 use benchmarks/loadgen.py.")
    return None


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine(workdir, wrk):
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    wrk_version = "not available (Python load generator used)"
    if wrk:
        out = subprocess.run([wrk, "-v"], capture_output=True, text=True)
        wrk_version = (out.stdout + out.stderr).splitlines()[0].strip()
    fs = subprocess.run(["stat", "-f", "-c", "%T", str(workdir)], capture_output=True, text=True).stdout.strip()
    return {
        "nproc": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
        "cpu": cpu,
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "gunicorn": _version("gunicorn"),
        "flask": _version("flask"), "werkzeug": _version("werkzeug"), "sqlalchemy": _version("sqlalchemy"),
        "authlib": _version("authlib"), "argon2-cffi": _version("argon2-cffi"),
        "sqlite": sqlite3.sqlite_version,
        "wrk": wrk_version,
        "workdir filesystem": fs,
    }


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- processes ---------------------------------------------------------------------------------------------------
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


def dhis2_uid(username):
    return "Bench" + username[-6:].rjust(6, "0")


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


def http_get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


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


def geologin_env(instance, port, workers, threads, database):
    from cryptography.fernet import Fernet
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOLOGIN_") and k != "DATABASE_URL"}
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
        "GEOLOGIN_WORKERS": str(workers),
        "GEOLOGIN_THREADS": str(threads),
    })
    if database.url:
        env["DATABASE_URL"] = database.url
    return env


def seed(env, spec, workdir, name):
    path = workdir / f"seed-{name}.json"
    path.write_text(json.dumps(spec))
    out = subprocess.run([PY, str(HERE / "seed.py"), str(path)], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"seeding {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- load ----------------------------------------------------------------------------------------------------------
def wrk_get(wrk, url, seconds, connections):
    out = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", "Connection: close",
                          url],
                         capture_output=True, text=True)
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    bad = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)) else 0
    socket_errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", text)
    p50_ms = None
    if p50:
        p50_ms = float(p50.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p50.group(2)]
    return {"per_second": rps, "errors": bad + socket_errors, "latency_p50_ms": p50_ms}


def loadgen(spec):
    out = subprocess.run([PY, str(LOADGEN), json.dumps(spec)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"loadgen failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def page_rate(wrk, url, seconds, connections):
    if wrk:
        return wrk_get(wrk, url + "/login", seconds, connections)
    result = loadgen({"mode": "throughput", "flow": "get", "path": "/login", "target": url, "vus": connections,
                      "warmup": 0.5, "duration": seconds, "users": [{}]})
    return {"per_second": result["per_second"], "errors": sum(result["errors"].values()),
            "latency_p50_ms": result["latency_p50_ms"]}


def password_rate(wrk, url, seconds, vus):
    if wrk:
        env = {**os.environ, "BENCH_USERS": ",".join(BENCH_USERS), "BENCH_PASSWORD": BENCH_PASSWORD}
        out = subprocess.run([wrk, f"-t{vus}", f"-c{vus}", f"-d{seconds}s", "-s", str(PASSWORD_LUA), url + "/login"],
                             capture_output=True, text=True, env=env)
        match = re.search(r"logins (\d+) failures (\d+)", out.stdout)
        if not match:
            raise SystemExit(f"wrk password run: unexpected output\n{out.stdout}\n{out.stderr}")
        return {"per_second": int(match.group(1)) / seconds, "errors": int(match.group(2))}
    users = [{"username": u, "password": BENCH_PASSWORD} for u in BENCH_USERS]
    result = loadgen({"mode": "throughput", "flow": "password", "target": url, "vus": vus, "warmup": 1,
                      "duration": seconds, "users": users})
    return {"per_second": result["per_second"], "errors": sum(result["errors"].values())}


def timings(workdir, label, prefix):
    """Per-login time inside the app (start + callback, wall minus outbound), from timed_wsgi's files."""
    logins = {}
    for path in (workdir / "timings").glob(f"timings-{label}-*.tsv"):
        for line in path.read_text().splitlines():
            login_id, step, status, wall, outbound, calls, cpu = line.split("\t")
            if login_id.startswith(prefix + "-"):
                logins.setdefault(login_id, {})[step] = (status, int(wall), int(outbound), int(calls), int(cpu))
    inside, outside, per_step = [], [], {"start": [], "callback": []}
    for steps in logins.values():
        if set(steps) >= {"start", "callback"} and all(s[0] == "302" for s in steps.values()):
            inside.append(sum(s[1] - s[2] for s in steps.values()) / 1000)
            outside.append(sum(s[2] for s in steps.values()) / 1000)
            for name in per_step:
                per_step[name].append((steps[name][1] - steps[name][2]) / 1000)
    if not inside:
        return None
    return {"inside_ms": statistics.median(inside), "outbound_ms": statistics.median(outside),
            "start_ms": statistics.median(per_step["start"]), "callback_ms": statistics.median(per_step["callback"]),
            "logins": len(inside)}


def timed_logins(workdir, server, flow, users, count, prefix):
    result = loadgen({"mode": "sequential", "flow": flow, "target": server.url, "count": count, "tag": True,
                      "login_prefix": prefix, "users": users})
    measured = timings(workdir, server.label, prefix)
    if measured is None:
        raise SystemExit(f"no timed logins recorded for {server.label} ({result['errors']})")
    measured["errors"] = sum(result["errors"].values())
    return measured


# -- profiles ----------------------------------------------------------------------------------------------------
def _where(filename, line, name):
    text = str(filename)
    if "site-packages/" in text:
        text = text.split("site-packages/", 1)[1]
    elif text.startswith(str(ROOT) + "/"):
        text = text[len(str(ROOT)) + 1:]
    elif "/lib/python3" in text:
        text = "stdlib " + text.split("/lib/python3", 1)[1].split("/", 1)[1]
    return f"{name} ({text}:{line})" if line else name


def _package(filename, name):
    """Who owns a profiled function: a site-packages distribution, geologin, the plugin, the stdlib, or C."""
    text = str(filename)
    if text == "~":
        for marker, owner in (("sqlite3", "sqlite3 (C: statements, commits and their fsync)"),
                              ("_socket", "sockets (C: outbound calls to DHIS2)"), ("argon2", "argon2 (C)"),
                              ("_thread", "locks (C)")):
            if marker in name:
                return owner
        return "Python built-ins (C)"
    if "site-packages/" in text:
        return text.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if text.startswith(str(ROOT / "geologin")):
        return "geologin"
    if text.startswith(str(ROOT / "plugins")) or "/templates/" in text:
        return "plugins, templates"
    if text.startswith(str(ROOT / "benchmarks")):
        return "benchmark wrapper"
    if "/lib/python3" in text:
        return "stdlib " + text.split("/lib/python3", 1)[1].split("/", 1)[1].split("/", 1)[0].removesuffix(".py")
    return "other"


def hot_spots(workdir, label, kind, count, top=10):
    files = sorted((workdir / "timings").glob(f"prof-{label}-{kind}-*.pstats"))
    if not files:
        return None
    stats = pstats.Stats(*[str(f) for f in files])
    entries = stats.stats  # (file, line, name) -> (cc, nc, tottime, cumtime, callers)
    total = sum(v[2] for v in entries.values())
    by_self = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:top]
    ours = [(k, v) for k, v in entries.items() if str(ROOT / "geologin") in k[0] or str(ROOT / "plugins") in k[0]]
    by_cumulative = sorted(ours, key=lambda item: item[1][3], reverse=True)[:top]

    packages = {}
    for key, value in entries.items():
        owner = _package(key[0], key[2])
        packages[owner] = packages.get(owner, 0.0) + value[2]
    by_package = sorted(packages.items(), key=lambda item: item[1], reverse=True)[:top]

    def rows(items, column):
        return [(_where(*key), 1000 * value[column] / count, 100 * value[column] / total if total else 0)
                for key, value in items]
    return {"total_ms": 1000 * total / count, "count": count, "self": rows(by_self, 2),
            "cumulative": rows(by_cumulative, 3),
            "packages": [(owner, 1000 * seconds / count, 100 * seconds / total if total else 0)
                         for owner, seconds in by_package]}


# -- the run -----------------------------------------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer and shorter repetitions (3-4 minutes)")
    parser.add_argument("--reps", type=int, help="repetitions of every measurement (default 5, quick 3)")
    parser.add_argument("--workers", type=int, default=2, help="GEOLOGIN_WORKERS for every server (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="GEOLOGIN_THREADS for every server (default 4)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"),
                        help="a PostgreSQL server URL whose user may CREATE DATABASE (default: SQLite)")
    parser.add_argument("--output", help="results file (default benchmarks/RESULTS.md; --quick writes none)")
    parser.add_argument("--workdir", help="where the throwaway instances go (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, databases, profiles)")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile pass (hot spots)")
    parser.add_argument("--no-large", action="store_true", help="skip the 100,000-user / 1,000-provider part")
    parser.add_argument("--sqlite-journal", metavar="MODE",
                        help="GEOLOGIN_SQLITE_JOURNAL_MODE for the geologin servers (default: geologin's, WAL)")
    parser.add_argument("--sqlite-synchronous", metavar="LEVEL",
                        help="GEOLOGIN_SQLITE_SYNCHRONOUS for the geologin servers (default: geologin's, FULL)")
    args = parser.parse_args()
    plan = dict(PLANS["quick" if args.quick else "full"])
    if args.reps:
        plan["reps"] = args.reps
    output = Path(args.output) if args.output else (None if args.quick else HERE / "RESULTS.md")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="geologin-bench-")).resolve()
    (workdir / "timings").mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    try:
        results = run(plan, args, workdir)
    finally:
        stop_children()
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    results["duration_s"] = time.monotonic() - began
    results["command"] = " ".join(["python benchmarks/run.py", *sys.argv[1:]])
    table = render_table(results)
    say("\n" + table)
    if output:
        write_results(output, results, table)
        say(f"\nwrote {output}")
    if args.keep or args.workdir:
        say(f"work folder kept: {workdir}")


def run(plan, args, workdir):
    results = {"plan": plan, "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "loadavg_start": loadavg(), "workers": args.workers, "threads": args.threads,
               "database": "PostgreSQL (--database-url)" if args.database_url else
               f"SQLite (instance folder; journal_mode={args.sqlite_journal or 'WAL'}, "
               f"synchronous={args.sqlite_synchronous or 'FULL'}"
               + (": geologin's defaults)" if not (args.sqlite_journal or args.sqlite_synchronous) else ")")}
    wrk = ensure_wrk()
    results["machine"] = machine(workdir, wrk)
    results["generators"] = {
        "page": f"wrk -t1 -c{plan['page_connections']}" if wrk else "loadgen.py (get)",
        "password": f"wrk -t{plan['password_vus']} -c{plan['password_vus']} -s wrk/password_login.lua" if wrk
        else "loadgen.py (password)",
        "flows": "loadgen.py (asyncio HTTP/1.1 client, separate process)"}
    say(f"work folder {workdir}; load average {results['loadavg_start']}")

    # Item 5's limit (cores / one hash) is timed just before each of its repetitions.
    results["hash"] = {"cost": cost_label(), "cores": os.cpu_count()}

    ports = {name: free_port() for name in ("main", "small", "large", "page", "authlib")}
    callbacks = [f"http://127.0.0.1:{ports[n]}/auth/moh{i}/callback" for n in ("main", "small", "large")
                 for i in (1, 2, 3)]
    fakes = [FakeDhis2(f"dhis2-{i}", workdir, [f"geologin:{CLIENT_SECRET}:{','.join(callbacks)}",
                                               f"baseline:{BASELINE_SECRET}:http://127.0.0.1:{ports['authlib']}/callback"])
             for i in (1, 2, 3)]
    say("fake DHIS2 servers: " + ", ".join(f.url for f in fakes))

    def providers(count):
        return [{"slug": f"moh{i}", "label": f"Ministry of Health {i} (DHIS2 {FAKE_VERSION})",
                 "base_url": fakes[i - 1].url, "client_secret": CLIENT_SECRET} for i in range(1, count + 1)]
    bench_users = [{"username": u, "password": BENCH_PASSWORD, "uid": dhis2_uid(u)} for u in BENCH_USERS]
    scenarios = {
        "main": {"providers": providers(3), "bench_users": bench_users},
        "small": {"providers": providers(1), "bench_users": bench_users},
    }
    if not args.no_large:
        scenarios["large"] = {"providers": providers(1), "bench_users": bench_users,
                              "filler_providers": LARGE_PROVIDERS - 1, "filler_enabled": True,
                              "filler_users": LARGE_USERS - 1 - len(BENCH_USERS)}
    servers, databases, results["seed"] = {}, {}, {}
    for name, spec in scenarios.items():
        instance = workdir / f"instance-{name}"
        instance.mkdir()
        databases[name] = Database(name, instance, args.database_url)
        env = geologin_env(instance, ports[name], args.workers, args.threads, databases[name])
        if args.sqlite_journal:
            env["GEOLOGIN_SQLITE_JOURNAL_MODE"] = args.sqlite_journal
        if args.sqlite_synchronous:
            env["GEOLOGIN_SQLITE_SYNCHRONOUS"] = args.sqlite_synchronous
        seeded = seed(env, spec, workdir, name)
        results["seed"][name] = seeded
        say(f"seeded {name}: {seeded['counts']['users']} users, {seeded['counts']['provider_instances']} "
            f"providers in {seeded['seconds']} s")
        servers[name] = Gunicorn(f"geologin-{name}", "wsgi:app", ports[name], env, workdir, "/healthz").start()
    try:
        return measure(plan, args, workdir, wrk, results, fakes, ports, servers, databases)
    finally:
        stop_children()  # before dropping the databases they are connected to
        for database in databases.values():
            database.drop()


def measure(plan, args, workdir, wrk, results, fakes, ports, servers, databases):
    reps = plan["reps"]
    for server in servers.values():
        server.wait_ready()
    main = servers["main"]
    page_bytes = len(http_get(main.url + "/login"))
    results["page_bytes"] = page_bytes
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("GEOLOGIN_") and k != "DATABASE_URL"}
    base_env.update({"GEOLOGIN_WORKERS": str(args.workers), "GEOLOGIN_THREADS": str(args.threads)})
    page = Gunicorn("baseline-page", "baseline_page:app", ports["page"],
                    {**base_env, "BASELINE_PAGE_BYTES": str(page_bytes)}, workdir, "/login").start()
    authlib = Gunicorn("baseline-authlib", "baseline_authlib:app", ports["authlib"],
                       {**base_env, "BASELINE_DHIS2_URL": fakes[0].url, "BASELINE_CLIENT_ID": "baseline",
                        "BASELINE_CLIENT_SECRET": BASELINE_SECRET, "BASELINE_PUBLIC_URL": f"http://127.0.0.1:{ports['authlib']}",
                        "BASELINE_SECRET_KEY": secrets.token_urlsafe(48)}, workdir, "/").start()
    page.wait_ready()
    authlib.wait_ready()
    baseline_bytes = len(http_get(page.url + "/login"))
    results["baseline_page_bytes"] = baseline_bytes
    say(f"login page: geologin {page_bytes} bytes, baseline {baseline_bytes} bytes")

    def flow_users(slugs):
        return [{"username": u, "password": BENCH_PASSWORD, "dhis2_password": DHIS2_PASSWORD,
                 "provider": slugs[n % len(slugs)], "fake": fakes[int(slugs[n % len(slugs)][-1]) - 1].url}
                for n, u in enumerate(BENCH_USERS)]
    users3, users1 = flow_users(["moh1", "moh2", "moh3"]), flow_users(["moh1"])
    baseline_users = [{"username": "bench01", "dhis2_password": DHIS2_PASSWORD, "fake": fakes[0].url}]

    # Warm every server up (imports, templates, connection pools, SQLite caches).
    for server in (main, page):
        page_rate(wrk, server.url, 1, plan["page_connections"])
    for server, flow, users in ((main, "geologin", users3), (authlib, "baseline", baseline_users)):
        loadgen({"mode": "sequential", "flow": flow, "target": server.url, "count": 10, "users": users})

    # 1. Login page with 3 DHIS2 servers vs the bare Flask + Jinja page of the same size.
    say("1. login page vs baseline page")
    meter = CpuMeter()
    r1 = {"geologin": [], "baseline": []}
    for rep in range(reps):
        order = [("geologin", main), ("baseline", page)]
        for name, server in order if rep % 2 == 0 else order[::-1]:
            r1[name].append(page_rate(wrk, server.url, plan["page_seconds"], plan["page_connections"]))
        say(f"   rep {rep + 1}: geologin {r1['geologin'][-1]['per_second']:.0f}/s, "
            f"baseline {r1['baseline'][-1]['per_second']:.0f}/s")
    results["item1"] = r1
    cpu_report(results, "1", meter)

    # 2. Time inside the app per external login (start + callback), minus the outbound calls.
    say("2. time inside geologin per external login vs Authlib baseline (sequential, one login at a time)")
    meter = CpuMeter()
    r2 = {"geologin": [], "baseline": []}
    for rep in range(reps):
        order = [("geologin", main, "geologin", users3[:1]), ("baseline", authlib, "baseline", baseline_users)]
        for name, server, flow, users in order if rep % 2 == 0 else order[::-1]:
            r2[name].append(timed_logins(workdir, server, flow, users, plan["seq_logins"], f"i2-{name}-{rep}"))
        say(f"   rep {rep + 1}: geologin {r2['geologin'][-1]['inside_ms']:.2f} ms, "
            f"baseline {r2['baseline'][-1]['inside_ms']:.2f} ms"
            + (f", errors {r2['geologin'][-1]['errors']} / {r2['baseline'][-1]['errors']}"
               if r2["geologin"][-1]["errors"] or r2["baseline"][-1]["errors"] else ""))
    results["item2"] = r2
    cpu_report(results, "2", meter)

    # 3. Complete logins per second with 50 concurrent users.
    say(f"3. complete external logins/s, {plan['vus']} concurrent users")
    meter = CpuMeter()
    r3 = []
    for rep in range(reps):
        r3.append(loadgen({"mode": "throughput", "flow": "geologin", "target": main.url, "vus": plan["vus"],
                           "warmup": plan["flow_warmup"], "duration": plan["flow_seconds"], "users": users3}))
        say(f"   rep {rep + 1}: {r3[-1]['per_second']:.1f} logins/s, p50 {r3[-1]['latency_p50_ms']:.0f} ms"
            + (f", errors {r3[-1]['errors']}" if r3[-1]["errors"] else ""))
    results["item3"] = r3
    cpu_report(results, "3", meter)

    # 5. Password logins per second vs cores / one hash.
    say("5. password logins/s")
    r5 = []
    password_rate(wrk, main.url, 1, plan["password_vus"])
    meter = CpuMeter()
    for rep in range(reps):
        # The limit is measured again right before each repetition (the machine idle for a second): this
        # VM's speed drifts by 10% and more over a run, so a limit from minutes earlier would judge the rate
        # against another machine.
        hash_seconds = one_hash(plan["hash_samples"])
        r5.append({**password_rate(wrk, main.url, plan["password_seconds"], plan["password_vus"]),
                   "hash_seconds": hash_seconds})
        say(f"   rep {rep + 1}: {r5[-1]['per_second']:.1f} logins/s, one hash {hash_seconds * 1000:.1f} ms" +
            (f", failures {r5[-1]['errors']}" if r5[-1]["errors"] else ""))
    results["item5"] = r5
    cpu_report(results, "5", meter)

    # 4. Flat scaling: items 1-3 at 10 users / 1 provider vs 100,000 users / 1,000 providers.
    if "large" in servers:
        meter = CpuMeter()
        results["item4"] = scaling(plan, workdir, wrk, servers, databases, users1)
        cpu_report(results, "4", meter)

    # 6. Memory per worker after the runs.
    memory = {}
    for server in [*servers.values(), page, authlib]:
        memory[server.label] = [memory_of(pid) for pid in server.workers()]
    results["item6"] = memory

    if not args.no_profile:
        say("profiling geologin (cProfile, separate pass, not timed)")
        done = {
            "login": loadgen({"mode": "sequential", "flow": "geologin", "target": main.url,
                              "count": plan["profile_logins"], "profile": "login", "users": users3[:1]}),
            "page": loadgen({"mode": "sequential", "flow": "get", "path": "/login", "target": main.url,
                             "count": plan["profile_pages"], "profile": "page", "users": [{}]}),
            "password": loadgen({"mode": "sequential", "flow": "password", "target": main.url,
                                 "count": plan["profile_passwords"], "profile": "password",
                                 "users": [{"username": "bench01", "password": BENCH_PASSWORD}]}),
        }
        results["profiles"] = {kind: hot_spots(workdir, main.label, kind, result["completed"])
                               for kind, result in done.items() if result["completed"]}
    return results


def cpu_report(results, item, meter):
    shares = meter.stop()
    results.setdefault("cpu", {})[item] = shares
    say("   CPU: " + ", ".join(f"{role} {100 * share:.0f}%" for role, share in
                              sorted(shares.items(), key=lambda kv: -kv[1])))


def scaling(plan, workdir, wrk, servers, databases, users1):
    say("4. scaling: 10 users / 1 provider vs 100,000 users / 1,000 providers")
    small, large = servers["small"], servers["large"]
    variants = {"small": (small, None),
                "large_one_enabled": (large, "UPDATE provider_instances SET enabled = (slug = 'moh1')"),
                "large_all_enabled": (large, "UPDATE provider_instances SET enabled = true")}
    out = {name: {"page": [], "time": [], "logins": []} for name in variants}
    sizes = {}
    for name, (server, toggle) in variants.items():  # warm-up, and the page size of each variant
        if toggle:
            databases["large"].execute(toggle)
        sizes[name] = len(http_get(server.url + "/login"))
        page_rate(wrk, server.url, 1, plan["page_connections"])
        loadgen({"mode": "sequential", "flow": "geologin", "target": server.url, "count": 5, "users": users1})
    for rep in range(plan["reps"]):
        names = list(variants) if rep % 2 == 0 else list(variants)[::-1]
        for name in names:
            server, toggle = variants[name]
            if toggle:
                databases["large"].execute(toggle)
            result = out[name]
            result["page"].append(page_rate(wrk, server.url, plan["scale_page_seconds"], plan["page_connections"]))
            result["time"].append(timed_logins(workdir, server, "geologin", users1[:1], plan["scale_seq_logins"],
                                               f"i4-{name}-{rep}"))
            result["logins"].append(loadgen({"mode": "throughput", "flow": "geologin", "target": server.url,
                                             "vus": plan["vus"], "warmup": plan["flow_warmup"],
                                             "duration": plan["scale_flow_seconds"], "users": users1}))
            say(f"   rep {rep + 1} {name}: page {result['page'][-1]['per_second']:.0f}/s, "
                f"login {result['time'][-1]['inside_ms']:.2f} ms, {result['logins'][-1]['per_second']:.1f} logins/s")
    out["page_bytes"] = sizes
    return out


# -- the report ----------------------------------------------------------------------------------------------------
def med(values):
    return statistics.median(values) if values else float("nan")


def errors_of(runs):
    total = 0
    for run in runs:
        errors = run.get("errors", 0)
        total += sum(errors.values()) if isinstance(errors, dict) else errors
    return total


def verdict(value, target, higher_is_better):
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "MISSED"


def summary(results):
    rows = []
    r1 = results["item1"]
    g1, b1 = med([r["per_second"] for r in r1["geologin"]]), med([r["per_second"] for r in r1["baseline"]])
    rows.append(("1", "Login page, 3 DHIS2 servers (requests/s)", f"{g1:,.0f}",
                 f"{b1:,.0f} (bare Flask + Jinja, same {results['page_bytes']:,} bytes)", f"{g1 / b1:.2f}",
                 ">= 0.8", verdict(g1 / b1, 0.8, True)))
    r2 = results["item2"]
    g2, b2 = med([r["inside_ms"] for r in r2["geologin"]]), med([r["inside_ms"] for r in r2["baseline"]])
    rows.append(("2", "Time inside the app per external login, start + callback (ms)", f"{g2:.2f}",
                 f"{b2:.2f} (minimal Authlib client)", f"{g2 / b2:.2f}", "<= 1.2", verdict(g2 / b2, 1.2, False)))
    g3 = med([r["per_second"] for r in results["item3"]])
    p50 = med([r["latency_p50_ms"] for r in results["item3"] if r["latency_p50_ms"]])
    rows.append(("3", f"Complete external logins/s, {results['plan']['vus']} concurrent users", f"{g3:.1f}",
                 f"(login p50 {p50:.0f} ms)", "", "", "reported"))
    if "item4" in results:
        r4 = results["item4"]
        small = r4["small"]
        s_page, s_time = med([r["per_second"] for r in small["page"]]), med([r["inside_ms"] for r in small["time"]])
        s_logins = med([r["per_second"] for r in small["logins"]])
        for name, title in (("large_one_enabled", "1 of 1,000 enabled"), ("large_all_enabled", "all 1,000 enabled")):
            large = r4[name]
            big_page = med([r["per_second"] for r in large["page"]])
            big_time = med([r["inside_ms"] for r in large["time"]])
            big_logins = med([r["per_second"] for r in large["logins"]])
            for label, small_value, big_value, factor, fmt in (
                    ("login page requests/s", s_page, big_page, s_page / big_page, "{:,.0f}"),
                    ("time inside geologin per login (ms)", s_time, big_time, big_time / s_time, "{:,.2f}"),
                    ("complete logins/s, 50 users", s_logins, big_logins, s_logins / big_logins, "{:,.1f}")):
                rows.append(("4", f"Scaling ({title}): {label}", fmt.format(big_value) + " (large)",
                             fmt.format(small_value) + " (small)", f"{factor:.2f}", "<= 1.1",
                             verdict(factor, 1.1, False)))
    g5 = med([r["per_second"] for r in results["item5"]])
    hash_seconds = med([r["hash_seconds"] for r in results["item5"]])
    limit = results["hash"]["cores"] / hash_seconds
    ratio = med([r["per_second"] * r["hash_seconds"] / results["hash"]["cores"] for r in results["item5"]])
    rows.append(("5", "Password logins/s (GET form + POST)", f"{g5:.1f}",
                 f"{limit:.1f} (= {results['hash']['cores']} cores / {hash_seconds * 1000:.1f} ms per hash, "
                 "measured before each repetition)", f"{ratio:.2f}", ">= 0.8", verdict(ratio, 0.8, True)))
    for label, workers in results["item6"].items():
        rss = ", ".join(f"{r:.0f}" for r, _ in workers)
        hwm = ", ".join(f"{h:.0f}" for _, h in workers)
        rows.append(("6", f"RSS per worker after the runs, {label} (MiB)", rss, f"peak {hwm}", "", "",
                     "reported"))
    return rows


def render_table(results):
    header = ("#", "measure", "geologin", "baseline / limit", "ratio", "target", "verdict")
    rows = [header, tuple("---" for _ in header)] + summary(results)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def _hash_line(runs):
    return ", ".join(f"{r['hash_seconds'] * 1000:.1f}" for r in runs)


def _runs_line(runs, key, fmt):
    return ", ".join(fmt.format(run[key]) for run in runs)


def write_results(path, results, table):
    plan, m = results["plan"], results["machine"]
    preserved = ""
    if path.exists():
        match = re.search(r"<!-- analysis:start -->.*<!-- analysis:end -->", path.read_text(), re.S)
        preserved = match.group(0) if match else ""
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `{results['command']}` on {results['started']} in {results['duration_s'] / 60:.1f} minutes "
        f"({plan['reps']} repetitions of every measurement; medians; every ratio from numbers measured in this run, "
        "with the compared servers loaded alternately). How to reproduce and what each number means: "
        "[README.md](README.md).",
        "",
        table,
        "",
        "Ratios: item 1 geologin / baseline (higher is better); item 2 geologin / baseline (lower is better); "
        "item 4 the slowdown factor of the large database (small/large for rates, large/small for times); "
        "item 5 the median of each repetition's rate / the limit measured just before it.",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in m.items()],
        f"- load average (1, 5, 15 min) when the run started: {results['loadavg_start']} (what other processes "
        "took during each phase: \"Where the CPU went\" below)",
        "",
        "## Settings",
        "",
        "- Every server: gunicorn with the project's `gunicorn.conf.py` (gthread), "
        f"GEOLOGIN_WORKERS={results['workers']}, GEOLOGIN_THREADS={results['threads']}, served as "
        "`benchmarks.timed_wsgi:app` (geologin's `wsgi:app` or a baseline behind the same pass-through wrapper).",
        "- Item 4: \"small\" is 10 users (9 that log in and an administrator) and 1 provider; \"large\" is 100,000 "
        "users and 1,000 providers (the same 9 + administrator, 99,990 more users each allowed on 3 providers, bound "
        "to a DHIS2 account, with an open session and an audit event), measured twice: with only the provider the "
        "users log in with enabled (the same login page as small) and with all 1,000 enabled (the login page then "
        "lists 1,000 servers). The flag is flipped in the database between runs; the server keeps running.",
        f"- geologin: production mode, {results['database']}, GEOLOGIN_LOGIN_RATE_LIMIT=\"{RATE_LIMIT}\" and "
        f"GEOLOGIN_LOCKOUT_MAX_FAILURES={LOCKOUT_MAX_FAILURES} (raised for the benchmark: the defaults, 60 per minute "
        "per client IP and 30 failures, would turn the load into 429s), limiter storage in memory (no REDIS_URL), "
        "request log on (to a file), argon2id at the default cost "
        f"({results['hash']['cost']}); providers registered with generation=legacy.",
        f"- Identity servers: 3 fake DHIS2 {FAKE_VERSION} processes (`plugins/dhis2/fake_dhis2.py`, werkzeug threaded) "
        "on loopback. Each virtual user is signed in at its DHIS2 before measuring, so a login's DHIS2 part is the "
        "authorize page and the Authorize click.",
        f"- Load: item 1 and 4 pages: {results['generators']['page']} (no cookies: every request is a first visit); "
        f"item 5: {results['generators']['password']}; items 2, 3, 4 flows: {results['generators']['flows']}. "
        "All on the same machine as the servers. Every request to geologin or a baseline carries `Connection: close` "
        "(one connection per request, as nginx talks to its upstream by default): with keep-alive, gunicorn's "
        "accept race can leave most connections on one worker and halve a run at random.",
        "",
        "## Every repetition",
        "",
        f"- 1 geologin req/s: {_runs_line(results['item1']['geologin'], 'per_second', '{:.0f}')}; baseline: "
        f"{_runs_line(results['item1']['baseline'], 'per_second', '{:.0f}')}; errors "
        f"{errors_of(results['item1']['geologin'])} / {errors_of(results['item1']['baseline'])}",
        f"- 2 geologin ms/login: {_runs_line(results['item2']['geologin'], 'inside_ms', '{:.2f}')} "
        f"(start {_runs_line(results['item2']['geologin'], 'start_ms', '{:.2f}')}; callback "
        f"{_runs_line(results['item2']['geologin'], 'callback_ms', '{:.2f}')}; outbound, excluded, "
        f"{_runs_line(results['item2']['geologin'], 'outbound_ms', '{:.2f}')})",
        f"- 2 baseline ms/login: {_runs_line(results['item2']['baseline'], 'inside_ms', '{:.2f}')} "
        f"(start {_runs_line(results['item2']['baseline'], 'start_ms', '{:.2f}')}; callback "
        f"{_runs_line(results['item2']['baseline'], 'callback_ms', '{:.2f}')}; outbound, excluded, "
        f"{_runs_line(results['item2']['baseline'], 'outbound_ms', '{:.2f}')}); "
        f"{plan['seq_logins']} logins per repetition each",
        f"- 3 logins/s: {_runs_line(results['item3'], 'per_second', '{:.1f}')}; errors {errors_of(results['item3'])}",
        f"- 5 password logins/s: {_runs_line(results['item5'], 'per_second', '{:.1f}')} (one hash just "
        f"before each: {_hash_line(results['item5'])} ms); failures {errors_of(results['item5'])}",
    ]
    if "item4" in results:
        r4 = results["item4"]
        for name in ("small", "large_one_enabled", "large_all_enabled"):
            lines.append(f"- 4 {name} (login page {r4['page_bytes'][name]:,} bytes): page/s "
                         f"{_runs_line(r4[name]['page'], 'per_second', '{:.0f}')}; ms/login "
                         f"{_runs_line(r4[name]['time'], 'inside_ms', '{:.2f}')} (start "
                         f"{_runs_line(r4[name]['time'], 'start_ms', '{:.2f}')}; callback "
                         f"{_runs_line(r4[name]['time'], 'callback_ms', '{:.2f}')}); logins/s "
                         f"{_runs_line(r4[name]['logins'], 'per_second', '{:.1f}')}; errors "
                         f"{errors_of(r4[name]['page']) + errors_of(r4[name]['logins'])}")
        lines.append(f"- 4 seeding: {json.dumps(results['seed'].get('large', {}))}")
    if results.get("cpu"):
        lines += ["", "## Where the CPU went in each phase", "",
                  "Shares of the machine's capacity (cores x wall time) over each phase, from /proc. \"Other "
                  "processes\" is work that is not this benchmark's (other people's builds and tests): "
                  "above a few percent it lowers the absolute numbers of that phase.", ""]
        for item, shares in results["cpu"].items():
            lines.append(f"- item {item}: " + ", ".join(f"{role} {100 * share:.0f}%" for role, share in
                                                        sorted(shares.items(), key=lambda kv: -kv[1])))
    if results.get("profiles"):
        lines += ["", "## Hot spots (cProfile, geologin main server, a separate sequential pass)", "",
                  "Milliseconds per page or per login under the profiler (which inflates them; compare shares). "
                  "Socket waits (`recv_into`, `poll`) in a login are the outbound calls to the fake DHIS2.", ""]
        for kind, title in (("page", "GET /login (3 servers)"),
                            ("login", "complete external login: GET /login, start, callback, landing page"),
                            ("password", "password login: GET /login, POST /login")):
            profile = results["profiles"].get(kind)
            if not profile:
                continue
            unit = "page" if kind == "page" else "login"
            lines += [f"### {title}: {profile['total_ms']:.1f} ms per {unit} under the profiler "
                      f"({profile['count']} profiled)", "",
                      "| self time by package | ms | share |", "| --- | --- | --- |"]
            lines += [f"| {owner} | {ms:.2f} | {share:.0f}% |" for owner, ms, share in profile["packages"]]
            lines += ["", "| self time: function | ms | share |", "| --- | --- | --- |"]
            lines += [f"| `{where}` | {ms:.2f} | {share:.0f}% |" for where, ms, share in profile["self"]]
            lines += ["", "| cumulative, geologin and plugin code | ms | share |", "| --- | --- | --- |"]
            lines += [f"| `{where}` | {ms:.2f} | {share:.0f}% |" for where, ms, share in profile["cumulative"]]
            lines.append("")
    if preserved:
        lines += ["", preserved]
    path.write_text("\n".join(lines).rstrip() + "\n")


if __name__ == "__main__":
    main()
