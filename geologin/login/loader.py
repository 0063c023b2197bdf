"""Who is logged in for this request: Flask-Login's user loader, which accepts a session cookie only while
the session is alive and the way it logged in is still open to the user."""
from datetime import timedelta

from flask import current_app

from ..extensions import db, login_manager
from ..idp import cache, permissions
from ..models import utcnow
from .sessions import AuthMethod, current_session_row

_TOUCH_INTERVAL = timedelta(seconds=60)
# Nodes' clocks differ a little: a login on a node running behind the one that created the user is no reuse.
_CLOCK_SKEW = timedelta(minutes=2)


def init_app(app):
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.user_loader(load_user)


def _method_still_permitted(method, user):
    """Whether the way the session logged in is still open to ``user``: password login still allowed, or the
    provider still usable and the user still allowed through it. Cheap: the user is loaded already, the
    provider comes from the per-process cache, and a permission row is read only when "every active user"
    does not cover the user."""
    if method.is_password:
        return user.password_login_allowed
    if method.provider_slug is None:
        return True
    provider = cache.usable_by_slug(method.provider_slug)
    return provider is not None and permissions.is_allowed(user, provider)


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
    idle = timedelta(minutes=config["SESSION_IDLE_MINUTES"])
    absolute = timedelta(hours=config["SESSION_ABSOLUTE_HOURS"])
    if (not user.active or now - row.last_seen_at > idle or now - row.created_at > absolute
            or row.created_at + _CLOCK_SKEW < user.created_at
            or not _method_still_permitted(AuthMethod.of(row), user)):
        db.session.delete(row)
        db.session.commit()
        return None
    if now - row.last_seen_at > _TOUCH_INTERVAL:
        row.last_seen_at = now
        db.session.commit()
    return user
