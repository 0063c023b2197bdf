"""Groups and provider attributes reaching the applications (geologin/apps): access by group for OpenID
clients and protected sites, the ``groups`` scope and claim, Remote-Groups, attribute claims per application,
and what happens to an application's tokens when someone leaves the group that let them in."""
import json

import pytest
from joserfc import jwt
from sqlalchemy import select

from geologin.apps import clients
from geologin.extensions import db
from geologin.groups import service as groups
from geologin.models import AuditEvent, ExternalIdentity, IdentityProvider, User
from tests.conftest import csrf_from
from tests.oidc_rp import REDIRECT_URI, RelyingParty, register
from tests.test_forward_auth import _login as password_login
from tests.test_forward_auth import _nginx
from tests.test_oidc_provider import logout_receiver  # noqa: F401 - a fixture

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestCollectionWarning")


def _group(app, name, *members):
    with app.app_context():
        group = groups.create(name, actor="test")
        if members:
            groups.add_members(group, [User.by_username(u) for u in members], actor="test")
        return group.id


def _row(app, name):
    with app.app_context():
        return clients.as_dict(clients.find(name))


def _events(app, event_type):
    with app.app_context():
        return [(e.target, e.detail) for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.event_type == event_type).order_by(AuditEvent.id))]


# -- access by group: the service, the CLI, the admin screens ---------------------------------------------------
def test_groups_of_an_application_are_kept_listed_audited_and_an_unknown_one_saves_nothing(app):
    _group(app, "Malaria programme")
    _group(app, "HIV programme")
    with app.app_context():
        clients.create("Superset", [REDIRECT_URI], all_users=False, groups=["Malaria programme"], actor="test")
        with pytest.raises(clients.ApplicationError) as refused:
            clients.create("Grafana", [REDIRECT_URI], groups=["Malaria programme", "Nobody"], actor="test")
        assert refused.value.field == "groups" and "Nobody" in refused.value.message
        db.session.rollback()
        assert clients.find("Grafana") is None
        application = clients.find("Superset")
        with pytest.raises(clients.ApplicationError):
            clients.edit(application, groups=["HIV programme", "Nobody"], name="Renamed", actor="test")
        db.session.rollback()
    assert _row(app, "Superset")["allowed_groups"] == ["Malaria programme"]
    with app.app_context():
        assert clients.edit(clients.find("Superset"), groups=["HIV programme", "Malaria programme"],
                            actor="test") == ["groups"]
    assert _row(app, "Superset")["allowed_groups"] == ["HIV programme", "Malaria programme"]
    assert _events(app, "app.create")[0][1].endswith("groups Malaria programme")
    assert _events(app, "app.update") == [("Superset", "changed: groups")]


def test_cli_group_and_attribute_claim_options(app, make_user):
    runner = app.test_cli_runner()
    _group(app, "Malaria programme")

    def run(*args):
        return runner.invoke(args=["apps", *args])

    result = run("add", "Superset", "--redirect-uri", REDIRECT_URI, "--allowed-users-only",
                 "--group", "Malaria programme", "--attribute-claim", "roles", "--attribute-claim", "org_units")
    assert result.exit_code == 0, result.output
    shown = run("show", "Superset").output
    assert "groups: Malaria programme" in shown and "attribute claims: roles, org_units" in shown
    result = run("add", "Reports", "--forward-auth", "--host", "reports.example.org", "--group", "Malaria programme")
    assert result.exit_code == 0, result.output
    assert "groups: Malaria programme" in run("show", "Reports").output

    refused = run("edit", "Superset", "--group", "Nobody", "--name", "Renamed")
    assert refused.exit_code == 1 and "Nobody" in refused.output
    assert _row(app, "Superset")["allowed_groups"] == ["Malaria programme"]
    bad_claim = run("edit", "Superset", "--attribute-claim", "Roles!")
    assert bad_claim.exit_code == 1 and "not an attribute name" in bad_claim.output
    assert run("add", "Site2", "--forward-auth", "--host", "s2.example.org", "--attribute-claim",
               "roles").exit_code == 1
    assert run("edit", "Superset", "--group", "x", "--no-groups").exit_code == 2

    assert run("edit", "Superset", "--no-groups", "--no-attribute-claims").exit_code == 0
    row = _row(app, "Superset")
    assert row["allowed_groups"] == [] and row["attribute_claims"] == []
    listed = json.loads(run("show", "Reports", "--json").output)
    assert listed["allowed_groups"] == ["Malaria programme"]


def test_admin_application_and_site_forms_choose_groups_and_attribute_claims(app, admin_client):
    malaria = _group(app, "Malaria programme")
    page = admin_client.get("/admin/apps/new")
    assert "Malaria programme" in page.get_data(as_text=True) and 'value="org_units"' in page.get_data(as_text=True)
    response = admin_client.post("/admin/apps/new", data={
        "csrf_token": csrf_from(page), "name": "Superset", "redirect_uris": REDIRECT_URI, "post_logout_uris": "",
        "backchannel_logout_uri": "", "id_token_alg": "RS256", "group_ids": [str(malaria)],
        "attribute_claims": ["roles"]})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    row = _row(app, "Superset")
    assert row["allowed_groups"] == ["Malaria programme"] and row["attribute_claims"] == ["roles"]
    with app.app_context():
        app_id = clients.find("Superset").id
    edit_page = admin_client.get(f"/admin/apps/{app_id}").get_data(as_text=True)
    assert f'<option selected value="{malaria}">' in edit_page or f'value="{malaria}" selected' in edit_page

    page = admin_client.get("/admin/apps/new-site")
    response = admin_client.post("/admin/apps/new-site", data={
        "csrf_token": csrf_from(page), "name": "Reports", "hosts": "reports.example.org",
        "group_ids": [str(malaria), "999999"]})
    assert response.status_code == 400 and "no longer exists" in response.get_data(as_text=True)
    assert _row(app, "Superset")["name"] == "Superset"
    with app.app_context():
        assert clients.find("Reports") is None


# -- the groups scope and claim, attribute claims ----------------------------------------------------------------
@pytest.fixture
def alice(make_user):
    make_user("alice", email="alice@example.org", display_name="Alice Banda")
    return "alice"


def _bind(app, username, slug, plugin_type, attributes):
    """A binding to a provider as a login through it would have stored it."""
    with app.app_context():
        provider = IdentityProvider(slug=slug, type=plugin_type, label=slug)
        db.session.add(provider)
        db.session.flush()
        db.session.add(ExternalIdentity(user_id=User.by_username(username).id, provider_id=provider.id,
                                        subject=f"{slug}-sub", attributes_json=json.dumps(attributes)))
        db.session.commit()


def test_groups_scope_puts_the_group_names_in_the_id_token_and_userinfo(app, client, auth, alice):
    _group(app, "Malaria programme", "alice")
    _group(app, "Data managers", "alice")
    config = client.get("/.well-known/openid-configuration").get_json()
    assert "groups" in config["scopes_supported"] and "groups" in config["claims_supported"]
    rp = RelyingParty(client, *register(app, "Superset"))
    auth.login("alice")
    consent = client.get(rp.authorization_url(scope="openid profile groups"))
    assert "the names of your groups" in consent.get_data(as_text=True)
    tokens = rp.redeem(rp.code_from(rp.decide(consent, "allow"))).get_json()
    claims, _ = rp.id_token_claims(tokens["id_token"])
    assert claims["groups"] == ["Data managers", "Malaria programme"]
    assert rp.userinfo(tokens["access_token"]).get_json()["groups"] == ["Data managers", "Malaria programme"]

    other = RelyingParty(client, *register(app, "Grafana"))
    tokens = other.sign_in()  # openid profile email: no groups asked, none given
    assert "groups" not in other.id_token_claims(tokens["id_token"])[0]
    assert "groups" not in other.userinfo(tokens["access_token"]).get_json()


def test_attribute_claims_ticked_for_an_application_merge_the_bindings_of_that_plugin_type(app, client, auth, alice):
    roles_a = [{"id": "r1", "name": "Data entry"}, {"id": "r2", "name": "Analyst"}]
    _bind(app, "alice", "moh", "dhis2", {"roles": roles_a, "org_units": [
        {"id": "O6uvpzGd5pu", "name": "Bo", "path": "/ImspTQPwCqd/O6uvpzGd5pu"}]})
    _bind(app, "alice", "nmcp", "dhis2", {"roles": [{"id": "r2", "name": "Analyst"}, {"id": "r3", "name": "Admin"}]})
    _bind(app, "alice", "google", "oidc", {})
    rp = RelyingParty(client, *register(app, "Superset", attribute_claims=["roles", "org_units"]))
    auth.login("alice")
    consent = client.get(rp.authorization_url())
    assert "roles, org_units" in consent.get_data(as_text=True)
    tokens = rp.redeem(rp.code_from(rp.decide(consent, "allow"))).get_json()
    claims, _ = rp.id_token_claims(tokens["id_token"])
    assert claims["dhis2_roles"] == roles_a + [{"id": "r3", "name": "Admin"}]
    assert claims["dhis2_org_units"] == [{"id": "O6uvpzGd5pu", "name": "Bo", "path": "/ImspTQPwCqd/O6uvpzGd5pu"}]
    assert claims["oidc_roles"] == [] and "groups" not in claims
    info = rp.userinfo(tokens["access_token"]).get_json()
    assert info["dhis2_roles"] == claims["dhis2_roles"] and info["dhis2_org_units"] == claims["dhis2_org_units"]

    plain = RelyingParty(client, *register(app, "Grafana"))
    assert not [name for name in plain.id_token_claims(plain.sign_in()["id_token"])[0] if name.startswith("dhis2")]


# -- forward-auth: Remote-Groups -----------------------------------------------------------------------------------
@pytest.fixture
def fa_app(app_factory):
    return app_factory(SESSION_COOKIE_DOMAIN="localhost.test", PUBLIC_URL="http://login.localhost.test",
                       SERVER_NAME="login.localhost.test")


def test_remote_groups_header_and_a_group_only_site_refuses_at_the_next_check_once_out(fa_app, make_user):
    app = fa_app
    for name in ("alice", "bob"):
        with app.app_context():
            from geologin.accounts import users
            users.create_user(name, password="Correct-horse-battery-9", actor="test")
    malaria = _group(app, "Malaria programme", "alice")
    _group(app, "Data managers", "alice")
    with app.app_context():
        clients.create("Reports", forward_auth=True, hosts=["reports.localhost.test"], all_users=False,
                       groups=["Malaria programme"], actor="test")
    client = app.test_client()
    password_login(client, "alice")
    answer = _nginx(client, "http://reports.localhost.test/")
    assert answer.status_code == 200 and answer.headers["Remote-Groups"] == "Data managers,Malaria programme"

    bob = app.test_client()
    password_login(bob, "bob")
    assert _nginx(bob, "http://reports.localhost.test/").status_code == 403

    with app.app_context():
        from geologin.models import Group
        groups.remove_members(db.session.get(Group, malaria), [User.by_username("alice")], actor="test")
    assert _nginx(client, "http://reports.localhost.test/").status_code == 403


def test_remote_groups_is_sent_empty_and_names_outside_latin_1_are_percent_encoded(fa_app):
    app = fa_app
    with app.app_context():
        from geologin.accounts import users
        users.create_user("carol", password="Correct-horse-battery-9", actor="test")
        clients.create("Reports", forward_auth=True, hosts=["reports.localhost.test"], actor="test")
    client = app.test_client()
    password_login(client, "carol")
    assert _nginx(client, "http://reports.localhost.test/").headers["Remote-Groups"] == ""
    _group(app, "برنامج الملاريا", "carol")
    _group(app, "Data managers", "carol")
    value = _nginx(client, "http://reports.localhost.test/").headers["Remote-Groups"]
    from urllib.parse import unquote
    assert value.startswith("UTF-8''") and unquote(value[7:]).split(",") == ["Data managers", "برنامج الملاريا"]


# -- leaving the group ends the application's tokens ---------------------------------------------------------------
def _logout_tokens(rp, received):
    return [jwt.decode(item["logout_token"][0], rp.key_set()) for item in received]


def test_sec_66_removed_from_the_only_group_that_admits_them_their_tokens_end_with_a_backchannel_logout(
        app, client, auth, alice, make_user, logout_receiver):  # noqa: F811
    uri, received = logout_receiver
    malaria = _group(app, "Malaria programme", "alice")
    make_user("bob")
    _group(app, "Everyone", "alice")
    rp = RelyingParty(client, *register(app, "Malaria dashboards", all_users=False, groups=["Malaria programme"],
                                        refresh_tokens=True, backchannel_logout_uri=uri))
    open_rp = RelyingParty(client, *register(app, "Wiki", refresh_tokens=True, backchannel_logout_uri=uri))
    auth.login("alice")
    tokens = rp.sign_in()
    sid = rp.id_token_claims(tokens["id_token"])[0]["sid"]
    open_tokens = open_rp.sign_in()
    with app.app_context():
        from geologin.models import Group
        groups.remove_members(db.session.get(Group, malaria), [User.by_username("alice")], actor="test")
    assert rp.refresh(tokens["refresh_token"]).status_code == 400
    assert rp.userinfo(tokens["access_token"]).status_code == 401
    assert [(t.claims["aud"], t.claims["sid"]) for t in _logout_tokens(rp, received)] == [(rp.client_id, sid)]
    # The application every active user may use is left alone, and so is the geologin session.
    assert open_rp.refresh(open_tokens["refresh_token"]).status_code == 200
    assert client.get("/").status_code == 200
    assert _events(app, "app.revoke")[-1] == ("alice", "application Malaria dashboards; no longer in a group "
                                                       "that admits them")


# -- the same through a real DHIS2 login: the fake DHIS2 takes the person out of the group -----------------------
from tests.test_dhis2_login import dhis2_servers, legacy, login_via_dhis2  # noqa: E402,F401 - fixtures
from tests.test_dhis2_login import app as dhis2_app  # noqa: E402,F401
from tests.test_dhis2_login import PUBLIC  # noqa: E402
from tests.test_dhis2_login import register as register_dhis2  # noqa: E402


def test_sec_66_dhis2_removes_them_from_the_group_their_next_login_ends_the_group_only_application(
        dhis2_app, legacy, make_user, logout_receiver, monkeypatch):  # noqa: F811
    app = dhis2_app
    monkeypatch.setattr("tests.oidc_rp.ISSUER", PUBLIC)  # this app's PUBLIC_URL
    uri, received = logout_receiver
    make_user("alice", password=None)
    provider_id = register_dhis2(app, legacy, "legacy", allow=["alice"])
    with app.app_context():
        group = groups.create("Malaria programme", actor="test")
        groups.add_mapping(group, db.session.get(IdentityProvider, provider_id), "wl5cDMuUhmF", "Malaria programme",
                           actor="test")
        application, secret = clients.create("Malaria dashboards", [REDIRECT_URI], all_users=False,
                                             groups=["Malaria programme"], refresh_tokens=True,
                                             backchannel_logout_uri=uri, actor="test")
        client_id = application.client_id
    browser = app.test_client()
    assert login_via_dhis2(browser, "legacy").status_code == 302
    rp = RelyingParty(browser, client_id, secret)
    tokens = rp.sign_in(scope="openid profile groups")
    assert rp.userinfo(tokens["access_token"]).get_json()["groups"] == ["Malaria programme"]

    legacy.control("users", {"username": "alice", "userGroups": [{"id": "Kk12LkEWtXp", "name": "Data managers"}]})
    phone = app.test_client()  # the next login, from another device: the first session stays open
    assert login_via_dhis2(phone, "legacy").status_code == 302
    assert rp.refresh(tokens["refresh_token"]).status_code == 400
    assert rp.userinfo(tokens["access_token"]).status_code == 401
    assert [t.claims["aud"] for t in _logout_tokens(rp, received)] == [client_id]
    assert browser.get("/").status_code == 200
    refused = RelyingParty(phone, client_id, secret).authorize()
    assert refused.status_code == 403
