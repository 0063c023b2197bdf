"""Forward-auth (geologin/apps/forward_auth.py) with the headers nginx, Traefik and Caddy send, through
Flask's test client; tests/test_forward_auth_nginx.py runs the real nginx. The session cookie is geologin's
own (conftest's PUBLIC_URL is http://localhost), so the protected site here is on a sibling host under
SESSION_COOKIE_DOMAIN."""
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from geologin.apps import clients
from geologin.extensions import db
from geologin.models import AuditEvent, ForwardAuthVisit, User
from tests.conftest import STRONG_PASSWORD, csrf_from

@pytest.fixture
def app(app_factory):
    return app_factory(SESSION_COOKIE_DOMAIN="localhost.test", PUBLIC_URL="http://login.localhost.test",
                       SERVER_NAME="login.localhost.test")  # the test client's requests go to geologin's host


@pytest.fixture
def site(app):
    with app.app_context():
        clients.create("Reports", forward_auth=True, hosts=["reports.localhost.test"], actor="test")
    return "http://reports.localhost.test"


def _nginx(client, url, method="GET"):
    return client.get("/forward-auth/nginx", headers={"X-Original-URL": url, "X-Original-Method": method})


def _traefik(client, url, method="GET"):
    parts = urlsplit(url)
    return client.get("/forward-auth", headers={
        "X-Forwarded-Method": method, "X-Forwarded-Proto": parts.scheme, "X-Forwarded-Host": parts.netloc,
        "X-Forwarded-Uri": parts.path + (f"?{parts.query}" if parts.query else ""), "X-Forwarded-For": "10.1.2.3"})


def _login(client, username="alice"):
    page = client.get("/login")
    return client.post("/login", data={"csrf_token": csrf_from(page), "username": username,
                                       "password": STRONG_PASSWORD})


def _events(app):
    with app.app_context():
        return [(e.outcome, e.target, e.reason_code) for e in
                db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "app.forward_auth"))]


def test_sec_71_nginx_not_logged_in_gets_401_with_the_way_to_log_in_then_200_with_headers(app, client, site, make_user):
    make_user("alice", email="alice@example.org", display_name="Alice Banda")
    wanted = site + "/dashboards/42?tab=map"
    response = _nginx(client, wanted)
    assert response.status_code == 401  # nginx's auth_request understands only 2xx, 401 and 403
    location = response.headers["Location"]
    assert location.startswith("http://login.localhost.test/forward-auth/back?")
    assert parse_qs(urlsplit(location).query)["rd"] == [wanted]

    back = client.get(location[len("http://login.localhost.test"):])
    assert back.status_code == 302 and back.headers["Location"].startswith("/login?next=")
    page = client.get(back.headers["Location"])
    landing = client.post("/login", data={"csrf_token": csrf_from(page), "username": "alice",
                                          "password": STRONG_PASSWORD,
                                          "next": parse_qs(urlsplit(back.headers["Location"]).query)["next"][0]})
    onward = client.get(landing.headers["Location"])
    assert onward.status_code == 302 and onward.headers["Location"] == wanted

    allowed = _nginx(client, wanted)
    assert allowed.status_code == 200 and allowed.get_data() == b""
    assert allowed.headers["Remote-User"] == "alice" and allowed.headers["X-Forwarded-User"] == "alice"
    assert allowed.headers["Remote-Name"] == "Alice Banda" and allowed.headers["Remote-Email"] == "alice@example.org"
    assert _nginx(client, wanted).status_code == 200
    assert _events(app) == [("success", "alice", None)]  # the first access only


def test_sec_71_traefik_and_caddy_get_a_redirect_then_headers(client, site, make_user):
    make_user("alice")
    response = _traefik(client, site + "/x?y=1")
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["Location"]).query)["rd"] == [site + "/x?y=1"]
    _login(client)
    answer = _traefik(client, site + "/x?y=1")
    assert answer.status_code == 200 and answer.headers["Remote-User"] == "alice"


def test_sec_71_a_user_not_allowed_gets_403_with_a_page(app, client, make_user):
    make_user("alice")
    make_user("bob")
    with app.app_context():
        site_app, _ = clients.create("Finance", forward_auth=True, hosts=["finance.localhost.test"], all_users=False,
                                     actor="test")
        clients.allow(site_app, [User.by_username("alice")], actor="test")
    _login(client, "bob")
    refused = _traefik(client, "http://finance.localhost.test/")
    assert refused.status_code == 403 and "No access to Finance" in refused.get_data(as_text=True)
    assert "Remote-User" not in refused.headers
    assert _nginx(client, "http://finance.localhost.test/").status_code == 403
    assert _events(app) == [("failure", "bob", "not_allowed")]


@pytest.mark.parametrize("headers", [
    {},  # no headers at all
    {"X-Original-URL": "http://unknown.localhost.test/"},
    {"X-Original-URL": "not a url"},
    {"X-Original-URL": "javascript:alert(1)"},
    {"X-Original-URL": "http://reports.localhost.test@evil.example/"},
    {"X-Original-URL": "http://" + "a" * 5000},
    {"X-Original-URL": "http://reports.localhost.test:99999/"},
])
def test_sec_71_bad_or_unknown_requests_are_refused_never_passed(client, site, make_user, headers):
    make_user("alice")
    _login(client)
    response = client.get("/forward-auth/nginx", headers=headers)
    assert response.status_code in (400, 403) and "Remote-User" not in response.headers


@pytest.mark.parametrize("target", ["http://evil.example/", "//evil.example/", "/relative", "javascript:alert(1)",
                                    "http://reports.localhost.test.evil.example/", ""])
def test_sec_70_the_return_url_must_be_a_registered_site(client, site, make_user, target):
    make_user("alice")
    _login(client)
    response = client.get("/forward-auth/back", query_string={"rd": target})
    assert response.status_code == 400 and "Location" not in response.headers


def test_a_site_outside_the_cookie_domain_does_not_loop(app, client, make_user):
    make_user("alice")
    with app.app_context():
        clients.create("Elsewhere", forward_auth=True, hosts=["stats.other.example"], actor="test")
    _login(client)
    response = client.get("/forward-auth/back", query_string={"rd": "http://stats.other.example/"})
    assert response.status_code == 409 and "SESSION_COOKIE_DOMAIN" in response.get_data(as_text=True)


def test_sign_out_link_ends_the_session_for_every_site(client, site, make_user):
    make_user("alice")
    _login(client)
    assert _nginx(client, site + "/").status_code == 200
    response = client.get("/forward-auth/logout", query_string={"rd": site + "/"})
    assert response.status_code == 302 and response.headers["Location"] == site + "/"
    assert _nginx(client, site + "/").status_code == 401
    elsewhere = client.get("/forward-auth/logout", query_string={"rd": "http://evil.example/"})
    assert elsewhere.status_code == 200 and "Location" not in elsewhere.headers


def test_a_protected_site_is_not_an_openid_client(app, client, site, make_user):
    make_user("alice")
    with app.app_context():
        client_id = clients.find("Reports").client_id
    _login(client)
    response = client.get("/oauth/authorize", query_string={"response_type": "code", "client_id": client_id,
                                                            "redirect_uri": site + "/", "scope": "openid"})
    assert response.status_code == 400 and "Location" not in response.headers


def test_sec_72_the_happy_path_writes_nothing(app, client, site, make_user):
    make_user("alice")
    _login(client)
    assert _nginx(client, site + "/").status_code == 200  # the first access is recorded
    from sqlalchemy import event
    with app.app_context():
        writes = []

        def count(conn, cursor, statement, *args):
            if not statement.lstrip().upper().startswith("SELECT"):
                writes.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            for _ in range(5):
                assert _nginx(client, site + "/page").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    assert writes == []
    with app.app_context():
        assert db.session.scalar(select(ForwardAuthVisit.application_id)) is not None


def test_cookie_domain_must_cover_public_url(app_factory):
    from geologin.config import ConfigError
    with pytest.raises(ConfigError, match="does not cover"):
        app_factory(SESSION_COOKIE_DOMAIN="other.example", PUBLIC_URL="http://login.moh.example")


def test_cli_adds_lists_and_shows_a_protected_site(runner, app):
    result = runner.invoke(args=["apps", "add", "Reports", "--forward-auth", "--host", "Reports.Localhost.Test",
                                 "--host", "reports2.localhost.test", "--allowed-users-only", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"name": "Reports", "hosts": ["reports.localhost.test",
                                                                      "reports2.localhost.test"]}
    shown = json.loads(runner.invoke(args=["apps", "show", "Reports", "--json"]).output)
    assert shown["kind"] == "forward_auth" and shown["all_users"] is False
    taken = runner.invoke(args=["apps", "add", "Other", "--forward-auth", "--host", "reports.localhost.test"])
    assert taken.exit_code == 1 and "already protected" in taken.output
    bad = runner.invoke(args=["apps", "add", "Bad", "--forward-auth", "--host", "https://x.example/path"])
    assert bad.exit_code == 1 and "not a host name" in bad.output
    mixed = runner.invoke(args=["apps", "add", "Mixed", "--forward-auth", "--host", "m.example",
                                "--redirect-uri", "https://m.example/cb"])
    assert mixed.exit_code == 1
    edited = runner.invoke(args=["apps", "edit", "Reports", "--host", "reports3.localhost.test"])
    assert edited.exit_code == 0
    assert json.loads(runner.invoke(args=["apps", "show", "Reports", "--json"]).output)["hosts"] == [
        "reports3.localhost.test"]
    assert "forward-auth" in runner.invoke(args=["apps", "list"]).output
    neither = runner.invoke(args=["apps", "add", "Neither"])  # no redirect URI, no --forward-auth
    assert neither.exit_code == 1 and "at least one redirect URI" in neither.output


def test_the_verification_answer_sends_no_session_cookie(client, site, make_user):
    """A proxy never passes the verification answer's Set-Cookie on, so re-signing the session there is waste."""
    make_user("alice")
    _login(client)
    for verify in (_nginx, _traefik):
        # A changed session is still sent: the first Traefik answer marks it not fresh (another client address).
        verify(client, site + "/page")
        response = verify(client, site + "/page")
        assert response.status_code == 200 and response.headers["Remote-User"] == "alice"
        assert "Set-Cookie" not in response.headers
    assert "Set-Cookie" in client.get("/").headers  # geologin's own pages still refresh the session cookie


def test_sec_72_the_happy_path_reads_the_session_row_once(app, client, site, make_user):
    """The user loader and the access check both need the session row: one query, not one each."""
    make_user("alice")
    _login(client)
    assert _nginx(client, site + "/").status_code == 200
    from sqlalchemy import event
    with app.app_context():
        reads = []

        def count(conn, cursor, statement, *args):
            if "FROM user_sessions" in statement:
                reads.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert _nginx(client, site + "/page").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    assert len(reads) == 1
