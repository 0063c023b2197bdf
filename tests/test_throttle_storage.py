"""The in-process rate-limit storage (no REDIS_URL): counters count and expire like limits' own memory
storage, without starting a thread per request."""
import threading
import time

from geologin.login.throttle import SweepingMemoryStorage


def test_counts_expire_and_are_swept_without_threads(monkeypatch):
    storage = SweepingMemoryStorage()
    threads = threading.active_count()
    assert [storage.incr("a", 1) for _ in range(3)] == [1, 2, 3]
    assert storage.decr("a") == 2
    storage.incr("b", 1)
    assert threading.active_count() <= threads  # no timer thread per call
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 2)
    assert storage.get("a") == 0  # expired when read
    assert "b" in storage.storage
    storage._next_sweep = 0
    storage.incr("c", 10)  # the sweep forgets "b", which nobody read again
    assert "b" not in storage.storage and storage.get("c") == 1


def test_the_app_uses_it_without_redis(app):
    from geologin.extensions import limiter
    with app.app_context():
        assert isinstance(limiter.storage, SweepingMemoryStorage)
