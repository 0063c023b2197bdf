"""What an identity provider says about a person (issue 18): the groups and attributes a plugin returns are
cleaned and bounded by the core, the OpenID Connect plugin's groups claim, and where an administrator reads
them (the user screen, ``users show``). The DHIS2 journeys are in test_dhis2_login.py, the stored / replaced
/ cleared cases of every plugin in the contract suite."""
import json

import pytest
import requests_mock
from sqlalchemy import select

from geologin.extensions import db
from geologin.idp import attributes
from geologin.models import AuditEvent, ExternalIdentity, IdentityProvider
from geologin.providers import Attribute, Group, Identity
from tests.conftest import AuthActions
from tests.test_oidc_plugin import PUBLIC, Server, oidc_login, register


def identity(**kwargs):
    return Identity(subject="s-1", username="alice", **kwargs)


# -- the core's cleaning --------------------------------------------------------------------------------
def test_plugins_that_state_nothing_keep_working_with_empty_groups_and_attributes():
    seen = attributes.clean(Identity(subject="s-1", username="alice"))
    assert (seen.groups, seen.attributes, seen.remarks) == ([], {}, [])


def test_groups_and_attributes_are_kept_as_plain_data_with_names_defaulting_to_ids():
    seen = attributes.clean(identity(
        groups=(Group("wl5cDMuUhmF", "Malaria programme"), Group("admins"), Group("wl5cDMuUhmF", "again")),
        attributes={"org_units": (Attribute("O6uvpzGd5pu", "Bo", "/ImspTQPwCqd/O6uvpzGd5pu"),)}))
    assert seen.groups == [{"id": "wl5cDMuUhmF", "name": "Malaria programme"}, {"id": "admins", "name": "admins"}]
    assert seen.attributes == {"org_units": [{"id": "O6uvpzGd5pu", "name": "Bo",
                                              "path": "/ImspTQPwCqd/O6uvpzGd5pu"}]}
    assert seen.remarks == []


def test_sec_48_sec_49_bad_groups_and_attributes_are_cleaned_bounded_and_remarked():
    seen = attributes.clean(identity(
        groups=[Group("ok\x00\x1b[31m", "name\r\n\x7fhere"), Group(42, "number"), Group(None), "a string",
                Group("i" * 1000, "n" * 1000)] + [Group(f"g{n}") for n in range(2000)],
        attributes={"roles": "not a list", "Bad Name": (Attribute("x"),), 7: (),
                    **{f"a{n}": () for n in range(30)}},
        remarks=("plugin says", 12)))
    assert seen.groups[0] == {"id": "ok[31m", "name": "namehere"}
    assert seen.groups[1] == {"id": "i" * attributes.MAX_ID, "name": "n" * attributes.MAX_NAME}
    assert len(seen.groups) == attributes.MAX_GROUPS
    assert seen.attributes["roles"] == [] and "Bad Name" not in seen.attributes
    assert len(seen.attributes) == attributes.MAX_ATTRIBUTES
    remarks = "; ".join(seen.remarks)
    assert "plugin says" in remarks and "groups: 1505 unusable or beyond 500 left out" in remarks
    assert "'Bad Name' left out" in remarks and "attributes beyond 20 left out" in remarks


# -- the OpenID Connect plugin's groups claim ---------------------------------------------------------------
@pytest.fixture
def app(app_factory):
    return app_factory(PUBLIC_URL=PUBLIC)


@pytest.fixture
def server():
    with requests_mock.Mocker() as mock:
        yield Server(mock)


def stored(app, slug="health"):
    with app.app_context():
        return attributes.as_dict(db.session.scalars(select(ExternalIdentity).where(
            ExternalIdentity.provider_id == IdentityProvider.by_slug(slug).id)).one())


def last_login(app):
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "login")
                                   .order_by(AuditEvent.id.desc())).first()
        return event.outcome, event.detail


@pytest.mark.parametrize("value, names, remark", [
    (["Malaria programme", "Data managers"], ["Malaria programme", "Data managers"], None),
    ("Malaria programme", ["Malaria programme"], None),
    (["ok", 7, {"x": 1}, None], ["ok"], "groups: 3 unusable"),
    ({"Malaria programme": True}, [], "'groups' claim is a dict"),
    (42, [], "'groups' claim is a int"),
], ids=["list", "one-string", "mixed-list", "object", "number"])
def test_sec_48_groups_claim_maps_names_and_ignores_other_shapes_with_an_audit_detail(app, client, server, make_user,
                                                                               value, names, remark):
    make_user("alice", password=None)
    register(app)
    server.claims = {"groups": value}
    response = oidc_login(client, server)
    assert response.status_code == 302 and client.get("/").status_code == 200
    said = stored(app)
    assert [g["name"] for g in said["groups"]] == names and all(g["id"] == g["name"] for g in said["groups"])
    outcome, detail = last_login(app)
    assert outcome == "success" and (remark in detail if remark else detail is None)


def test_custom_groups_claim_and_an_empty_setting_takes_none(app, client, server, make_user):
    make_user("alice", password=None)
    register(app, groups_claim="roles")
    server.claims = {"roles": ["editor"], "groups": ["ignored"]}
    oidc_login(client, server)
    assert [g["name"] for g in stored(app)["groups"]] == ["editor"]
    register(app, slug="plain", groups_claim="")
    AuthActions(client).logout()
    oidc_login(client, server, slug="plain")
    assert stored(app, "plain")["groups"] == [] and stored(app, "plain")["seen_at"] is not None


# -- where an administrator reads them ----------------------------------------------------------------------
def test_user_screen_and_users_show_list_what_each_provider_said_and_when(app, client, server, make_user):
    user_id = make_user("alice", password=None)
    register(app)
    server.claims = {"groups": ["Malaria programme", "<script>x</script>"]}
    oidc_login(client, server)
    AuthActions(client).logout()
    make_user("root", is_admin=True)
    AuthActions(client).login("root")
    html = client.get(f"/admin/users/{user_id}").get_data(as_text=True)
    section = html.split('id="provider-attributes"', 1)[1]
    assert "Malaria programme" in section and "&lt;script&gt;x&lt;/script&gt;" in section
    assert "<script>x" not in html and "Health ID" in section
    result = app.test_cli_runner().invoke(args=["users", "show", "alice", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)["identities"][0]
    assert shown["provider"] == "health" and shown["attributes_seen_at"]
    assert [g["name"] for g in shown["groups"]] == ["Malaria programme", "<script>x</script>"]
    text = app.test_cli_runner().invoke(args=["users", "show", "alice"]).output
    assert "groups: Malaria programme, <script>x</script>" in text
    assert "No user named 'nobody'" in app.test_cli_runner().invoke(args=["users", "show", "nobody"]).output


def test_user_screen_says_nothing_yet_before_a_login_states_anything(app, admin_client, make_user):
    """A binding made before migration 0010 (attributes_seen_at empty) reads as "nothing yet"."""
    user_id = make_user("alice", password=None)
    register(app)
    with app.app_context():
        db.session.add(ExternalIdentity(user_id=user_id, provider_id=IdentityProvider.by_slug("health").id,
                                        subject="s-1"))
        db.session.commit()
    html = admin_client.get(f"/admin/users/{user_id}").get_data(as_text=True)
    assert "Nothing yet: the next login through this provider will show it." in html
