"""Reading the profiling pass: the cProfile files timed_wsgi.py wrote for tagged requests, summed into self
time by package, the top functions by self time, and geologin's functions by cumulative time."""
import pstats

from processes import ROOT


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
