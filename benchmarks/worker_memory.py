#!/usr/bin/env python3
"""RSS of each geologin gunicorn worker right after start (after one /healthz) and, with ``--password-seconds S``,
after S seconds of password logins (wrk, 16 clients, as row P2), on a throwaway seeded SQLite instance with the
project's gunicorn.conf.py: ``.venv/bin/python benchmarks/worker_memory.py [--runs N] [--password-seconds S]``.
The quick check behind RESULTS.md's memory notes; `make bench` measures the same as row P4."""
import argparse
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from load import ensure_wrk, password_rate
from plan import BENCH_PASSWORD, BENCH_USERS, LOCKOUT_MAX_FAILURES, RATE_LIMIT, dhis2_uid
from processes import seed

ROOT = Path(__file__).resolve().parent.parent


def rss_mib(pid):
    return int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1)) / 1024


def rss_of(children):
    return ", ".join(f"{rss_mib(pid):.1f}" for pid in children.read_text().split())


def one_run(env, port, password_seconds, wrk):
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT,
                            env={**env, "GEOLOGIN_BIND": f"127.0.0.1:{port}"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                workers = children.read_text().split()
                if len(workers) == int(env["GEOLOGIN_WORKERS"]):
                    time.sleep(2)   # every worker has finished importing (gunicorn answers from the first)
                    line = "after start " + rss_of(children)
                    if password_seconds:
                        rate = password_rate(wrk, f"http://127.0.0.1:{port}", password_seconds, 16)
                        time.sleep(1)   # the hashes wrk left in flight end
                        line += (f"; after {password_seconds} s of password logins ({rate['per_second']:.1f}/s, "
                                 f"{rate['errors']} failures) " + rss_of(children))
                    return line
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("gunicorn did not start")
    finally:
        proc.terminate()
        proc.wait(20)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--password-seconds", type=int, default=0)
    args = parser.parse_args()
    wrk = ensure_wrk() if args.password_seconds else None
    from cryptography.fernet import Fernet
    with tempfile.TemporaryDirectory(prefix="geologin-mem-") as instance:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GEOLOGIN_") and k != "DATABASE_URL"}
        env.update({"GEOLOGIN_ENV": "development", "GEOLOGIN_SECRET_KEY": secrets.token_urlsafe(48),
                    "GEOLOGIN_ENCRYPTION_KEY": Fernet.generate_key().decode(), "GEOLOGIN_INSTANCE": instance,
                    "GEOLOGIN_PUBLIC_URL": "http://127.0.0.1", "GEOLOGIN_ALLOW_INSECURE_HTTP": "1",
                    "GEOLOGIN_WORKERS": "2", "GEOLOGIN_THREADS": "4",
                    "GEOLOGIN_LOGIN_RATE_LIMIT": RATE_LIMIT, "GEOLOGIN_LOCKOUT_MAX_FAILURES": LOCKOUT_MAX_FAILURES})
        seed(env, {"providers": [], "bench_users": [{"username": u, "password": BENCH_PASSWORD, "uid": dhis2_uid(u)}
                                                    for u in BENCH_USERS]}, Path(instance), "memory")
        for run in range(args.runs):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            print(f"run {run + 1}: RSS per worker (MiB) " + one_run(env, port, args.password_seconds, wrk), flush=True)


if __name__ == "__main__":
    main()
