"""Who may log in through a provider (one by one, or every active non-administrator), and the external
accounts bound to local users."""
from sqlalchemy import delete, select

from .. import audit
from ..extensions import db
from ..login.sessions import end_user_sessions_via
from ..models import ExternalIdentity, User, UserProviderPermission
from .cache import ordered_instances


def is_allowed(user, instance):
    """Whether ``user`` may log in through ``instance``. "Every active user" never covers an administrator:
    whoever runs the server could name an account like a local administrator (issue 14 item 3)."""
    if instance.allow_all_users and not user.is_admin:
        return True
    return db.session.get(UserProviderPermission, (user.id, instance.id)) is not None


def allowed_instance_ids(user):
    return set(db.session.scalars(select(UserProviderPermission.provider_id)
                                  .where(UserProviderPermission.user_id == user.id)))


def allow(users, instance, *, actor=None):
    """Let ``users`` log in through ``instance``; returns the usernames newly allowed."""
    already = set(db.session.scalars(select(UserProviderPermission.user_id)
                                     .where(UserProviderPermission.provider_id == instance.id)))
    added = []
    for user in users:
        if user.id not in already:
            db.session.add(UserProviderPermission(user_id=user.id, provider_id=instance.id))
            already.add(user.id)
            added.append(user.username)
    if added:
        audit.record("permission.grant", target=", ".join(added)[:255], provider=instance.slug, actor=actor,
                     commit=False, detail=f"{len(added)} user(s)")
    db.session.commit()
    return added


def disallow(users, instance, *, actor=None):
    """Withdraw the permission; sessions that came through this instance end at their next request."""
    removed = []
    for user in users:
        row = db.session.get(UserProviderPermission, (user.id, instance.id))
        if row is not None:
            db.session.delete(row)
            end_user_sessions_via(user, instance.slug, commit=False)
            removed.append(user.username)
    if removed:
        audit.record("permission.revoke", target=", ".join(removed)[:255], provider=instance.slug, actor=actor,
                     commit=False, detail=f"{len(removed)} user(s)")
    db.session.commit()
    return removed


def set_user_permissions(user, instance_ids, *, actor=None):
    """Make ``user``'s allowed instances exactly ``instance_ids`` (the user screen's checkboxes)."""
    wanted = set(instance_ids)
    current = allowed_instance_ids(user)
    instances = {i.id: i for i in ordered_instances()}
    for instance_id in wanted - current:
        if instance_id in instances:
            allow([user], instances[instance_id], actor=actor)
    for instance_id in current - wanted:
        disallow([user], instances[instance_id], actor=actor)


def allowed_users(instance):
    return list(db.session.scalars(
        select(User).join(UserProviderPermission, UserProviderPermission.user_id == User.id)
        .where(UserProviderPermission.provider_id == instance.id).order_by(User.username)))


def identities_of(user):
    return list(db.session.scalars(select(ExternalIdentity).where(ExternalIdentity.user_id == user.id)
                                   .order_by(ExternalIdentity.provider_id)))


def unlink(user, instance, *, actor=None):
    """Forget the bound external account, so the next successful login binds afresh."""
    result = db.session.execute(delete(ExternalIdentity).where(ExternalIdentity.user_id == user.id,
                                                               ExternalIdentity.provider_id == instance.id))
    if result.rowcount:
        audit.record("identity.unlink", target=user.username, provider=instance.slug, actor=actor, commit=False)
    db.session.commit()
    return bool(result.rowcount)
