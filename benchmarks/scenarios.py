"""The measurements, in the order a run makes them (items 1, 2, 3, 5, 7, 4, 6 of README.md, then the profiling
pass). Each loads the servers through load.py, alternating the compared servers, and stores its repetitions
in the results the report reads."""
from hash_ceiling import one_hash
import http.client
import time

from load import PEER_FORM, loadgen, page_rate, password_rate, timed_logins, wrk_get
from plan import BENCH_PASSWORD, BENCH_USERS, DHIS2_PASSWORD, SITE_HOST, say
from processes import Nginx, CpuMeter, http_get, memory_of, protect_site, session_cookie, start_baselines
from profiles import hot_spots


class Rig:
    """Everything the measurements use: the plan, the running servers, the virtual users, the results."""

    def __init__(self, plan, workdir, wrk, fakes, servers, databases, results):
        self.plan, self.workdir, self.wrk, self.results = plan, workdir, wrk, results
        self.fakes, self.servers, self.databases = fakes, servers, databases
        self.main = servers["main"]
        self.users3, self.users1 = self.flow_users(["moh1", "moh2", "moh3"]), self.flow_users(["moh1"])
        self.baseline_users = [{"username": "bench01", "dhis2_password": DHIS2_PASSWORD, "fake": fakes[0].url}]

    def flow_users(self, slugs):
        return [{"username": u, "password": BENCH_PASSWORD, "dhis2_password": DHIS2_PASSWORD,
                 "provider": slugs[n % len(slugs)], "fake": self.fakes[int(slugs[n % len(slugs)][-1]) - 1].url}
                for n, u in enumerate(BENCH_USERS)]

    def start_baselines(self, args, ports):
        """Once geologin answers: its page size, then the baselines (the bare page padded to that size)."""
        for server in self.servers.values():
            server.wait_ready()
        page_bytes = len(http_get(self.main.url + "/login"))
        self.results["page_bytes"] = page_bytes
        self.page, self.authlib = start_baselines(args, self.workdir, self.fakes, ports, page_bytes)
        baseline_bytes = len(http_get(self.page.url + "/login"))
        self.results["baseline_page_bytes"] = baseline_bytes
        say(f"login page: geologin {page_bytes} bytes, baseline {baseline_bytes} bytes")

    def start_forward_auth(self, args, ports, nginx_binary):
        """Item 7: the protected site registered, a logged-in cookie, nginx in front; then checked: the file
        without a cookie is refused (401), with it served, and geologin's answer names the user."""
        self.forward = self.servers["forward"]
        protect_site(self.forward)
        self.cookie = session_cookie(self.forward, BENCH_USERS[0], BENCH_PASSWORD)
        self.nginx = Nginx(nginx_binary, self.workdir, {"plain": ports["nginx_plain"], "auth": ports["nginx_auth"]},
                           self.forward.port, args.workers).start()
        self.forward_headers = {"Cookie": self.cookie, "X-Original-URL": f"http://{SITE_HOST}{self.nginx.file}",
                                "X-Original-Method": "GET"}
        checks = [(self.nginx.url("plain"), {"Host": SITE_HOST}, 200, None),
                  (self.nginx.url("auth"), {"Host": SITE_HOST}, 401, None),
                  (self.nginx.url("auth"), {"Host": SITE_HOST, "Cookie": self.cookie}, 200, "x-seen-user"),
                  (self.forward.url + "/forward-auth/nginx", self.forward_headers, 200, "remote-user")]
        for url, headers, status, user_header in checks:
            got, answer = _get(url, headers)
            if got != status or (user_header and answer.get(user_header) != BENCH_USERS[0]):
                raise SystemExit(f"item 7: GET {url} answered {got} {answer}, not {status} for {BENCH_USERS[0]}")
        say(f"forward-auth: nginx on {self.nginx.url('plain')} (no auth) and {self.nginx.url('auth')} "
            f"(auth_request to {self.forward.url}/forward-auth/nginx), site {SITE_HOST}")


def _get(url, headers):
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request("GET", parts.path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status, {name.lower(): value for name, value in response.getheaders()}


def measure_all(rig, profile):
    if hasattr(rig, "peer"):
        rig.results["peer"] = peer_comparison(rig)
    warm_up(rig)
    for item, scenario in (("1", login_page), ("2", login_time), ("3", login_rate)):
        meter = CpuMeter()
        rig.results[f"item{item}"] = scenario(rig)
        cpu_report(rig.results, item, meter)
    rig.results["item5"] = password_logins(rig)
    if hasattr(rig, "nginx"):
        meter = CpuMeter()
        rig.results["item7"] = forward_auth(rig)
        cpu_report(rig.results, "7", meter)
    if "large" in rig.servers:
        meter = CpuMeter()
        rig.results["item4"] = scaling(rig)
        cpu_report(rig.results, "4", meter)
    rig.results["item6"] = memory(rig)
    if profile:
        rig.results["profiles"] = profiles(rig)
    return rig.results


def app_cpu_seconds(server):
    """CPU seconds (user + system) of one app's gunicorn processes only: master, workers, replaced workers."""
    seconds = CpuMeter._process_seconds(server.proc.pid, with_children=True)
    return seconds + sum(CpuMeter._process_seconds(pid) for pid in server.workers())


def worker_memory(server):
    return [memory_of(pid) for pid in server.workers()]


def peer_comparison(rig):
    """geologin against the peer site (Django + django-allauth), each with one DHIS2 2.42.5 provider (the same
    fake process, bcrypt client secrets), loaded alternately: login page, password logins, DHIS2 logins, and
    memory per worker after start and after the password logins."""
    plan, g42, peer = rig.plan, rig.g42, rig.peer
    say("peer comparison: geologin vs django-allauth (one DHIS2 2.42.5 provider each)")
    out = {"memory_start": {"geologin": worker_memory(g42), "peer": worker_memory(peer)},
           "page": {"geologin": [], "peer": []}, "password": {"geologin": [], "peer": []},
           "dhis2": {"geologin": [], "peer": []},
           "page_bytes": {"geologin": len(http_get(g42.url + "/login")),
                          "peer": len(http_get(peer.url + "/accounts/login/"))}}
    users = {"geologin": [{**u, "provider": "moh1", "fake": rig.fake42.url, "username": u["username"]}
                          for u in rig.users1],
             "peer": [{**u, "fake": rig.fake42.url} for u in rig.users1]}
    servers = [("geologin", g42, "/login", None, "geologin"), ("peer", peer, "/accounts/login/", PEER_FORM, "peer")]
    for _name, server, path, _form, flow in servers:   # warm-up: imports, templates, caches, DHIS2 consent
        page_rate(rig.wrk, server.url, 1, plan["page_connections"], path=path)
        loadgen({"mode": "throughput", "flow": flow, "target": server.url, "vus": plan["peer_vus"], "warmup": 0,
                 "duration": 1, "users": users[_name]})
    for rep in range(plan["reps"]):
        for name, server, path, _form, _flow in alternately(rep, servers):
            out["page"][name].append(page_rate(rig.wrk, server.url, plan["peer_page_seconds"],
                                               plan["page_connections"], path=path))
        say(f"   login page rep {rep + 1}: geologin {out['page']['geologin'][-1]['per_second']:.0f}/s, "
            f"allauth {out['page']['peer'][-1]['per_second']:.0f}/s")
    for rep in range(plan["reps"]):
        hash_seconds = one_hash(plan["hash_samples"])
        for name, server, _path, form, _flow in alternately(rep, servers):
            out["password"][name].append({**password_rate(rig.wrk, server.url, plan["peer_password_seconds"],
                                                          plan["password_vus"], form=form),
                                          "hash_seconds": hash_seconds})
        say(f"   password logins rep {rep + 1}: geologin {out['password']['geologin'][-1]['per_second']:.1f}/s, "
            f"allauth {out['password']['peer'][-1]['per_second']:.1f}/s, one hash {hash_seconds * 1000:.1f} ms")
    time.sleep(1)   # the hashes wrk left in flight end (each holds 19 MiB until it does)
    out["memory_after_password"] = {"geologin": worker_memory(g42), "peer": worker_memory(peer)}
    for rep in range(plan["reps"]):
        for name, server, _path, _form, flow in alternately(rep, servers):
            cpu_before = app_cpu_seconds(server)
            run = loadgen({"mode": "throughput", "flow": flow, "target": server.url, "vus": plan["peer_vus"],
                           "warmup": plan["peer_flow_warmup"], "duration": plan["peer_flow_seconds"],
                           "users": users[name]})
            cpu = app_cpu_seconds(server) - cpu_before
            run["cpu_ms_per_login"] = 1000 * cpu / run["completed_all"] if run["completed_all"] else None
            out["dhis2"][name].append(run)
        say("   DHIS2 logins rep {}: geologin {:.1f}/s ({} ms CPU each), allauth {:.1f}/s ({} ms CPU each){}".format(
            rep + 1, *(v for n in ("geologin", "peer") for v in (
                out["dhis2"][n][-1]["per_second"], _ms(out["dhis2"][n][-1]["cpu_ms_per_login"]))),
            "".join(f", {n} errors {out['dhis2'][n][-1]['errors']}" for n in ("geologin", "peer")
                    if out["dhis2"][n][-1]["errors"])))
    out["memory_end"] = {"geologin": worker_memory(g42), "peer": worker_memory(peer)}
    say("   RSS per worker (MiB): " + "; ".join(
        f"{moment} " + ", ".join(f"{n} {'/'.join(f'{rss:.0f}' for rss, _ in out[moment][n])}" for n in ("geologin", "peer"))
        for moment in ("memory_start", "memory_after_password", "memory_end")))
    return out


def _ms(value):
    return "-" if value is None else f"{value:.1f}"


def warm_up(rig):
    """Every server warmed up (imports, templates, connection pools, SQLite caches)."""
    for server in (rig.main, rig.page):
        page_rate(rig.wrk, server.url, 1, rig.plan["page_connections"])
    for server, flow, users in ((rig.main, "geologin", rig.users3), (rig.authlib, "baseline", rig.baseline_users)):
        loadgen({"mode": "sequential", "flow": flow, "target": server.url, "count": 10, "users": users})


def cpu_report(results, item, meter):
    shares = meter.stop()
    results.setdefault("cpu", {})[item] = shares
    say("   CPU: " + ", ".join(f"{role} {100 * share:.0f}%" for role, share in
                              sorted(shares.items(), key=lambda kv: -kv[1])))


def alternately(rep, order):
    """The compared servers in turn, the other one first on every second repetition."""
    return order if rep % 2 == 0 else order[::-1]


def login_page(rig):
    """1. Login page with 3 DHIS2 servers vs the bare Flask + Jinja page of the same size."""
    say("1. login page vs baseline page")
    r1 = {"geologin": [], "baseline": []}
    for rep in range(rig.plan["reps"]):
        for name, server in alternately(rep, [("geologin", rig.main), ("baseline", rig.page)]):
            r1[name].append(page_rate(rig.wrk, server.url, rig.plan["page_seconds"], rig.plan["page_connections"]))
        say(f"   rep {rep + 1}: geologin {r1['geologin'][-1]['per_second']:.0f}/s, "
            f"baseline {r1['baseline'][-1]['per_second']:.0f}/s")
    return r1


def login_time(rig):
    """2. Time inside the app per external login (start + callback), minus the outbound calls."""
    say("2. time inside geologin per external login vs Authlib baseline (sequential, one login at a time)")
    r2 = {"geologin": [], "baseline": []}
    order = [("geologin", rig.main, "geologin", rig.users3[:1]),
             ("baseline", rig.authlib, "baseline", rig.baseline_users)]
    for rep in range(rig.plan["reps"]):
        for name, server, flow, users in alternately(rep, order):
            r2[name].append(timed_logins(rig.workdir, server, flow, users, rig.plan["seq_logins"], f"i2-{name}-{rep}"))
        say(f"   rep {rep + 1}: geologin {r2['geologin'][-1]['inside_ms']:.2f} ms, "
            f"baseline {r2['baseline'][-1]['inside_ms']:.2f} ms"
            + (f", errors {r2['geologin'][-1]['errors']} / {r2['baseline'][-1]['errors']}"
               if r2["geologin"][-1]["errors"] or r2["baseline"][-1]["errors"] else ""))
    return r2


def login_rate(rig):
    """3. Complete logins per second with 50 concurrent users."""
    plan = rig.plan
    say(f"3. complete external logins/s, {plan['vus']} concurrent users")
    r3 = []
    for rep in range(plan["reps"]):
        r3.append(loadgen({"mode": "throughput", "flow": "geologin", "target": rig.main.url, "vus": plan["vus"],
                           "warmup": plan["flow_warmup"], "duration": plan["flow_seconds"], "users": rig.users3}))
        say(f"   rep {rep + 1}: {r3[-1]['per_second']:.1f} logins/s, p50 {r3[-1]['latency_p50_ms']:.0f} ms"
            + (f", errors {r3[-1]['errors']}" if r3[-1]["errors"] else ""))
    return r3


def password_logins(rig):
    """5. Password logins per second vs cores / one hash (its CPU meter starts after a 1-second warm-up)."""
    plan = rig.plan
    say("5. password logins/s")
    r5 = []
    password_rate(rig.wrk, rig.main.url, 1, plan["password_vus"])
    meter = CpuMeter()
    for rep in range(plan["reps"]):
        # The limit is measured again right before each repetition (the machine idle for a second): this
        # VM's speed drifts by 10% and more over a run, so a limit from minutes earlier would judge the rate
        # against another machine.
        hash_seconds = one_hash(plan["hash_samples"])
        r5.append({**password_rate(rig.wrk, rig.main.url, plan["password_seconds"], plan["password_vus"]),
                   "hash_seconds": hash_seconds})
        say(f"   rep {rep + 1}: {r5[-1]['per_second']:.1f} logins/s, one hash {hash_seconds * 1000:.1f} ms" +
            (f", failures {r5[-1]['errors']}" if r5[-1]["errors"] else ""))
    cpu_report(rig.results, "5", meter)
    return r5


def forward_auth(rig):
    """7. A static file through nginx without auth, the same file behind auth_request to geologin, and
    geologin's verification endpoint alone (as nginx calls it: one connection per request)."""
    plan = rig.plan
    say("7. forward-auth: nginx static file, without and with auth_request; geologin's endpoint alone")
    browser = {"Host": SITE_HOST, "Cookie": rig.cookie}   # a logged-in browser, keep-alive to nginx
    targets = {"nginx": (rig.nginx.url("plain"), browser, False), "nginx_auth": (rig.nginx.url("auth"), browser, False),
               "endpoint": (rig.forward.url + "/forward-auth/nginx", rig.forward_headers, True)}

    def measure(name, seconds):
        url, headers, close = targets[name]
        return wrk_get(rig.wrk, url, seconds, plan["forward_connections"], headers, close=close)

    for name in targets:   # warm-up: nginx's workers, geologin's caches and the session's first visit
        measure(name, 1)
    r7 = {name: [] for name in targets}
    for rep in range(plan["reps"]):
        for name in alternately(rep, list(targets)):
            r7[name].append(measure(name, plan["forward_seconds"]))
        say("   rep {}: nginx {:.0f}/s, nginx + auth_request {:.0f}/s, endpoint alone {:.0f}/s{}".format(
            rep + 1, *(r7[n][-1]["per_second"] for n in targets),
            "".join(f", {n} errors {r7[n][-1]['errors']}" for n in r7 if r7[n][-1]["errors"])))
    return r7


SCALING_VARIANTS = {"small": ("small", None),
                    "large_one_enabled": ("large", "UPDATE provider_instances SET enabled = (slug = 'moh1')"),
                    "large_all_enabled": ("large", "UPDATE provider_instances SET enabled = true")}


def scaling(rig):
    """4. Flat scaling: items 1-3 at 10 users / 1 provider vs 100,000 users / 1,000 providers."""
    say("4. scaling: 10 users / 1 provider vs 100,000 users / 1,000 providers")
    plan = rig.plan
    out = {name: {"page": [], "time": [], "logins": []} for name in SCALING_VARIANTS}
    sizes = {name: _scaling_warm_up(rig, name) for name in SCALING_VARIANTS}
    for rep in range(plan["reps"]):
        for name in alternately(rep, list(SCALING_VARIANTS)):
            server = _scaling_variant(rig, name)
            result = out[name]
            result["page"].append(page_rate(rig.wrk, server.url, plan["scale_page_seconds"], plan["page_connections"]))
            result["time"].append(timed_logins(rig.workdir, server, "geologin", rig.users1[:1],
                                               plan["scale_seq_logins"], f"i4-{name}-{rep}"))
            result["logins"].append(loadgen({"mode": "throughput", "flow": "geologin", "target": server.url,
                                             "vus": plan["vus"], "warmup": plan["flow_warmup"],
                                             "duration": plan["scale_flow_seconds"], "users": rig.users1}))
            say(f"   rep {rep + 1} {name}: page {result['page'][-1]['per_second']:.0f}/s, "
                f"login {result['time'][-1]['inside_ms']:.2f} ms, {result['logins'][-1]['per_second']:.1f} logins/s")
    out["page_bytes"] = sizes
    return out


def _scaling_variant(rig, name):
    """The server of a variant, with the large database's providers enabled as the variant says."""
    server_name, toggle = SCALING_VARIANTS[name]
    if toggle:
        rig.databases["large"].execute(toggle)
    return rig.servers[server_name]


def _scaling_warm_up(rig, name):
    """A variant warmed up; returns its login page's size."""
    server = _scaling_variant(rig, name)
    size = len(http_get(server.url + "/login"))
    page_rate(rig.wrk, server.url, 1, rig.plan["page_connections"])
    loadgen({"mode": "sequential", "flow": "geologin", "target": server.url, "count": 5, "users": rig.users1})
    return size


def memory(rig):
    """6. Memory per worker after the runs."""
    return {server.label: [memory_of(pid) for pid in server.workers()]
            for server in [*rig.servers.values(), rig.page, rig.authlib, *([rig.peer] if hasattr(rig, "peer") else [])]}


def profiles(rig):
    """The profiling pass (cProfile in the worker, not timed): page views, external and password logins."""
    say("profiling geologin (cProfile, separate pass, not timed)")
    plan, url = rig.plan, rig.main.url
    done = {
        "login": loadgen({"mode": "sequential", "flow": "geologin", "target": url,
                          "count": plan["profile_logins"], "profile": "login", "users": rig.users3[:1]}),
        "page": loadgen({"mode": "sequential", "flow": "get", "path": "/login", "target": url,
                         "count": plan["profile_pages"], "profile": "page", "users": [{}]}),
        "password": loadgen({"mode": "sequential", "flow": "password", "target": url,
                             "count": plan["profile_passwords"], "profile": "password",
                             "users": [{"username": "bench01", "password": BENCH_PASSWORD}]}),
    }
    spots = {kind: hot_spots(rig.workdir, rig.main.label, kind, result["completed"])
             for kind, result in done.items() if result["completed"]}
    if hasattr(rig, "nginx"):
        result = loadgen({"mode": "sequential", "flow": "get", "path": "/forward-auth/nginx",
                          "target": rig.forward.url, "count": plan["profile_forward"], "profile": "forward",
                          "headers": rig.forward_headers, "users": [{}]})
        if result["completed"]:
            spots["forward"] = hot_spots(rig.workdir, rig.forward.label, "forward", result["completed"])
    return spots
