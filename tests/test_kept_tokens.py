"""Kept tokens (issue 19, first part): a provider that keeps tokens stores what DHIS2 issued at each login,
encrypted, for that user and provider, and forgets it whenever the person or the link goes away. Driven
through real logins at the fake DHIS2 of both generations."""
import re

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from geologin import idp
from geologin.accounts import users
from geologin.encryption import decrypt
from geologin.extensions import db
from geologin.idp import permissions, tokens
from geologin.models import AuditEvent, IdentityProvider, KeptToken, User
from tests.conftest import csrf_from
from tests.test_dhis2_login import (PUBLIC, app, dhis2_servers, legacy, login_via_dhis2, oidc,  # noqa: F401
                                    register)

pytestmark = pytest.mark.usefixtures("dhis2_servers")


def keep(app, slug, on=True):
    with app.app_context():
        idp.update_provider(IdentityProvider.by_slug(slug), keep_tokens=on, actor="test")


def kept(app, username="alice"):
    with app.app_context():
        return [(row.provider.slug, decrypt(row.access_token), row.refresh_token and decrypt(row.refresh_token),
                 row.access_expires_at, row.access_token)
                for row in db.session.scalars(select(KeptToken).join(User, User.id == KeptToken.user_id)
                                              .where(User.username == username))]


def me(server, token):
    response = requests.get(f"{server.url}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return response.status_code, response.json().get("username") if response.ok else None


@pytest.fixture(params=["legacy", "oidc"])
def dhis2(request, app, make_user):
    """A DHIS2 server of each generation that keeps tokens, alice allowed on it and logged in through it."""
    server = request.getfixturevalue(request.param)
    make_user("alice", password=None)
    register(app, server, request.param, allow=["alice"])
    keep(app, request.param)
    return request.param, server


def test_sec_73_a_login_keeps_the_tokens_dhis2_issued_encrypted_never_logged(app, client, dhis2, caplog):
    slug, server = dhis2
    login_via_dhis2(client, slug)
    [(provider, access, refresh, expires, stored)] = kept(app)
    assert provider == slug and refresh
    assert access not in stored  # encrypted at rest
    assert me(server, access) == (200, "alice")  # the very token DHIS2 issued, so an application can use it
    assert expires is not None
    with app.app_context():  # no token in the audit trail
        details = " ".join(e.detail or "" for e in db.session.scalars(select(AuditEvent)))
        assert access not in details and refresh not in details
    assert access not in caplog.text and refresh not in caplog.text


def test_the_next_login_replaces_the_kept_tokens(app, client, dhis2):
    slug, server = dhis2
    login_via_dhis2(client, slug)
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/"))})
    server.control("expire-tokens")  # DHIS2 2.40 hands out the same token again while it is valid
    login_via_dhis2(client, slug)
    [(_, access, _, _, _)] = kept(app)
    assert me(server, access) == (200, "alice")  # the new one: the old one expired at DHIS2


def test_a_provider_that_does_not_keep_tokens_keeps_none(app, client, legacy, make_user):
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    login_via_dhis2(client, "legacy")
    assert kept(app) == []


def test_turning_keep_tokens_off_forgets_every_token_of_the_provider(app, client, dhis2):
    slug, _ = dhis2
    login_via_dhis2(client, slug)
    keep(app, slug, on=False)
    assert kept(app) == []
    with app.app_context():
        assert db.session.scalar(select(AuditEvent.detail).where(AuditEvent.event_type == "tokens.forget"))


def test_logout_everywhere_forgets_the_tokens_but_a_plain_logout_does_not(app, client, dhis2):
    slug, _ = dhis2
    login_via_dhis2(client, slug)
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/"))})
    assert len(kept(app)) == 1  # an application may still call DHIS2 for a person who closed one browser
    login_via_dhis2(client, slug)
    client.post("/logout/everywhere", data={"csrf_token": csrf_from(client.get("/"))})
    assert kept(app) == []


@pytest.mark.parametrize("change", ["deactivate", "delete", "unlink", "disallow", "remove_provider"])
def test_sec_73_the_tokens_go_with_the_person_the_link_or_the_provider(app, client, dhis2, change):
    slug, _ = dhis2
    login_via_dhis2(client, slug)
    with app.app_context():
        user, provider = User.by_username("alice"), IdentityProvider.by_slug(slug)
        if change == "deactivate":
            users.update_user(user, active=False, actor="test")
        elif change == "delete":
            users.delete_user(user, actor="test")
        elif change == "unlink":
            permissions.unlink(user, provider, actor="test")
        elif change == "disallow":
            permissions.disallow([user], provider, actor="test")
        else:
            idp.delete_provider(provider, actor="test")
        assert db.session.scalar(select(func.count()).select_from(KeptToken)) == 0


def test_rotate_keys_reencrypts_kept_tokens_under_the_new_key(app_factory, legacy, make_user):
    first = Fernet.generate_key().decode()
    app = app_factory(ALLOW_INSECURE_HTTP=True, PUBLIC_URL=PUBLIC, ENCRYPTION_KEY=first)
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    keep(app, "legacy")
    login_via_dhis2(app.test_client(), "legacy")
    token = kept(app)[0][1]
    second = Fernet.generate_key().decode()
    rotated = app_factory(ALLOW_INSECURE_HTTP=True, PUBLIC_URL=PUBLIC, ENCRYPTION_KEY=f"{second},{first}")
    result = rotated.test_cli_runner().invoke(args=["providers", "rotate-keys"])
    assert result.exit_code == 0 and "2 kept token(s)" in result.output, result.output
    only_new = app_factory(ALLOW_INSECURE_HTTP=True, PUBLIC_URL=PUBLIC, ENCRYPTION_KEY=second)
    assert kept(only_new)[0][1] == token


def test_status_says_kept_and_when_it_expires_never_the_token(app, client, dhis2):
    slug, _ = dhis2
    login_via_dhis2(client, slug)
    with app.app_context():
        [status] = tokens.status_of(User.by_username("alice"))
    assert status["provider"] == slug and status["refreshable"] and not status["expired"]
    assert kept(app)[0][1] not in repr(status)


def test_sec_73_admin_user_screen_shows_kept_tokens_and_their_expiry_never_the_token(app, dhis2, admin_client):
    slug, _ = dhis2
    login_via_dhis2(app.test_client(), slug)
    with app.app_context():
        user_id = User.by_username("alice").id
    html = admin_client.get(f"/admin/users/{user_id}").get_data(as_text=True)
    assert "kept, expires at" in html and "(refreshable)" in html
    assert kept(app)[0][1] not in html and kept(app)[0][4] not in html


def test_keep_tokens_is_set_from_the_cli_and_the_provider_screen(app, runner, legacy, admin_client):
    register(app, legacy, "legacy")
    result = runner.invoke(args=["providers", "edit", "legacy", "--keep-tokens"])
    assert result.exit_code == 0 and "keep_tokens" in result.output
    assert "keeps tokens: yes" in runner.invoke(args=["providers", "show", "legacy"]).output
    page = admin_client.get("/admin/providers/legacy/edit")
    html = page.get_data(as_text=True)
    [checkbox] = re.findall(r'<input[^>]*name="keep_tokens"[^>]*>', html)
    assert "checked" in checkbox
    form = {"csrf_token": csrf_from(page), "label": "DHIS2 legacy", "description": "", "enabled": "y",
            "base_url": legacy.url + "/", "client_id": "geologin"}
    response = admin_client.post("/admin/providers/legacy/edit", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert "keeps tokens: no" in runner.invoke(args=["providers", "show", "legacy"]).output


def test_the_fresh_access_token_is_the_kept_one_until_it_expires(app, client, dhis2):
    slug, server = dhis2
    with app.app_context():
        alice = User.by_username("alice")
        with pytest.raises(tokens.LoginAgain) as nothing:
            tokens.fresh_access_token(alice, IdentityProvider.by_slug(slug))
    assert nothing.value.reason == "not_kept"
    login_via_dhis2(client, slug)
    with app.app_context():
        token = tokens.fresh_access_token(User.by_username("alice"), IdentityProvider.by_slug(slug))
    assert me(server, token) == (200, "alice")
    with app.app_context():
        row = db.session.scalars(select(KeptToken)).one()
        row.access_expires_at = row.obtained_at
        row.refresh_token = None  # with one, it would be refreshed (tests/test_kept_tokens_refresh.py)
        db.session.commit()
        with pytest.raises(tokens.LoginAgain) as expired:
            tokens.fresh_access_token(User.by_username("alice"), IdentityProvider.by_slug(slug))
    assert expired.value.reason == "expired"
