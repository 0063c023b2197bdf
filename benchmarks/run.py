#!/usr/bin/env python3
"""geologin's benchmarks (issue 8): ``make bench``, or ``.venv/bin/python benchmarks/run.py [--quick]``.

Builds throwaway instance folders and databases, seeds them, starts three fake DHIS2 2.40.3 servers and
five gunicorn servers (geologin x3 and the two baseline apps, all with the project's gunicorn.conf.py and
the same workers/threads), drives them from other processes (wrk, and benchmarks/loadgen.py for the
multi-step flows), prints a table and writes benchmarks/RESULTS.md. See benchmarks/README.md.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import processes
import report
import scenarios
from hash_ceiling import cost_label
from load import ensure_wrk
from plan import PLANS, say

HERE = Path(__file__).resolve().parent


def arguments():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 short repetitions (under 5 minutes)")
    parser.add_argument("--reps", type=int, help="repetitions of every measurement (default 5, quick 2)")
    parser.add_argument("--workers", type=int, default=2, help="GEOLOGIN_WORKERS for every server (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="GEOLOGIN_THREADS for every server (default 4)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"),
                        help="a PostgreSQL server URL whose user may CREATE DATABASE (default: SQLite)")
    parser.add_argument("--output", help="results file (default benchmarks/RESULTS.md; --quick writes none)")
    parser.add_argument("--workdir", help="where the throwaway instances go (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, databases, profiles)")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile pass (hot spots)")
    parser.add_argument("--no-peer", action="store_true", help="skip the comparison with the django-allauth peer")
    parser.add_argument("--no-large", action="store_true", help="skip the 100,000-user / 1,000-provider part")
    parser.add_argument("--sqlite-journal", metavar="MODE",
                        help="GEOLOGIN_SQLITE_JOURNAL_MODE for the geologin servers (default: geologin's, WAL)")
    parser.add_argument("--sqlite-synchronous", metavar="LEVEL",
                        help="GEOLOGIN_SQLITE_SYNCHRONOUS for the geologin servers (default: geologin's, FULL)")
    return parser.parse_args()


def main():
    args = arguments()
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
        processes.stop_children()
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    results["duration_s"] = time.monotonic() - began
    results["command"] = " ".join(["python benchmarks/run.py", *sys.argv[1:]])
    table = report.render_table(results)
    print("\n" + table, flush=True)
    if output:
        report.write_results(output, results, table)
        print(f"\nwrote {output}", flush=True)
    if args.keep or args.workdir:
        say(f"work folder kept: {workdir}")


def run(plan, args, workdir):
    """Start every process, measure, and stop them (the servers before dropping their databases)."""
    results = report.run_header(plan, args)
    wrk = ensure_wrk()
    results["machine"] = report.machine(workdir, wrk)
    results["generators"] = report.generators(plan, wrk)
    say(f"work folder {workdir}; load average {results['loadavg_start']}")
    # Item 5's limit (cores / one hash) is timed just before each of its repetitions.
    results["hash"] = {"cost": cost_label(), "cores": os.cpu_count()}

    nginx = processes.nginx_binary()
    if not (nginx and wrk):
        say("NOTE: item 7 (forward-auth behind nginx) is skipped: it needs "
            + " and ".join(n for n, found in (("nginx", nginx), ("wrk", wrk)) if not found)
            + " (Debian: apt-get update && apt-get install -y nginx wrk).")
    ports = {name: processes.free_port() for name in ("main", "small", "large", "page", "authlib", "forward",
                                                      "nginx_plain", "nginx_auth", "g42", "peer")}
    fakes = processes.start_fakes(workdir, ports)
    specs = processes.geologin_specs(fakes, large=not args.no_large, forward_auth=bool(nginx and wrk))
    peer = not args.no_peer
    if peer:
        fake42 = processes.start_dhis2_242(workdir, ports)
        specs = {"g42": processes.g42_spec(fake42), **specs}
    servers, databases = processes.start_geologin(args, workdir, specs, ports, results)
    try:
        rig = scenarios.Rig(plan, workdir, wrk, fakes, servers, databases, results)
        if peer:
            rig.fake42, rig.g42 = fake42, servers["g42"]
            rig.peer = processes.start_peer(args, workdir, fake42, ports["peer"], results).wait_ready()
        rig.start_baselines(args, ports)
        if "forward" in servers:
            rig.start_forward_auth(args, ports, nginx)
        return scenarios.measure_all(rig, profile=not args.no_profile)
    finally:
        processes.stop_children()  # before dropping the databases they are connected to
        for database in databases.values():
            database.drop()


if __name__ == "__main__":
    main()
