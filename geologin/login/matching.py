"""Matching an identity a plugin returned to the local user it may log in as, and binding the provider's
subject to that user on the first success. A provider may also create the account on a first login, or link
an existing account of the same name, for members of its "may create an account" groups."""
import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..accounts import users
from ..extensions import db
from ..groups import membership
from ..idp import attributes, permissions
from ..models import ExternalIdentity, Group, User, UserProviderPermission, utcnow
from ..validation import has_control

LINK = "link"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def match_identity(identity, provider):
    """The local user ``identity`` may log in as, or a reason code. Exact username match, active,
    allowed for this provider (by the groups this login states, not the stored ones), and the provider's
    subject bound to this user (bound on first success); or an account created or linked on a first login
    when the provider does that. Everything is flushed, never committed: the caller commits it with the
    session and the audit event (or a dry run rolls it back)."""
    try:
        return _match_identity(identity, provider)
    except IntegrityError:  # a simultaneous first login bound the account first: judge against its row
        db.session.rollback()
        return _match_identity(identity, provider)


def _match_identity(identity, provider):
    if has_control(identity.username) or has_control(identity.subject):  # no account is called that
        return None, "provider_error"
    seen = attributes.clean(identity)
    user = User.by_username(identity.username) if identity.username else None
    if user is None:
        return _create_account(identity, provider, seen)
    if not user.active:
        return None, "inactive_user"
    fresh = membership.group_ids(user, fresh={provider.id: seen.groups})
    if not permissions.is_allowed(user, provider, fresh):
        if may_create(provider, seen):
            return _clash(user, identity, provider)
        return None, "admin_not_allowed" if user.is_admin and provider.allow_all_users else "not_allowed"
    return _bind(user, identity, provider)


def _bind(user, identity, provider):
    binding = db.session.scalar(select(ExternalIdentity).where(ExternalIdentity.provider_id == provider.id,
                                                               ExternalIdentity.user_id == user.id))
    if binding is not None and binding.subject_scheme == identity.subject_scheme:
        if binding.subject != identity.subject:
            return None, "identity_mismatch"
    else:
        if _subject_holder(identity, provider, user) is not None:
            return None, "identity_mismatch"
        if binding is None:
            binding = ExternalIdentity(user_id=user.id, provider_id=provider.id)
            db.session.add(binding)
        else:  # the server changed how it names accounts (an upgrade): nothing to compare, bind anew
            audit.record("identity.rebind", target=user.username, provider=provider.slug, commit=False,
                         actor="", detail=f"{binding.subject_scheme} -> {identity.subject_scheme}")
        binding.subject, binding.subject_scheme = identity.subject, identity.subject_scheme
    binding.external_username = identity.username
    binding.last_login_at = utcnow()
    db.session.flush()  # a simultaneous first binding fails here (IntegrityError); the caller commits
    return user, None


def _subject_holder(identity, provider, user=None):
    """The binding of another local account to this provider's subject, if any."""
    query = select(ExternalIdentity).where(ExternalIdentity.provider_id == provider.id,
                                           ExternalIdentity.subject == identity.subject)
    if user is not None:
        query = query.where(ExternalIdentity.user_id != user.id)
    return db.session.scalar(query)


def may_create(provider, seen):
    """Whether ``provider`` creates (or links) accounts and this login's groups put the person in one of its
    "may create an account" groups."""
    if not provider.create_accounts:
        return False
    wanted = permissions.access_group_ids(provider, permissions.CREATE)
    return bool(wanted and wanted & {m.group_id for m in membership.from_provider(provider, seen.groups)
                                     if m.group_id is not None})


def _create_account(identity, provider, seen):
    """A first login without a local account: the account, created for a member of a create group."""
    if not identity.username or not may_create(provider, seen):
        return None, "unknown_user"
    if users.username_problem(identity.username):
        return None, "username_invalid"
    if _subject_holder(identity, provider) is not None:  # the person has an account here under another name
        return None, "identity_mismatch"
    email = identity.email if isinstance(identity.email, str) and not users.email_problem(identity.email) else None
    name = _CONTROL.sub("", identity.display_name)[:200].strip() if isinstance(identity.display_name, str) else ""
    user = users.create_user(identity.username, display_name=name, email=email, password=None,
                             password_login_allowed=False, actor=identity.username,
                             detail=f"created by login through {provider.slug}", commit=False)
    _allow(user, provider)
    return _bind(user, identity, provider)


def _clash(user, identity, provider):
    """A member of a create group whose username is an existing account not allowed through this provider:
    refused, or linked when the provider's policy says so and the account is an active non-administrator with
    no binding to this provider yet. Never silently: the link is audited."""
    bound = db.session.scalar(select(ExternalIdentity.user_id).where(ExternalIdentity.provider_id == provider.id,
                                                                     ExternalIdentity.user_id == user.id))
    if bound is not None:  # the person's own account, whose permission was withdrawn
        return None, "not_allowed"
    if provider.account_clash != LINK or user.is_admin or _subject_holder(identity, provider, user) is not None:
        return None, "username_taken"
    _allow(user, provider)
    audit.record("identity.link", target=user.username, provider=provider.slug, actor=identity.username,
                 commit=False,
                 detail=f"existing account linked by login through {provider.slug} "
                        f"({identity.subject_scheme}:{identity.subject}); allowed one by one")
    return _bind(user, identity, provider)


def _allow(user, provider):
    """Let an account created or linked by a login log in through ``provider`` again (one by one, which an
    administrator sees and may withdraw)."""
    if db.session.get(UserProviderPermission, (user.id, provider.id)) is None:
        db.session.add(UserProviderPermission(user_id=user.id, provider_id=provider.id))
        db.session.flush()


def refusal_detail(reason, provider):
    """What the audit log adds to a refusal for ``reason``: the access groups a login needed, the create
    groups, or nothing."""
    purpose = {"not_allowed": permissions.ACCESS, "unknown_user": permissions.CREATE}.get(reason)
    if purpose is None or (purpose == permissions.CREATE and not provider.create_accounts):
        return None
    ids = permissions.access_group_ids(provider, purpose)
    if not ids:
        return None
    names = sorted(db.session.scalars(select(Group.name).where(Group.id.in_(ids))))
    kind = "access" if purpose == permissions.ACCESS else "account-creating"
    return f"not in any {kind} group of {provider.slug} ({', '.join(names)})"
