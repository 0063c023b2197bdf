"""Which geologin groups a person is in, and why: by hand (GroupMember), or because the last login through
a provider said they are in a group mapped to it (GroupMapping), or every group of a provider that gives all
of its groups as "<slug>:<name>". Computed when asked, so a changed mapping counts at once."""
import json
from dataclasses import dataclass, field

from blinker import Namespace
from sqlalchemy import select

from ..extensions import db
from ..models import ExternalIdentity, Group, GroupMapping, GroupMember, IdentityProvider

# Sent with ``user_ids`` (a set) after a change that may have taken groups away from those users (a member
# removed, a mapping or group deleted, a login through a provider that no longer lists a group), once the
# change is committed. The OpenID provider listens: it ends what the users may no longer use.
membership_changed = Namespace().signal("membership-changed")

PREFIX_SEPARATOR = ":"
MAX_PREFIXED = 200


@dataclass(frozen=True)
class Source:
    """Why a person is in a group: ``provider`` is None for a hand-made membership, else the provider's slug
    and the provider's group (id and name) the membership comes from."""

    provider: str | None = None
    external_id: str | None = None
    external_name: str | None = None


@dataclass
class Membership:
    """One group of a person. ``group_id`` is None for a provider's group given as "<slug>:<name>"."""

    name: str
    group_id: int | None
    sources: list = field(default_factory=list)


def prefixed_name(slug, external_name):
    """The name of a provider's group given as is: its slug, a colon, its name (no comma: Remote-Groups is a
    comma-separated list)."""
    return f"{slug}{PREFIX_SEPARATOR}{external_name.replace(',', ' ')}"[:MAX_PREFIXED]


def of(user, fresh=None):
    """``user``'s groups as Memberships ordered by name. ``fresh`` maps a provider id to the groups a login
    through it has just stated (cleaned, as in idp.attributes), which replace what was stored for it."""
    found = {}

    def add(name, group_id, source):
        found.setdefault(name, Membership(name, group_id)).sources.append(source)

    for group_id, name in db.session.execute(
            select(Group.id, Group.name).join(GroupMember, GroupMember.group_id == Group.id)
            .where(GroupMember.user_id == user.id)):
        add(name, group_id, Source())
    stated = {provider_id: (slug, prefixed, _load(groups_json))
              for provider_id, slug, prefixed, groups_json in db.session.execute(
                  select(ExternalIdentity.provider_id, IdentityProvider.slug, IdentityProvider.groups_prefixed,
                         ExternalIdentity.groups_json)
                  .join(IdentityProvider, IdentityProvider.id == ExternalIdentity.provider_id)
                  .where(ExternalIdentity.user_id == user.id))}
    for provider_id, groups in (fresh or {}).items():
        if provider_id in stated:
            slug, prefixed, _ = stated[provider_id]
            stated[provider_id] = (slug, prefixed, groups)
        else:
            provider = db.session.get(IdentityProvider, provider_id)
            stated[provider_id] = (provider.slug, provider.groups_prefixed, groups)
    for name, group_id, source in _from_statements(stated):
        add(name, group_id, source)
    return sorted(found.values(), key=lambda membership: membership.name)


def from_provider(provider, groups):
    """The Memberships a person would have from ``groups`` just stated by ``provider`` alone (someone without
    an account yet)."""
    found = {}
    for name, group_id, source in _from_statements({provider.id: (provider.slug, provider.groups_prefixed,
                                                                  groups)}):
        found.setdefault(name, Membership(name, group_id)).sources.append(source)
    return sorted(found.values(), key=lambda membership: membership.name)


def _from_statements(stated):
    """(group name, group id or None, Source) for every group the providers' statements put a person in;
    ``stated`` maps a provider id to (slug, groups_prefixed, [{id, name}, ...])."""
    if not stated:
        return
    mapped = {}
    for provider_id, external_id, external_name, group_id, name in db.session.execute(
            select(GroupMapping.provider_id, GroupMapping.external_id, GroupMapping.external_name, Group.id,
                   Group.name).join(Group, Group.id == GroupMapping.group_id)
            .where(GroupMapping.provider_id.in_(stated))):
        mapped.setdefault((provider_id, external_id), []).append((group_id, name))
    for provider_id, (slug, prefixed, groups) in stated.items():
        for group in groups:
            source = Source(slug, group["id"], group.get("name") or group["id"])
            for group_id, name in mapped.get((provider_id, group["id"]), ()):
                yield name, group_id, source
            if prefixed:
                yield prefixed_name(slug, source.external_name), None, source


def names(user):
    """The names applications see: the ``groups`` claim, the Remote-Groups header."""
    return [membership.name for membership in of(user)]


def group_ids(user, fresh=None):
    return {membership.group_id for membership in of(user, fresh) if membership.group_id is not None}


def _load(text):
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return [g for g in value if isinstance(g, dict) and isinstance(g.get("id"), str)] if isinstance(value, list) \
        else []
