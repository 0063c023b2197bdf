"""The tokens a provider issued at a person's login, kept (encrypted) when an administrator turned on
"keep tokens" for that provider, so applications can call the provider as the person (docs/dhis2-tokens.md).
Only ever shown as "kept, expires at"; never logged, never in the audit trail."""
import logging
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from .. import audit
from ..encryption import decrypt, encrypt, reencrypt
from ..extensions import db
from ..models import IdentityProvider, KeptToken, utcnow
from ..providers.base import REFRESH_REFUSED, LoginFailure
from .cache import plugin_object

logger = logging.getLogger("geologin.idp")

MAX_TOKEN = 16384  # bytes of one token; DHIS2's JWTs are about 1 KB
# A kept access token this close to its expiry counts as expired: an application must have time to use it.
EXPIRY_MARGIN = timedelta(seconds=30)
# After a refresh failed for a reason other than a refused refresh token (the server down), the next
# attempt waits this long, so every caller does not hammer a server that is down.
RETRY_AFTER_FAILURE = timedelta(seconds=30)
# How often a caller waiting for another thread's, worker's or node's refresh looks at the row again.
WAIT_POLL_SECONDS = 0.05


class LoginAgain(Exception):
    """No usable token is kept for this person at this provider: they must log in through it again.
    ``reason`` says why (not_kept, expired, refresh_failed), for the audit and the application's answer."""

    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class RefreshUnavailable(LoginAgain):
    """The kept access token is expired (or was rejected) and the provider could not refresh it just now
    (unreachable, an error): the tokens stay kept, and a later call may succeed without a new login."""

    def __init__(self, detail=""):
        super().__init__("refresh_unavailable", detail)


def fresh_access_token(user, provider, rejected=None):
    """The person's current access token at ``provider`` (what an application or the proxy sends), refreshed
    first when it expires within EXPIRY_MARGIN, or when ``rejected`` (the token a caller just had refused
    by the provider with HTTP 401) is still the kept one; or LoginAgain. One refresh at a time per person
    and provider across threads, workers and nodes: the others wait for it and get its token. Uses its own
    short database transactions (none is open during the call to the provider), so the caller's session
    must hold no write on SQLite. Never logged."""
    if not provider.keep_tokens:
        raise LoginAgain("not_kept")
    lease = _lease_length()
    deadline = time.monotonic() + lease.total_seconds() + 2
    with Session(db.engine, expire_on_commit=False) as session:
        while True:
            row = session.scalar(select(KeptToken).where(KeptToken.user_id == user.id,
                                                         KeptToken.provider_id == provider.id)
                                 .execution_options(populate_existing=True))
            session.commit()  # ends the read, so the next look sees what other nodes committed since
            if row is None:
                raise LoginAgain("not_kept")
            access, now = decrypt(row.access_token), utcnow()
            if not _needs_refresh(row, access, rejected, now):
                return access
            if row.refresh_token is None:
                raise LoginAgain("expired")
            if time.monotonic() > deadline:
                raise RefreshUnavailable("another refresh of these tokens did not finish in time")
            if row.refreshing_until is not None and row.refreshing_until > now:
                time.sleep(WAIT_POLL_SECONDS)  # someone else is refreshing: wait for their token
                continue
            if row.refresh_failed_at is not None and now - row.refresh_failed_at < RETRY_AFTER_FAILURE:
                return _after_failure(row, access, rejected, now)
            if not _take_lease(session, row, now, lease):
                continue  # another caller started a refresh, or new tokens arrived: look again
            token = _refresh(session, row, user, provider, access, rejected)
            if token is not None:
                return token


def _needs_refresh(row, access, rejected, now):
    if rejected is not None and access == rejected:
        return True
    return row.access_expires_at is not None and row.access_expires_at - EXPIRY_MARGIN <= now


def _lease_length():
    """Longer than one call to the provider can take, so a lease only runs out when its holder died."""
    config = current_app.config
    return timedelta(seconds=float(config.get("HTTP_TOTAL_TIMEOUT") or 15)
                     + float(config.get("HTTP_QUEUE_TIMEOUT") or 1) + 5)


def _take_lease(session, row, now, lease):
    """Compare-and-set: start a refresh only if the row still has the version read and nobody holds a lease."""
    result = session.execute(update(KeptToken).where(
        KeptToken.id == row.id, KeptToken.version == row.version,
        or_(KeptToken.refreshing_until.is_(None), KeptToken.refreshing_until <= now))
        .values(refreshing_until=now + lease).execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1


def _refresh(session, row, user, provider, access, rejected):
    """Refresh under the lease (no transaction open during the call); the new access token, or None when
    the row changed meanwhile (a new login), or LoginAgain."""
    refresh_token = decrypt(row.refresh_token)
    mine = (KeptToken.id == row.id, KeptToken.version == row.version)
    try:
        tokens = plugin_object(provider).refresh(refresh_token)
        if not _plausible(getattr(tokens, "access_token", None)):
            raise LoginFailure("the refresh answer has no usable access token")
    except Exception as error:
        if not isinstance(error, LoginFailure):
            logger.exception("refreshing kept tokens failed in the plugin")
            error = LoginFailure(f"plugin error: {type(error).__name__}")
        detail = _scrub(error.detail or error.reason, refresh_token, access)[:300]
        if error.reason == REFRESH_REFUSED:
            # Revoked or expired at the provider: only a new login gives new tokens.
            gone = session.execute(delete(KeptToken).where(*mine).execution_options(synchronize_session=False))
            session.commit()
            if gone.rowcount == 0:
                return None
            _audit_failure(user, provider, "refresh_failed", detail + "; the kept tokens were deleted")
            raise LoginAgain("refresh_failed", detail) from None
        now = utcnow()
        changed = session.execute(update(KeptToken).where(*mine).values(
            refreshing_until=None, refresh_failed_at=now, refresh_failure=detail)
            .execution_options(synchronize_session=False))
        session.commit()
        if changed.rowcount == 0:
            return None
        _audit_failure(user, provider, error.reason, detail)
        return _after_failure(row, access, rejected, now, detail)
    now = utcnow()
    values = {"access_token": encrypt(tokens.access_token), "obtained_at": now,
              "access_expires_at": _expiry(tokens.expires_in, now), "version": row.version + 1,
              "refreshing_until": None, "refresh_failed_at": None, "refresh_failure": None}
    if _plausible(tokens.refresh_token):  # a rotated refresh token replaces the old; none: the old one stays
        values["refresh_token"] = encrypt(tokens.refresh_token)
    if isinstance(tokens.scope, str):
        values["scope"] = tokens.scope[:2000]
    stored = session.execute(update(KeptToken).where(*mine).values(**values)
                             .execution_options(synchronize_session=False))
    session.commit()
    return tokens.access_token if stored.rowcount == 1 else None


def _after_failure(row, access, rejected, now, detail=""):
    """After a failed refresh: the kept access token while it is still valid and not rejected, else
    RefreshUnavailable."""
    if rejected != access and row.access_expires_at is not None and row.access_expires_at > now:
        return access
    raise RefreshUnavailable(detail or row.refresh_failure or "")


def _audit_failure(user, provider, reason, detail):
    logger.warning("refreshing the kept tokens of user %s at %s failed: %s", user.id, provider.slug, reason)
    audit.record("tokens.refresh", audit.FAILURE, target=user.username, provider=provider.slug, reason=reason,
                 detail=detail)


def _scrub(text, *secrets):
    """``text`` without any of ``secrets`` (servers echo a refused token in their error description)."""
    text = str(text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[token]")
    return text


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
    # New tokens: a refresh still running for the old ones must not overwrite them, nor its lease delay anyone.
    row.version = (row.version or 0) + 1
    row.refreshing_until = row.refresh_failed_at = row.refresh_failure = None
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
