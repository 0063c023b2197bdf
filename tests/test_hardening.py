"""Brute-force protection, session timeouts, fresh logins for administration, proxies and headers
(checklist items 29, 33, 34, 39, 41)."""
import os
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from geologin import idp as instances
from geologin.extensions import db, limiter
from geologin.models import AuditEvent, User, UserSession, utcnow
from tests.conftest import STRONG_PASSWORD, AuthActions, csrf_from

WRONG = "Wrong-password-123"


@pytest.fixture
def clock(monkeypatch):
    """Move time forward for the lockout storage without sleeping."""
    import limits.storage.memory as memory
    import geologin.login.throttle as throttle

    offset = [0.0]
    real = time.time

    class Shifted:
        @staticmethod
        def time():
            return real() + offset[0]

    monkeypatch.setattr(memory, "time", Shifted)
    monkeypatch.setattr(throttle, "time", Shifted)
    return offset


def _events(app, event_type):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == event_type)
                                  .order_by(AuditEvent.id)).all()


def test_sec_39_lockout_defaults_are_keycloaks(app):
    config = app.config
    assert (config["LOCKOUT_MAX_FAILURES"], config["LOCKOUT_WAIT_INCREMENT_SECONDS"],
            config["LOCKOUT_MAX_WAIT_SECONDS"], config["LOCKOUT_FAILURE_RESET_SECONDS"]) == (30, 60, 900, 43200)


@pytest.mark.parametrize("username", ["amina", "nobody-here"])
def test_sec_39_account_lockout_with_growing_wait(app, client, make_user, clock, username):
    """Known and unknown usernames lock the same way, so a lockout reveals nothing."""
    app.config.update(LOCKOUT_MAX_FAILURES=3, LOCKOUT_WAIT_INCREMENT_SECONDS=60, LOCKOUT_MAX_WAIT_SECONDS=150)
    make_user("amina")
    auth = AuthActions(client)
    assert [auth.login(username, WRONG).status_code for _ in range(3)] == [400, 400, 400]
    locked = auth.login(username, STRONG_PASSWORD)  # even the right password waits
    assert locked.status_code == 429
    assert locked.headers["Retry-After"] in {"59", "60"}
    assert "Too many failed attempts. Try again in 1 minute." in locked.get_data(as_text=True)
    assert client.get("/").status_code == 302
    assert [e.detail for e in _events(app, "lockout")] == ["locked for 60 s"]
    clock[0] += 61
    assert auth.login(username, WRONG).status_code == 400  # 4th failure: a longer wait
    assert auth.login(username, STRONG_PASSWORD).status_code == 429
    clock[0] += 121
    auth.login(username, WRONG)  # 5th: 180 s, capped at 150
    assert [e.detail for e in _events(app, "lockout")][-1] == "locked for 150 s"
    clock[0] += 151
    if username == "amina":
        assert auth.login("amina").status_code == 302  # success resets the count
        auth.logout()
        assert auth.login("amina", WRONG).status_code == 400
        assert auth.login("amina").status_code == 302


def test_sec_39_failure_count_is_forgotten_after_the_reset_time(app, client, make_user, clock):
    app.config.update(LOCKOUT_MAX_FAILURES=3, LOCKOUT_FAILURE_RESET_SECONDS=3600)
    make_user("amina")
    auth = AuthActions(client)
    auth.login("amina", WRONG)
    auth.login("amina", WRONG)
    clock[0] += 3601
    assert auth.login("amina", WRONG).status_code == 400
    assert auth.login("amina").status_code == 302  # not locked: the first two were forgotten


def test_sec_39_per_ip_rate_limit_gives_429_page(app, make_user):
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    make_user("amina")
    client = app.test_client()
    auth = AuthActions(client)
    codes = [auth.login("amina", WRONG).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    page = auth.login("amina")
    assert page.status_code == 429 and "Retry-After" in page.headers
    assert "Too many attempts from your network" in page.get_data(as_text=True)
    other_ip = app.test_client()
    other_ip.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    assert AuthActions(other_ip).login("amina").status_code == 302


def test_sec_41_external_login_entry_points_share_the_same_ip_budget(app_factory, make_user):
    app = app_factory(ALLOW_INSECURE_HTTP=True, LOGIN_RATE_LIMIT="4 per minute")
    with app.app_context():
        instances.create_provider("dhis2", slug="moh", label="MoH", settings={
            "base_url": "http://127.0.0.1:9/", "generation": "legacy", "client_id": "geologin"},
            secrets={"client_secret": "x" * 36})
    client = app.test_client()
    token = csrf_from(client.get("/login"))
    assert client.post("/auth/start", data={"csrf_token": token, "provider": "moh"}).status_code == 302
    assert client.get("/auth/moh/callback?state=x&code=y").status_code == 302
    assert client.get("/api/session/ologin?state=x&code=y").status_code == 302
    assert client.post("/login", data={"csrf_token": token, "username": "a", "password": WRONG}).status_code == 400
    assert client.get("/auth/moh/callback?state=x&code=y").status_code == 429
    assert client.post("/auth/start", data={"csrf_token": token, "provider": "moh"}).status_code == 429


def test_sec_34_spoofed_forwarded_for_is_ignored_without_trusted_proxies(app, make_user):
    app.config["LOGIN_RATE_LIMIT"] = "2 per minute"
    make_user("amina")
    client = app.test_client()
    auth = AuthActions(client)
    for number in range(3):
        client.environ_base["HTTP_X_FORWARDED_FOR"] = f"203.0.113.{number}"
        response = auth.login("amina", WRONG)
    assert response.status_code == 429  # a new X-Forwarded-For each time did not buy a new budget
    assert {e.client_ip for e in _events(app, "login")} == {"127.0.0.1"}


def test_sec_34_exactly_the_configured_number_of_proxies_is_trusted(app_factory, make_user):
    app = app_factory(TRUSTED_PROXIES=1)
    make_user("amina")
    client = app.test_client()
    # The client forged the first entry; our one proxy appended the address it really saw.
    client.environ_base["HTTP_X_FORWARDED_FOR"] = "6.6.6.6, 198.51.100.7"
    AuthActions(client).login("amina", WRONG)
    assert [e.client_ip for e in _events(app, "login")] == ["198.51.100.7"]


@pytest.mark.skipif(not os.environ.get("GEOLOGIN_TEST_REDIS_URL"), reason="set GEOLOGIN_TEST_REDIS_URL to test Redis")
def test_sec_39_counters_live_in_redis_when_configured(app_factory, make_user):
    import redis

    url = os.environ["GEOLOGIN_TEST_REDIS_URL"]
    server = redis.Redis.from_url(url)
    server.flushdb()
    app = app_factory(REDIS_URL=url, LOCKOUT_MAX_FAILURES=2)
    make_user("amina")
    auth = AuthActions(app.test_client())
    auth.login("amina", WRONG)
    auth.login("amina", WRONG)
    keys = {key.decode() for key in server.keys("*")}
    assert any("login-failures" in key for key in keys) and any("login-lock" in key for key in keys)
    assert any("login" in key and "failures" not in key and "lock" not in key for key in keys)  # per-IP
    assert auth.login("amina").status_code == 429
    server.flushdb()  # as if the lock expired
    assert auth.login("amina").status_code == 302


# -- sessions -----------------------------------------------------------------------------------------
def _age_session(app, **ages):
    with app.app_context():
        row = db.session.scalars(select(UserSession)).one()
        for column, minutes in ages.items():
            setattr(row, column, utcnow() - timedelta(minutes=minutes))
        row.user.created_at = min(row.user.created_at, row.created_at)  # a session is never older than its user
        db.session.commit()


def test_sec_29_idle_timeout(app, client, make_user):
    make_user("amina")
    AuthActions(client).login("amina")
    _age_session(app, last_seen_at=59)
    assert client.get("/").status_code == 200
    _age_session(app, last_seen_at=61)
    assert client.get("/").status_code == 302


def test_sec_29_absolute_timeout(app, client, make_user):
    make_user("amina")
    AuthActions(client).login("amina")
    _age_session(app, created_at=12 * 60 + 1)
    assert client.get("/").status_code == 302


def test_sec_29_no_remember_me_cookie(client, make_user):
    make_user("amina")
    response = AuthActions(client).login("amina")
    assert not any(c.startswith("remember_token") for c in response.headers.getlist("Set-Cookie"))


def test_sec_29_admin_pages_need_a_fresh_login(app, admin_client):
    assert admin_client.get("/admin/users").status_code == 200
    _age_session(app, created_at=31)
    response = admin_client.get("/admin/users?page=1")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/reauth?next=")
    assert admin_client.get("/").status_code == 200  # still logged in, just not fresh
    page = admin_client.get(response.headers["Location"])
    assert "Confirm it is you" in page.get_data(as_text=True)
    wrong = admin_client.post("/reauth", data={"csrf_token": csrf_from(page), "password": WRONG,
                                               "next": "/admin/users?page=1"})
    assert wrong.status_code == 400 and "This is not your password." in wrong.get_data(as_text=True)
    ok = admin_client.post("/reauth", data={"csrf_token": csrf_from(page), "password": STRONG_PASSWORD,
                                            "next": "/admin/users?page=1"})
    assert ok.status_code == 302 and ok.headers["Location"] == "/admin/users?page=1"
    assert admin_client.get("/admin/users").status_code == 200
    assert [e.outcome for e in _events(app, "reauth")] == ["failure", "success"]


def test_sec_29_a_form_opened_while_fresh_can_still_be_sent(app, admin_client, make_user):
    uid = make_user("amina")
    page = admin_client.get(f"/admin/users/{uid}")
    _age_session(app, created_at=45)  # stale for pages, within the hour of grace for a form
    response = admin_client.post(f"/admin/users/{uid}", data={"csrf_token": csrf_from(page),
                                                             "display_name": "Amina D.", "active": "y"})
    assert response.status_code == 302 and response.headers["Location"] == f"/admin/users/{uid}"
    with app.app_context():
        assert User.by_username("amina").display_name == "Amina D."
    _age_session(app, created_at=120)
    response = admin_client.post(f"/admin/users/{uid}", data={"csrf_token": csrf_from(page),
                                                             "display_name": "Too late", "active": "y"},
                                 headers={"Referer": f"http://localhost/admin/users/{uid}"})
    assert response.headers["Location"] == f"/reauth?next=/admin/users/{uid}"
    with app.app_context():
        assert User.by_username("amina").display_name == "Amina D."


def test_sec_29_reauth_offers_the_identity_provider_to_external_admins(app_factory, make_user):
    app = app_factory(ALLOW_INSECURE_HTTP=True)
    make_user("chief", password=None, is_admin=True)
    with app.app_context():
        instance = instances.create_provider("dhis2", slug="moh", label="MoH DHIS2",
                                             settings={"base_url": "http://127.0.0.1:9/", "client_id": "g"},
                                             secrets={"client_secret": "x" * 36})
        instances.allow([User.by_username("chief")], instance)  # "every active user" never covers an admin
        from geologin.login.sessions import AuthMethod, start_session
        with app.test_request_context():
            start_session(User.by_username("chief"), AuthMethod.provider(instance.slug))
            from flask import session
            cookie_session = dict(session)
    client = app.test_client()
    with client.session_transaction() as session:
        session.update(cookie_session)
    _age_session(app, created_at=31)
    page = client.get("/reauth?next=/admin/users").get_data(as_text=True)
    assert "Log in again through MoH DHIS2" in page and 'name="provider" value="moh"' in page
    assert 'type="password"' not in page


# -- headers ----------------------------------------------------------------------------------------
def test_sec_33_hsts_only_when_served_over_https(app_factory, make_user):
    plain = app_factory(PUBLIC_URL="http://login.example.org")
    assert "Strict-Transport-Security" not in plain.test_client().get("/login").headers
    secure = app_factory(PUBLIC_URL="https://login.example.org")
    response = secure.test_client().get("/login", base_url="https://login.example.org")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_sec_33_authenticated_pages_are_not_cached(client, make_user):
    make_user("amina")
    AuthActions(client).login("amina")
    for url in ["/", "/account/password"]:
        assert client.get(url).headers["Cache-Control"] == "no-store"


def test_sec_08_sec_09_headers_on_every_kind_of_page(app, client, admin_client):
    for url in ["/login", "/", "/admin/users", "/setup", "/nope", "/auth/x/callback"]:
        headers = admin_client.get(url).headers
        assert headers["X-Frame-Options"] == "DENY", url
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], url
        assert headers["X-Content-Type-Options"] == "nosniff", url
    assert limiter.enabled


def test_sec_43_ids_in_forms_reach_nothing_else(app_factory, make_user):
    """A user changing ids in forms cannot touch another account; an admin's forms ignore ids of objects
    that do not exist instead of creating or failing on them."""
    app = app_factory(ALLOW_INSECURE_HTTP=True)
    victim = make_user("victim")
    make_user("amina")
    client = app.test_client()
    AuthActions(client).login("amina")
    page = client.get("/account/password")
    client.post("/account/password", data={"csrf_token": csrf_from(page), "current": STRONG_PASSWORD,
                                           "password": "Brand-new-secret-42", "confirm": "Brand-new-secret-42",
                                           "user_id": str(victim), "username": "victim"})
    assert AuthActions(app.test_client()).login("victim").status_code == 302  # untouched
    assert AuthActions(app.test_client()).login("amina", "Brand-new-secret-42").status_code == 302
    make_user("root", is_admin=True)
    admin = app.test_client()
    AuthActions(admin).login("root")
    page = admin.get(f"/admin/users/{victim}")
    response = admin.post(f"/admin/users/{victim}/providers", data={"csrf_token": csrf_from(page),
                                                                     "provider_ids": ["424242"]})
    assert response.status_code in (302, 400)
    with app.app_context():
        assert instances.allowed_provider_ids(User.by_username("victim")) == set()
    response = admin.post(f"/admin/users/{victim}/identities/424242/unlink", data={"csrf_token": csrf_from(page)})
    assert response.status_code in (302, 404)
