"""The one admin blueprint and its guard: every route under /admin is admin-only, with a fresh login,
through one before_request hook, so a new route cannot be added unprotected."""
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, redirect, request, url_for
from flask_login import current_user

from ..extensions import login_manager
from ..login.redirects import safe_next
from ..login.sessions import login_age

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def require_admin():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin:
        abort(403)
    fresh = timedelta(minutes=current_app.config["ADMIN_FRESH_LOGIN_MINUTES"])
    # A form opened while the login was fresh may still be sent for another hour, so nothing typed is lost.
    if login_age() > (fresh if request.method == "GET" else fresh + timedelta(hours=1)):
        target = request.full_path if request.method == "GET" else request.referrer
        return redirect(url_for("auth.reauth", next=safe_next(_local_path(target)) or url_for("admin.users")))
    return None


def _local_path(url):
    if not url:
        return None
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def actor():
    """Who the audit trail names for a change made on these screens."""
    return current_user.username
