"""The WSGI app gunicorn serves in the benchmarks: geologin (``wsgi:app``) or a baseline app, wrapped the
same way for every app by a small timing middleware.

``BENCH_APP`` names the wrapped app (``module:attribute``; the project folder and ``benchmarks/`` are on the
path). A request without ``X-Bench-Step`` or ``X-Bench-Profile`` goes straight to the app (one dict lookup
of overhead), so throughput runs measure the app itself.

A request with ``X-Bench-Step: <step>`` (and ``X-Bench-Login: <id>``) is timed: wall time from the call to
the end of the response body, minus the wall time spent inside ``requests.Session.send`` (the outbound calls
to the identity server: connect, send, wait for the fake DHIS2, read the answer). ``requests.Session.send``
is patched here, at class level, so geologin's HTTP client and Authlib's ``OAuth2Session`` (a
``requests.Session`` subclass) are measured by the same code. One tab-separated line per timed request goes
to ``$BENCH_TIMINGS_DIR/timings-$BENCH_LABEL-<pid>.tsv``:

    login_id  step  status  wall_us  outbound_us  outbound_calls  thread_cpu_us

A request with ``X-Bench-Profile: <kind>`` is run under cProfile (one profiler per kind and worker, one
request at a time); the accumulated stats are written to ``prof-$BENCH_LABEL-<kind>-<pid>.pstats`` after
each such request. Profiling runs are separate from the timed runs.
"""
import cProfile
import importlib
import os
import sys
import threading
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for folder in (str(HERE), str(ROOT)):
    if folder not in sys.path:
        sys.path.insert(0, folder)

_local = threading.local()
_original_send = requests.Session.send


def _timed_send(self, request, **kwargs):
    """Session.send, with its wall time added to the current timed request's outbound total."""
    depth = getattr(_local, "depth", 0)
    _local.depth = depth + 1
    started = time.perf_counter()
    try:
        return _original_send(self, request, **kwargs)
    finally:
        _local.depth = depth
        totals = getattr(_local, "outbound", None)
        if totals is not None and depth == 0:
            totals[0] += time.perf_counter() - started
            totals[1] += 1


requests.Session.send = _timed_send

_module, _, _attribute = os.environ.get("BENCH_APP", "wsgi:app").partition(":")
inner = getattr(importlib.import_module(_module), _attribute or "app")

_LABEL = os.environ.get("BENCH_LABEL", "app")
_DIR = Path(os.environ.get("BENCH_TIMINGS_DIR", "."))
_fd = None
_fd_lock = threading.Lock()
_profilers = {}
_profile_lock = threading.Lock()


def _write(line):
    global _fd
    if _fd is None:
        with _fd_lock:
            if _fd is None:
                _fd = os.open(_DIR / f"timings-{_LABEL}-{os.getpid()}.tsv",
                              os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(_fd, line.encode())


def _clean(value):
    return (value or "-").replace("\t", " ")[:80]


def app(environ, start_response):
    step = environ.get("HTTP_X_BENCH_STEP")
    profile_kind = environ.get("HTTP_X_BENCH_PROFILE")
    if step is None and profile_kind is None:
        return inner(environ, start_response)
    if profile_kind is not None:
        return _profiled(environ, start_response, _clean(profile_kind))
    return _timed(environ, start_response, _clean(step))


def _timed(environ, start_response, step):
    status_seen = []

    def capture(status, headers, exc_info=None):
        status_seen.append(status.split(" ", 1)[0])
        return start_response(status, headers, exc_info)

    _local.outbound = totals = [0.0, 0]
    cpu_started = time.thread_time()
    started = time.perf_counter()
    try:
        result = inner(environ, capture)
        try:
            body = list(result)
        finally:
            if hasattr(result, "close"):
                result.close()
    finally:
        wall = time.perf_counter() - started
        cpu = time.thread_time() - cpu_started
        _local.outbound = None
    _write(f"{_clean(environ.get('HTTP_X_BENCH_LOGIN'))}\t{step}\t{status_seen[0] if status_seen else '-'}\t"
           f"{wall * 1e6:.0f}\t{totals[0] * 1e6:.0f}\t{totals[1]}\t{cpu * 1e6:.0f}\n")
    return body


def _profiled(environ, start_response, kind):
    if not _profile_lock.acquire(blocking=False):  # one profiled request at a time per worker
        return inner(environ, start_response)
    try:
        profiler = _profilers.setdefault(kind, cProfile.Profile())
        profiler.enable()
        try:
            result = inner(environ, start_response)
            try:
                body = list(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        finally:
            profiler.disable()
        profiler.dump_stats(_DIR / f"prof-{_LABEL}-{kind}-{os.getpid()}.pstats")
        return body
    finally:
        _profile_lock.release()
