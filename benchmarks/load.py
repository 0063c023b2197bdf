"""The load generators, from the driver's side: wrk (installed when missing and allowed) and loadgen.py, run
as separate processes, and what they measured (rates, errors, latencies, and the per-login times that
timed_wsgi.py recorded inside the servers)."""
import json
import os
import re
import shutil
import statistics
import subprocess

from plan import BENCH_PASSWORD, BENCH_USERS, say
from processes import HERE, PY

LOADGEN = HERE / "loadgen.py"
PASSWORD_LUA = HERE / "wrk" / "password_login.lua"


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


def wrk_get(wrk, url, seconds, connections, headers=None, close=True):
    """One wrk run: requests/s, errors (non-2xx/3xx and socket errors) and latency percentiles (ms)."""
    options = [] if not close else ["-H", "Connection: close"]
    for name, value in (headers or {}).items():
        options += ["-H", f"{name}: {value}"]
    out = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *options, url],
                         capture_output=True, text=True)
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    bad = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)) else 0
    socket_errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    result = {"per_second": rps, "errors": bad + socket_errors}
    for percent in (50, 90, 99):
        match = re.search(rf"\b{percent}%\s+([\d.]+)(us|ms|s)\b", text)
        result[f"latency_p{percent}_ms"] = (float(match.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[match.group(2)]
                                            if match else None)
    return result


def loadgen(spec):
    out = subprocess.run([PY, str(LOADGEN), json.dumps(spec)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"loadgen failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def page_rate(wrk, url, seconds, connections, path="/login"):
    if wrk:
        return wrk_get(wrk, url + path, seconds, connections)
    result = loadgen({"mode": "throughput", "flow": "get", "path": path, "target": url, "vus": connections,
                      "warmup": 0.5, "duration": seconds, "users": [{}]})
    return {"per_second": result["per_second"], "errors": sum(result["errors"].values()),
            "latency_p50_ms": result["latency_p50_ms"]}


# The peer site's login form (Django + allauth), for password_rate(form=PEER_FORM).
PEER_FORM = {"BENCH_LOGIN_PATH": "/accounts/login/", "BENCH_TOKEN_FIELD": "csrfmiddlewaretoken",
             "BENCH_USER_FIELD": "login", "BENCH_EXTRA_FIELDS": ""}


def password_rate(wrk, url, seconds, vus, form=None):
    if wrk:
        env = {**os.environ, "BENCH_USERS": ",".join(BENCH_USERS), "BENCH_PASSWORD": BENCH_PASSWORD, **(form or {})}
        path = (form or {}).get("BENCH_LOGIN_PATH", "/login")
        out = subprocess.run([wrk, f"-t{vus}", f"-c{vus}", f"-d{seconds}s", "-s", str(PASSWORD_LUA), url + path],
                             capture_output=True, text=True, env=env)
        match = re.search(r"logins (\d+) failures (\d+)", out.stdout)
        if not match:
            raise SystemExit(f"wrk password run: unexpected output\n{out.stdout}\n{out.stderr}")
        return {"per_second": int(match.group(1)) / seconds, "errors": int(match.group(2))}
    if form:
        raise SystemExit("the peer's password logins need wrk (Debian: apt-get install -y wrk)")
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
