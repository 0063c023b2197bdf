"""The Flask extensions, created unbound here and bound to an app in ``create_app`` (init_app style)."""
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# expire_on_commit=False: a request's objects keep the values it read or wrote after it commits, instead of
# reading each row again at its next use (a login re-read its user three times). Each request has its own
# session, so nothing outlives the request.
db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION),
                session_options={"expire_on_commit": False})
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
# No default limits: geologin limits only its login entry points (see throttle.py).
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def configure_engines(app):
    """Per-connection settings of SQLite databases: foreign keys always enforced (SQLite leaves them off,
    so deletes would cascade nothing), and SQLITE_JOURNAL_MODE, SQLITE_SYNCHRONOUS for database files."""
    journal = str(app.config.get("SQLITE_JOURNAL_MODE") or "").upper()
    synchronous = str(app.config.get("SQLITE_SYNCHRONOUS") or "").upper()
    # Both were checked against fixed lists in config._normalise (they go into PRAGMA statements).

    def pragmas(in_memory):
        def on_connect(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("PRAGMA foreign_keys=ON")
                if journal and not in_memory:
                    cursor.execute(f"PRAGMA journal_mode={journal}")
                if synchronous and not in_memory:
                    cursor.execute(f"PRAGMA synchronous={synchronous}")
            finally:
                cursor.close()
        return on_connect

    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", pragmas(engine.url.database in (None, "", ":memory:")))
