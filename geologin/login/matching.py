"""Matching an identity a plugin returned to the local user it may log in as, and binding the provider's
subject to that user on the first success."""
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..extensions import db
from ..idp import permissions
from ..models import ExternalIdentity, User, utcnow
from ..validation import has_control


def match_identity(identity, provider):
    """The local user ``identity`` may log in as, or a reason code. Exact username match, active,
    allowed for this provider, and the provider's subject bound to this user (bound on first success).
    The binding is flushed, not committed: the caller commits it with the session and the audit event."""
    try:
        return _match_identity(identity, provider)
    except IntegrityError:  # a simultaneous first login bound the account first: judge against its row
        db.session.rollback()
        return _match_identity(identity, provider)


def _match_identity(identity, provider):
    if has_control(identity.username) or has_control(identity.subject):  # no account is called that
        return None, "provider_error"
    user = User.by_username(identity.username) if identity.username else None
    if user is None:
        return None, "unknown_user"
    if not user.active:
        return None, "inactive_user"
    if not permissions.is_allowed(user, provider):
        return None, "admin_not_allowed" if user.is_admin and provider.allow_all_users else "not_allowed"
    binding = db.session.scalar(select(ExternalIdentity).where(ExternalIdentity.provider_id == provider.id,
                                                               ExternalIdentity.user_id == user.id))
    if binding is not None and binding.subject_scheme == identity.subject_scheme:
        if binding.subject != identity.subject:
            return None, "identity_mismatch"
    else:
        holder = db.session.scalar(select(ExternalIdentity).where(ExternalIdentity.provider_id == provider.id,
                                                                  ExternalIdentity.subject == identity.subject,
                                                                  ExternalIdentity.user_id != user.id))
        if holder is not None:
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
