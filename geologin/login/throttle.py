"""Brute-force protection: a per-client-IP rate limit (Flask-Limiter) on every login entry point, and a
per-account temporary lockout with a growing wait, modelled on Keycloak's defaults. Both keep their
counters in the limiter's storage: memory for one process, Redis when ``REDIS_URL`` is set so every
worker and node sees the same counts."""
import hashlib
import math
import time

from flask import current_app, request
from flask_babel import ngettext
from limits.storage import MemoryStorage
from sqlalchemy import select, update

from .. import audit
from ..accounts.passwords import verify_password
from ..extensions import db, limiter
from ..models import User, utcnow

_FAILURES = "geologin:login-failures:"
_LOCK = "geologin:login-lock:"


def init_app(app):
    config = app.config
    config.setdefault("RATELIMIT_STORAGE_URI", config.get("REDIS_URL") or "geologin-memory://")
    config.setdefault("RATELIMIT_KEY_PREFIX", "geologin")
    config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    config.setdefault("RATELIMIT_ENABLED", config.get("LOGIN_RATE_LIMIT"))
    limiter.init_app(app)
    limiter.request_filter(_no_limit_applies)


# The endpoints of the external-login callbacks: login/external.py's ``callback`` and the fixed callback paths
# plugins declare, which it names FIXED_CALLBACK_PREFIX + a number.
FIXED_CALLBACK_PREFIX = "external_fixed_callback_"
_CALLBACK_ENDPOINTS = ("external.callback", FIXED_CALLBACK_PREFIX)


def _no_limit_applies():
    """Skip Flask-Limiter's per-request work (resolving limits, twice: before the request and in the
    decorator) for requests none of geologin's limits counts: the limits below count POSTs to the login
    forms and GETs of the external-login callbacks only, so a page view (GET /login) has nothing to count."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        return False
    endpoint = request.endpoint or ""
    return not endpoint.startswith(_CALLBACK_ENDPOINTS)


class SweepingMemoryStorage(MemoryStorage):
    """limits' in-process storage ("memory://"), except that expired counters are dropped when read (as
    before) and by a sweep at most every few seconds, inside a call, instead of by a timer thread that
    MemoryStorage starts again whenever the previous one has finished (10 ms): under a steady trickle
    of logins almost every login POST started a thread and waited for it to get the GIL."""

    STORAGE_SCHEME = ["geologin-memory"]
    SWEEP_SECONDS = 5.0

    def __init__(self, uri=None, **options):
        super().__init__(uri, **options)
        self._next_sweep = time.time() + self.SWEEP_SECONDS

    def _sweep(self):
        now = time.time()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.SWEEP_SECONDS
        for key, expires in list(self.expirations.items()):
            if expires <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
                self.locks.pop(key, None)

    def incr(self, key, expiry, amount=1):
        self.get(key)  # forgets the counter if it has expired
        self._sweep()
        with self.locks[key]:
            self.storage[key] += amount
            if self.storage[key] == amount:
                self.expirations[key] = time.time() + expiry
        return self.storage.get(key, 0)

    def decr(self, key, amount=1):
        self.get(key)
        self._sweep()
        with self.locks[key]:
            self.storage[key] = max(self.storage[key] - amount, 0)
        return self.storage.get(key, 0)


def login_rate_limit():
    """The per-IP limit for login entry points, e.g. "30 per minute" (a setting, so benchmarks can raise it)."""
    return current_app.config["LOGIN_RATE_LIMIT"]


def _client_ip():
    # request.remote_addr is the peer, or the client named by exactly TRUSTED_PROXIES proxies (ProxyFix).
    return request.remote_addr or "unknown"


# One budget per client IP shared by every login entry point: the password form, the external-login
# start and the callbacks (what the limit counts is attempts, so only those methods). HEAD runs a GET view
# in full (a callback's code exchange and audit row included), so it counts as a GET.
limit_attempts = limiter.shared_limit(login_rate_limit, scope="login", key_func=_client_ip, methods=["POST"])
limit_callbacks = limiter.shared_limit(login_rate_limit, scope="login", key_func=_client_ip,
                                       methods=["GET", "HEAD"])


def _key(prefix, username):
    # Hashed: the storage never holds usernames, and any string (even a huge one) makes a short key.
    return prefix + hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()


def _storage():
    return limiter.storage


def locked_for(username):
    """Seconds this account must still wait before trying again (0 when it may try now). Unknown
    usernames are tracked the same way, so a lockout says nothing about whether an account exists."""
    if not username:
        return 0
    storage = _storage()
    key = _key(_LOCK, username)
    wait = storage.get(key)
    if wait <= 0:
        return 0
    expiry = storage.get_expiry(key)
    if _unlocked_since(username, expiry - wait):
        record_success(username)
        return 0
    return max(1, math.ceil(expiry - time.time()))


def record_failure(username):
    """Count a failed login for ``username``; returns the lockout it now starts (seconds) or 0."""
    if not username:
        return 0
    config = current_app.config
    storage = _storage()
    reset = config["LOCKOUT_FAILURE_RESET_SECONDS"]
    failures_key = _key(_FAILURES, username)
    failures = storage.incr(failures_key, reset)
    threshold = config["LOCKOUT_MAX_FAILURES"]
    if failures < threshold:
        return 0
    if _unlocked_since(username, storage.get_expiry(failures_key) - reset):  # counted before an unlock
        storage.clear(failures_key)
        storage.incr(failures_key, reset)
        return 0
    # Keycloak-style: every failure past the threshold adds one wait increment, up to the maximum wait.
    wait = min(config["LOCKOUT_WAIT_INCREMENT_SECONDS"] * (failures - threshold + 1),
               config["LOCKOUT_MAX_WAIT_SECONDS"])
    lock = _key(_LOCK, username)
    storage.clear(lock)
    storage.incr(lock, wait, amount=wait)  # the value is the wait: with the expiry, it tells when the lock began
    return wait


def record_success(username):
    _storage().clear(_key(_FAILURES, username))
    _storage().clear(_key(_LOCK, username))


def unlock(username):
    """Forget the account's failures and lift its lockout (an administrator's Unlock, a new password): here,
    and, through the user's ``unlocked_at`` (committed by the caller), in every other process."""
    record_success(username)
    db.session.execute(update(User).where(User.username == username).values(unlocked_at=utcnow()))


def _unlocked_since(username, started):
    """Whether an administrator unlocked the account after ``started`` (a time.time() value): asked only
    when this process's counters would refuse, so logins that are not locked out read nothing."""
    unlocked_at = db.session.scalar(select(User.unlocked_at).where(User.username == username))
    return unlocked_at is not None and unlocked_at.timestamp() >= started


def lockout_message(seconds):
    minutes = max(1, -(-seconds // 60))
    return ngettext("Too many failed attempts. Try again in %(num)d minute.",
                    "Too many failed attempts. Try again in %(num)d minutes.", minutes)


def check_own_password(user, password, event):
    """A signed-in user's password typed again (re-authentication, password change), under the same
    per-account lockout as the login form, so a session holder cannot guess it without limit. Returns
    None when it matches, 0 when it does not, else the seconds the account is locked for; failures and
    lockouts are audited as ``event`` with the login form's reason codes."""
    wait = locked_for(user.username)
    if wait:
        audit.record(event, audit.FAILURE, target=user.username, actor=user.username, reason="locked_out")
        return wait
    if verify_password(user.password_hash, password):
        record_success(user.username)
        return None
    audit.record(event, audit.FAILURE, target=user.username, actor=user.username, reason="bad_password")
    locked = record_failure(user.username)
    if locked:
        audit.record("lockout", audit.FAILURE, target=user.username, actor="", detail=f"locked for {locked} s")
    return 0
