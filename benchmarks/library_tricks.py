#!/usr/bin/env python3
"""Do geologin's speed tricks that lean on library internals still pay? (issue 15). Instruction counts of
the app in-process (Flask's test client) under callgrind, with every trick and without each one:

  (a) catalog   i18n's domain found the request's catalog once per request (Flask-Babel: once per message):
                measured not to pay any more (RESULTS.md, issue 15), so removed; its case is gone
  (b) block     the empty password form is login.html's ``login_form`` block, rendered once per language
                through Jinja's ``Template.blocks`` / ``new_context``, with each visitor's CSRF token put in
  (c) storage   the limiter's ``geologin-memory://`` storage (limits' MemoryStorage without its timer thread,
                sweeping its private ``storage`` / ``expirations`` / ``locks`` itself)

``.venv/bin/python benchmarks/library_tricks.py`` runs every case under ``valgrind --tool=callgrind`` twice
(``--small`` and ``--large`` iterations; the slope between them is one iteration, start-up cancels out) and
prints instructions per iteration; then it times one count in the limiter's storage without valgrind (medians,
the two storages in turn), whose cost, a thread start and a wait for the GIL, instructions do not show.
``--case CASE --flow FLOW --count N --instance DIR`` is one run (what callgrind runs). The tricks are
switched off from outside geologin (a public setting for (c), a replaced function for (b)), so
geologin's code is what is measured.
"""
import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PASSWORD = "Bench-login-correct-horse-42"
USERNAME = "bench01"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def environment(instance):
    """The benchmark servers' settings (run.py), with a cheap argon2 cost so the hash does not drown the rest."""
    from cryptography.fernet import Fernet
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOLOGIN_") and k != "DATABASE_URL"}
    env.update({"GEOLOGIN_ENV": "development", "GEOLOGIN_SECRET_KEY": secrets.token_urlsafe(48),
                "GEOLOGIN_ENCRYPTION_KEY": Fernet.generate_key().decode(), "GEOLOGIN_INSTANCE": str(instance),
                "GEOLOGIN_PUBLIC_URL": "http://127.0.0.1:5000", "GEOLOGIN_ALLOW_INSECURE_HTTP": "1",
                "GEOLOGIN_LOGIN_RATE_LIMIT": "1000000 per minute", "GEOLOGIN_LOCKOUT_MAX_FAILURES": "1000000",
                "GEOLOGIN_ARGON2_MEMORY_COST": "64", "GEOLOGIN_ARGON2_TIME_COST": "1",
                "PYTHONHASHSEED": "0"})
    return env


def seed_instance(workdir):
    """One instance folder, seeded once (3 DHIS2 providers as on item 1's page, one password user)."""
    instance = workdir / "instance"
    instance.mkdir()
    env = environment(instance)
    spec = {"providers": [{"slug": f"moh{i}", "label": f"Ministry of Health {i}",
                           "base_url": f"https://dhis2-{i}.example.org/", "client_secret": "s" * 36}
                          for i in (1, 2, 3)],
            "bench_users": [{"username": USERNAME, "password": PASSWORD, "uid": "Bench000001"}]}
    (workdir / "spec.json").write_text(json.dumps(spec))
    subprocess.run([sys.executable, str(HERE / "seed.py"), str(workdir / "spec.json")], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    (workdir / "env.json").write_text(json.dumps(env))
    return instance


# -- switching one trick off, from outside geologin ---------------------------------------------------------
def block_off(app):
    """(b) off: every page view renders login.html with its form (the path a ``?next=`` page view takes)."""
    module = sys.modules[app.view_functions["auth.login"].__module__]
    original, form_class = module.login_page, module.LoginForm

    def login_page(form, status, headers=None):
        if form is None:
            form = form_class()
            form.next.data = ""
        return original(form, status, headers)

    module.login_page = login_page


CASES = {
    "every trick": (None, {}),
    "without (b) block": (block_off, {}),
    "without (c) storage": (None, {"GEOLOGIN_RATELIMIT_STORAGE_URI": "memory://"}),
}


# -- the flows: one iteration is a new visitor ---------------------------------------------------------------
def get_login(app):
    response = app.test_client().get("/login")
    assert response.status_code == 200, response.status_code


def password_login(app):
    client = app.test_client()
    token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
    response = client.post("/login", data={"csrf_token": token, "username": USERNAME, "password": PASSWORD})
    assert response.status_code == 302, response.status_code


def limiter_count(app):
    """One count in the limiter's storage, as a login POST makes, after the last one's timer thread ended;
    returns its own duration (the sleep is not measured)."""
    (limiter,) = app.extensions["limiter"]
    time.sleep(0.012)
    began = time.perf_counter()
    limiter.storage.incr("library-tricks", 60)
    return time.perf_counter() - began


_busy = []


def limiter_count_busy(app):
    """The same count while 3 other threads run Python, as in a gthread worker serving 4 requests at once:
    the timer thread must then wait for the GIL before MemoryStorage.incr can return."""
    def spin():
        while True:
            sum(range(200))

    while len(_busy) < 3:
        _busy.append(threading.Thread(target=spin, daemon=True))
        _busy[-1].start()
    return limiter_count(app)


FLOWS = {"get": get_login, "password": password_login, "count": limiter_count, "count-busy": limiter_count_busy}


def one_run(case, flow, count, instance):
    """Build the app on a copy of the seeded instance, switch the case's trick off, run ``count`` iterations;
    prints the median wall time of one iteration (ms)."""
    switch_off, env = CASES[case]
    os.environ.update({**json.loads((instance.parent / "env.json").read_text()), **env})
    sys.path.insert(0, str(ROOT))
    from geologin import create_app
    app = create_app()
    if switch_off:
        switch_off(app)
    step = FLOWS[flow]
    for _ in range(5):  # templates compiled, caches filled, connections open
        step(app)
    times = []
    for _ in range(count):
        began = time.perf_counter()
        took = step(app)
        times.append(took if took is not None else time.perf_counter() - began)
    print(json.dumps({"ms": 1000 * statistics.median(times), "p90_ms": 1000 * sorted(times)[len(times) * 9 // 10]}))


def copy_instance(instance, workdir, name):
    copy = workdir / name / "instance"
    shutil.copytree(instance, copy)
    env = json.loads((instance.parent / "env.json").read_text())
    (copy.parent / "env.json").write_text(json.dumps({**env, "GEOLOGIN_INSTANCE": str(copy)}))
    return copy


def run_child(args, instance, workdir, name, callgrind=None):
    copy = copy_instance(instance, workdir, name)
    command = [sys.executable, __file__, *args, "--instance", str(copy)]
    if callgrind:
        command = ["valgrind", "--tool=callgrind", "--dump-instr=no", f"--callgrind-out-file={callgrind}",
                   *command]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONHASHSEED": "0"})
    shutil.rmtree(copy.parent)
    if out.returncode != 0:
        raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
    if callgrind:
        totals = re.search(r"^(?:summary|totals): (\d+)", Path(callgrind).read_text(), re.M)
        return int(totals.group(1))
    return json.loads(out.stdout.strip().splitlines()[-1])["ms"]


def instructions(instance, workdir, flows, small, large):
    """Instructions per iteration: the slope between ``small`` and ``large`` iterations under callgrind."""
    rows = {}
    for flow in flows:
        for case in CASES:
            if flow == "get" and case == "without (c) storage":
                continue  # page views never reach the limiter's storage (throttle's request filter)
            counts = [run_child(["--case", case, "--flow", flow, "--count", str(n)], instance, workdir,
                                f"{flow}-{n}", callgrind=str(workdir / f"cg-{flow}-{n}.out")) for n in (small, large)]
            rows[flow, case] = (counts[1] - counts[0]) / (large - small)
            print(f"{flow:9} {case:22} {rows[flow, case] / 1e6:8.3f} M instructions per iteration", flush=True)
    return rows


def wall_times(instance, workdir, flows, count, rounds):
    """Median wall time per iteration, no valgrind: each case once per round, in turn. Only the limiter
    count (``count``) is worth timing on a shared machine: its cost is a thread start and a wait for the GIL,
    which instruction counts do not show."""
    found = {}
    for _ in range(rounds):
        for flow in flows:
            for case in CASES:
                if flow.startswith("count") and case not in ("every trick", "without (c) storage"):
                    continue
                ms = run_child(["--case", case, "--flow", flow, "--count", str(count)], instance, workdir, "wall")
                found.setdefault((flow, case), []).append(ms)
    for (flow, case), values in found.items():
        print(f"{flow:9} {case:22} {statistics.median(values):7.3f} ms per iteration "
              f"({', '.join(f'{v:.3f}' for v in values)})", flush=True)
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=CASES)
    parser.add_argument("--flow", choices=FLOWS)
    parser.add_argument("--count", type=int)
    parser.add_argument("--instance", type=Path)
    parser.add_argument("--flows", default="get,password", help="the flows measured under callgrind")
    parser.add_argument("--wall-flows", default="count,count-busy", help="the flows timed without valgrind")
    parser.add_argument("--small", type=int, default=20)
    parser.add_argument("--large", type=int, default=120)
    parser.add_argument("--wall-count", type=int, default=200)
    parser.add_argument("--wall-rounds", type=int, default=5)
    parser.add_argument("--no-callgrind", action="store_true")
    args = parser.parse_args()
    if args.case:
        return one_run(args.case, args.flow, args.count, args.instance)
    flows = args.flows.split(",")
    workdir = Path(tempfile.mkdtemp(prefix="geologin-tricks-"))
    try:
        instance = seed_instance(workdir)
        if not args.no_callgrind:
            instructions(instance, workdir, flows, args.small, args.large)
        if args.wall_rounds:
            wall_times(instance, workdir, args.wall_flows.split(","), args.wall_count, args.wall_rounds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
