"""The report: what the run says about the machine and its settings, the table of medians and verdicts,
and benchmarks/RESULTS.md (every repetition, the CPU shares, the hot spots, and the hand-written analysis
kept between its markers)."""
import importlib.metadata
import json
import platform
import re
import sqlite3
import statistics
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from plan import FAKE_VERSION, LOCKOUT_MAX_FAILURES, RATE_LIMIT, SITE_FILE_BYTES, SITE_HOST
from processes import FAKE, ROOT


# -- what the run was made on and with ------------------------------------------------------------------------
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


def run_header(plan, args):
    """The results' first entries: the plan, when, the load average, the servers' layout and database."""
    return {"plan": plan, "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "loadavg_start": loadavg(), "workers": args.workers, "threads": args.threads,
            "database": "PostgreSQL (--database-url)" if args.database_url else
            f"SQLite (instance folder; journal_mode={args.sqlite_journal or 'WAL'}, "
            f"synchronous={args.sqlite_synchronous or 'FULL'}"
            + (": geologin's defaults)" if not (args.sqlite_journal or args.sqlite_synchronous) else ")")}


def generators(plan, wrk):
    return {
        "page": f"wrk -t1 -c{plan['page_connections']}" if wrk else "loadgen.py (get)",
        "password": f"wrk -t{plan['password_vus']} -c{plan['password_vus']} -s wrk/password_login.lua" if wrk
        else "loadgen.py (password)",
        "flows": "loadgen.py (asyncio HTTP/1.1 client, separate process)"}


# -- the table -------------------------------------------------------------------------------------------------
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


def _per_second(runs):
    return med([r["per_second"] for r in runs])


def _inside_ms(runs):
    return med([r["inside_ms"] for r in runs])


CONTEXT = "context: what our duties cost"


def _ratios(peer, part, key, invert=False):
    """Per repetition geologin / allauth (allauth / geologin with ``invert``), from the alternated runs."""
    pairs = zip(peer[part]["geologin"], peer[part]["peer"])
    values = [(b[key] / a[key] if invert else a[key] / b[key]) for a, b in pairs if a[key] and b[key]]
    return med(values), values


def _mib(workers):
    return "/".join(f"{rss:.0f}" for rss, _ in workers)


def peer_rows(results):
    """The targets of issue 20: geologin against django-allauth, every figure a ratio measured in this run."""
    peer, rows = results["peer"], []
    per_second = lambda runs: med([r["per_second"] for r in runs])  # noqa: E731
    ratio, _ = _ratios(peer, "page", "per_second")
    rows.append(("P1", f"Login page, 1 DHIS2 server (requests/s; {peer['page_bytes']['geologin']:,} vs "
                 f"{peer['page_bytes']['peer']:,} bytes)", f"{per_second(peer['page']['geologin']):,.0f}",
                 f"{per_second(peer['page']['peer']):,.0f} (django-allauth)", f"{ratio:.2f}", ">= 3.0",
                 verdict(ratio, 3.0, True)))
    ratio, _ = _ratios(peer, "password", "per_second")
    limits = [r["per_second"] * r["hash_seconds"] / results["hash"]["cores"] for r in peer["password"]["geologin"]]
    rows.append(("P2", "Password logins/s, GET form + POST", f"{per_second(peer['password']['geologin']):.1f}",
                 f"{per_second(peer['password']['peer']):.1f} (django-allauth)", f"{ratio:.2f}", ">= 1.0",
                 verdict(ratio, 1.0, True)))
    rows.append(("P2", "Password logins/s / argon2 limit (cores / one hash)", f"{med(limits):.2f}", "", "",
                 ">= 0.8", verdict(med(limits), 0.8, True)))
    ratio, _ = _ratios(peer, "dhis2", "cpu_ms_per_login")
    cpu = lambda runs: med([r["cpu_ms_per_login"] for r in runs if r["cpu_ms_per_login"]])  # noqa: E731
    rows.append(("P3", "DHIS2 2.42 login: server CPU per login (ms, the app's processes, /proc)",
                 f"{cpu(peer['dhis2']['geologin']):.1f}", f"{cpu(peer['dhis2']['peer']):.1f} (django-allauth)",
                 f"{ratio:.2f}", "<= 0.4", verdict(ratio, 0.4, False)))
    ratio, _ = _ratios(peer, "dhis2", "per_second")
    rows.append(("P3", f"DHIS2 2.42 complete logins/s, {results['plan'].get('peer_vus', 8)} browsers",
                 f"{per_second(peer['dhis2']['geologin']):.1f}", f"{per_second(peer['dhis2']['peer']):.1f} (django-allauth)",
                 f"{ratio:.2f}", ">= 1.0", verdict(ratio, 1.0, True)))
    for moment, label, limit in (("memory_start", "after start", 70), ("memory_after_password", "after the password logins", 100)):
        mine = max(rss for rss, _ in peer[moment]["geologin"])
        theirs = max(rss for rss, _ in peer[moment]["peer"])
        rows.append(("P4", f"RSS per worker {label} (MiB, largest worker)", _mib(peer[moment]["geologin"]),
                     f"{_mib(peer[moment]['peer'])} (django-allauth)", f"{mine / theirs:.2f}",
                     f"<= {limit} MiB and < 1.0", "met" if mine <= limit and mine < theirs else "MISSED"))
    return rows


def summary(results):
    rows = peer_rows(results) if "peer" in results else []
    r1 = results["item1"]
    g1, b1 = _per_second(r1["geologin"]), _per_second(r1["baseline"])
    rows.append(("1", "Login page, 3 DHIS2 servers (requests/s)", f"{g1:,.0f}",
                 f"{b1:,.0f} (bare Flask + Jinja, same {results['page_bytes']:,} bytes)", f"{g1 / b1:.2f}",
                 "", CONTEXT))
    r2 = results["item2"]
    g2, b2 = _inside_ms(r2["geologin"]), _inside_ms(r2["baseline"])
    rows.append(("2", "Time inside the app per external login, start + callback (ms)", f"{g2:.2f}",
                 f"{b2:.2f} (minimal Authlib client)", f"{g2 / b2:.2f}", "", CONTEXT))
    g3 = _per_second(results["item3"])
    p50 = med([r["latency_p50_ms"] for r in results["item3"] if r["latency_p50_ms"]])
    rows.append(("3", f"Complete external logins/s, {results['plan']['vus']} concurrent users", f"{g3:.1f}",
                 f"(login p50 {p50:.0f} ms)", "", "", "reported"))
    if "item4" in results:
        rows += _scaling_rows(results["item4"])
    rows.append(_password_row(results))
    for label, workers in results["item6"].items():
        rss = ", ".join(f"{r:.0f}" for r, _ in workers)
        hwm = ", ".join(f"{h:.0f}" for _, h in workers)
        rows.append(("6", f"RSS per worker after the runs, {label} (MiB)", rss, f"peak {hwm}", "", "",
                     "reported"))
    if "item7" in results:
        rows += _forward_auth_rows(results["item7"])
    return rows


def _scaling_rows(r4):
    rows = []
    small = r4["small"]
    s_page, s_time, s_logins = _per_second(small["page"]), _inside_ms(small["time"]), _per_second(small["logins"])
    for name, title in (("large_one_enabled", "1 of 1,000 enabled"), ("large_all_enabled", "all 1,000 enabled")):
        large = r4[name]
        big_page, big_time, big_logins = _per_second(large["page"]), _inside_ms(large["time"]), _per_second(large["logins"])
        for label, small_value, big_value, factor, fmt in (
                ("login page requests/s", s_page, big_page, s_page / big_page, "{:,.0f}"),
                ("time inside geologin per login (ms)", s_time, big_time, big_time / s_time, "{:,.2f}"),
                ("complete logins/s, 50 users", s_logins, big_logins, s_logins / big_logins, "{:,.1f}")):
            rows.append(("4", f"Scaling ({title}): {label}", fmt.format(big_value) + " (large)",
                         fmt.format(small_value) + " (small)", f"{factor:.2f}", "<= 1.1",
                         verdict(factor, 1.1, False)))
    return rows


def _p(runs, percent):
    return med([r[f"latency_p{percent}_ms"] for r in runs if r.get(f"latency_p{percent}_ms") is not None])


def _forward_auth_rows(r7):
    plain, auth, alone = r7["nginx"], r7["nginx_auth"], r7["endpoint"]
    n, a = _per_second(plain), _per_second(auth)
    return [
        ("7", "Forward-auth: a static file behind nginx auth_request, logged in (requests/s)", f"{a:,.0f}",
         f"{n:,.0f} (the same nginx, same {SITE_FILE_BYTES:,}-byte file, no auth)", f"{a / n:.3f}", "",
         "reported"),
        ("7", "Forward-auth: latency p50 / p90 / p99 with auth_request (ms)",
         " / ".join(f"{_p(auth, q):.2f}" for q in (50, 90, 99)),
         " / ".join(f"{_p(plain, q):.2f}" for q in (50, 90, 99)) + " (no auth)",
         " / ".join(f"{_p(auth, q) / _p(plain, q):.0f}" for q in (50, 90, 99)), "", "reported"),
        ("7", "Forward-auth: geologin's GET /forward-auth/nginx alone (requests/s; p50 / p99 ms)",
         f"{_per_second(alone):,.0f}", f"p50 {_p(alone, 50):.2f}, p99 {_p(alone, 99):.2f}",
         f"{a / _per_second(alone):.2f}", "", "reported"),
    ]


def _password_row(results):
    g5 = _per_second(results["item5"])
    hash_seconds = med([r["hash_seconds"] for r in results["item5"]])
    limit = results["hash"]["cores"] / hash_seconds
    ratio = med([r["per_second"] * r["hash_seconds"] / results["hash"]["cores"] for r in results["item5"]])
    return ("5", "Password logins/s (GET form + POST)", f"{g5:.1f}",
            f"{limit:.1f} (= {results['hash']['cores']} cores / {hash_seconds * 1000:.1f} ms per hash, "
            "measured before each repetition)", f"{ratio:.2f}", ">= 0.8", verdict(ratio, 0.8, True))


def render_table(results):
    header = ("#", "measure", "geologin", "baseline / limit", "ratio", "target", "verdict")
    rows = [header, tuple("---" for _ in header)] + summary(results)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


# -- RESULTS.md --------------------------------------------------------------------------------------------------
def _hash_line(runs):
    return ", ".join(f"{r['hash_seconds'] * 1000:.1f}" for r in runs)


def _runs_line(runs, key, fmt):
    return ", ".join(fmt.format(run[key]) for run in runs)


def write_results(path, results, table):
    preserved = ""
    if path.exists():
        match = re.search(r"<!-- analysis:start -->.*<!-- analysis:end -->", path.read_text(), re.S)
        preserved = match.group(0) if match else ""
    lines = [*_heading_lines(results, table), *_machine_lines(results), *_settings_lines(results),
             *_repetition_lines(results), *_cpu_lines(results), *_profile_lines(results)]
    if preserved:
        lines += ["", preserved]
    path.write_text("\n".join(lines).rstrip() + "\n")


def _heading_lines(results, table):
    plan = results["plan"]
    return [
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
        "item 5 the median of each repetition's rate / the limit measured just before it; item 7 with auth_request / "
        "without (requests/s: the share of nginx's rate left; latencies: how many times longer), and its last row "
        "nginx + auth_request / geologin's endpoint alone (how much of geologin's own rate nginx delivers).",
        "",
    ]


def _machine_lines(results):
    return [
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in results["machine"].items()],
        f"- load average (1, 5, 15 min) when the run started: {results['loadavg_start']} (what other processes "
        "took during each phase: \"Where the CPU went\" below)",
        "",
    ]


def _settings_lines(results):
    return [
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
        f"- Identity servers: 3 fake DHIS2 {FAKE_VERSION} processes (`{FAKE.relative_to(ROOT)}`, werkzeug threaded) "
        "on loopback. Each virtual user is signed in at its DHIS2 before measuring, so a login's DHIS2 part is the "
        "authorize page and the Authorize click.",
        f"- Load: item 1 and 4 pages: {results['generators']['page']} (no cookies: every request is a first visit); "
        f"item 5: {results['generators']['password']}; items 2, 3, 4 flows: {results['generators']['flows']}. "
        "All on the same machine as the servers. Every request to geologin or a baseline carries `Connection: close` "
        "(one connection per request, as nginx talks to its upstream by default): with keep-alive, gunicorn's "
        "accept race can leave most connections on one worker and halve a run at random.",
        *([f"- Item 7: Debian's nginx from the run's own config (`worker_processes {results['workers']}`, access log to a "
        f"file), one static file; wrk -t1 -c{results['plan'].get('forward_connections', 16)} as a logged-in browser "
        f"(`Host: {SITE_HOST}`, the session cookie, keep-alive to nginx). `auth_request` asks a fourth geologin "
        f"server (10 users, 1 provider, PUBLIC_URL at login.{SITE_HOST.split('.', 1)[1]}, SESSION_COOKIE_DOMAIN="
        f"{SITE_HOST.split('.', 1)[1]}, the site registered with `apps add --forward-auth --all-users`) over HTTP/1.0, "
        "one connection per subrequest (nginx's default); geologin's endpoint alone gets the same headers nginx sends, "
        "with `Connection: close`."] if "item7" in results else []),
        "",
    ]


def _login_time_line(name, runs, suffix=""):
    return (f"- 2 {name} ms/login: {_runs_line(runs, 'inside_ms', '{:.2f}')} "
            f"(start {_runs_line(runs, 'start_ms', '{:.2f}')}; callback "
            f"{_runs_line(runs, 'callback_ms', '{:.2f}')}; outbound, excluded, "
            f"{_runs_line(runs, 'outbound_ms', '{:.2f}')}){suffix}")


def _repetition_lines(results):
    r1, r2 = results["item1"], results["item2"]
    lines = [
        "## Every repetition",
        "",
        f"- 1 geologin req/s: {_runs_line(r1['geologin'], 'per_second', '{:.0f}')}; baseline: "
        f"{_runs_line(r1['baseline'], 'per_second', '{:.0f}')}; errors "
        f"{errors_of(r1['geologin'])} / {errors_of(r1['baseline'])}",
        _login_time_line("geologin", r2["geologin"]),
        _login_time_line("baseline", r2["baseline"],
                         f"; {results['plan']['seq_logins']} logins per repetition each"),
        f"- 3 logins/s: {_runs_line(results['item3'], 'per_second', '{:.1f}')}; errors {errors_of(results['item3'])}",
        f"- 5 password logins/s: {_runs_line(results['item5'], 'per_second', '{:.1f}')} (one hash just "
        f"before each: {_hash_line(results['item5'])} ms); failures {errors_of(results['item5'])}",
    ]
    if "item7" in results:
        r7 = results["item7"]
        for name, title in (("nginx", "nginx, no auth"), ("nginx_auth", "nginx + auth_request"),
                            ("endpoint", "geologin's endpoint alone")):
            lines.append(f"- 7 {title}: req/s {_runs_line(r7[name], 'per_second', '{:.0f}')}; p50 ms "
                         f"{_runs_line(r7[name], 'latency_p50_ms', '{:.2f}')}; p99 ms "
                         f"{_runs_line(r7[name], 'latency_p99_ms', '{:.2f}')}; errors {errors_of(r7[name])}")
        lines.append(f"- 7 all on the same {results['machine']['nproc']} cores: nginx, geologin, wrk and whatever "
                     "other people ran (this machine's 2 cores are shared with other developers; see \"Where the CPU "
                     "went\", item 7)")
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
    return lines


def _cpu_lines(results):
    if not results.get("cpu"):
        return []
    lines = ["", "## Where the CPU went in each phase", "",
             "Shares of the machine's capacity (cores x wall time) over each phase, from /proc. \"Other "
             "processes\" is work that is not this benchmark's (other people's builds and tests): "
             "above a few percent it lowers the absolute numbers of that phase.", ""]
    for item, shares in results["cpu"].items():
        lines.append(f"- item {item}: " + ", ".join(f"{role} {100 * share:.0f}%" for role, share in
                                                    sorted(shares.items(), key=lambda kv: -kv[1])))
    return lines


_PROFILE_TITLES = (("page", "GET /login (3 servers)"),
                   ("login", "complete external login: GET /login, start, callback, landing page"),
                   ("password", "password login: GET /login, POST /login"),
                   ("forward", "forward-auth, logged in: GET /forward-auth/nginx (item 7's server)"))


def _profile_lines(results):
    if not results.get("profiles"):
        return []
    lines = ["", "## Hot spots (cProfile, geologin main server, a separate sequential pass)", "",
             "Milliseconds per page or per login under the profiler (which inflates them; compare shares). "
             "Socket waits (`recv_into`, `poll`) in a login are the outbound calls to the fake DHIS2.", ""]
    for kind, title in _PROFILE_TITLES:
        profile = results["profiles"].get(kind)
        if not profile:
            continue
        unit = {"page": "page", "forward": "request"}.get(kind, "login")
        lines += [f"### {title}: {profile['total_ms']:.1f} ms per {unit} under the profiler "
                  f"({profile['count']} profiled)", "",
                  "| self time by package | ms | share |", "| --- | --- | --- |"]
        lines += [f"| {owner} | {ms:.2f} | {share:.0f}% |" for owner, ms, share in profile["packages"]]
        lines += ["", "| self time: function | ms | share |", "| --- | --- | --- |"]
        lines += [f"| `{where}` | {ms:.2f} | {share:.0f}% |" for where, ms, share in profile["self"]]
        lines += ["", "| cumulative, geologin and plugin code | ms | share |", "| --- | --- | --- |"]
        lines += [f"| `{where}` | {ms:.2f} | {share:.0f}% |" for where, ms, share in profile["cumulative"]]
        lines.append("")
    return lines
