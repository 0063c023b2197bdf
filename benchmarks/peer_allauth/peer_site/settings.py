"""Settings of the peer site, as a team would write them to do geologin's job with django-allauth: password
logins (argon2id at geologin's parameters), database sessions on SQLite (WAL, synchronous FULL, as geologin),
CSRF, an audit row per login and failure, and "Log in with DHIS2" (2.42+) through allauth's openid_connect
provider. Everything the benchmark varies comes from PEER_* variables."""
import os

SECRET_KEY = os.environ["PEER_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "peer_site",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "peer_site.urls"
WSGI_APPLICATION = "peer_site.wsgi.application"

TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]

# geologin's SQLite pragmas (geologin/extensions.py, config SQLITE_JOURNAL_MODE=WAL, SQLITE_SYNCHRONOUS=FULL);
# Django itself turns foreign keys on. Django's busy timeout is 5 s, as SQLAlchemy's pysqlite default.
DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.environ["PEER_DATABASE"],
    "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
                "transaction_mode": "IMMEDIATE"},
}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# argon2id at geologin's parameters (config ARGON2_*: time 2, 19 MiB, 1 lane), not Django's (100 MiB, 8 lanes).
PASSWORD_HASHERS = ["peer_site.hashers.GeologinArgon2PasswordHasher"]

AUTHENTICATION_BACKENDS = ["allauth.account.auth_backends.AuthenticationBackend"]
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_SESSION_REMEMBER = None
# Kept on, raised out of reach, as the benchmark raises geologin's (plan.RATE_LIMIT, LOCKOUT_MAX_FAILURES):
# both apps still pay for counting.
ACCOUNT_RATE_LIMITS = {"login": "1000000/m/ip", "login_failed": "1000000/m/ip,1000000/5m/key"}

SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_PROVIDERS = {"openid_connect": {
    # The scopes geologin asks DHIS2 2.42.5+ for (plugins/dhis2/provider.py: never "email").
    "SCOPE": ["openid", "username"],
    "OAUTH_PKCE_ENABLED": True,
}}

LANGUAGE_CODE = "en"
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"

LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "root": {"handlers": ["console"], "level": "WARNING"}}
