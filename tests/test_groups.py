"""Groups in geologin (issue 18): who is in a group and why (by hand, through a mapping of a provider's group,
or every group of a provider as "<slug>:<name>"), what changing a group does at once, and the signal that lets
applications end what a person may no longer use. The screens and commands are tested in test_admin_groups.py
and test_groups_cli.py."""
import json

import pytest
from sqlalchemy import func, select

from geologin import idp
from geologin.extensions import db
from geologin.groups import membership, service
from geologin.models import (AuditEvent, ExternalIdentity, Group, GroupMapping, GroupMember, IdentityProvider, User)

MALARIA = {"id": "wl5cDMuUhmF", "name": "Malaria programme"}
HIV = {"id": "Kk12LkEWtXp", "name": "HIV programme"}


def make_provider(slug="moh"):
    return idp.create_provider("dhis2", slug=slug, label=slug.upper(), actor="test",
                               settings={"base_url": "https://dhis2.example.org/", "client_id": "geologin",
                                         "generation": "legacy"},
                               secrets={"client_secret": "Zq8-not-shown-anywhere-0123456789abcd"})


def bind(user, provider, groups, subject=None):
    """What a login through ``provider`` leaves: the binding with the groups it stated."""
    db.session.add(ExternalIdentity(user_id=user.id, provider_id=provider.id, subject=subject or user.username,
                                    subject_scheme="dhis2-uid", external_username=user.username,
                                    groups_json=json.dumps(groups)))
    db.session.commit()


def user(name):
    return User.by_username(name)


@pytest.fixture
def ctx(app, make_user):
    for name in ("alice", "bob", "carol"):
        make_user(name)
    with app.app_context():
        yield


@pytest.fixture
def changes():
    """The user ids every membership_changed signal carried, in order."""
    seen = []

    def receive(sender, user_ids):
        seen.append(user_ids)

    membership.membership_changed.connect(receive)
    yield seen
    membership.membership_changed.disconnect(receive)


def test_local_members_are_in_the_group_by_hand(ctx):
    group = service.create("Malaria programme", "District officers")
    assert service.add_members(group, [user("alice"), user("bob"), user("alice")], actor="test") == ["alice", "bob"]
    assert service.add_members(group, [user("alice")], actor="test") == []
    assert membership.names(user("alice")) == ["Malaria programme"]
    assert membership.of(user("alice"))[0].sources == [membership.Source()]
    assert membership.names(user("carol")) == []
    assert [(u.username, s) for u, s in service.members(group)] == [("alice", [membership.Source()]),
                                                                     ("bob", [membership.Source()])]


def test_a_mapping_counts_at_once_for_what_the_last_login_stated(ctx):
    provider = make_provider()
    bind(user("alice"), provider, [MALARIA, HIV])
    bind(user("bob"), provider, [HIV])
    group = service.create("Malaria")
    assert service.member_ids(group) == set()
    service.add_mapping(group, provider, MALARIA["id"], "Malaria programme", actor="test")
    assert service.member_ids(group) == {user("alice").id}
    [item] = membership.of(user("alice"))
    assert (item.name, item.group_id) == ("Malaria", group.id)
    assert item.sources == [membership.Source("moh", MALARIA["id"], "Malaria programme")]
    assert membership.names(user("bob")) == []


def test_a_person_in_a_group_by_hand_and_by_mapping_has_both_sources(ctx):
    provider = make_provider()
    bind(user("alice"), provider, [MALARIA])
    group = service.create("Malaria")
    service.add_members(group, [user("alice")])
    service.add_mapping(group, provider, MALARIA["id"])
    [item] = membership.of(user("alice"))
    assert item.sources == [membership.Source(), membership.Source("moh", MALARIA["id"], "Malaria programme")]
    service.remove_members(group, [user("alice")])
    assert membership.of(user("alice"))[0].sources == [membership.Source("moh", MALARIA["id"], "Malaria programme")]


def test_a_prefixed_provider_gives_every_group_as_slug_colon_name(ctx):
    provider = make_provider()
    bind(user("alice"), provider, [MALARIA, {"id": "x1", "name": "A, B"}])
    assert membership.names(user("alice")) == []
    idp.update_provider(provider, groups_prefixed=True, actor="test")
    assert membership.names(user("alice")) == ["moh:A  B", "moh:Malaria programme"]
    assert {m.group_id for m in membership.of(user("alice"))} == {None}
    assert db.session.scalar(select(func.count()).select_from(Group)) == 0  # not stored: computed when asked


def test_turning_prefixed_groups_off_signals_the_bound_users(ctx, changes):
    provider = make_provider()
    bind(user("alice"), provider, [MALARIA])
    idp.update_provider(provider, groups_prefixed=True, actor="test")
    assert changes == []
    assert idp.update_provider(provider, groups_prefixed=False, actor="test") == ["groups_prefixed"]
    assert changes == [{user("alice").id}]
    assert membership.names(user("alice")) == []


def test_rename_is_seen_at_once_and_audited(ctx):
    group = service.create("Malaria")
    service.add_members(group, [user("alice")])
    assert service.edit(group, name="Malaria programme", description="Officers", actor="root") == [
        "name Malaria -> Malaria programme", "description"]
    assert membership.names(user("alice")) == ["Malaria programme"]
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.event_type == "group.edit"))
    assert (event.actor, event.target) == ("root", "Malaria programme")


@pytest.mark.parametrize("name", ["", "   ", "a,b", "prov:group", "x" * 101, "tab\there", "new\nline"])
def test_bad_names_are_refused_with_nothing_saved(ctx, name):
    with pytest.raises(service.GroupError) as refused:
        service.create(name)
    assert refused.value.field == "name" and refused.value.message
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Group)) == 0
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.event_type.like("group.%"))) == 0


def test_a_taken_name_or_bad_rename_changes_nothing(ctx):
    service.create("Malaria")
    other = service.create("HIV")
    with pytest.raises(service.GroupError, match="already exists"):
        service.create("Malaria")
    db.session.rollback()
    for name in ("Malaria", "HIV:x"):
        with pytest.raises(service.GroupError):
            service.edit(other, name=name)
        db.session.rollback()
    assert [g.name for g in service.all_groups()] == ["HIV", "Malaria"]


def test_a_bad_external_id_is_refused(ctx):
    provider = make_provider()
    group = service.create("Malaria")
    for external_id in ("", "  ", "x" * 256):
        with pytest.raises(service.GroupError) as refused:
            service.add_mapping(group, provider, external_id)
        assert refused.value.field == "external_id"
        db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(GroupMapping)) == 0


def test_delete_takes_members_mappings_and_signals_every_member(ctx, changes):
    provider = make_provider()
    bind(user("bob"), provider, [MALARIA])
    group = service.create("Malaria")
    service.add_members(group, [user("alice")])
    service.add_mapping(group, provider, MALARIA["id"])
    service.remove(group, actor="root")
    assert changes == [{user("alice").id, user("bob").id}]
    assert Group.by_name("Malaria") is None
    assert db.session.scalar(select(func.count()).select_from(GroupMember)) == 0
    assert db.session.scalar(select(func.count()).select_from(GroupMapping)) == 0
    assert membership.names(user("alice")) == membership.names(user("bob")) == []
    assert db.session.get(IdentityProvider, provider.id) is not None


def test_remove_member_signals_only_those_removed(ctx, changes):
    group = service.create("Malaria")
    service.add_members(group, [user("alice"), user("bob")])
    assert changes == []  # adding takes nothing away
    assert service.remove_members(group, [user("alice"), user("carol")]) == ["alice"]
    assert changes == [{user("alice").id}]
    service.remove_members(group, [user("carol")])
    assert changes == [{user("alice").id}]  # nobody removed: no signal


def test_unmap_signals_the_members_through_it(ctx, changes):
    provider = make_provider()
    bind(user("alice"), provider, [MALARIA])
    bind(user("bob"), provider, [HIV])
    group = service.create("Malaria")
    mapping = service.add_mapping(group, provider, MALARIA["id"])
    service.remove_mapping(mapping, actor="root")
    assert changes == [{user("alice").id}]
    assert membership.names(user("alice")) == []
