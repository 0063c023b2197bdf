"""Who may log in through a provider (one by one, or every active non-administrator), and the external
accounts bound to local users."""
from sqlalchemy import delete, select

from .. import audit
from ..extensions import db
from ..login.sessions import end_user_sessions_via
from ..groups import membership
from ..models import ExternalIdentity, ProviderGroup, User, UserProviderPermission
from . import tokens
from .cache import ordered_providers

ACCESS, CREATE = "access", "create"
CLASH_POLICIES = ("refuse", "link")  # what a create-group member whose username exists here gets


def is_allowed(user, provider, group_ids=None):
    """Whether ``user`` may log in through ``provider``: allowed one by one, or the provider admits every
    active user or members of one of its access groups (``group_ids``: the user's groups as the login being
    judged states them; their stored groups by default). Neither of the last two ever covers an
    administrator: whoever runs the server could name an account like a local administrator (issue 14)."""
    if db.session.get(UserProviderPermission, (user.id, provider.id)) is not None:
        return True
    if user.is_admin:
        return False
    if provider.allow_all_users:
        return True
    access = access_group_ids(provider)
    if not access:
        return False
    return bool(access & (membership.group_ids(user) if group_ids is None else group_ids))


def access_group_ids(provider, purpose=ACCESS):
    """The groups ``provider`` admits for logins (ACCESS) or creates accounts for on first login (CREATE)."""
    return set(db.session.scalars(select(ProviderGroup.group_id).where(ProviderGroup.provider_id == provider.id,
                                                                        ProviderGroup.purpose == purpose)))


def allowed_provider_ids(user):
    return set(db.session.scalars(select(UserProviderPermission.provider_id)
                                  .where(UserProviderPermission.user_id == user.id)))


def allow(users, provider, *, actor=None):
    """Let ``users`` log in through ``provider``; returns the usernames newly allowed."""
    already = set(db.session.scalars(select(UserProviderPermission.user_id)
                                     .where(UserProviderPermission.provider_id == provider.id)))
    added = []
    for user in users:
        if user.id not in already:
            db.session.add(UserProviderPermission(user_id=user.id, provider_id=provider.id))
            already.add(user.id)
            added.append(user.username)
    return _committed("permission.grant", added, provider, actor)


def disallow(users, provider, *, actor=None):
    """Withdraw the permission; sessions that came through this provider end at their next request."""
    removed = []
    for user in users:
        row = db.session.get(UserProviderPermission, (user.id, provider.id))
        if row is not None:
            db.session.delete(row)
            end_user_sessions_via(user, provider.slug, commit=False)
            tokens.forget(user, provider, actor=actor, why="no longer allowed through the provider")
            removed.append(user.username)
    return _committed("permission.revoke", removed, provider, actor)


def _committed(event, usernames, provider, actor):
    """Commit a grant or a revocation with one audit event naming the users it changed (if any)."""
    if usernames:
        audit.record(event, target=", ".join(usernames)[:255], provider=provider.slug, actor=actor, commit=False,
                     detail=f"{len(usernames)} user(s)")
    db.session.commit()
    return usernames


def set_user_permissions(user, provider_ids, *, actor=None):
    """Make ``user``'s allowed providers exactly ``provider_ids`` (the user screen's checkboxes)."""
    wanted = set(provider_ids)
    current = allowed_provider_ids(user)
    providers = {i.id: i for i in ordered_providers()}
    for provider_id in wanted - current:
        if provider_id in providers:
            allow([user], providers[provider_id], actor=actor)
    for provider_id in current - wanted:
        disallow([user], providers[provider_id], actor=actor)


def allowed_users(provider):
    return list(db.session.scalars(
        select(User).join(UserProviderPermission, UserProviderPermission.user_id == User.id)
        .where(UserProviderPermission.provider_id == provider.id).order_by(User.username)))


def identities_of(user):
    return list(db.session.scalars(select(ExternalIdentity).where(ExternalIdentity.user_id == user.id)
                                   .order_by(ExternalIdentity.provider_id)))


def unlink(user, provider, *, actor=None):
    """Forget the bound external account, so the next successful login binds afresh."""
    result = db.session.execute(delete(ExternalIdentity).where(ExternalIdentity.user_id == user.id,
                                                               ExternalIdentity.provider_id == provider.id))
    if result.rowcount:
        audit.record("identity.unlink", target=user.username, provider=provider.slug, actor=actor, commit=False)
    tokens.forget(user, provider, actor=actor, why="unlinked")
    db.session.commit()
    return bool(result.rowcount)


def set_groups(provider, groups, *, purpose=ACCESS, actor=None):
    """Make ``provider``'s access groups (or its "may create an account" groups, CREATE) exactly ``groups``;
    audited, committed. Returns whether anything changed. People no longer admitted are refused at their next
    login through it; their open sessions stay until they end (as with a withdrawn one-by-one permission of
    a group member who logs out)."""
    wanted = {group.id: group for group in groups}
    current = access_group_ids(provider, purpose)
    if set(wanted) == current:
        return False
    db.session.execute(delete(ProviderGroup).where(ProviderGroup.provider_id == provider.id,
                                                   ProviderGroup.purpose == purpose,
                                                   ProviderGroup.group_id.in_(current - set(wanted))))
    for group_id in set(wanted) - current:
        db.session.add(ProviderGroup(provider_id=provider.id, group_id=group_id, purpose=purpose))
    names = ", ".join(sorted(group.name for group in wanted.values())) or "none"
    audit.record("provider.access_groups" if purpose == ACCESS else "provider.account_groups",
                 target=provider.slug, provider=provider.slug, actor=actor, commit=False, detail=names[:2000])
    db.session.commit()
    return True


def set_access_groups(provider, groups, *, actor=None):
    """The groups whose members may log in through ``provider`` (never administrators)."""
    return set_groups(provider, groups, purpose=ACCESS, actor=actor)


def set_create_groups(provider, groups, *, actor=None):
    """The groups whose members get an account on their first login through ``provider``."""
    return set_groups(provider, groups, purpose=CREATE, actor=actor)


def set_account_creation(provider, *, create_accounts=None, account_clash=None, actor=None):
    """Turn account creation on first login on or off and choose what a clashing username does ("refuse" or
    "link"); None keeps the current value. Audited; returns the names of what changed."""
    if account_clash is not None and account_clash not in CLASH_POLICIES:
        raise ValueError(f"account_clash must be one of {', '.join(CLASH_POLICIES)}")
    changed = []
    if create_accounts is not None and bool(create_accounts) != provider.create_accounts:
        provider.create_accounts = bool(create_accounts)
        changed.append("create_accounts")
    if account_clash is not None and account_clash != provider.account_clash:
        provider.account_clash = account_clash
        changed.append("account_clash")
    if changed:
        audit.record("provider.update", target=provider.slug, provider=provider.slug, actor=actor, commit=False,
                     detail=f"changed: {', '.join(changed)} (create_accounts={provider.create_accounts}, "
                            f"account_clash={provider.account_clash})")
        db.session.commit()
    return changed
