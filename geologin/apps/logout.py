"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when geologin sessions end, however they end,
every application that received tokens in them gets a signed logout token at its registered URI; and when
someone leaves a group, each application the group alone let them into loses their tokens and is told so.
The applications are told in parallel and briefly: one that is down or slow never holds up the logout."""
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor, wait

import requests
from joserfc import jwt
from sqlalchemy import select

from .. import audit
from ..extensions import db
from ..groups.membership import membership_changed
from ..login.sessions import sessions_ending
from ..models import Application, OAuthToken, User
from . import access, clients, keys
from .server import issuer, public_sid

logger = logging.getLogger("geologin.apps")

EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_SECONDS = 120
TIMEOUT = (2, 3)  # connect, read: seconds per application
DEADLINE = 5  # seconds for all of them together
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="backchannel-logout")


def logout_token(application, user, sid):
    """The signed logout token for one application: sub and sid, the logout event, never a nonce."""
    now = int(time.time())
    key = keys.signing_key(application.id_token_alg)
    claims = {"iss": issuer(), "aud": application.client_id, "iat": now, "exp": now + LOGOUT_TOKEN_SECONDS,
              "jti": secrets.token_urlsafe(16), "sub": user.subject, "events": {EVENT: {}}}
    if sid:
        claims["sid"] = sid
    return jwt.encode({"alg": application.id_token_alg, "kid": key.kid, "typ": "logout+jwt"}, claims, key,
                      algorithms=[application.id_token_alg])


def _post(uri, token):
    try:
        response = requests.post(uri, data={"logout_token": token}, timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as error:
        return type(error).__name__
    return None if response.status_code in (200, 204) else f"HTTP {response.status_code}"


def notify(session_ids, application=None):
    """Tell each application (or only ``application``) that received tokens in these sessions that they
    ended; ``session_ids`` are session rows' ids, or with ``application`` the sessions' public sids."""
    sids = list(session_ids) if application is not None else [public_sid(i) for i in session_ids]
    statement = (select(Application, User, OAuthToken.sid)
                 .join(OAuthToken, OAuthToken.application_id == Application.id)
                 .join(User, User.id == OAuthToken.user_id)
                 .where(OAuthToken.sid.in_(sids), Application.backchannel_logout_uri.is_not(None)))
    if application is not None:
        statement = statement.where(Application.id == application.id)
    _send(db.session.execute(statement.distinct()).all())


def _send(rows):
    """Post a logout token for each (application, user, sid) and audit the outcome (the caller commits)."""
    if not rows:
        return
    jobs = {}
    for application, user, sid in rows:
        token = logout_token(application, user, sid)
        jobs[_pool.submit(_post, application.backchannel_logout_uri, token)] = (application.name, user.username)
    done, _ = wait(jobs, timeout=DEADLINE)
    for future, (name, username) in jobs.items():
        problem = future.result() if future in done else "no answer in time"
        if problem:
            logger.warning("back-channel logout of %s failed: %s", name, problem)
        audit.record("app.backchannel_logout", audit.FAILURE if problem else audit.SUCCESS, target=username,
                     reason="application_unreachable" if problem else None,
                     detail=f"application {name}" + (f": {problem}" if problem else ""), commit=False)


def _on_sessions_ending(sender, session_ids):
    try:
        notify(session_ids)
    except Exception:  # noqa: BLE001 - telling the applications must never stop the logout itself
        logger.exception("back-channel logout could not be sent")


def _on_tokens_revoked(application, sids):
    if not sids:
        return
    try:
        notify(sids, application)
        db.session.commit()  # the audit of each logout sent
    except Exception:  # noqa: BLE001 - the tokens are revoked; telling the application is a courtesy
        db.session.rollback()
        logger.exception("back-channel logout could not be sent")


def end_refused(user_ids):
    """Revoke what each OpenID application holds for these users when access.refusal now refuses them (judged
    with each live token's login method), and send those applications the back-channel logout of the sessions
    concerned. Called when the users may have lost a group; returns the (application, username) pairs ended."""
    tokens = db.session.scalars(select(OAuthToken).join(Application, Application.id == OAuthToken.application_id)
                                .where(OAuthToken.user_id.in_(user_ids), OAuthToken.revoked_at.is_(None),
                                       Application.kind == clients.OIDC)).all()
    refused = {}  # (application id, user id) -> [tokens]
    verdicts = {}
    for token in tokens:
        key = (token.application_id, token.user_id, token.auth_method)
        if key not in verdicts:
            verdicts[key] = access.refusal(token.application, token.user, token.auth_method)
        if verdicts[key] is not None:
            refused.setdefault((token.application_id, token.user_id), []).append(token)
    revoked, ended = [], []
    for found in refused.values():
        application, user = found[0].application, found[0].user
        revoked.append((application, clients.revoke_for_users(application, [user.id])))
        audit.record("app.revoke", target=user.username, commit=False,
                     detail=f"application {application.name}; no longer in a group that admits them")
        ended.append((application.name, user.username))
    db.session.commit()
    for application, sids in revoked:
        clients.tokens_revoked.send(application, sids=sids)
    return ended


def _on_membership_changed(sender, user_ids):
    if user_ids:
        end_refused(user_ids)


def init_app(app):
    sessions_ending.connect(_on_sessions_ending, weak=False)
    membership_changed.connect(_on_membership_changed, weak=False)
    clients.tokens_revoked.connect(_on_tokens_revoked, weak=False)
