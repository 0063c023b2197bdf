"""Issue 14, items 7-10, 15 and 22's CLI noise: guessing through the password-change and re-authentication
forms, unlocking accounts, forged log lines, HEAD requests past the limit, codes in the dev server's log,
the session cookie's lifetime and "Log out everywhere"."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from geologin.extensions import db
from geologin.models import AuditEvent, User, UserSession
from geologin.accounts.passwords import verify_password
from tests.conftest import STRONG_PASSWORD, AuthActions, csrf_from, post_form

ROOT = Path(__file__).resolve().parent.parent
WRONG = "Wrong-password-123"
NEW = "A-new-long-password-7"
REDIS_URL = os.environ.get("GEOLOGIN_TEST_REDIS_URL")


def _events(app, event_type):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == event_type)
                                  .order_by(AuditEvent.id)).all()


def _change(client, current, new=NEW):
    return post_form(client, "/account/password", {"current": current, "password": new, "confirm": new})


def _lock(app, username, failures=3):
    app.config.update(LOCKOUT_MAX_FAILURES=failures)
    auth = AuthActions(app.test_client())
    for _ in range(failures):
        auth.login(username, WRONG)
    assert auth.login(username).status_code == 429


# -- item 7: the password-change and re-authentication forms -------------------------------------------
def test_sec_39_password_change_locks_out_guessing_and_audits_it(app, client, make_user):
    app.config.update(LOCKOUT_MAX_FAILURES=3)
    make_user("amina")
    AuthActions(client).login("amina")
    assert [_change(client, WRONG).status_code for _ in range(3)] == [400, 400, 400]
    locked = _change(client, STRONG_PASSWORD)  # even the right password waits
    assert locked.status_code == 429 and locked.headers["Retry-After"] in {"59", "60"}
    assert "Too many failed attempts. Try again in 1 minute." in locked.get_data(as_text=True)
    with app.app_context():
        assert verify_password(User.by_username("amina").password_hash, STRONG_PASSWORD)  # unchanged
    assert AuthActions(app.test_client()).login("amina").status_code == 429  # the same account lock
    assert [(e.outcome, e.reason_code, e.actor) for e in _events(app, "password_change")] == [
        ("failure", "bad_password", "amina")] * 3 + [("failure", "locked_out", "amina")]
    assert len(_events(app, "lockout")) == 1


def test_sec_39_password_change_counts_against_the_ip_limit(app, client, make_user):
    make_user("amina")
    AuthActions(client).login("amina")
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    assert [_change(client, WRONG).status_code for _ in range(4)] == [400, 400, 400, 429]
    assert "Too many attempts from your network" in _change(client, STRONG_PASSWORD).get_data(as_text=True)


def test_sec_39_reauth_lockout_says_when_and_is_audited(app, admin_client):
    from tests.test_hardening import _age_session

    app.config.update(LOCKOUT_MAX_FAILURES=2)
    _age_session(app, created_at=31)
    page = admin_client.get("/reauth?next=/admin/users")
    for _ in range(2):
        admin_client.post("/reauth", data={"csrf_token": csrf_from(page), "password": WRONG})
    locked = admin_client.post("/reauth", data={"csrf_token": csrf_from(page), "password": STRONG_PASSWORD})
    assert locked.status_code == 429 and locked.headers["Retry-After"] in {"59", "60"}
    assert "Too many failed attempts" in locked.get_data(as_text=True)
    assert [(e.outcome, e.reason_code) for e in _events(app, "reauth")] == [
        ("failure", "bad_password"), ("failure", "bad_password"), ("failure", "locked_out")]
    assert [e.detail for e in _events(app, "lockout")] == ["locked for 60 s"]


# -- item 8: unlocking ---------------------------------------------------------------------------------
def test_reg_admin_sees_the_lock_and_unlocks_the_account(app, admin_client, make_user):
    uid = make_user("amina")
    _lock(app, "amina")
    page = admin_client.get(f"/admin/users/{uid}").get_data(as_text=True)
    assert "Locked out until" in page and ">Unlock</button>" in page
    response = post_form(admin_client, f"/admin/users/{uid}/unlock", {}, page=f"/admin/users/{uid}")
    assert response.status_code == 302
    page = admin_client.get(f"/admin/users/{uid}").get_data(as_text=True)
    assert "amina can try to log in again." in page and "Locked out until" not in page
    assert AuthActions(app.test_client()).login("amina").status_code == 302
    assert [(e.actor, e.target) for e in _events(app, "user.unlock")] == [("root", "amina")]


def test_reg_unlock_needs_a_fresh_admin_login_and_csrf(app, client, admin_client, make_user):
    from tests.test_hardening import _age_session

    uid = make_user("amina")
    _lock(app, "amina")
    assert admin_client.post(f"/admin/users/{uid}/unlock", data={}).status_code == 400  # no CSRF token
    token = csrf_from(admin_client.get(f"/admin/users/{uid}"))
    _age_session(app, created_at=120)
    response = admin_client.post(f"/admin/users/{uid}/unlock", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].startswith("/reauth")
    other = app.test_client()
    make_user("bob")
    AuthActions(other).login("bob")
    assert other.post(f"/admin/users/{uid}/unlock", data={"csrf_token": csrf_from(other.get("/"))}).status_code == 403
    assert AuthActions(app.test_client()).login("amina").status_code == 429
    assert _events(app, "user.unlock") == []


def test_reg_setting_a_new_password_clears_the_lock(app, admin_client, make_user):
    uid = make_user("amina")
    _lock(app, "amina")
    post_form(admin_client, f"/admin/users/{uid}/password", {"password": NEW, "confirm": NEW})
    assert AuthActions(app.test_client()).login("amina", NEW).status_code == 302


def test_reg_cli_set_password_clears_the_lock(app, runner, make_user):
    make_user("amina")
    _lock(app, "amina")
    result = runner.invoke(args=["users", "set-password", "amina", "--password-stdin"], input=NEW + "\n")
    assert result.exit_code == 0, result.output
    assert AuthActions(app.test_client()).login("amina", NEW).status_code == 302


def _unlock_in_another_process(tmp_path, database, name, **environment):
    """`flask --app wsgi users unlock NAME` run as its own process, as an operator would, on ``database``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOLOGIN_") and k != "DATABASE_URL"}
    env.update({"GEOLOGIN_ENV": "development", "GEOLOGIN_INSTANCE": str(tmp_path / "cli"),
                "DATABASE_URL": database, **environment})
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "users", "unlock", name],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_reg_cli_unlock_without_redis_reaches_the_servers_lock(app, make_user, migrated_database, tmp_path):
    """Without Redis each server process keeps its lockouts in memory; `users unlock`, another process,
    still lifts them: the unlock is written to the database, which every process consults when locked."""
    make_user("amina")
    _lock(app, "amina")
    page = app.test_client()
    result = _unlock_in_another_process(tmp_path, migrated_database, "amina")
    assert result.returncode == 0, result.stderr
    assert "amina is unlocked" in result.stdout
    assert AuthActions(page).login("amina").status_code == 302
    assert [(e.actor, e.target) for e in _events(app, "user.unlock")] == [("cli", "amina")]
    unknown = _unlock_in_another_process(tmp_path, migrated_database, "nobody")
    assert unknown.returncode == 1


def test_reg_unlock_also_forgets_failures_counted_before_it(app, make_user):
    """A process that counted failures before another process's unlock (without locking yet) starts again
    from zero, instead of locking the account at the next failure."""
    from sqlalchemy import update

    from geologin.extensions import db
    from geologin.models import User, utcnow
    app.config.update(LOCKOUT_MAX_FAILURES=3)
    make_user("amina")
    auth = AuthActions(app.test_client())
    for _ in range(2):
        assert auth.login("amina", WRONG).status_code == 400
    with app.app_context():  # what `users unlock` in another process leaves behind
        db.session.execute(update(User).where(User.username == "amina").values(unlocked_at=utcnow()))
        db.session.commit()
    assert auth.login("amina", WRONG).status_code == 400
    assert auth.login("amina").status_code == 302  # not locked: only one failure since the unlock


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="set GEOLOGIN_TEST_REDIS_URL (scripts/throwaway-redis)")
def test_reg_cli_unlock_with_redis_unlocks_the_servers_lock(app_factory, make_user, migrated_database,
                                                           tmp_path):
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    app = app_factory(REDIS_URL=REDIS_URL)
    make_user("amina")
    _lock(app, "amina")
    page = app.test_client()
    result = _unlock_in_another_process(tmp_path, migrated_database, "amina", GEOLOGIN_REDIS_URL=REDIS_URL)
    assert result.returncode == 0, result.stderr
    assert "amina is unlocked" in result.stdout
    assert AuthActions(page).login("amina").status_code == 302
    assert [(e.actor, e.target) for e in _events(app, "user.unlock")] == [("cli", "amina")]
    redis.Redis.from_url(REDIS_URL).flushdb()


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="set GEOLOGIN_TEST_REDIS_URL (scripts/throwaway-redis)")
def test_reg_admin_unlock_with_redis(app_factory, make_user):
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    app = app_factory(REDIS_URL=REDIS_URL)
    make_user("root", is_admin=True)
    uid = make_user("amina")
    _lock(app, "amina")
    admin = app.test_client()
    AuthActions(admin).login("root")
    assert "Locked out until" in admin.get(f"/admin/users/{uid}").get_data(as_text=True)
    post_form(admin, f"/admin/users/{uid}/unlock", {}, page=f"/admin/users/{uid}")
    assert AuthActions(app.test_client()).login("amina").status_code == 302
    redis.Redis.from_url(REDIS_URL).flushdb()


# -- item 9: control characters in log lines ------------------------------------------------------------
FORGED = "/x%0d%0a2026-01-01 00:00:00,000 INFO geologin.audit: audit event=login outcome=success actor=root"


def test_sec_55_a_path_cannot_forge_a_text_log_line(app, client, capsys):
    capsys.readouterr()
    client.get(FORGED)
    lines = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("2026-01-01") for line in lines)
    request_lines = [line for line in lines if "geologin.requests" in line]
    assert len(request_lines) == 1 and "/x\\r\\n2026-01-01" in request_lines[0]


def test_sec_55_a_path_cannot_forge_a_json_log_entry(app_factory, capsys):
    app = app_factory(LOG_FORMAT="json")
    capsys.readouterr()
    app.test_client().get(FORGED)
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    request = [e for e in entries if e["logger"] == "geologin.requests"]
    assert len(request) == 1
    assert "\r" not in request[0]["path"] and "\n" not in request[0]["message"]
    assert request[0]["path"].startswith("/x\\r\\n2026-01-01")


def test_sec_55_every_logged_argument_is_escaped(app, capsys):
    import logging

    capsys.readouterr()
    logging.getLogger("geologin.test").warning("value=%s", "a\nb\x1b[31mc")
    out = capsys.readouterr().out
    assert "value=a\\nb\\x1b[31mc" in out and "\x1b" not in out


# -- item 10: HEAD requests ------------------------------------------------------------------------------
def test_sec_39_head_requests_count_against_the_callback_limit(app):
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    client = app.test_client()
    codes = [client.head("/auth/moh/callback?state=x&code=y").status_code for _ in range(4)]
    assert codes == [302, 302, 302, 429]
    assert client.get("/auth/moh/callback?state=x&code=y").status_code == 429
    assert client.head("/api/session/ologin?state=x&code=y").status_code == 429
    assert len(_events(app, "login")) == 3  # no audit row past the limit


# -- item 15: codes in the dev server's log, the cookie's lifetime, log out everywhere --------------------
def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sec_54_dev_server_log_has_no_codes_or_state(migrated_database, tmp_path):
    """`make run` and `make demo` serve with `flask run`: its access log must not print query strings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOLOGIN_") and k != "DATABASE_URL"}
    env.update({"GEOLOGIN_ENV": "development", "GEOLOGIN_INSTANCE": str(tmp_path / "instance"),
                "DATABASE_URL": migrated_database, "GEOLOGIN_ALLOW_INSECURE_HTTP": "1"})
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "run", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/auth/moh/callback?code=SECRET-CODE-123&state=STATE-456"
        opener = urllib.request.build_opener(NoRedirect)
        deadline = time.monotonic() + 20
        while True:
            try:
                opener.open(url, timeout=2)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        time.sleep(0.3)
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0]
    assert "Running on http://127.0.0.1" in output  # werkzeug's own start-up lines stay
    assert "GET /auth/moh/callback 302" in output  # geologin's request line replaces werkzeug's
    assert "SECRET-CODE-123" not in output and "STATE-456" not in output


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.mark.parametrize("hours", [12, 2])
def test_sec_29_session_cookie_lives_as_long_as_the_server_session(app_factory, make_user, hours):
    app = app_factory(SESSION_ABSOLUTE_HOURS=hours)
    make_user("amina")
    response = AuthActions(app.test_client()).login("amina")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("geologin_session="))
    expires = parsedate_to_datetime(cookie.split("Expires=", 1)[1].split(";", 1)[0])
    lifetime = expires - datetime.now(timezone.utc)
    assert timedelta(hours=hours) - timedelta(minutes=1) < lifetime <= timedelta(hours=hours)


def test_sec_27_log_out_everywhere_ends_every_session(app, client, make_user):
    make_user("amina")
    make_user("bob")
    second, bobs = app.test_client(), app.test_client()
    AuthActions(client).login("amina")
    AuthActions(second).login("amina")
    AuthActions(bobs).login("bob")
    home = client.get("/").get_data(as_text=True)
    assert "Log out everywhere" in home
    response = post_form(client, "/logout/everywhere", {}, page="/")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/").status_code == 302
    assert second.get("/").status_code == 302  # the other browser's session died too
    assert bobs.get("/").status_code == 200
    assert [(e.target, e.detail) for e in _events(app, "logout")] == [("amina", "everywhere")]
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(UserSession)) == 1


def test_sec_32_log_out_everywhere_needs_csrf(app, client, make_user):
    make_user("amina")
    AuthActions(client).login("amina")
    assert client.post("/logout/everywhere").status_code == 400
    assert client.get("/").status_code == 200


# -- item 22: the CLI's terminal ---------------------------------------------------------------------------
def test_reg_cli_keeps_audit_lines_off_the_terminal(app, runner, capfd):
    capfd.readouterr()
    result = runner.invoke(args=["users", "create", "dhis", "--no-password"])
    assert result.exit_code == 0 and "Created user dhis." in result.output
    out, err = capfd.readouterr()
    assert "audit event=" not in out + err + result.output
    assert [e.target for e in _events(app, "user.create")] == ["dhis"]  # still in the audit table
