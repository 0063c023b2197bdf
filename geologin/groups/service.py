"""Changing groups: create, describe, remove, members by hand, and mappings from a provider's groups. One
service for the admin screens and the CLI; every change is audited, and a change that may take a group away
from someone tells the applications (membership.membership_changed) once committed."""
import re

from flask_babel import gettext as _
from sqlalchemy import select

from .. import audit
from ..extensions import db
from ..models import ExternalIdentity, Group, GroupMapping, GroupMember, User
from . import membership

MAX_NAME = 100
MAX_DESCRIPTION = 2000
# Printable, one line; no comma (Remote-Groups is a comma-separated list) and no colon (kept for the groups a
# provider gives as "<slug>:<name>", which must never be mistaken for a local group).
NAME = re.compile(r"[^\x00-\x1f\x7f-\x9f,:]{1,100}")


class GroupError(ValueError):
    """A change geologin refuses, with a message saying what to do instead; nothing was saved. ``field``
    names the input at fault (name, description, users, external_id)."""

    def __init__(self, message, field=None):
        super().__init__(str(message))
        self.message = str(message)
        self.field = field


def all_groups():
    return list(db.session.scalars(select(Group).order_by(Group.name)))


def _checked_name(name, group=None):
    name = (name or "").strip()
    if not name:
        raise GroupError(_("Give the group a name."), "name")
    if len(name) > MAX_NAME or not NAME.fullmatch(name):
        raise GroupError(_("A group name is at most %(count)d characters on one line, without commas or "
                           "colons.", count=MAX_NAME), "name")
    other = Group.by_name(name)
    if other is not None and other is not group:
        raise GroupError(_("A group called %(name)s already exists.", name=name), "name")
    return name


def _checked_description(description):
    description = (description or "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise GroupError(_("A description is at most %(count)d characters.", count=MAX_DESCRIPTION), "description")
    return description


def create(name, description="", *, actor=None):
    group = Group(name=_checked_name(name), description=_checked_description(description))
    db.session.add(group)
    audit.record("group.create", target=group.name, actor=actor, commit=False)
    db.session.commit()
    return group


def edit(group, *, name=None, description=None, actor=None):
    """Rename or describe ``group``; applications see the new name at their next sign-in or refresh."""
    changes = []
    if name is not None and name.strip() != group.name:
        new = _checked_name(name, group)
        changes.append(f"name {group.name} -> {new}")
        group.name = new
    if description is not None and description.strip() != group.description:
        group.description = _checked_description(description)
        changes.append("description")
    if changes:
        audit.record("group.edit", target=group.name, actor=actor, commit=False, detail="; ".join(changes))
    db.session.commit()
    return changes


def remove(group, *, actor=None):
    """Delete the group with its members, mappings and the access it gave."""
    affected = member_ids(group)
    name = group.name
    db.session.expire(group, ["members", "mappings"])  # lists loaded before a commit may be stale; the database
    db.session.delete(group)                            # deletes the rows (ON DELETE CASCADE)
    audit.record("group.delete", target=name, actor=actor, commit=False, detail=f"{len(affected)} member(s)")
    db.session.commit()
    _changed(affected)


def member_ids(group):
    """Ids of everyone in ``group`` now, by hand or through a mapping (as their last logins said)."""
    ids = set(db.session.scalars(select(GroupMember.user_id).where(GroupMember.group_id == group.id)))
    # Read, not group.mappings: sessions keep objects after a commit, so a loaded list misses a new mapping.
    provider_ids = set(db.session.scalars(select(GroupMapping.provider_id).where(GroupMapping.group_id == group.id)))
    if provider_ids:
        for user in db.session.scalars(select(User).join(ExternalIdentity, ExternalIdentity.user_id == User.id)
                                       .where(ExternalIdentity.provider_id.in_(provider_ids)).distinct()):
            if group.id in membership.group_ids(user):
                ids.add(user.id)
    return ids


def members(group):
    """Everyone in ``group`` with how (Memberships' sources), ordered by username: [(User, [Source])]."""
    ids = member_ids(group)
    users = db.session.scalars(select(User).where(User.id.in_(ids)).order_by(User.username)) if ids else []
    result = []
    for user in users:
        for item in membership.of(user):
            if item.group_id == group.id:
                result.append((user, item.sources))
    return result


def add_members(group, users, *, actor=None):
    """Put ``users`` in ``group`` by hand; returns the usernames newly added."""
    already = set(db.session.scalars(select(GroupMember.user_id).where(GroupMember.group_id == group.id)))
    added = []
    for user in users:
        if user.id not in already:
            db.session.add(GroupMember(group_id=group.id, user_id=user.id))
            already.add(user.id)
            added.append(user.username)
    if added:
        audit.record("group.member_add", target=", ".join(added)[:255], actor=actor, commit=False,
                     detail=f"group {group.name}")
    db.session.commit()
    return added


def remove_members(group, users, *, actor=None):
    """Take ``users`` out of ``group`` (their hand-made membership; a mapping may still put them in)."""
    removed = []
    for user in users:
        row = db.session.get(GroupMember, (group.id, user.id))
        if row is not None:
            db.session.delete(row)
            removed.append(user)
    if removed:
        audit.record("group.member_remove", target=", ".join(u.username for u in removed)[:255], actor=actor,
                     commit=False, detail=f"group {group.name}")
    db.session.commit()
    _changed({user.id for user in removed})
    return [user.username for user in removed]


def add_mapping(group, provider, external_id, external_name="", *, actor=None):
    """Members of the provider's group ``external_id`` are in ``group`` (from their next login through it, or
    at once for those whose last login said so)."""
    external_id = (external_id or "").strip()
    if not external_id or len(external_id) > 255 or membership.PREFIX_SEPARATOR == external_id:
        raise GroupError(_("Give the id of the group at %(label)s (at most 255 characters).",
                           label=provider.label), "external_id")
    existing = db.session.scalar(select(GroupMapping).where(GroupMapping.group_id == group.id,
                                                            GroupMapping.provider_id == provider.id,
                                                            GroupMapping.external_id == external_id))
    if existing is not None:
        return existing
    mapping = GroupMapping(provider_id=provider.id, external_id=external_id,
                           external_name=(external_name or "").strip()[:255])
    group.mappings.append(mapping)  # the loaded group lists it too (sessions keep objects after a commit)
    audit.record("group.map", target=group.name, provider=provider.slug, actor=actor, commit=False,
                 detail=f"{external_id} {mapping.external_name}".strip())
    db.session.commit()
    return mapping


def remove_mapping(mapping, *, actor=None):
    group = mapping.group
    affected = member_ids(group)
    audit.record("group.unmap", target=group.name, provider=mapping.provider.slug, actor=actor, commit=False,
                 detail=mapping.external_id)
    db.session.delete(mapping)
    db.session.commit()
    _changed(affected)


def _changed(user_ids):
    if user_ids:
        membership.membership_changed.send(None, user_ids=set(user_ids))
