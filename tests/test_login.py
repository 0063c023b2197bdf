"""Local password login, logout and the session rules around them (checklist items 26, 27, 30, 38, 40, 41)."""
import pytest
from sqlalchemy import func, select

from tests.conftest import STRONG_PASSWORD, csrf_from, post_form
from geologin.extensions import db
from geologin.models import AuditEvent, User


def test_login_page_has_labelled_fields(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<label for="username">Username</label>' in html
    assert '<label for="password">Password</label>' in html
    assert ">Log in</button>" in html


def test_login_then_home_says_who(client, auth, make_user):
    make_user("amina", display_name="Amina Diallo")
    response = auth.login("amina", follow_redirects=True)
    assert "Logged in as amina" in response.get_data(as_text=True)


def test_home_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("next_target", ["/account/password", "/admin/users?page=2"])
def test_next_honoured_for_local_paths(client, auth, make_user, next_target):
    make_user("amina")
    response = auth.login("amina", next=next_target)
    assert response.status_code == 302
    assert response.headers["Location"] == next_target


@pytest.mark.parametrize("evil", [
    "//evil.example", "/\\evil.example", "https:evil.example", "\\\\evil.example", "https://evil.example/",
    "/%2F%2Fevil.example", "/%5Cevil.example", "%2F%2Fevil.example", "javascript:alert(1)", "/%252F%252Fevil",
    "/\tevil", " //evil.example",
])
def test_sec_07_no_open_redirect_after_login(client, auth, make_user, evil):
    make_user("amina")
    response = auth.login("amina", next=evil)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_sec_26_login_issues_fresh_session_and_drops_pre_login_data(client, auth, make_user):
    make_user("amina")
    page = client.get("/login")
    old_token = csrf_from(page)
    with client.session_transaction() as session:
        session["planted"] = "by attacker"
        pre_login = dict(session)
    response = auth.login("amina")
    assert response.status_code == 302
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session.get("sid") and session.get("sid") != pre_login.get("sid")
    # The CSRF token from before login no longer works.
    response = client.post("/logout", data={"csrf_token": old_token})
    assert response.status_code == 400
    assert "Logged in as amina" in client.get("/").get_data(as_text=True)


def test_sec_27_logout_is_post_and_old_cookie_is_dead(app, client, auth, make_user):
    make_user("amina")
    auth.login("amina")
    stolen = client.get_cookie("geologin_session").value
    assert client.get("/logout").status_code == 405
    response = auth.logout()
    assert response.status_code == 302
    assert client.get("/").status_code == 302
    replay = app.test_client()
    replay.set_cookie("geologin_session", stolen)
    assert replay.get("/").status_code == 302  # anonymous again, despite a validly signed cookie


def test_sec_32_logout_without_csrf_token_is_refused(client, auth, make_user):
    make_user("amina")
    auth.login("amina")
    assert client.post("/logout").status_code == 400
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 400
    assert client.get("/").status_code == 200


def test_sec_32_login_without_csrf_token_is_refused(client, make_user):
    make_user("amina")
    response = client.post("/login", data={"username": "amina", "password": STRONG_PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_sec_30_session_cookie_flags(client, auth, make_user):
    make_user("amina")
    response = auth.login("amina")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("geologin_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # served over http in this test


def test_sec_30_cookie_secure_when_public_url_is_https(app_factory, make_user):
    app = app_factory(PUBLIC_URL="https://login.example.org")
    make_user("amina")
    client = app.test_client()
    page = client.get("/login", base_url="https://login.example.org")
    response = client.post("/login", base_url="https://login.example.org",
                           data={"csrf_token": csrf_from(page), "username": "amina", "password": STRONG_PASSWORD})
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("geologin_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def _failure_page(auth, username, password):
    response = auth.login(username, password)
    return response.status_code, response.get_data(as_text=True)


def test_sec_38_no_user_enumeration_same_message_and_status(client, auth, make_user):
    make_user("amina")
    unknown = _failure_page(auth, "nobody", "Wrong-password-123")
    wrong = _failure_page(auth, "amina", "Wrong-password-123")
    assert unknown[0] == wrong[0] == 400
    assert "Invalid username or password." in unknown[1]
    assert "Invalid username or password." in wrong[1]
    # Strip the per-request CSRF token; the rest of the page must be identical.
    strip = lambda html: html.replace(csrf_from(html), "")  # noqa: E731
    assert strip(unknown[1]).replace("nobody", "X") == strip(wrong[1]).replace("amina", "X")


def test_sec_38_no_user_enumeration_same_hashing_work(client, auth, make_user, monkeypatch):
    """Timing parity without a timed assertion: every failure path does exactly one argon2 verification
    at the configured cost, so an unknown user costs what a wrong password costs."""
    from argon2 import PasswordHasher

    make_user("amina")
    make_user("nopass", password=None)
    make_user("blocked", password_login_allowed=False)
    calls = []
    real_verify = PasswordHasher.verify

    def counting_verify(self, hash, password):
        calls.append(self.memory_cost)
        return real_verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    for username in ["nobody", "amina", "nopass", "blocked"]:
        calls.clear()
        auth.login(username, "Wrong-password-123")
        assert calls == [19 * 1024], username


def test_sec_40_no_default_admin_account(app, client, auth):
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0
    for username, password in [("admin", "admin"), ("admin", "district"), ("root", "root"),
                               ("administrator", "password"), ("geologin", "geologin")]:
        assert auth.login(username, password).status_code == 400
    assert client.get("/").status_code == 302


def test_sec_41_password_login_disabled_refuses_any_password(client, auth, make_user):
    make_user("amina", password_login_allowed=False)
    response = auth.login("amina")
    assert response.status_code == 400
    assert "Invalid username or password." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_inactive_user_cannot_log_in(client, auth, make_user, app):
    make_user("amina")
    with app.app_context():
        user = User.by_username("amina")
        user.active = False
        db.session.commit()
    assert auth.login("amina").status_code == 400
    assert client.get("/").status_code == 302


def test_user_without_password_cannot_log_in_with_password(client, auth, make_user):
    make_user("amina", password=None)
    assert auth.login("amina", "").status_code == 400
    assert auth.login("amina", STRONG_PASSWORD).status_code == 400


def test_username_is_exact_case_sensitive(client, auth, make_user):
    make_user("amina")
    assert auth.login("Amina").status_code == 400
    assert auth.login("amina ").status_code == 302  # surrounding spaces are trimmed from the form


def test_empty_fields_show_errors_next_to_fields(client):
    page = client.get("/login")
    response = client.post("/login", data={"csrf_token": csrf_from(page), "username": "", "password": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="username-error"' in html and "Enter your username." in html
    assert 'id="password-error"' in html and "Enter your password." in html


def test_login_success_and_failure_are_audited_with_reason(app, client, auth, make_user):
    make_user("amina")
    auth.login("amina", "Wrong-password-123")
    auth.login("ghost", "Wrong-password-123")
    auth.login("amina")
    auth.logout()
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.event_type.in_(["login", "logout"]))
                                    .order_by(AuditEvent.id)).all()
        summary = [(e.event_type, e.outcome, e.target, e.reason_code) for e in events]
        assert summary == [
            ("login", "failure", "amina", "bad_password"),
            ("login", "failure", "ghost", "unknown_user"),
            ("login", "success", "amina", None),
            ("logout", "success", "amina", None),
        ]
        assert all(e.client_ip == "127.0.0.1" for e in events)
        assert all(e.created_at.tzinfo is not None for e in events)


def test_change_own_password_needs_current_one(client, auth, make_user):
    make_user("amina")
    auth.login("amina")
    response = post_form(client, "/account/password", {
        "current": "Not-my-password-1", "password": "A-new-long-password-7", "confirm": "A-new-long-password-7"})
    assert response.status_code == 400
    assert "This is not your current password." in response.get_data(as_text=True)
    response = post_form(client, "/account/password", {
        "current": STRONG_PASSWORD, "password": "A-new-long-password-7", "confirm": "A-new-long-password-7"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200  # this browser stays logged in
    auth.logout()
    assert auth.login("amina").status_code == 400
    assert auth.login("amina", "A-new-long-password-7").status_code == 302


def test_changing_password_ends_other_sessions(app, client, auth, make_user):
    make_user("amina")
    other = app.test_client()
    from tests.conftest import AuthActions
    AuthActions(other).login("amina")
    auth.login("amina")
    post_form(client, "/account/password", {
        "current": STRONG_PASSWORD, "password": "A-new-long-password-7", "confirm": "A-new-long-password-7"})
    assert other.get("/").status_code == 302
    assert client.get("/").status_code == 200
