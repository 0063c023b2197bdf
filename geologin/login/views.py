"""Logging in and out with a local password, and re-authentication. The first-run setup page (accounts)
is served under this blueprint too, so its endpoint stays ``auth.setup``."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import audit
from ..accounts import views as account_views
from ..accounts.passwords import hash_password, needs_rehash, verify_password
from ..idp import tokens
from ..models import IdentityProvider, User
from . import throttle
from .external import provider_logout_url
from .forms import LoginForm, ReauthForm
from .page import login_page
from .redirects import safe_next
from .sessions import AuthMethod, current_session_row, end_session, end_user_sessions, start_session

bp = Blueprint("auth", __name__)


def _landing(target):
    return redirect(safe_next(target) or url_for("home.index"))


def _password_login_failure(username):
    """Why a password login must fail, or None. Every reason shows the same message (no enumeration)."""
    user = User.by_username(username)
    if user is None:
        return None, "unknown_user"
    if not user.active:
        return user, "inactive_user"
    if not user.password_login_allowed:
        return user, "password_login_disabled"
    if not user.has_password:
        return user, "no_password"
    return user, None


@bp.route("/login", methods=["GET", "POST"])
@throttle.limit_attempts
def login():
    # prompt=login: an application asks for a fresh login although the person is logged in (OpenID Connect).
    fresh = request.args.get("prompt") == "login"
    if current_user.is_authenticated and request.method == "GET" and not fresh:
        return _landing(request.args.get("next"))
    if request.method == "GET" and not safe_next(request.args.get("next")):
        return login_page(None, 200)  # the empty form, from the per-language copy
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
        form.username.data = request.args.get("login_hint", "")[:150]  # an application's guess (login_hint)
    status = 400 if request.method == "POST" else 200
    if form.validate_on_submit():
        username = form.username.data
        wait = throttle.locked_for(username)
        if wait:
            audit.record("login", audit.FAILURE, target=username, reason="locked_out", actor="")
            flash(throttle.lockout_message(wait), "error")
            return login_page(form, 429, {"Retry-After": str(wait)})
        user, reason = _password_login_failure(username)
        # Verify (or burn the same time on a dummy hash) whatever the reason, so timing reveals nothing.
        matches = verify_password(user.password_hash if user else None, form.password.data)
        if reason is None and not matches:
            reason = "bad_password"
        if reason is None:
            if needs_rehash(user.password_hash):
                user.password_hash = hash_password(form.password.data)
            throttle.record_success(username)
            start_session(user, AuthMethod.password(), commit=False)  # one commit: the session with its audit event
            audit.record("login", target=user.username, actor=user.username)
            return _landing(form.next.data)
        audit.record("login", audit.FAILURE, target=username, reason=reason, actor="")
        locked = throttle.record_failure(username)
        if locked:
            audit.record("lockout", audit.FAILURE, target=username, actor="", detail=f"locked for {locked} s")
        flash(_("Invalid username or password."), "error")
    return login_page(form, status)


@bp.route("/reauth", methods=["GET", "POST"])
@login_required
@throttle.limit_attempts
def reauth():
    """Confirm it is still you before administration: your password again, or your identity provider."""
    user = current_user._get_current_object()
    form = ReauthForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    method = AuthMethod.of(current_session_row())
    provider = IdentityProvider.by_slug(method.provider_slug) if method and method.provider_slug else None
    can_use_password = user.has_password and user.password_login_allowed
    if can_use_password and form.validate_on_submit():
        wait = throttle.check_own_password(user, form.password.data, "reauth")
        if wait:
            flash(throttle.lockout_message(wait), "error")
            return render_template("reauth.html", form=form, provider=provider, can_use_password=True,
                                   next=form.next.data), 429, {"Retry-After": str(wait)}
        if wait is None:
            start_session(user, AuthMethod.password(), commit=False)  # committed with its audit event
            audit.record("reauth", target=user.username, actor=user.username)
            return _landing(form.next.data)
        form.password.errors.append(_("This is not your password."))
    status = 400 if request.method == "POST" else 200
    return render_template("reauth.html", form=form, provider=provider, can_use_password=can_use_password,
                           next=form.next.data), status


@bp.route("/logout", methods=["POST"])
def logout():
    server_logout = None
    if current_user.is_authenticated:
        username = current_user.username
        server_logout = provider_logout_url(current_session_row())
        end_session()
        audit.record("logout", target=username, actor=username)
        flash(_("You have been logged out."), "info")
    return redirect(server_logout or url_for("auth.login"))


@bp.route("/logout/everywhere", methods=["POST"])
@login_required
def logout_everywhere():
    """End every session of the signed-in user, in every browser and device (a lost phone, a shared
    computer), this one included."""
    user = current_user._get_current_object()
    username = user.username
    server_logout = provider_logout_url(current_session_row())
    tokens.forget(user, actor=username, why="logged out everywhere")
    end_user_sessions(user)
    end_session()
    audit.record("logout", target=username, actor=username, detail="everywhere")
    flash(_("You have been logged out everywhere."), "info")
    return redirect(server_logout or url_for("auth.login"))


bp.add_url_rule("/setup", defaults={"token": None}, view_func=account_views.setup, methods=["GET"])
bp.add_url_rule("/setup/<token>", view_func=account_views.setup, methods=["GET", "POST"])
