# geologin instance configuration. Copy to instance/config.py and uncomment what you need.
# Every setting can also come from the environment as GEOLOGIN_<NAME> (environment wins over this file).
#
# ENV = "production"                      # "development" generates SECRET_KEY and allows http:// providers
# SECRET_KEY = "..."                      # required outside development: 32+ random characters
# SQLALCHEMY_DATABASE_URI = "postgresql://geologin:...@db.example.org/geologin"   # or env DATABASE_URL
# PUBLIC_URL = "https://login.example.org"   # how browsers reach geologin; redirect URIs are built from it
# PASSWORD_MIN_LENGTH = 12                # at least 8
# SESSION_IDLE_MINUTES = 60
# SESSION_ABSOLUTE_HOURS = 12
# USERS_PER_PAGE = 25
# SETUP_TOKEN_HOURS = 24
