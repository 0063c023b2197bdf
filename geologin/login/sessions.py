"""Server-side login sessions. The signed cookie only carries a random session token; the row it names
must exist for the user to be logged in, so logout and admin actions end sessions everywhere at once."""
import hashlib
import secrets
from datetime import timedelta

from flask import current_app, request, session
from flask_login import login_user, logout_user
from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db, login_manager
from ..models import User, UserSession, utcnow

SESSION_TOKEN_KEY = "sid"
_TOUCH_INTERVAL = timedelta(seconds=60)
# Nodes' clocks differ a little: a login on a node running behind the one that created the user is no reuse.
_CLOCK_SKEW = timedelta(minutes=2)
_INSERT_SESSION = insert(UserSession.__table__)
_SET_LAST_LOGIN = (update(User.__table__).where(User.__table__.c.id == bindparam("user_id"))
                   .values(last_login_at=bindparam("now")))


def _digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(user, auth_method="password", *, commit=True):
    """Log ``user`` in with a brand-new session: everything from before login, CSRF token included, is
    dropped (no session fixation). ``commit=False`` leaves the row for the caller's commit (a login commits
    it together with its audit event)."""
    session.clear()
    token = secrets.token_urlsafe(32)
    now = utcnow()
    # Plain statements rather than ORM bookkeeping: nothing in this request reads the new row.
    db.session.execute(_INSERT_SESSION, {
        "id": _digest(token), "user_id": user.id, "auth_method": auth_method, "client_ip": request.remote_addr,
        "user_agent": (request.user_agent.string or "")[:255], "created_at": now, "last_seen_at": now})
    db.session.execute(_SET_LAST_LOGIN, {"user_id": user.id, "now": now})
    set_committed_value(user, "last_login_at", now)
    if commit:
        db.session.commit()
    session[SESSION_TOKEN_KEY] = token
    session.permanent = True
    login_user(user, remember=False, fresh=True)


def end_session():
    """Log the current browser out and forget its server-side session."""
    token = session.get(SESSION_TOKEN_KEY)
    if token:
        db.session.execute(delete(UserSession).where(UserSession.id == _digest(token)))
        db.session.commit()
    logout_user()
    session.clear()


def end_user_sessions(user, commit=True):
    """End every session of ``user`` (deactivated, password changed, role removed...)."""
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    if commit:
        db.session.commit()


def end_user_sessions_via(user, provider_slug, commit=True):
    """End the user's sessions that were opened through one identity provider."""
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id,
                                                 UserSession.auth_method == provider_auth_method(provider_slug)))
    if commit:
        db.session.commit()


def end_sessions_via_provider(provider_slug, commit=True):
    """End every session opened through one identity provider (disabled or removed)."""
    db.session.execute(delete(UserSession).where(UserSession.auth_method == provider_auth_method(provider_slug)))
    if commit:
        db.session.commit()


def provider_auth_method(provider_slug):
    return f"provider:{provider_slug}"


def login_age():
    """How long ago the current session was opened by a login (or a re-authentication)."""
    row = current_session_row()
    return utcnow() - row.created_at if row is not None else timedelta.max


def current_session_row():
    token = session.get(SESSION_TOKEN_KEY)
    # With its user in the same query: every logged-in request needs both (load_user).
    return db.session.get(UserSession, _digest(token), options=[joinedload(UserSession.user)]) if token else None


def init_app(app):
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.user_loader(load_user)


def _method_still_permitted(auth_method, user):
    """Whether the way the session logged in is still open to ``user``: password login still allowed, or the
    provider still usable and the user still allowed through it. Cheap: the user is loaded already, the
    provider comes from the per-process cache, and a permission row is read only when "every active user"
    does not cover the user."""
    if auth_method == "password":
        return user.password_login_allowed
    prefix = provider_auth_method("")
    if not auth_method.startswith(prefix):
        return True
    from ..idp import cache, permissions  # idp imports this module

    instance = cache.usable_by_slug(auth_method[len(prefix):])
    return instance is not None and permissions.is_allowed(user, instance)


def load_user(user_id):
    """Accept the cookie only while its session row exists, belongs to this user, has not timed out, and the
    way it logged in is still open to the user (item 28: any lost permission ends it at the next request).
    A session older than its user was left behind by a deleted user whose id was given again: refused."""
    row = current_session_row()
    if row is None or str(row.user_id) != str(user_id):
        return None
    user = row.user
    now = utcnow()
    config = current_app.config
    idle = timedelta(minutes=int(config["SESSION_IDLE_MINUTES"]))
    absolute = timedelta(hours=int(config["SESSION_ABSOLUTE_HOURS"]))
    if (not user.active or now - row.last_seen_at > idle or now - row.created_at > absolute
            or row.created_at + _CLOCK_SKEW < user.created_at
            or not _method_still_permitted(row.auth_method, user)):
        db.session.delete(row)
        db.session.commit()
        return None
    if now - row.last_seen_at > _TOUCH_INTERVAL:
        row.last_seen_at = now
        db.session.commit()
    return user
