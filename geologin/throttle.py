"""Brute-force protection: a per-client-IP rate limit (Flask-Limiter) on every login entry point, and a
per-account temporary lockout with a growing wait, modelled on Keycloak's defaults. Both keep their
counters in the limiter's storage: memory for one process, Redis when ``REDIS_URL`` is set so every
worker and node sees the same counts."""
import hashlib
import math
import time

from flask import current_app, request

from .extensions import limiter

_FAILURES = "geologin:login-failures:"
_LOCK = "geologin:login-lock:"


def init_app(app):
    config = app.config
    config.setdefault("RATELIMIT_STORAGE_URI", config.get("REDIS_URL") or "memory://")
    config.setdefault("RATELIMIT_KEY_PREFIX", "geologin")
    config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    config.setdefault("RATELIMIT_ENABLED", bool(config.get("LOGIN_RATE_LIMIT")))
    limiter.init_app(app)
    limiter.request_filter(_no_limit_applies)


_CALLBACK_ENDPOINTS = ("external.callback", "external_fixed_callback_")


def _no_limit_applies():
    """Skip Flask-Limiter's per-request work (resolving limits, twice: before the request and in the
    decorator) for requests none of geologin's limits counts: the limits below count POSTs to the login
    forms and GETs of the external-login callbacks only, so a page view (GET /login) has nothing to count."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        return False
    endpoint = request.endpoint or ""
    return not endpoint.startswith(_CALLBACK_ENDPOINTS)


def login_rate_limit():
    """The per-IP limit for login entry points, e.g. "30 per minute" (a setting, so benchmarks can raise it)."""
    return current_app.config["LOGIN_RATE_LIMIT"]


def _client_ip():
    # request.remote_addr is the peer, or the client named by exactly TRUSTED_PROXIES proxies (ProxyFix).
    return request.remote_addr or "unknown"


# One budget per client IP shared by every login entry point: the password form, the external-login
# start and the callbacks (what the limit counts is attempts, so only those methods).
limit_attempts = limiter.shared_limit(login_rate_limit, scope="login", key_func=_client_ip, methods=["POST"])
limit_callbacks = limiter.shared_limit(login_rate_limit, scope="login", key_func=_client_ip, methods=["GET"])


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
    if storage.get(key) <= 0:
        return 0
    return max(1, math.ceil(storage.get_expiry(key) - time.time()))


def record_failure(username):
    """Count a failed login for ``username``; returns the lockout it now starts (seconds) or 0."""
    if not username:
        return 0
    config = current_app.config
    storage = _storage()
    failures = storage.incr(_key(_FAILURES, username), int(config["LOCKOUT_FAILURE_RESET_SECONDS"]))
    threshold = int(config["LOCKOUT_MAX_FAILURES"])
    if failures < threshold:
        return 0
    # Keycloak-style: every failure past the threshold adds one wait increment, up to the maximum wait.
    wait = min(int(config["LOCKOUT_WAIT_INCREMENT_SECONDS"]) * (failures - threshold + 1),
               int(config["LOCKOUT_MAX_WAIT_SECONDS"]))
    lock = _key(_LOCK, username)
    storage.clear(lock)
    storage.incr(lock, wait)
    return wait


def record_success(username):
    _storage().clear(_key(_FAILURES, username))
    _storage().clear(_key(_LOCK, username))
