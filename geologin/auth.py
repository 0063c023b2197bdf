"""Logging in and out with a local password, and the first-run setup page."""
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from . import audit, firstrun, users
from .extensions import db
from .external import login_widgets
from .forms import LoginForm, SetupForm
from .models import User
from .passwords import hash_password, needs_rehash, verify_password
from .redirects import safe_next
from .sessions import end_session, start_session

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
def login():
    if current_user.is_authenticated and request.method == "GET":
        return _landing(request.args.get("next"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    if form.validate_on_submit():
        user, reason = _password_login_failure(form.username.data)
        # Verify (or burn the same time on a dummy hash) whatever the reason, so timing reveals nothing.
        matches = verify_password(user.password_hash if user else None, form.password.data)
        if reason is None and not matches:
            reason = "bad_password"
        if reason is None:
            if needs_rehash(user.password_hash):
                user.password_hash = hash_password(form.password.data)
            start_session(user, "password")
            audit.record("login", target=user.username, actor=user.username)
            return _landing(form.next.data)
        audit.record("login", audit.FAILURE, target=form.username.data, reason=reason, actor="")
        flash(_("Invalid username or password."), "error")
        form.password.data = ""
    status = 400 if request.method == "POST" else 200
    return render_template("login.html", form=form, needs_setup=not firstrun.admin_exists(),
                           widgets=login_widgets()), status


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        username = current_user.username
        end_session()
        audit.record("logout", target=username, actor=username)
        flash(_("You have been logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/setup", defaults={"token": None}, methods=["GET"])
@bp.route("/setup/<token>", methods=["GET", "POST"])
def setup(token):
    """Create the first administrator through the one-time link printed on the console."""
    if firstrun.admin_exists():
        abort(404)
    if not firstrun.setup_token_valid(token):
        return render_template("setup_missing.html", bad_token=token is not None), 404 if token else 200
    form = SetupForm()
    if form.validate_on_submit():
        try:
            user = users.create_user(
                form.username.data, display_name=form.display_name.data, email=form.email.data,
                password=form.password.data, is_admin=True, actor="setup",
            )
        except users.UserError as error:
            form.username.errors.append(error.message)
        else:
            firstrun.retire_setup_tokens()
            db.session.commit()
            start_session(user, "password")
            audit.record("login", target=user.username, actor=user.username, detail="first-run setup")
            flash(_("Welcome! You are the first administrator."), "info")
            return redirect(url_for("admin.users"))
    status = 400 if request.method == "POST" else 200
    return render_template("setup.html", form=form), status
