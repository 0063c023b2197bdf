"""Health endpoints and the stdout log: a line per request and per audit event, text or JSON."""
import json

from tests.conftest import AuthActions, make_config
from geologin import create_app


def test_healthz_and_readyz_on_a_migrated_database(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ready"}


def test_readyz_is_503_when_migrations_are_missing(tmp_path):
    app = create_app(make_config(f"sqlite:///{tmp_path}/empty.sqlite3", tmp_path / "instance"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["reason"] == "database schema is not at the newest migration"


def test_readyz_stays_ready_when_a_newer_release_migrated_the_database(app, client):
    """Rolling upgrade: `flask db upgrade` ran from a node with the new release; old nodes keep serving."""
    from sqlalchemy import text

    from geologin.extensions import db
    with app.app_context():
        current = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        db.session.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
        db.session.commit()
    try:
        assert client.get("/readyz").get_json() == {"status": "ready",
                                                    "note": "database schema is newer than this release"}
    finally:
        with app.app_context():
            db.session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": current})
            db.session.commit()


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path):
    app = create_app(make_config(f"sqlite:///{tmp_path}/no/such/dir/db.sqlite3", tmp_path / "instance"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and response.get_json()["reason"] == "database unreachable"
    assert app.test_client().get("/healthz").status_code == 200


def _json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_json_logs_one_line_per_request_and_per_audit_event(app_factory, make_user, capsys):
    app = app_factory(LOG_FORMAT="json")
    make_user("amina")
    capsys.readouterr()
    client = app.test_client()
    AuthActions(client).login("amina", "Wrong-password-123")
    client.get("/auth/moh/callback?code=SECRET-CODE-123&state=STATE-456")
    lines = _json_lines(capsys.readouterr().out)
    requests = [line for line in lines if line["logger"] == "geologin.requests"]
    assert [(r["method"], r["path"], r["status"]) for r in requests] == [
        ("GET", "/login", 200), ("POST", "/login", 400), ("GET", "/auth/moh/callback", 302)]
    audits = [line["audit"] for line in lines if line["logger"] == "geologin.audit"]
    assert [(a["event"], a["outcome"], a["target"], a["reason"]) for a in audits][:2] == [
        ("login", "failure", "amina", "bad_password"), ("login", "failure", None, "state_invalid")]
    output = json.dumps(lines)
    assert "SECRET-CODE-123" not in output and "STATE-456" not in output  # item 54: no codes in logs


def test_text_logs_by_default(app, client, capsys):
    capsys.readouterr()
    client.get("/healthz")
    assert "geologin.requests: GET /healthz 200" in capsys.readouterr().out


def test_reg_readyz_is_503_when_the_login_page_cannot_be_rendered(migrated_database, tmp_path, monkeypatch):
    """A package built without its templates served TemplateNotFound on /login while /readyz said ready."""
    import geologin
    empty = tmp_path / "bundled"
    for name in ("templates", "static", "plugins"):
        (empty / name).mkdir(parents=True)
    monkeypatch.setattr(geologin, "BUNDLED", empty)
    app = create_app(make_config(migrated_database, tmp_path / "instance"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["reason"] == "template base.html cannot be loaded"


def test_reg_readyz_is_503_when_an_enabled_providers_plugin_is_missing(app, client):
    from geologin.extensions import db
    from geologin.models import IdentityProvider
    with app.app_context():
        db.session.add(IdentityProvider(slug="gone", type="vanished", label="Gone", enabled=True))
        db.session.commit()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["reason"] == "the plugin 'vanished' of an enabled provider is not installed"
    with app.app_context():
        db.session.execute(db.update(IdentityProvider).values(enabled=False))
        db.session.commit()
    assert client.get("/readyz").get_json() == {"status": "ready"}
