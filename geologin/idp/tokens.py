"""The tokens a provider issued at a person's login, kept (encrypted) when an administrator turned on
"keep tokens" for that provider, so applications can call the provider as the person (docs/dhis2-tokens.md).
Only ever shown as "kept, expires at"; never logged, never in the audit trail."""
from datetime import timedelta

from sqlalchemy import select

from .. import audit
from ..encryption import decrypt, encrypt, reencrypt
from ..extensions import db
from ..models import IdentityProvider, KeptToken, utcnow

MAX_TOKEN = 16384  # bytes of one token; DHIS2's JWTs are about 1 KB
# A kept access token this close to its expiry counts as expired: an application must have time to use it.
EXPIRY_MARGIN = timedelta(seconds=30)


class LoginAgain(Exception):
    """No usable token is kept for this person at this provider: they must log in through it again.
    ``reason`` says why (not_kept, expired, refresh_failed), for the audit and the application's answer."""

    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def fresh_access_token(user, provider):
    """The person's current access token at ``provider`` (what an application or the proxy sends), or
    LoginAgain. Never logged."""
    row = db.session.scalar(select(KeptToken).where(KeptToken.user_id == user.id,
                                                    KeptToken.provider_id == provider.id))
    if row is None or not provider.keep_tokens:
        raise LoginAgain("not_kept")
    if row.access_expires_at is not None and row.access_expires_at - EXPIRY_MARGIN <= utcnow():
        raise LoginAgain("expired")
    return decrypt(row.access_token)


def keep(user, provider, tokens):
    """After a login of ``user`` through ``provider``: keep ``tokens`` (a plugin API Tokens, or None) when the
    provider keeps tokens, replacing the previous ones; otherwise forget any kept before. Flushed; the caller
    commits with the session. Returns a remark for the audit log when they could not be kept, else None."""
    row = db.session.scalar(select(KeptToken).where(KeptToken.user_id == user.id,
                                                    KeptToken.provider_id == provider.id))
    usable = tokens is not None and _plausible(tokens.access_token)
    if not provider.keep_tokens or not usable:
        if row is not None:
            db.session.delete(row)
            db.session.flush()
        return "tokens not kept: the provider issued none usable" if provider.keep_tokens else None
    if row is None:
        row = KeptToken(user_id=user.id, provider_id=provider.id)
        db.session.add(row)
    refresh = tokens.refresh_token if _plausible(tokens.refresh_token) else None
    row.access_token = encrypt(tokens.access_token)
    row.refresh_token = encrypt(refresh) if refresh else None
    row.scope = tokens.scope[:2000] if isinstance(tokens.scope, str) else None
    row.obtained_at = utcnow()
    row.access_expires_at = _expiry(tokens.expires_in, row.obtained_at)
    db.session.flush()
    return None


def _plausible(token):
    return isinstance(token, str) and 0 < len(token) <= MAX_TOKEN


def _expiry(expires_in, now):
    if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or expires_in <= 0:
        return None
    return now + timedelta(seconds=min(expires_in, 10 * 365 * 24 * 3600))


def forget(user, provider=None, *, actor=None, why=""):
    """Delete ``user``'s kept tokens (at ``provider``, or everywhere), audited when there were some; not
    committed."""
    count = KeptToken.forget(user.id, provider.id if provider is not None else None)
    if count:
        audit.record("tokens.forget", target=user.username, actor=actor, commit=False,
                     provider=provider.slug if provider is not None else None, detail=why or None)
    return count


def forget_at_provider(provider, *, actor=None):
    """Delete every token kept from ``provider`` (it stopped keeping tokens); not committed."""
    count = db.session.query(KeptToken).filter(KeptToken.provider_id == provider.id).delete()
    if count:
        audit.record("tokens.forget", provider=provider.slug, actor=actor, commit=False,
                     detail=f"{count} user(s): the provider no longer keeps tokens")
    return count


def status_of(user):
    """What the screens show of ``user``'s kept tokens, by provider: never the tokens themselves."""
    now = utcnow()
    rows = db.session.execute(select(KeptToken, IdentityProvider)
                              .join(IdentityProvider, IdentityProvider.id == KeptToken.provider_id)
                              .where(KeptToken.user_id == user.id).order_by(IdentityProvider.position))
    return [{"provider": provider.slug, "label": provider.label, "obtained_at": row.obtained_at,
             "expires_at": row.access_expires_at, "refreshable": row.refresh_token is not None,
             "expired": row.access_expires_at is not None and row.access_expires_at <= now}
            for row, provider in rows]


def reencrypt_all():
    """Re-encrypt every kept token under the newest encryption key (providers rotate-keys); returns how many
    tokens. Not committed: the caller commits with the providers' secrets."""
    count = 0
    for row in db.session.scalars(select(KeptToken)):
        row.access_token = reencrypt(row.access_token)
        count += 1
        if row.refresh_token:
            row.refresh_token = reencrypt(row.refresh_token)
            count += 1
    return count
