"""Fixtures in the style of Flask's tutorial: ``app``, ``client`` and ``auth``, plus user factories.

Tests run against SQLite by default; ``GEOLOGIN_TEST_DB=postgresql`` with ``GEOLOGIN_TEST_DATABASE_URL``
runs the same tests on PostgreSQL. The schema is built once per run with the real migrations.
"""
import contextlib
import os
import re
import uuid

import flask_migrate
import pytest
from sqlalchemy import text

from geologin import create_app
from geologin.extensions import db

TEST_DB = os.environ.get("GEOLOGIN_TEST_DB", "sqlite")
TEST_SECRET_KEY = "tEst-kEy-not-secret_Vq3sXw9LpZr2Hn7Ty4Bd8Gk6Mc1Jf5Ue0"
STRONG_PASSWORD = "Correct-horse-battery-9"
TEST_ENCRYPTION_KEY = "7TSaOKjj0yW2GIQqPJmHlmz9Xw2kqzn_p6s0sNqD5sA="


def pytest_report_header(config):
    return f"geologin test database: {TEST_DB}"


def pytest_sessionstart(session):
    """Compile any .po newer than its .mo (make install does it too), so a catalog edited since the last
    install is what the tests, and the servers the browser tests start, read."""
    from geologin.i18n.catalogs import compile_all
    compile_all()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if TEST_DB == "postgresql":
        url = os.environ.get("GEOLOGIN_TEST_DATABASE_URL")
        if not url:
            pytest.exit("GEOLOGIN_TEST_DB=postgresql needs GEOLOGIN_TEST_DATABASE_URL", returncode=2)
        return url
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "geologin-test.sqlite3")


@contextlib.contextmanager
def extra_postgres_database():
    """A new, empty database on the test PostgreSQL server, dropped afterwards (for real processes)."""
    import psycopg

    base = os.environ["GEOLOGIN_TEST_DATABASE_URL"]
    name = f"geologin_extra_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(base, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def make_config(database_url, instance_path, **extra):
    config = {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET_KEY,
        "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "INSTANCE_PATH": str(instance_path),
        "PUBLIC_URL": "http://localhost",
        "SERVER_NAME": None,
    }
    config.update(extra)
    return config


@pytest.fixture(scope="session")
def migrated_database(database_url, tmp_path_factory):
    """Build the schema once, with the real Alembic migrations, from an empty database."""
    app = create_app(make_config(database_url, tmp_path_factory.mktemp("instance")))
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        flask_migrate.upgrade()
        db.engine.dispose()
    return database_url


def wipe_database(app):
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())
        db.engine.dispose()


@pytest.fixture
def app_factory(migrated_database, tmp_path):
    """Build extra apps on the same database (another SECRET_KEY, another node...)."""
    made = []

    def build(**extra):
        made.append(create_app(make_config(migrated_database, tmp_path / "instance", **extra)))
        return made[-1]

    yield build
    if made:
        wipe_database(made[0])
        for other in made[1:]:
            with other.app_context():
                db.engine.dispose()


@pytest.fixture
def app(app_factory):
    return app_factory()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(response_or_html):
    html = response_or_html if isinstance(response_or_html, str) else response_or_html.get_data(as_text=True)
    match = _CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def post_form(client, url, data, page=None, **kwargs):
    """POST like a browser: take the CSRF token from the page that holds the form (``page`` or ``url``)."""
    token = csrf_from(client.get(page or url))
    return client.post(url, data={"csrf_token": token, **data}, **kwargs)


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, username, password=STRONG_PASSWORD, next=None, **kwargs):
        url = "/login" + (f"?next={next}" if next else "")
        page = self._client.get(url)
        data = {"csrf_token": csrf_from(page), "username": username, "password": password}
        if next:
            data["next"] = next
        return self._client.post("/login", data=data, **kwargs)

    def logout(self):
        return post_form(self._client, "/logout", {}, page="/")


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def make_user(app):
    """Create a user through the same service the admin screens use."""
    from geologin.accounts import users

    def make(username, password=STRONG_PASSWORD, **kwargs):
        with app.app_context():
            user = users.create_user(username, password=password, actor="test", **kwargs)
            return user.id

    return make


@pytest.fixture
def admin(make_user):
    make_user("root", is_admin=True)
    return "root"


@pytest.fixture
def admin_client(client, auth, admin):
    response = auth.login(admin)
    assert response.status_code == 302
    return client
