# geologin instance configuration. Copy to instance/config.py and uncomment what you need.
# Every setting can also come from the environment as GEOLOGIN_<NAME> (environment wins over this file).
# This lists every setting with its default (a setting whose default is None shows an example or None);
# tests/test_settings_table.py checks it against SETTINGS in geologin/config.py.
#
# "development" generates SECRET_KEY and ENCRYPTION_KEY into the instance folder and allows http://
# ENV = "production"
# SECRET_KEY = "..."                        # required outside development: 32+ random characters
# or env DATABASE_URL; none: SQLite in the instance folder
# SQLALCHEMY_DATABASE_URI = "postgresql://geologin:...@db.example.org/geologin"
# SQLAlchemy engine options (SQLite gets none: a file never drops its connection)
# SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
# SQLITE_JOURNAL_MODE = "WAL"               # SQLite's journal (empty: SQLite's default)
# SQLITE_SYNCHRONOUS = "FULL"               # SQLite's durability (empty: SQLite's default)
# PUBLIC_URL = "https://login.example.org"  # how browsers reach geologin; redirect URIs are built from it
# ALLOW_INSECURE_HTTP = False               # allow http:// identity servers (development and tests only)
# Fernet key(s), comma-separated, newest first; required outside development
# ENCRYPTION_KEY = "..."
# PLUGINS_FOLDER = None                     # folders to scan for plugins; none: ./plugins
# DISABLED_PLUGINS = []                     # plugin names to skip
# LOGIN_TRANSACTION_MINUTES = 10            # how long an external login may take
# HTTP_CONNECT_TIMEOUT = 5                  # seconds to connect to an identity server
# HTTP_READ_TIMEOUT = 10                    # seconds to wait for each part of an answer
# HTTP_TOTAL_TIMEOUT = 15                   # seconds one call to an identity server may take in all
# HTTP_MAX_RESPONSE_BYTES = 1048576         # larger answers from an identity server are refused
# calls in flight to one identity server per process; none: one less than WORKER_THREADS
# HTTP_MAX_CONCURRENT_PER_SERVER = None
# WORKER_THREADS = None                     # threads per process (gunicorn.conf.py sets it); none: 4
# HTTP_QUEUE_TIMEOUT = 1.0                  # seconds to wait for a free slot before "server unavailable"
# language when neither the user, the cookie nor the browser names one
# DEFAULT_LOCALE = "en"
# IANA zone the screens show times in; stored times, CSV and JSON stay UTC
# TIMEZONE = "UTC"
# USERS_PER_PAGE = 25                       # page size of the admin user lists
# AUDIT_PER_PAGE = 50                       # page size of the admin audit screen
# AUDIT_RETENTION_DAYS = None               # days of audit trail `audit prune` keeps; none: forever
# PASSWORD_MIN_LENGTH = 12                  # shortest password accepted
# PASSWORD_MAX_LENGTH = 128                 # longest password accepted
# ARGON2_MEMORY_COST = 19456                # argon2id memory cost in KiB
# ARGON2_TIME_COST = 2                      # argon2id iterations
# ARGON2_PARALLELISM = 1                    # argon2id lanes
# SETUP_TOKEN_HOURS = 24                    # lifetime of a setup link
# LOG_FORMAT = "text"                       # text, or json: one JSON object per line on stdout
# LOG_REQUESTS = True                       # one log line per request (path only, never the query string)
# REDIS_URL = "redis://127.0.0.1:6379/0"    # rate limits and lockouts shared by every worker and node
# attempts per client IP over every login entry point (Flask-Limiter syntax); empty: no limit
# LOGIN_RATE_LIMIT = "60 per minute"
# LOCKOUT_MAX_FAILURES = 30                 # failures before an account starts to wait
# LOCKOUT_WAIT_INCREMENT_SECONDS = 60       # wait each further failure adds
# LOCKOUT_MAX_WAIT_SECONDS = 900            # longest wait
# LOCKOUT_FAILURE_RESET_SECONDS = 43200     # failures are forgotten this long after the first
# Strict-Transport-Security max-age, sent when PUBLIC_URL is https (0 tells browsers to forget it)
# HSTS_MAX_AGE = 31536000
# TRUSTED_PROXIES = 0                       # reverse proxies in front that set X-Forwarded-*; 0 trusts none
# ADMIN_FRESH_LOGIN_MINUTES = 30            # admin pages need a login (or re-authentication) this recent
# SESSION_IDLE_MINUTES = 60                 # a session ends after this much inactivity
# SESSION_ABSOLUTE_HOURS = 12               # a session ends this long after login; so does its cookie
# SESSION_COOKIE_NAME = "geologin_session"  # name of the session cookie
# SESSION_COOKIE_HTTPONLY = True            # scripts cannot read the session cookie
# SESSION_COOKIE_SAMESITE = "Lax"           # the session cookie's SameSite
# send the session cookie over https only; none: follow PUBLIC_URL's scheme
# SESSION_COOKIE_SECURE = None
# a parent domain of PUBLIC_URL's host, to share the login with protected sites (forward-auth)
# SESSION_COOKIE_DOMAIN = None
# WTF_CSRF_TIME_LIMIT = None                # seconds a form's CSRF token lives; none: as long as the session
# seconds a new signing key (`keys rotate`) is published before it signs
# OIDC_KEY_GRACE_SECONDS = 3600
# lifetime of ID tokens issued to applications; a replaced signing key stays published this long (+5 min)
# OIDC_ID_TOKEN_SECONDS = 300
# lifetime of access tokens issued to applications (they also die with the geologin session)
# OIDC_ACCESS_TOKEN_SECONDS = 600
# lifetime of a refresh token; each refresh issues a new one
# OIDC_REFRESH_TOKEN_SECONDS = 2592000
