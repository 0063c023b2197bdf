"""The "Applications" screens for protected sites (forward-auth, issue 17): listed with their hosts, added and
edited with a form of their own (hosts, who may sign in, login methods; no URI, secret or token setting), the
next steps shown after adding one, no secret to rotate; bad input is a form error (400) and saves nothing."""
import re

import pytest
from sqlalchemy import func, select

from geologin.apps import clients
from geologin.extensions import db
from geologin.i18n import LOCALE_COOKIE
from geologin.models import ApplicationHost, ApplicationUser, AuditEvent
from geologin.accounts import users
from tests.conftest import STRONG_PASSWORD, AuthActions, post_form
from tests.test_admin_apps import _create, _errors, _provider, _text
from tests.test_i18n import text, translated

HOST = "reports.moh.example"


def _site(app, name="Reports", hosts=(HOST,), **kwargs):
    with app.app_context():
        application, _ = clients.create(name, forward_auth=True, hosts=list(hosts), actor="test", **kwargs)
        return application.id


def _everything(app):
    with app.app_context():
        db.session.expire_all()
        return ([clients.as_dict(a) | {"secret_hash": a.secret_hash} for a in clients.all_applications()],
                db.session.scalar(select(func.count()).select_from(ApplicationUser)),
                db.session.scalars(select(ApplicationHost.host).order_by(ApplicationHost.host)).all())


def _row(app, name):
    with app.app_context():
        db.session.expire_all()
        application = clients.find(name)
        return None if application is None else clients.as_dict(application)


def _form(**changes):
    data = {"name": "Reports", "hosts": HOST, "allow_all_users": "y"}
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_list_shows_sites_with_their_hosts_next_to_clients(app, admin_client):
    _, client_id, _ = _create(app, "Superset")
    _site(app, "Reports", hosts=[HOST, "reports.moh.example:8443"])
    page = _text(admin_client.get("/admin/apps"))
    assert 'href="/admin/apps/new-site"' in page and "Add protected site" in page
    row = re.search(r"<tr>\s*<td><bdi>Reports</bdi>.*?</tr>", page, re.S).group(0)
    assert f"<code>{HOST}</code>" in row and "<code>reports.moh.example:8443</code>" in row
    assert "Protected site" in row and "public" not in row
    superset = re.search(r"<tr>\s*<td><bdi>Superset</bdi>.*?</tr>", page, re.S).group(0)
    assert client_id in superset and "confidential" in superset and "Protected site" not in superset


def test_add_site_form_has_no_oidc_fields(admin_client):
    page = _text(admin_client.get("/admin/apps/new-site"))
    assert 'name="hosts"' in page and 'name="allow_all_users"' in page
    for oidc_only in ("redirect_uris", "post_logout_uris", "backchannel_logout_uri", "public", "first_party",
                      "refresh_tokens", "id_token_alg"):
        assert f'name="{oidc_only}"' not in page, oidc_only


def test_add_site_then_what_to_do_next(app, admin_client):
    moh = _provider(app, "moh")
    response = post_form(admin_client, "/admin/apps/new-site", _form(
        hosts=f"  Reports.MOH.example \r\n\r\nstats.moh.example:8443\n{HOST}", allow_all_users=None,
        provider_ids=[str(moh)]))
    assert response.status_code == 302, _errors(response)
    row = _row(app, "Reports")
    assert row["kind"] == "forward_auth" and row["hosts"] == [HOST, "stats.moh.example:8443"]
    assert (row["all_users"], row["providers_only"], row["allowed_providers"]) == (False, True, ["moh"])
    assert row["redirect_uris"] == [] and row["public"] is True
    app_id = _site_id(app, "Reports")
    assert response.headers["Location"] == f"/admin/apps/{app_id}/setup"

    page = _text(admin_client.get(response.headers["Location"]))
    assert "Protected site Reports added." in page
    assert "http://localhost/forward-auth/nginx" in page and "http://localhost/forward-auth<" in page
    assert f"http://localhost/forward-auth/logout?rd=https://{HOST}/" in page
    assert "http://localhost/forward-auth/logout?rd=https://stats.moh.example:8443/" in page
    assert "docs/forward-auth.md" in page
    # geologin at localhost with a host-only cookie: a login at these hosts would loop, and the page says so.
    assert f"session cookie does not reach {HOST}:" in page and "does not reach stats.moh.example:" in page
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "app.create")).one()
        assert event.actor == "root" and HOST in event.detail


def _site_id(app, name):
    with app.app_context():
        return clients.find(name).id


def test_setup_page_says_nothing_of_cookies_when_they_reach_the_hosts(app_factory):
    app = app_factory(PUBLIC_URL="http://login.moh.example", SESSION_COOKIE_DOMAIN="moh.example",
                      SERVER_NAME="login.moh.example")  # the test client's requests go to geologin's host
    browser = app.test_client()
    with app.app_context():
        users.create_user("root", password=STRONG_PASSWORD, is_admin=True, actor="test")
    assert AuthActions(browser).login("root").status_code == 302
    app_id = _site(app, "Reports", hosts=[HOST, "elsewhere.example"])
    page = _text(browser.get(f"/admin/apps/{app_id}/setup"))
    assert f"http://login.moh.example/forward-auth/logout?rd=https://{HOST}/" in page
    assert f"does not reach {HOST}" not in page and "does not reach elsewhere.example" in page


def test_setup_page_is_only_for_sites(app, admin_client):
    app_id, _, _ = _create(app, "Superset")
    assert admin_client.get(f"/admin/apps/{app_id}/setup").status_code == 404
    assert admin_client.get("/admin/apps/999/setup").status_code == 404


@pytest.mark.parametrize("changes, message", [
    ({"name": ""}, "The application needs a name."),
    ({"name": "Superset"}, "There is already an application named"),
    ({"hosts": ""}, "A protected site needs at least one host."),
    ({"hosts": "\n \n"}, "A protected site needs at least one host."),
    ({"hosts": f"https://{HOST}/"}, "is not a host name"),
    ({"hosts": f"{HOST}\nreports moh"}, "is not a host name"),
    ({"hosts": "taken.moh.example"}, "already protected by “Taken”"),
    ({"hosts": "\n".join(f"h{i}.moh.example" for i in range(21))}, "At most 20 hosts"),
    ({"provider_ids": ["999"]}, "no longer exists"),
])
def test_add_site_bad_input_is_a_form_error_and_saves_nothing(app, admin_client, changes, message):
    _create(app, "Superset")
    _site(app, "Taken", hosts=["taken.moh.example"])
    before = _everything(app)
    response = post_form(admin_client, "/admin/apps/new-site", _form(**changes), page="/admin/apps/new-site")
    assert response.status_code == 400 and message in _text(response), _errors(response)
    assert _everything(app) == before


def test_edit_site_changes_its_hosts(app, admin_client):
    moh = _provider(app, "moh")
    app_id = _site(app, "Reports", hosts=[HOST, "old.moh.example"])
    page = _text(admin_client.get(f"/admin/apps/{app_id}"))
    assert f"{HOST}\nold.moh.example" in page and f'href="/admin/apps/{app_id}/setup"' in page
    assert "rotate-secret" not in page and 'name="redirect_uris"' not in page and "Client ID" not in page

    response = post_form(admin_client, f"/admin/apps/{app_id}", _form(
        name="Reports BI", hosts=f"new.moh.example\n{HOST}", allow_all_users=None, provider_ids=[str(moh)]))
    assert response.status_code == 302 and response.headers["Location"] == f"/admin/apps/{app_id}"
    assert "Changes saved." in _text(admin_client.get(f"/admin/apps/{app_id}"))
    row = _row(app, "Reports BI")
    assert sorted(row["hosts"]) == ["new.moh.example", HOST]
    assert (row["all_users"], row["allowed_providers"]) == (False, ["moh"])
    with app.app_context():
        assert clients.site_for_host("old.moh.example") is None
        assert clients.site_for_host("new.moh.example").name == "Reports BI"

    # The form shows what is stored: sent back as it is, or with the hosts in another order, nothing changes.
    assert re.search(rf'value="{moh}"[^>]*checked', _text(admin_client.get(f"/admin/apps/{app_id}")))
    for hosts in (f"{HOST}\nnew.moh.example", f"new.moh.example\n{HOST}"):
        again = post_form(admin_client, f"/admin/apps/{app_id}", _form(
            name="Reports BI", hosts=hosts, allow_all_users=None, provider_ids=[str(moh)]))
        assert "Nothing changed." in _text(admin_client.get(again.headers["Location"])), hosts


@pytest.mark.parametrize("changes, message", [
    ({"hosts": ""}, "A protected site needs at least one host."),
    ({"hosts": "reports.moh.example/path"}, "is not a host name"),
    ({"hosts": f"{HOST}\ntaken.moh.example"}, "already protected by “Taken”"),
    ({"name": "Taken"}, "There is already an application named"),
    ({"provider_ids": ["999"]}, "no longer exists"),
])
def test_edit_site_bad_input_is_a_form_error_and_saves_nothing(app, admin_client, changes, message):
    app_id = _site(app, "Reports")
    _site(app, "Taken", hosts=["taken.moh.example"])
    before = _everything(app)
    response = post_form(admin_client, f"/admin/apps/{app_id}", _form(**({"name": "Renamed"} | changes)))
    assert response.status_code == 400 and message in _text(response), _errors(response)
    assert _everything(app) == before


def test_site_has_no_secret_to_rotate(app, admin_client):
    app_id = _site(app)
    assert admin_client.get(f"/admin/apps/{app_id}/rotate-secret").status_code == 404
    assert post_form(admin_client, f"/admin/apps/{app_id}/rotate-secret", {},
                     page=f"/admin/apps/{app_id}").status_code == 404
    assert _everything(app)[0][0]["secret_hash"] is None


def test_site_allowed_users_and_delete(app, admin_client, make_user):
    make_user("bob")
    app_id = _site(app, "Reports", all_users=False)
    page = _text(admin_client.get(f"/admin/apps/{app_id}/users"))
    assert "Only the users listed here may sign in to Reports." in page
    response = post_form(admin_client, f"/admin/apps/{app_id}/users/allow", {"usernames": "bob"},
                         page=f"/admin/apps/{app_id}/users")
    assert response.status_code == 302 and _row(app, "Reports")["allowed_users"] == ["bob"]

    page = admin_client.get(f"/admin/apps/{app_id}/delete")
    assert f"refuses every request the proxy asks about for {HOST}" in _text(page) and "(1)" in _text(page)
    assert "every token it holds" not in _text(page)
    response = post_form(admin_client, f"/admin/apps/{app_id}/delete", {}, page=f"/admin/apps/{app_id}/delete")
    assert response.status_code == 302 and "Application Reports deleted." in _text(admin_client.get("/admin/apps"))
    assert _everything(app) == ([], 0, [])
    with app.app_context():
        assert clients.site_for_host(HOST) is None


def test_posts_without_csrf_change_nothing(app, admin_client):
    app_id = _site(app)
    before = _everything(app)
    for url, data in (("/admin/apps/new-site", _form(name="Sneaky", hosts="sneaky.example")),
                      (f"/admin/apps/{app_id}", _form(hosts="sneaky.example"))):
        assert admin_client.post(url, data=data).status_code == 400, url
    assert _everything(app) == before


@pytest.mark.parametrize("lang", ["fr", "pt", "es", "ar"])
def test_site_screens_and_errors_in_each_language(app, admin_client, lang):
    app_id = _site(app)
    admin_client.set_cookie(LOCALE_COOKIE, lang)
    for url, msgids in (("/admin/apps", ("Add protected site", "Protected site", "Client ID or hosts")),
                        ("/admin/apps/new-site", ("Hosts, one per line", "Login methods admitted")),
                        (f"/admin/apps/{app_id}", ("How to set up the proxy", "Delete protected site")),
                        (f"/admin/apps/{app_id}/setup", ("Hosts and sign-out links",)),
                        (f"/admin/apps/{app_id}/delete", ("Delete application",))):
        page = text(admin_client.get(url))
        for msgid in msgids:
            assert translated(lang, msgid) in page, (url, msgid)
    response = post_form(admin_client, "/admin/apps/new-site", _form(name="Other", hosts=""),
                         page="/admin/apps/new-site")
    assert response.status_code == 400
    assert translated(lang, "A protected site needs at least one host.") in text(response)
