"""Configuration: built-in defaults, then ``instance/config.py``, then ``GEOLOGIN_*`` environment variables.

The order lets a packaged deployment keep secrets in the instance folder or in the environment, whichever
its tooling prefers, while development works with no configuration at all.
"""
import json
import os
import secrets
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_PREFIX = "GEOLOGIN_"
MIN_SECRET_KEY_LENGTH = 32
# zxcvbn's estimate of the guesses needed, as a power of ten: 10**24 is about 2**80. Random keys of 32
# url-safe characters or more score 32 and above; repeated patterns, sequences and words score far below.
MIN_SECRET_KEY_GUESSES_LOG10 = 24
# Keys copied from tutorials and framework docs; a deployment using one of them is not secret at all.
KNOWN_WEAK_KEYS = {
    "dev", "development", "secret", "changeme", "change-me", "change_me", "your-secret-key",
    "super-secret", "supersecret", "secret-key", "secret_key", "default", "test", "testing",
}


class ConfigError(RuntimeError):
    """Raised at start-up when the configuration would make geologin unsafe or unusable."""


DEFAULTS = {
    # "development" relaxes what only matters in production (generated SECRET_KEY, plain-http providers).
    "ENV": "production",
    "SECRET_KEY": None,
    "SQLALCHEMY_DATABASE_URI": None,  # None -> SQLite file in the instance folder
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},  # not for SQLite (see _normalise)
    # SQLite only: write-ahead log (readers never wait for a writer, one fsync per commit instead of the
    # rollback journal's several) and its durability level (FULL: a commit survives a power cut).
    "SQLITE_JOURNAL_MODE": "WAL",
    "SQLITE_SYNCHRONOUS": "FULL",
    "PUBLIC_URL": None,
    "ALLOW_INSECURE_HTTP": False,
    "ENCRYPTION_KEY": None,  # Fernet key(s), comma-separated, newest first
    "PLUGINS_FOLDER": None,  # folders to scan (list, or os.pathsep-separated); None -> ./plugins
    "DISABLED_PLUGINS": [],
    "LOGIN_TRANSACTION_MINUTES": 10,
    "HTTP_CONNECT_TIMEOUT": 5,
    "HTTP_READ_TIMEOUT": 10,
    "HTTP_TOTAL_TIMEOUT": 15,  # seconds one outbound call may take in all, however the server drips its answer
    "HTTP_MAX_RESPONSE_BYTES": 1024 * 1024,
    # Calls in flight to one identity server, per process; None -> one less than WORKER_THREADS, so a stalled
    # server always leaves a thread for everyone else (a larger value is lowered to that too).
    "HTTP_MAX_CONCURRENT_PER_SERVER": None,
    "WORKER_THREADS": None,  # threads per process; gunicorn.conf.py sets it; None -> gunicorn's default 4
    "HTTP_QUEUE_TIMEOUT": 1.0,  # seconds to wait for a free slot before "server unavailable"
    "DEFAULT_LOCALE": "en",  # when neither the user, the cookie nor the browser names a language we have
    "TIMEZONE": "UTC",  # IANA zone the screens show times in; stored times, CSV and JSON stay UTC
    "USERS_PER_PAGE": 25,
    "AUDIT_PER_PAGE": 50,
    # Days of audit trail to keep; None keeps it forever. Applied by `flask --app wsgi audit prune --yes`,
    # which deployments run daily (cron or a systemd timer).
    "AUDIT_RETENTION_DAYS": None,
    "PASSWORD_MIN_LENGTH": 12,
    "PASSWORD_MAX_LENGTH": 128,
    # OWASP Password Storage Cheat Sheet minimum for argon2id: m=19 MiB, t=2, p=1.
    "ARGON2_MEMORY_COST": 19 * 1024,
    "ARGON2_TIME_COST": 2,
    "ARGON2_PARALLELISM": 1,
    "SETUP_TOKEN_HOURS": 24,
    "LOG_FORMAT": "text",  # or "json": one JSON object per line on stdout
    "LOG_REQUESTS": True,  # one line per request (path only, never the query string)
    "REDIS_URL": None,  # shared storage for rate limits and lockouts across workers and nodes
    # Per client IP, over the password form, external-login starts and callbacks together. An office
    # behind one NAT address logs many people in: keep it generous; the per-account lockout stops guessing.
    "LOGIN_RATE_LIMIT": "60 per minute",
    # Keycloak's defaults: after 30 failures, each further one adds a minute of wait, up to 15 minutes;
    # the failure count is forgotten 12 hours after the first failure.
    "LOCKOUT_MAX_FAILURES": 30,
    "LOCKOUT_WAIT_INCREMENT_SECONDS": 60,
    "LOCKOUT_MAX_WAIT_SECONDS": 900,
    "LOCKOUT_FAILURE_RESET_SECONDS": 12 * 3600,
    "HSTS_MAX_AGE": 365 * 24 * 3600,  # sent when PUBLIC_URL is https
    "TRUSTED_PROXIES": 0,  # how many reverse proxies in front set X-Forwarded-*; 0 = trust none
    "ADMIN_FRESH_LOGIN_MINUTES": 30,  # admin pages need a login (or re-authentication) this recent
    "SESSION_IDLE_MINUTES": 60,
    "SESSION_ABSOLUTE_HOURS": 12,
    "SESSION_COOKIE_NAME": "geologin_session",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": None,  # None -> follow PUBLIC_URL's scheme
    "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session that holds it
}


_VERBATIM = {"SECRET_KEY", "PUBLIC_URL", "ENCRYPTION_KEY"}


def _parse_env_value(raw):
    """Environment values are strings; accept JSON so numbers, booleans and lists can be set too."""
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, (int, float, list, dict)) else raw


def environment_overrides(environ=os.environ):
    """Map ``GEOLOGIN_FOO=bar`` to ``FOO``; ``DATABASE_URL`` is honoured as the conventional name."""
    overrides = {}
    if environ.get("DATABASE_URL"):
        overrides["SQLALCHEMY_DATABASE_URI"] = environ["DATABASE_URL"]
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and name != ENV_PREFIX + "INSTANCE":
            key = name[len(ENV_PREFIX):]
            overrides[key] = raw if key in _VERBATIM else _parse_env_value(raw)
    if "DATABASE_URL" in overrides:
        overrides["SQLALCHEMY_DATABASE_URI"] = overrides.pop("DATABASE_URL")
    return overrides


def load_config(app, test_config=None):
    """Fill ``app.config`` from defaults, the instance file, the environment and finally ``test_config``."""
    app.config.update(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    if test_config is None:
        overrides = environment_overrides()
        app.config.update(overrides)
        if is_development(app) and "ENV" in overrides:
            _remember_development(app)
    else:
        app.config.update(test_config)
    _normalise(app)
    _ensure_secret_key(app)
    _match_cookie_to_session(app.config)


def _match_cookie_to_session(config):
    """The session cookie expires when the server ends the session (SESSION_ABSOLUTE_HOURS), not after
    Flask's default 31 days, so no browser keeps a dead session's cookie around."""
    config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=int(config["SESSION_ABSOLUTE_HOURS"]))


DEVELOPMENT_INSTANCE_CONFIG = """\
# Written by geologin when this instance folder was first used in development mode (make run).
# It makes `flask --app wsgi ...` here work without exporting GEOLOGIN_ENV: the secret keys are the
# generated files beside this one. Never use this folder in production: delete this file and set
# GEOLOGIN_SECRET_KEY and GEOLOGIN_ENCRYPTION_KEY (see docs/deploy.md).
ENV = "development"
"""


def _remember_development(app):
    """A new instance folder started in development mode remembers it, so later commands in it need no
    GEOLOGIN_ENV. An existing config.py is never touched: it already says what the operator wants."""
    path = Path(app.instance_path) / "config.py"
    if path.exists():
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(DEVELOPMENT_INSTANCE_CONFIG)


def is_development(app):
    return str(app.config.get("ENV", "production")).lower() == "development"


def _normalise(app):
    config = app.config
    uri = config.get("SQLALCHEMY_DATABASE_URI")
    if not uri:
        uri = config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + str(Path(app.instance_path) / "geologin.sqlite3")
    elif uri.startswith(("postgres://", "postgresql://")):
        # psycopg 3 is the driver we ship; the bare scheme would ask SQLAlchemy for psycopg2.
        config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://" + uri.split("://", 1)[1]
    if uri.startswith("sqlite") and config.get("SQLALCHEMY_ENGINE_OPTIONS") == DEFAULTS["SQLALCHEMY_ENGINE_OPTIONS"]:
        # A database file never drops its connection: no "SELECT 1" before every checkout.
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {}
    public_url = config.get("PUBLIC_URL")
    if public_url:
        config["PUBLIC_URL"] = public_url = public_url.rstrip("/")
    _refuse_insecure_http(app, public_url)
    if config.get("SESSION_COOKIE_SECURE") is None:
        config["SESSION_COOKIE_SECURE"] = bool(public_url and public_url.startswith("https://"))
    for name, allowed in (("SQLITE_JOURNAL_MODE", {"DELETE", "TRUNCATE", "PERSIST", "WAL"}),
                          ("SQLITE_SYNCHRONOUS", {"OFF", "NORMAL", "FULL", "EXTRA"})):
        value = str(config.get(name) or "").upper()
        if value and value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(sorted(allowed))} (or empty for SQLite's default).")
        config[name] = value
    if int(config["PASSWORD_MIN_LENGTH"]) < 8:
        raise ConfigError("PASSWORD_MIN_LENGTH cannot be below 8.")
    if int(config["PASSWORD_MAX_LENGTH"]) < 64:
        raise ConfigError("PASSWORD_MAX_LENGTH must allow at least 64 characters.")
    config["TIMEZONE"] = _checked_timezone(config.get("TIMEZONE"))


def _refuse_insecure_http(app, public_url):
    """Plain http (for geologin itself or its identity servers) exposes sessions, codes and client secrets:
    only a development instance, or the test suite, may use it."""
    if is_development(app) or app.config.get("TESTING"):
        return
    if app.config.get("ALLOW_INSECURE_HTTP"):
        raise ConfigError("ALLOW_INSECURE_HTTP is for development only: unset GEOLOGIN_ALLOW_INSECURE_HTTP, or set "
                          "GEOLOGIN_ENV=development on a machine nobody else uses.")
    if public_url and not public_url.lower().startswith("https://"):
        raise ConfigError(f"PUBLIC_URL {public_url!r} is not https: browsers would send sessions and login codes in "
                          "clear. Serve geologin behind TLS and set GEOLOGIN_PUBLIC_URL=https://..., or set "
                          "GEOLOGIN_ENV=development for a local try.")


def _checked_timezone(name):
    problem = "is not a time zone name"
    if isinstance(name, str) and name.strip():
        name = name.strip()
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError):
            problem = "is not a known time zone"
    raise ConfigError(f"TIMEZONE {name!r} {problem}. Set GEOLOGIN_TIMEZONE to an IANA time zone name such as "
                      "UTC, Africa/Maputo or America/Bogota (stored times stay UTC either way).")


def _ensure_secret_key(app):
    """Use the configured key; in development generate one into the instance folder; else refuse to start."""
    key = app.config.get("SECRET_KEY")
    if not key and is_development(app):
        key = read_or_create_instance_secret(app, "secret_key", lambda: secrets.token_urlsafe(48))
        app.config["SECRET_KEY"] = key
    problem = weak_secret_key_reason(key)
    if problem:
        raise ConfigError(
            f"SECRET_KEY {problem}. Set GEOLOGIN_SECRET_KEY (or SECRET_KEY in instance/config.py) to a random "
            f"value of at least {MIN_SECRET_KEY_LENGTH} characters, for example the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`. "
            "For local development only, GEOLOGIN_ENV=development generates one for you."
        )


def weak_secret_key_reason(key):
    """Return why ``key`` is unfit for signing sessions, or None when it is fine."""
    if not key:
        return "is not set"
    if not isinstance(key, str):
        return "must be a string"
    if key.strip().lower() in KNOWN_WEAK_KEYS:
        return "is a well-known default value"
    if len(key) < MIN_SECRET_KEY_LENGTH:
        return f"is shorter than {MIN_SECRET_KEY_LENGTH} characters"
    if len(set(key)) < 8:
        return "has too little variety to be random"
    if _guesses_log10(key) < MIN_SECRET_KEY_GUESSES_LOG10:
        return "follows a pattern or sequence (repeats, runs like abcd or 1234, words): it is not random"
    return None


def _guesses_log10(key):
    import zxcvbn  # imported here: only start-up needs it
    return zxcvbn.zxcvbn(key[:100])["guesses_log10"]


def read_or_create_instance_secret(app, filename, generate):
    """Read a generated secret from the instance folder, creating it (mode 0600) on first use."""
    path = Path(app.instance_path) / filename
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
