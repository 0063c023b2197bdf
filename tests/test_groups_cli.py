"""The ``groups`` commands, ``providers edit --groups-prefixed`` and the groups of ``users show``: what they
print (with where each membership comes from), and refusals in one line with nothing changed."""
import json

import pytest
from sqlalchemy import func, select

from geologin.extensions import db
from geologin.models import (Application, ApplicationGroup, AuditEvent, ExternalIdentity, Group, GroupMapping,
                             GroupMember, IdentityProvider, ProviderGroup, User)
from tests.test_groups import MALARIA, make_provider


@pytest.fixture
def runner(app, make_user):
    for name in ("alice", "bob"):
        make_user(name)
    with app.app_context():
        provider = make_provider()
        db.session.add(ExternalIdentity(user_id=User.by_username("bob").id, provider_id=provider.id, subject="b1",
                                        subject_scheme="dhis2-uid", external_username="bob",
                                        groups_json=json.dumps([MALARIA])))
        db.session.commit()
    return app.test_cli_runner()


def _run(runner, *args):
    return runner.invoke(args=list(args))


def _ok(runner, *args):
    result = _run(runner, *args)
    assert result.exit_code == 0, result.output
    return result.output


def _refused(runner, *args):
    result = _run(runner, *args)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    return result.output


def _snapshot(app):
    with app.app_context():
        db.session.expire_all()
        return [db.session.scalar(select(func.count()).select_from(model))
                for model in (Group, GroupMember, GroupMapping)] + [
            [(g.name, g.description) for g in db.session.scalars(select(Group).order_by(Group.id))]]


def test_add_list_show_members_with_their_sources(runner, app):
    assert "Created group Malaria." in _ok(runner, "groups", "add", "Malaria", "--description", "Officers")
    assert "Added 1 member(s)" in _ok(runner, "groups", "add-member", "Malaria", "alice")
    assert "Mapped group wl5cDMuUhmF of moh to Malaria." in _ok(
        runner, "groups", "map", "Malaria", "--provider", "moh", "--external-id", MALARIA["id"],
        "--external-name", "Malaria programme")
    assert json.loads(_ok(runner, "groups", "list", "--json")) == [
        {"name": "Malaria", "description": "Officers", "members": 2,
         "created_at": json.loads(_ok(runner, "groups", "list", "--json"))[0]["created_at"]}]
    assert "Malaria      2 member(s)  Officers" in _ok(runner, "groups", "list")
    with app.app_context():
        group = Group.by_name("Malaria")
        application = Application(name="Superset", client_id="superset", redirect_uris_json="[]")
        db.session.add(application)
        db.session.flush()
        db.session.add(ApplicationGroup(application_id=application.id, group_id=group.id))
        db.session.add(ProviderGroup(provider_id=IdentityProvider.by_slug("moh").id, group_id=group.id,
                                     purpose="access"))
        db.session.commit()
    shown = json.loads(_ok(runner, "groups", "show", "Malaria", "--json"))
    assert shown["members"] == [
        {"username": "alice", "sources": ["by hand"]},
        {"username": "bob", "sources": ["provider moh group Malaria programme (wl5cDMuUhmF)"]}]
    assert shown["mappings"] == [{"provider": "moh", "external_id": MALARIA["id"],
                                  "external_name": "Malaria programme"}]
    assert shown["providers"] == [{"provider": "moh", "purpose": "access"}]
    assert shown["applications"] == ["Superset"]
    text = _ok(runner, "groups", "show", "Malaria")
    assert "bob: provider moh group Malaria programme (wl5cDMuUhmF)" in text
    assert "provider moh: a member may log in through it" in text and "application Superset" in text
    user = json.loads(_ok(runner, "users", "show", "bob", "--json"))
    assert user["groups"] == [{"name": "Malaria",
                               "sources": ["provider moh group Malaria programme (wl5cDMuUhmF)"]}]
    assert "group Malaria: by hand" in _ok(runner, "users", "show", "alice")


def test_edit_remove_member_unmap_and_remove(runner, app):
    _ok(runner, "groups", "add", "Malaria")
    _ok(runner, "groups", "add-member", "Malaria", "alice", "bob")
    _ok(runner, "groups", "map", "Malaria", "--provider", "moh", "--external-id", MALARIA["id"])
    assert "Note: still in Malaria through a mapping: bob." in _ok(
        runner, "groups", "remove-member", "Malaria", "alice", "bob")
    assert "Updated Malaria programme: name Malaria -> Malaria programme; description." in _ok(
        runner, "groups", "edit", "Malaria", "--name", "Malaria programme", "--description", "x")
    assert "Nothing changed" in _ok(runner, "groups", "edit", "Malaria programme", "--description", "x")
    _ok(runner, "groups", "unmap", "Malaria programme", "--provider", "moh", "--external-id", MALARIA["id"])
    assert json.loads(_ok(runner, "groups", "show", "Malaria programme", "--json"))["members"] == []
    assert "add --yes" in _refused(runner, "groups", "remove", "Malaria programme")
    assert _snapshot(app)[0] == 1
    assert "Removed group Malaria programme." in _ok(runner, "groups", "remove", "Malaria programme", "--yes")
    assert _snapshot(app) == [0, 0, 0, []]
    with app.app_context():
        events = list(db.session.scalars(select(AuditEvent.event_type).where(AuditEvent.actor == "cli")
                                         .order_by(AuditEvent.id)))
    assert events == ["group.create", "group.member_add", "group.map", "group.member_remove", "group.edit",
                      "group.unmap", "group.delete"]


@pytest.mark.parametrize("args, says", [
    (("groups", "add", "a,b"), "without commas or colons"),
    (("groups", "add", "moh:x"), "without commas or colons"),
    (("groups", "add", "Malaria"), "already exists"),
    (("groups", "show", "Nope"), "No group named 'Nope'"),
    (("groups", "edit", "Malaria", "--name", "HIV"), "already exists"),
    (("groups", "add-member", "Malaria", "alice", "zed"), "No user named 'zed'"),
    (("groups", "remove-member", "Nope", "alice"), "No group named"),
    (("groups", "map", "Malaria", "--provider", "nope", "--external-id", "x"), "No identity provider"),
    (("groups", "map", "Malaria", "--provider", "moh", "--external-id", " "), "Give the id of the group"),
    (("groups", "unmap", "Malaria", "--provider", "moh", "--external-id", "x"), "has no mapping"),
])
def test_refusals_are_one_line_and_change_nothing(runner, app, args, says):
    _ok(runner, "groups", "add", "Malaria")
    _ok(runner, "groups", "add", "HIV")
    before = _snapshot(app)
    assert says in _refused(runner, *args)
    assert _snapshot(app) == before


def test_providers_edit_turns_prefixed_groups_on_and_off(runner, app):
    assert "Updated moh: groups_prefixed." in _ok(runner, "providers", "edit", "moh", "--groups-prefixed")
    assert json.loads(_ok(runner, "providers", "show", "moh", "--json"))["groups_prefixed"] is True
    assert "all of its groups as moh:NAME: yes" in _ok(runner, "providers", "show", "moh")
    assert json.loads(_ok(runner, "users", "show", "bob", "--json"))["groups"] == [
        {"name": "moh:Malaria programme", "sources": ["provider moh group Malaria programme (wl5cDMuUhmF)"]}]
    _ok(runner, "providers", "edit", "moh", "--no-groups-prefixed")
    assert json.loads(_ok(runner, "users", "show", "bob", "--json"))["groups"] == []
    with app.app_context():
        details = list(db.session.scalars(select(AuditEvent.detail).where(AuditEvent.event_type ==
                                                                          "provider.update")))
    assert details == ["changed: groups_prefixed"] * 2
