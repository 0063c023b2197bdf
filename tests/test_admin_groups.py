"""The administrators' "Groups" screens (issue 18): list, add, edit, delete with a confirmation naming what goes,
members by hand, mappings (helped by the provider groups geologin has seen), members through mappings; the
user screen's groups with their sources and the provider screen's "all of its groups" box. Bad input is the
form again (400) with the message and nothing saved; every form carries a CSRF token."""
import html
import json

import pytest
from sqlalchemy import func, select

from geologin.extensions import db
from geologin.groups import service
from geologin.models import (ExternalIdentity, Group, GroupMapping, GroupMember, IdentityProvider,
                             ProviderGroup, User)
from tests.conftest import post_form
from tests.test_groups import HIV, MALARIA, make_provider


def _text(response):
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def setup(app, make_user):
    """alice and bob; provider moh where bob's last login said he is in the Malaria and HIV programmes."""
    for name in ("alice", "bob"):
        make_user(name)
    with app.app_context():
        provider = make_provider()
        db.session.add(ExternalIdentity(user_id=User.by_username("bob").id, provider_id=provider.id, subject="b1",
                                        subject_scheme="dhis2-uid", external_username="bob",
                                        groups_json=json.dumps([MALARIA, HIV])))
        db.session.commit()
        return {"provider_id": provider.id}


def _group(app, name="Malaria"):
    with app.app_context():
        return service.create(name, actor="test").id


def _state(app):
    with app.app_context():
        db.session.expire_all()
        return ([(g.name, g.description) for g in db.session.scalars(select(Group).order_by(Group.id))],
                db.session.scalar(select(func.count()).select_from(GroupMember)),
                [(m.external_id, m.external_name) for m in db.session.scalars(select(GroupMapping))])


def test_add_list_and_edit_a_group(admin_client, app, setup):
    assert "Groups" in _text(admin_client.get("/admin/users"))
    response = post_form(admin_client, "/admin/groups/new", {"name": " Malaria ", "description": "Officers"})
    assert response.status_code == 302
    with app.app_context():
        group_id = Group.by_name("Malaria").id
    assert response.headers["Location"].endswith(f"/admin/groups/{group_id}")
    listing = _text(admin_client.get("/admin/groups"))
    assert "Malaria" in listing and "Officers" in listing and "1 group" in listing
    assert "No group matches." in _text(admin_client.get("/admin/groups?q=zzz"))
    url = f"/admin/groups/{group_id}"
    assert post_form(admin_client, url, {"name": "Malaria programme", "description": ""}).status_code == 302
    assert _state(app)[0] == [("Malaria programme", "")]


@pytest.mark.parametrize("name, says", [("a,b", "without commas or colons"), ("moh:x", "without commas or colons"),
                                        ("", "Give the group a name."), ("HIV", "already exists")])
def test_bad_names_show_the_form_again_and_save_nothing(admin_client, app, setup, name, says):
    group_id = _group(app)
    _group(app, "HIV")
    before = _state(app)
    for url in ("/admin/groups/new", f"/admin/groups/{group_id}"):
        response = post_form(admin_client, url, {"name": name, "description": "x"})
        assert response.status_code == 400 and says in _text(response)
        assert _state(app) == before


def test_members_by_hand_added_all_or_nothing_and_removed_ticked(admin_client, app, setup):
    group_id = _group(app)
    url = f"/admin/groups/{group_id}"
    refused = post_form(admin_client, url + "/members/add", {"usernames": "alice\nzed"}, page=url)
    assert refused.status_code == 400 and "zed" in _text(refused)
    assert _state(app)[1] == 0
    assert post_form(admin_client, url + "/members/add", {"usernames": "alice\nbob\n"}, page=url).status_code == 302
    page = _text(admin_client.get(url))
    assert "alice" in page and "2 users" in page
    with app.app_context():
        alice = User.by_username("alice").id
    response = post_form(admin_client, url + "/members/remove", {"user_ids": [str(alice)]}, page=url)
    assert response.status_code == 302
    with app.app_context():
        assert [m.user.username for m in db.session.scalars(select(GroupMember))] == ["bob"]
    nothing = post_form(admin_client, url + "/members/remove", {}, page=url, follow_redirects=True)
    assert "Tick the members to remove first." in _text(nothing)


def test_mappings_offer_seen_groups_and_show_members_through_them(admin_client, app, setup):
    group_id = _group(app)
    url = f"/admin/groups/{group_id}"
    page = _text(admin_client.get(url))
    assert f'<option value="{MALARIA["id"]}">Malaria programme (moh)</option>' in page
    response = post_form(admin_client, url + "/mappings/add",
                         {"provider_id": str(setup["provider_id"]), "external_id": MALARIA["id"],
                          "external_name": ""}, page=url)
    assert response.status_code == 302
    assert _state(app)[2] == [(MALARIA["id"], "Malaria programme")]  # the seen name, when none typed
    page = _text(admin_client.get(url))
    assert "Members through mappings" in page and "group Malaria programme at moh" in page
    assert "/admin/users/" in page.split("Members through mappings")[1]
    with app.app_context():
        mapping_id = db.session.scalar(select(GroupMapping.id))
        bob = User.by_username("bob").id
    user_page = _text(admin_client.get(f"/admin/users/{bob}"))
    assert f'href="/admin/groups/{group_id}"' in user_page and "group Malaria programme at moh" in user_page
    assert post_form(admin_client, f"{url}/mappings/{mapping_id}/remove", {}, page=url).status_code == 302
    assert _state(app)[2] == []
    assert "is in no group" in _text(admin_client.get(f"/admin/users/{bob}"))


@pytest.mark.parametrize("data, says", [
    ({"external_id": "  "}, "Give the id of the group at MOH"),
    ({"external_id": "x" * 256}, "at most 255 characters"),
    ({"provider_id": "99999"}, "Choose an identity provider from the list."),
    ({"provider_id": "nope"}, ""),
])
def test_bad_mappings_show_the_form_again_and_save_nothing(admin_client, app, setup, data, says):
    group_id = _group(app)
    url = f"/admin/groups/{group_id}"
    before = _state(app)
    form = {"provider_id": str(setup["provider_id"]), "external_id": "abc", "external_name": "", **data}
    response = post_form(admin_client, url + "/mappings/add", form, page=url)
    assert response.status_code == 400 and says in _text(response)
    assert _state(app) == before


def test_delete_confirmation_names_what_goes(admin_client, app, setup):
    group_id = _group(app)
    with app.app_context():
        group = db.session.get(Group, group_id)
        provider = db.session.get(IdentityProvider, setup["provider_id"])
        service.add_members(group, [User.by_username("alice")])
        service.add_mapping(group, provider, MALARIA["id"], "Malaria programme")
        db.session.add(ProviderGroup(provider_id=provider.id, group_id=group.id, purpose="access"))
        db.session.commit()
    url = f"/admin/groups/{group_id}/delete"
    page = _text(admin_client.get(url))
    assert "2 people are in it now" in page and "1 member added by hand is removed." in page
    assert "The mapping of group Malaria programme at MOH is removed." in page
    assert "MOH no longer admits it (its members may log in through it)." in page
    assert admin_client.post(url).status_code == 400  # no CSRF token: nothing deleted
    assert _state(app)[0] == [("Malaria", "")]
    assert post_form(admin_client, url, {}).status_code == 302
    assert _state(app) == ([], 0, [])
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ProviderGroup)) == 0


def test_provider_screen_turns_prefixed_groups_on(admin_client, app, setup):
    url = "/admin/providers/moh/edit"
    page = _text(admin_client.get(url))
    assert "All of its groups are geologin groups too" in page
    data = {"label": "MOH", "description": "", "enabled": "y", "groups_prefixed": "y",
            "base_url": "https://dhis2.example.org/", "client_id": "geologin", "generation": "legacy"}
    response = post_form(admin_client, url, data)
    assert response.status_code == 302, _text(response)
    with app.app_context():
        assert IdentityProvider.by_slug("moh").groups_prefixed
        bob = User.by_username("bob").id
    assert "moh:Malaria programme" in _text(admin_client.get(f"/admin/users/{bob}"))


def test_groups_screens_are_for_administrators_only(client, auth, app, setup):
    group_id = _group(app)
    assert auth.login("alice").status_code == 302
    for url in ("/admin/groups", f"/admin/groups/{group_id}", f"/admin/groups/{group_id}/delete"):
        assert client.get(url).status_code == 403
