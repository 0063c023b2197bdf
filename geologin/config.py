"""Configuration: built-in defaults, then ``instance/config.py``, then ``GEOLOGIN_*`` environment variables.

The order lets a packaged deployment keep secrets in the instance folder or in the environment, whichever
its tooling prefers, while development works with no configuration at all.
"""
import ctypes
import ctypes.util
import gc
import json
import math
import os
import secrets
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
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


@dataclass(frozen=True)
class ConfigSetting:
    """One setting: loading converts its value to ``type`` and refuses what its bounds or choices do not allow.

    ``optional`` settings may be None ("not set": the help says what then happens); ``secret`` ones never
    have their value repeated in an error message; ``separator`` splits a list given as one string.
    """
    name: str
    type: type
    default: object
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple = ()
    optional: bool = False
    secret: bool = False
    separator: str = ","

    def allowed(self):
        """What the setting accepts, in the words of an error message."""
        if self.choices:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.type is list:
            text = f"a list, or one text with items separated by {self.separator!r}"
        else:
            text = _TYPE_WORDS[self.type]
            if self.min is not None:
                text += f", not below {_number(self.min)}"
            if self.max is not None:
                text += f", not above {_number(self.max)}"
        return text + (" (or empty for none)" if self.optional and not self.choices else "")

    def shown(self):
        """The default as the README's configuration table states it."""
        value = self.default
        if value is None or value == []:
            return "none"
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, (int, float)):
            return _number(value)
        if isinstance(value, dict):
            return f"`{json.dumps(value)}`"
        return f"`{value}`"

    def convert(self, value, label=None):
        """``value`` (an environment string or a Python value from instance/config.py) as this setting's type."""
        try:
            converted = self._converted(value)
        except (TypeError, ValueError):
            shown = "" if self.secret else f" is {value!r}, but it"
            raise ConfigError(f"{label or self.name}{shown} must be {self.allowed()}.") from None
        return converted

    def _converted(self, value):
        if value is None or (value == "" and self.optional and not self.choices):
            if self.optional:
                return None
            raise ValueError
        if self.type is list:
            value = _as_list(value, self.separator)
        elif isinstance(value, str) and self.type is not str:
            value = _FROM_TEXT[self.type](value.strip())
        elif self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif self.type is bool and value in (0, 1) and not isinstance(value, float):
            value = bool(value)
        if not isinstance(value, self.type) or (self.type is not bool and isinstance(value, bool)):
            raise TypeError
        if self.type is float and not math.isfinite(value):
            raise ValueError
        if self.choices:
            by_case = {str(choice).lower(): choice for choice in self.choices}
            if str(value).lower() not in by_case:
                raise ValueError
            value = by_case[str(value).lower()]
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise ValueError
        return value


def _number(value):
    return str(value) if isinstance(value, int) else f"{value:g}"


_TYPE_WORDS = {int: "a whole number", float: "a number", bool: "true or false (1/0, yes/no, on/off)",
               str: "text", dict: "a JSON object"}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _bool_from_text(text):
    lowered = text.lower()
    if lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    raise ValueError(text)


def _dict_from_text(text):
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(text)
    return value


_FROM_TEXT = {int: int, float: float, bool: _bool_from_text, dict: _dict_from_text}


def _as_list(value, separator):
    if isinstance(value, str) and value.strip().startswith("["):
        value = json.loads(value)
    if isinstance(value, str):
        value = value.split(separator)
    elif isinstance(value, os.PathLike):
        value = [value]
    elif not isinstance(value, (list, tuple, set, frozenset)):
        raise TypeError
    return [str(item).strip() for item in value if str(item).strip()]


# The one list of geologin's settings (Flask's own keys where geologin sets their defaults). The README's
# configuration table, instance/config.example.py and docs/deploy.md are checked against it
# (tests/test_settings_table.py).
SETTINGS = (
    ConfigSetting("ENV", str, "production",
                  '"development" generates SECRET_KEY and ENCRYPTION_KEY into the instance folder and allows http://'),
    ConfigSetting("SECRET_KEY", str, None, "signs session cookies; required outside development: 32+ random characters",
                  optional=True, secret=True),
    ConfigSetting("SQLALCHEMY_DATABASE_URI", str, None,
                  "the database (or the environment's DATABASE_URL); none: SQLite "
                  "in the instance folder", optional=True, secret=True),
    ConfigSetting("SQLALCHEMY_ENGINE_OPTIONS", dict, {"pool_pre_ping": True},
                  "SQLAlchemy engine options (SQLite gets none: a file never drops its connection)"),
    # SQLite only: write-ahead log (readers never wait for a writer, one fsync per commit instead of the
    # rollback journal's several) and its durability level (FULL: a commit survives a power cut).
    ConfigSetting("SQLITE_JOURNAL_MODE", str, "WAL", "SQLite's journal (empty: SQLite's default)",
                  choices=("DELETE", "TRUNCATE", "PERSIST", "WAL", ""), optional=True),
    ConfigSetting("SQLITE_SYNCHRONOUS", str, "FULL", "SQLite's durability (empty: SQLite's default)",
                  choices=("OFF", "NORMAL", "FULL", "EXTRA", ""), optional=True),
    ConfigSetting("PUBLIC_URL", str, None,
                  "how browsers reach geologin; redirect URIs are built from it", optional=True),
    ConfigSetting("ALLOW_INSECURE_HTTP", bool, False, "allow http:// identity servers (development and tests only)"),
    ConfigSetting("ENCRYPTION_KEY", list, None, "Fernet key(s) encrypting provider secrets, newest first",
                  optional=True, secret=True),
    ConfigSetting("PLUGINS_FOLDER", list, None, "folders to scan for plugins; none: ./plugins", optional=True,
                  separator=os.pathsep),
    ConfigSetting("DISABLED_PLUGINS", list, [], "plugin names to skip"),
    ConfigSetting("LOGIN_TRANSACTION_MINUTES", int, 10, "how long an external login may take", min=1),
    ConfigSetting("HTTP_CONNECT_TIMEOUT", float, 5, "seconds to connect to an identity server", min=0.001),
    ConfigSetting("HTTP_READ_TIMEOUT", float, 10, "seconds to wait for each part of an answer", min=0.001),
    # However the server drips its answer.
    ConfigSetting("HTTP_TOTAL_TIMEOUT", float, 15, "seconds one call to an identity server may take in all", min=0.001),
    ConfigSetting("HTTP_MAX_RESPONSE_BYTES", int, 1024 * 1024,
                  "larger answers from an identity server are refused", min=1),
    # None -> one less than WORKER_THREADS, so a stalled server always leaves a thread for everyone else
    # (a larger value is lowered to that too).
    ConfigSetting("HTTP_MAX_CONCURRENT_PER_SERVER", int, None, "calls in flight to one identity server per process; "
                  "none: one less than WORKER_THREADS", min=0, optional=True),
    ConfigSetting("WORKER_THREADS", int, None, "threads per process (gunicorn.conf.py sets it); none: 4", min=1,
                  optional=True),
    ConfigSetting("HTTP_QUEUE_TIMEOUT", float, 1.0,
                  "seconds to wait for a free slot before \"server unavailable\"", min=0),
    ConfigSetting("DEFAULT_LOCALE", str, "en", "language when neither the user, the cookie nor the browser names one"),
    ConfigSetting("TIMEZONE", str, "UTC", "IANA zone the screens show times in; stored times, CSV and JSON stay UTC"),
    ConfigSetting("USERS_PER_PAGE", int, 25, "page size of the admin user lists", min=1),
    ConfigSetting("AUDIT_PER_PAGE", int, 50, "page size of the admin audit screen", min=1),
    # Applied by `flask --app wsgi audit prune --yes`, which deployments run daily (cron or a systemd timer).
    ConfigSetting("AUDIT_RETENTION_DAYS", int, None, "days of audit trail `audit prune` keeps; none: forever", min=1,
                  optional=True),
    ConfigSetting("PASSWORD_MIN_LENGTH", int, 12, "shortest password accepted", min=8),
    ConfigSetting("PASSWORD_MAX_LENGTH", int, 128, "longest password accepted", min=64),
    # OWASP Password Storage Cheat Sheet minimum for argon2id: m=19 MiB, t=2, p=1. Lower bounds: argon2's own.
    ConfigSetting("ARGON2_MEMORY_COST", int, 19 * 1024, "argon2id memory cost in KiB", min=8),
    ConfigSetting("ARGON2_TIME_COST", int, 2, "argon2id iterations", min=1),
    ConfigSetting("ARGON2_PARALLELISM", int, 1, "argon2id lanes", min=1),
    ConfigSetting("SETUP_TOKEN_HOURS", int, 24, "lifetime of a setup link", min=1),
    ConfigSetting("LOG_FORMAT", str, "text",
                  "text, or json: one JSON object per line on stdout", choices=("text", "json")),
    ConfigSetting("LOG_REQUESTS", bool, True, "one log line per request (path only, never the query string)"),
    ConfigSetting("REDIS_URL", str, None, "Redis shared by every worker and node for rate limits and lockouts",
                  optional=True, secret=True),
    # An office behind one NAT address logs many people in: keep it generous; the per-account lockout
    # stops guessing.
    ConfigSetting("LOGIN_RATE_LIMIT", str, "60 per minute", "attempts per client IP over every login entry point "
                  "(Flask-Limiter syntax); empty: no limit", optional=True),
    # Keycloak's defaults: after 30 failures, each further one adds a minute of wait, up to 15 minutes;
    # the failure count is forgotten 12 hours after the first failure.
    ConfigSetting("LOCKOUT_MAX_FAILURES", int, 30, "failures before an account starts to wait", min=1),
    ConfigSetting("LOCKOUT_WAIT_INCREMENT_SECONDS", int, 60, "wait each further failure adds", min=0),
    ConfigSetting("LOCKOUT_MAX_WAIT_SECONDS", int, 900, "longest wait", min=0),
    ConfigSetting("LOCKOUT_FAILURE_RESET_SECONDS", int, 12 * 3600, "failures are forgotten this long after the first",
                  min=1),
    ConfigSetting("HSTS_MAX_AGE", int, 365 * 24 * 3600,
                  "Strict-Transport-Security max-age, sent when PUBLIC_URL is https "
                  "(0 tells browsers to forget it)", min=0),
    ConfigSetting("TRUSTED_PROXIES", int, 0, "reverse proxies in front that set X-Forwarded-*; 0 trusts none", min=0),
    ConfigSetting("ADMIN_FRESH_LOGIN_MINUTES", int, 30, "admin pages need a login (or re-authentication) this recent",
                  min=1),
    ConfigSetting("SESSION_IDLE_MINUTES", int, 60, "a session ends after this much inactivity", min=1),
    ConfigSetting("SESSION_ABSOLUTE_HOURS", int, 12, "a session ends this long after login; so does its cookie", min=1),
    ConfigSetting("SESSION_COOKIE_NAME", str, "geologin_session", "name of the session cookie"),
    ConfigSetting("SESSION_COOKIE_HTTPONLY", bool, True, "scripts cannot read the session cookie"),
    ConfigSetting("SESSION_COOKIE_SAMESITE", str, "Lax", "the session cookie's SameSite",
                  choices=("Lax", "Strict", "None"), optional=True),
    ConfigSetting("SESSION_COOKIE_SECURE", bool, None, "send the session cookie over https only; none: follow "
                  "PUBLIC_URL's scheme", optional=True),
    ConfigSetting("SESSION_COOKIE_DOMAIN", str, None, "a parent domain of PUBLIC_URL's host (e.g. moh.example) "
                  "to share the login with protected sites on its other hosts (forward-auth); none: geologin's host "
                  "only", optional=True),
    ConfigSetting("WTF_CSRF_TIME_LIMIT", int, None, "seconds a form's CSRF token lives; none: as long as the session",
                  min=1, optional=True),
    # The OpenID provider (geologin/apps). A rotated-in key is published this long before it signs, so relying
    # parties that cache the key set have fetched it by then.
    ConfigSetting("OIDC_KEY_GRACE_SECONDS", int, 3600, "seconds a new signing key (`keys rotate`) is published before "
                  "it signs", min=0, max=30 * 24 * 3600),
    ConfigSetting("OIDC_ID_TOKEN_SECONDS", int, 300, "lifetime of the ID tokens geologin issues to applications; a "
                  "replaced signing key stays published this long (plus 5 minutes of clock leeway)", min=1,
                  max=24 * 3600),
    ConfigSetting("OIDC_ACCESS_TOKEN_SECONDS", int, 600, "lifetime of the access tokens geologin issues to "
                  "applications (they also die with the geologin session, unless offline_access)", min=30,
                  max=24 * 3600),
    ConfigSetting("OIDC_REFRESH_TOKEN_SECONDS", int, 30 * 24 * 3600, "lifetime of a refresh token (each refresh "
                  "issues a new one and retires the old)", min=60, max=365 * 24 * 3600),
)
SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}
DEFAULTS = {setting.name: setting.default for setting in SETTINGS}
# Read from the environment only, never from app.config: the instance folder itself and gunicorn's own.
ENVIRONMENT_ONLY = {"INSTANCE", "BIND", "WORKERS", "THREADS", "WORKER_TIMEOUT", "GUNICORN_LOGLEVEL"}
# The conventional environment name of a setting, honoured with or without the GEOLOGIN_ prefix.
ENVIRONMENT_ALIASES = {"DATABASE_URL": "SQLALCHEMY_DATABASE_URI"}


def _parse_env_value(raw):
    """A ``GEOLOGIN_*`` variable that is not in SETTINGS (a plugin's, say): accept JSON so numbers, booleans
    and lists can be set too."""
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, (int, float, list, dict)) else raw


def environment_overrides(environ=os.environ):
    """Map ``GEOLOGIN_FOO=bar`` to ``FOO``, converted to the setting's type; ``DATABASE_URL`` is honoured as
    the conventional name."""
    overrides = {}
    if environ.get("DATABASE_URL"):
        overrides["SQLALCHEMY_DATABASE_URI"] = SETTINGS_BY_NAME["SQLALCHEMY_DATABASE_URI"].convert(
            environ["DATABASE_URL"], "DATABASE_URL")
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and name != ENV_PREFIX + "INSTANCE":
            key = name[len(ENV_PREFIX):]
            setting = SETTINGS_BY_NAME.get(ENVIRONMENT_ALIASES.get(key, key))
            overrides[key] = setting.convert(raw, name) if setting else _parse_env_value(raw)
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
    _convert(app.config)
    _normalise(app)
    _ensure_secret_key(app)
    _match_cookie_to_session(app.config)


def _convert(config):
    """Every setting as its type, within its bounds, whichever layer it came from (converting is idempotent,
    so values the environment layer already converted pass unchanged)."""
    for setting in SETTINGS:
        config[setting.name] = setting.convert(config.get(setting.name))


def _match_cookie_to_session(config):
    """The session cookie expires when the server ends the session (SESSION_ABSOLUTE_HOURS), not after
    Flask's default 31 days, so no browser keeps a dead session's cookie around."""
    config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=config["SESSION_ABSOLUTE_HOURS"])


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
    _check_cookie_domain(config, public_url)
    if config.get("SESSION_COOKIE_SECURE") is None:
        config["SESSION_COOKIE_SECURE"] = bool(public_url and public_url.startswith("https://"))
    config["TIMEZONE"] = _checked_timezone(config.get("TIMEZONE"))


def _check_cookie_domain(config, public_url):
    """A cookie domain that does not cover geologin's own host would make browsers drop the session cookie:
    nobody could log in. Say so at start-up."""
    domain = (config.get("SESSION_COOKIE_DOMAIN") or "").strip().lstrip(".").lower()
    if not domain:
        config["SESSION_COOKIE_DOMAIN"] = None
        return
    if not public_url:
        raise ConfigError("SESSION_COOKIE_DOMAIN needs PUBLIC_URL: the domain must cover geologin's own host.")
    host = (urlsplit(public_url).hostname or "").lower()
    if host != domain and not host.endswith("." + domain):
        raise ConfigError(f"SESSION_COOKIE_DOMAIN {domain!r} does not cover PUBLIC_URL's host {host!r}: browsers "
                          "would refuse the session cookie. Use a parent domain of it (for PUBLIC_URL "
                          "https://login.moh.example, SESSION_COOKIE_DOMAIN=moh.example).")
    if "." not in domain:
        raise ConfigError(f"SESSION_COOKIE_DOMAIN {domain!r} is a top-level domain: browsers refuse cookies for it.")
    config["SESSION_COOKIE_DOMAIN"] = domain


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


def release_start_up_memory():
    """Drops zxcvbn once the serving process has checked its key, and gives the freed heap back to the system:
    its word lists are 12 MiB per worker that only start-up and password changes use (passwords.py imports it
    again on first use). Called by wsgi.py, not create_app: tests build many apps and would re-import it each
    time."""
    for name in [name for name in sys.modules if name == "zxcvbn" or name.startswith("zxcvbn.")]:
        del sys.modules[name]
    gc.collect()
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


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
