"""The administrators' "Applications" screens: list, add (the secret shown once), edit, rotate the secret,
delete, allowed users and admitted login methods; bad input is a form error (400) and saves nothing, every
change needs an administrator with a fresh login and a CSRF token."""
import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from geologin import idp
from geologin.apps import clients
from geologin.extensions import db
from geologin.models import ApplicationUser, AuditEvent, UserSession, utcnow
from tests.conftest import AuthActions, csrf_from, post_form
from geologin.i18n import LOCALE_COOKIE
from tests.test_i18n import text, translated

REDIRECT = "https://superset.example.org/oauth-authorized/geologin"


def _create(app, name="Superset", **kwargs):
    with app.app_context():
        application, secret = clients.create(name, kwargs.pop("redirect_uris", [REDIRECT]), actor="test", **kwargs)
        return application.id, application.client_id, secret


def _row(app, name):
    with app.app_context():
        db.session.expire_all()
        application = clients.find(name)
        return None if application is None else clients.as_dict(application) | {"secret_hash": application.secret_hash}


def _everything(app):
    with app.app_context():
        db.session.expire_all()
        return ([clients.as_dict(a) | {"secret_hash": a.secret_hash} for a in clients.all_applications()],
                db.session.scalar(select(func.count()).select_from(ApplicationUser)))


def _provider(app, slug):
    with app.app_context():
        return idp.create_provider("dhis2", slug=slug, label=slug.upper(), actor="test",
                                   settings={"base_url": "https://dhis2.example.org/", "client_id": "geologin",
                                             "generation": "legacy"},
                                   secrets={"client_secret": "Zq8-not-shown-anywhere-0123456789abcd"}).id


def _form(**changes):
    data = {"name": "Superset", "redirect_uris": REDIRECT, "post_logout_uris": "", "backchannel_logout_uri": "",
            "allow_all_users": "y"}
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def _text(response):
    return response.get_data(as_text=True)


def _secret_on(page):
    match = re.search(r'id="client-secret">([^<]+)<', page)
    return match.group(1) if match else None


def _errors(response):
    return " ".join(re.findall(r'<ul class="errors"[^>]*>\s*<li>(.*?)</li>', _text(response), re.S))


def test_navigation_links_to_applications(admin_client):
    assert 'href="/admin/apps"' in _text(admin_client.get("/admin/users"))


def test_list_shows_each_application(app, admin_client):
    assert "No application yet." in _text(admin_client.get("/admin/apps"))
    _, client_id, _ = _create(app, "Superset")
    _create(app, "Jupyter", public=True, all_users=False)
    page = _text(admin_client.get("/admin/apps"))
    assert page.index("Jupyter") < page.index("Superset") and client_id in page
    assert "public" in page and "confidential" in page and "0 allowed users" in page


def test_sec_65_client_secret_stored_hashed_shown_once(app, admin_client):
    """The page answering the POST shows the secret once; the database keeps its SHA-256; no later page has it."""
    response = post_form(admin_client, "/admin/apps/new", _form(), page="/admin/apps/new")
    assert response.status_code == 200
    page = _text(response)
    secret = _secret_on(page)
    assert secret and "shown only this once" in page
    assert response.headers["Cache-Control"] == "no-store"
    row = _row(app, "Superset")
    assert row["client_id"] in page
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    with app.app_context():
        assert clients.verify_secret(clients.find("Superset"), secret)
        trail = " ".join(f"{e.target} {e.detail}" for e in db.session.scalars(select(AuditEvent)))
        assert secret not in trail
    app_id = clients_id(app, "Superset")
    for url in ("/admin/apps", f"/admin/apps/{app_id}", f"/admin/apps/{app_id}/users",
                f"/admin/apps/{app_id}/rotate-secret", f"/admin/apps/{app_id}/delete", "/admin/audit"):
        later = admin_client.get(url)
        assert later.status_code == 200 and secret not in _text(later), url

    # A new secret: shown once too, the old one stops working at once.
    rotated = post_form(admin_client, f"/admin/apps/{app_id}/rotate-secret", {})
    assert rotated.status_code == 200 and rotated.headers["Cache-Control"] == "no-store"
    new_secret = _secret_on(_text(rotated))
    assert new_secret and new_secret != secret and "The previous secret no longer works." in _text(rotated)
    with app.app_context():
        application = clients.find("Superset")
        assert clients.verify_secret(application, new_secret) and not clients.verify_secret(application, secret)
    assert new_secret not in _text(admin_client.get(f"/admin/apps/{app_id}"))


def clients_id(app, name):
    with app.app_context():
        return clients.find(name).id


def test_add_public_client_shows_no_secret(app, admin_client):
    response = post_form(admin_client, "/admin/apps/new", _form(name="Spa", public="y"))
    assert response.status_code == 200 and _secret_on(_text(response)) is None
    assert "it has no secret and must use PKCE" in _text(response)
    assert _row(app, "Spa")["public"] is True and _row(app, "Spa")["secret_hash"] is None
    app_id = clients_id(app, "Spa")
    refused = admin_client.get(f"/admin/apps/{app_id}/rotate-secret")
    assert refused.status_code == 302
    assert post_form(admin_client, f"/admin/apps/{app_id}/rotate-secret", {},
                     page=f"/admin/apps/{app_id}").status_code == 302
    assert _row(app, "Spa")["secret_hash"] is None
    assert "is a public client: it has no secret" in _text(admin_client.get(f"/admin/apps/{app_id}"))


def test_add_with_every_field(app, admin_client):
    moh = _provider(app, "moh")
    _provider(app, "edu")
    response = post_form(admin_client, "/admin/apps/new", _form(
        name="Grafana", redirect_uris=f"{REDIRECT}\r\n\r\n  https://grafana.example.org/cb  \n{REDIRECT}",
        post_logout_uris="https://grafana.example.org/", backchannel_logout_uri="https://grafana.example.org/bc",
        first_party="y", allow_all_users=None, refresh_tokens="y", provider_ids=[str(moh)]))
    assert response.status_code == 200, _errors(response)
    row = _row(app, "Grafana")
    assert row["redirect_uris"] == [REDIRECT, "https://grafana.example.org/cb"]
    assert row["post_logout_uris"] == ["https://grafana.example.org/"]
    assert row["backchannel_logout_uri"] == "https://grafana.example.org/bc"
    assert (row["first_party"], row["all_users"], row["refresh_tokens"]) == (True, False, True)
    assert (row["providers_only"], row["allowed_providers"]) == (True, ["moh"])


@pytest.mark.parametrize("changes, message", [
    ({"name": ""}, "The application needs a name."),
    ({"name": "x" * 121}, "longer than 120"),
    ({"redirect_uris": ""}, "An application needs at least one redirect URI."),
    ({"redirect_uris": "ftp://x.example.org/"}, "must be an absolute https:// URL"),
    ({"redirect_uris": f"{REDIRECT}\nhttps://x.example.org/#frag"}, "must not contain a fragment"),
    ({"post_logout_uris": "not a url"}, "Post-logout redirect URI"),
    ({"backchannel_logout_uri": "https://u:p@x.example.org/"}, "must not contain a user name or password"),
    ({"name": "Existing"}, "There is already an application named"),
    ({"provider_ids": ["999"]}, "no longer exists"),
    ({"provider_ids": ["abc"]}, "Identity providers"),
])
def test_add_bad_input_is_a_form_error_and_saves_nothing(app, admin_client, changes, message):
    _create(app, "Existing")
    before = _everything(app)
    response = post_form(admin_client, "/admin/apps/new", _form(**changes), page="/admin/apps/new")
    assert response.status_code == 400
    assert message in _text(response) and _secret_on(_text(response)) is None
    assert _everything(app) == before


def test_add_control_characters_are_refused(app, admin_client):
    response = post_form(admin_client, "/admin/apps/new", _form(name="Super\x01set"), page="/admin/apps/new")
    assert response.status_code == 400 and _everything(app) == ([], 0)


def test_edit_changes_the_application(app, admin_client):
    moh = _provider(app, "moh")
    app_id, client_id, _ = _create(app, "Superset", post_logout_uris=["https://superset.example.org/"])
    page = _text(admin_client.get(f"/admin/apps/{app_id}"))
    assert client_id in page and REDIRECT in page and "https://superset.example.org/" in page
    response = post_form(admin_client, f"/admin/apps/{app_id}", _form(
        name="Superset BI", redirect_uris="https://bi.example.org/a\nhttps://bi.example.org/b",
        post_logout_uris="", backchannel_logout_uri="https://bi.example.org/bc", first_party="y",
        allow_all_users=None, refresh_tokens="y", provider_ids=[str(moh)]))
    assert response.status_code == 302 and response.headers["Location"] == f"/admin/apps/{app_id}"
    assert "Changes saved." in _text(admin_client.get(f"/admin/apps/{app_id}"))
    row = _row(app, "Superset BI")
    assert row["client_id"] == client_id
    assert row["redirect_uris"] == ["https://bi.example.org/a", "https://bi.example.org/b"]
    assert row["post_logout_uris"] == [] and row["backchannel_logout_uri"] == "https://bi.example.org/bc"
    assert (row["first_party"], row["all_users"], row["refresh_tokens"]) == (True, False, True)
    assert row["allowed_providers"] == ["moh"]

    # The form shows what is stored: send it back as it is and nothing changes.
    page = admin_client.get(f"/admin/apps/{app_id}")
    assert re.search(rf'value="{moh}"[^>]*checked', _text(page))
    response = post_form(admin_client, f"/admin/apps/{app_id}", _form(
        name="Superset BI", redirect_uris="https://bi.example.org/a\nhttps://bi.example.org/b",
        backchannel_logout_uri="https://bi.example.org/bc", first_party="y", allow_all_users=None,
        refresh_tokens="y", provider_ids=[str(moh)]))
    assert "Nothing changed." in _text(admin_client.get(response.headers["Location"]))

    # No box ticked: every login method again; the back-channel URI emptied: removed.
    post_form(admin_client, f"/admin/apps/{app_id}", _form(name="Superset BI", redirect_uris=REDIRECT))
    row = _row(app, "Superset BI")
    assert (row["providers_only"], row["allowed_providers"], row["backchannel_logout_uri"]) == (False, [], None)
    assert (row["first_party"], row["all_users"], row["refresh_tokens"]) == (False, True, False)


@pytest.mark.parametrize("changes, message", [
    ({"name": "Other"}, "There is already an application named"),
    ({"redirect_uris": ""}, "An application needs at least one redirect URI."),
    ({"redirect_uris": "javascript:alert(1)"}, "must be an absolute https:// URL"),
    ({"backchannel_logout_uri": "ftp://x"}, "Back-channel logout URI"),
    ({"provider_ids": ["999"]}, "no longer exists"),
])
def test_edit_bad_input_is_a_form_error_and_saves_nothing(app, admin_client, changes, message):
    app_id, _, _ = _create(app, "Superset")
    _create(app, "Other")
    before = _everything(app)
    response = post_form(admin_client, f"/admin/apps/{app_id}", _form(first_party="y", **changes))
    assert response.status_code == 400 and message in _text(response)
    assert _everything(app) == before


def test_unknown_application_is_404(admin_client):
    for url in ("/admin/apps/999", "/admin/apps/999/users", "/admin/apps/999/delete",
                "/admin/apps/999/rotate-secret", "/admin/apps/99999999999999999999"):
        assert admin_client.get(url).status_code == 404, url


def test_rotate_secret_needs_a_confirmed_post(app, admin_client):
    app_id, _, secret = _create(app)
    before = _row(app, "Superset")["secret_hash"]
    page = admin_client.get(f"/admin/apps/{app_id}/rotate-secret")
    assert page.status_code == 200 and "stops working at once" in _text(page)
    assert _row(app, "Superset")["secret_hash"] == before  # asking is not doing
    assert admin_client.post(f"/admin/apps/{app_id}/rotate-secret").status_code == 400  # no CSRF token
    assert _row(app, "Superset")["secret_hash"] == before


def test_delete_needs_confirmation(app, admin_client, make_user):
    make_user("bob")
    app_id, _, _ = _create(app, "Superset", all_users=False)
    with app.app_context():
        clients.allow(clients.find("Superset"), clients.users_named(["bob"]), actor="test")
    page = admin_client.get(f"/admin/apps/{app_id}/delete")
    assert page.status_code == 200 and "Delete Superset?" in _text(page) and "(1)" in _text(page)
    assert _row(app, "Superset") is not None
    assert admin_client.post(f"/admin/apps/{app_id}/delete").status_code == 400  # no CSRF token
    assert _row(app, "Superset") is not None
    response = admin_client.post(f"/admin/apps/{app_id}/delete", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/apps"
    assert "Application Superset deleted." in _text(admin_client.get("/admin/apps"))
    assert _everything(app) == ([], 0)


def test_allowed_users_screen(app, admin_client, make_user):
    make_user("bob")
    make_user("alice", display_name="Alice A.")
    app_id, _, _ = _create(app, "Superset", all_users=False)
    page = _text(admin_client.get(f"/admin/apps/{app_id}/users"))
    assert "Only the users listed here may sign in to Superset." in page and "No user is allowed" in page

    response = post_form(admin_client, f"/admin/apps/{app_id}/users/allow", {"usernames": "bob\nalice\nbob\n"},
                         page=f"/admin/apps/{app_id}/users")
    assert response.status_code == 302
    assert "Allowed: 2 users." in _text(admin_client.get(response.headers["Location"]))
    assert _row(app, "Superset")["allowed_users"] == ["alice", "bob"]
    again = post_form(admin_client, f"/admin/apps/{app_id}/users/allow", {"usernames": "bob"},
                      page=f"/admin/apps/{app_id}/users")
    assert "1 was already allowed." in _text(admin_client.get(again.headers["Location"]))

    searched = _text(admin_client.get(f"/admin/apps/{app_id}/users?q=alice"))
    assert "Alice A." in searched and ">bob<" not in searched
    with app.app_context():
        bob_id = clients.users_named(["bob"])[0].id
    response = post_form(admin_client, f"/admin/apps/{app_id}/users/disallow", {"user_ids": [str(bob_id)]},
                         page=f"/admin/apps/{app_id}/users")
    assert response.status_code == 302
    assert "1 user may no longer sign in to Superset." in _text(admin_client.get(response.headers["Location"]))
    assert _row(app, "Superset")["allowed_users"] == ["alice"]
    nothing = post_form(admin_client, f"/admin/apps/{app_id}/users/disallow", {},
                        page=f"/admin/apps/{app_id}/users")
    assert "Tick the users to disallow first." in _text(admin_client.get(nothing.headers["Location"]))


@pytest.mark.parametrize("usernames, message", [
    ("bob\nnobody", "No such user: nobody"),
    ("", "Enter at least one username."),
    ("\n \n", "Enter at least one username."),
])
def test_allow_with_an_unknown_name_allows_nobody(app, admin_client, make_user, usernames, message):
    make_user("bob")
    app_id, _, _ = _create(app, "Superset", all_users=False)
    response = post_form(admin_client, f"/admin/apps/{app_id}/users/allow", {"usernames": usernames},
                         page=f"/admin/apps/{app_id}/users")
    assert response.status_code == 400 and message in _text(response)
    assert _row(app, "Superset")["allowed_users"] == []


def test_users_screen_says_when_every_user_is_admitted(app, admin_client):
    app_id, _, _ = _create(app, "Superset")
    assert "Every active user may sign in to Superset" in _text(admin_client.get(f"/admin/apps/{app_id}/users"))


def test_changes_are_audited_with_the_administrator(app, admin_client, make_user):
    make_user("bob")
    post_form(admin_client, "/admin/apps/new", _form(), page="/admin/apps/new")
    app_id = clients_id(app, "Superset")
    post_form(admin_client, f"/admin/apps/{app_id}", _form(first_party="y"))
    post_form(admin_client, f"/admin/apps/{app_id}/rotate-secret", {})
    post_form(admin_client, f"/admin/apps/{app_id}/users/allow", {"usernames": "bob"},
              page=f"/admin/apps/{app_id}/users")
    post_form(admin_client, f"/admin/apps/{app_id}/delete", {})
    with app.app_context():
        events = [(e.event_type, e.actor) for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.event_type.like("app.%")).order_by(AuditEvent.id))]
    assert events == [(name, "root") for name in ("app.create", "app.update", "app.rotate_secret", "app.allow",
                                                  "app.delete")]


def test_posts_without_csrf_change_nothing(app, admin_client, make_user):
    make_user("bob")
    app_id, _, _ = _create(app, "Superset", all_users=False)
    before = _everything(app)
    for url, data in [("/admin/apps/new", _form(name="Sneaky")), (f"/admin/apps/{app_id}", _form(name="Sneaky")),
                      (f"/admin/apps/{app_id}/rotate-secret", {}), (f"/admin/apps/{app_id}/delete", {}),
                      (f"/admin/apps/{app_id}/users/allow", {"usernames": "bob"})]:
        assert admin_client.post(url, data=data).status_code == 400, url
    assert _everything(app) == before


def test_only_fresh_administrators_reach_the_screens(app, client, make_user):
    app_id, _, _ = _create(app)
    make_user("bob")
    assert client.get("/admin/apps").status_code == 302  # not logged in: to the login page
    AuthActions(client).login("bob")
    for url in ("/admin/apps", f"/admin/apps/{app_id}", "/admin/apps/new"):
        assert client.get(url).status_code == 403, url
    before = _everything(app)
    assert client.post(f"/admin/apps/{app_id}/delete", data={"csrf_token": csrf_from(client.get("/"))}
                       ).status_code == 403
    assert _everything(app) == before

    admin_browser = app.test_client()
    make_user("root", is_admin=True)
    AuthActions(admin_browser).login("root")
    with app.app_context():
        row = db.session.scalars(select(UserSession).where(UserSession.user.has(username="root"))).one()
        row.created_at = utcnow() - timedelta(minutes=31)
        row.user.created_at = min(row.user.created_at, row.created_at)
        db.session.commit()
    response = admin_browser.get("/admin/apps")
    assert response.status_code == 302 and response.headers["Location"].startswith("/reauth?next=/admin/apps")


@pytest.mark.parametrize("lang", ["fr", "pt", "es", "ar"])
def test_screens_and_errors_in_each_language(app, admin_client, lang):
    app_id, _, _ = _create(app)
    admin_client.set_cookie(LOCALE_COOKIE, lang)
    for url, msgids in (("/admin/apps", ("Applications", "Add application", "Who may sign in")),
                        ("/admin/apps/new", ("Redirect URIs, one per line", "Login methods admitted")),
                        (f"/admin/apps/{app_id}", ("New secret", "Allowed users")),
                        (f"/admin/apps/{app_id}/users", ("Allow these users", "Allow users")),
                        (f"/admin/apps/{app_id}/rotate-secret", ("Make a new secret",)),
                        (f"/admin/apps/{app_id}/delete", ("Delete application",))):
        page = text(admin_client.get(url))
        for msgid in msgids:
            assert translated(lang, msgid) in page, (url, msgid)
    response = post_form(admin_client, "/admin/apps/new", _form(name=""), page="/admin/apps/new")
    assert response.status_code == 400 and translated(lang, "The application needs a name.") in text(response)
    secret_page = post_form(admin_client, "/admin/apps/new", _form(name="Jupyter"), page="/admin/apps/new")
    assert translated(lang, "Copy the client secret now: it is shown only this once.") in text(secret_page)
