"""The signed-in user's own pages (the home page, changing one's password) and the first-run setup page."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import audit
from ..extensions import db
from ..login import throttle
from ..login.sessions import AuthMethod, start_session
from . import firstrun, users
from .forms import ChangePasswordForm, SetupForm

bp = Blueprint("home", __name__)


@bp.route("/")
@login_required
def index():
    return render_template("home.html")


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
@throttle.limit_attempts
def change_password():
    form = ChangePasswordForm()
    form.username_for_policy = current_user.username
    if form.validate_on_submit():
        user = current_user._get_current_object()
        wait = throttle.check_own_password(user, form.current.data, "password_change")
        if wait:
            flash(throttle.lockout_message(wait), "error")
            return render_template("change_password.html", form=form), 429, {"Retry-After": str(wait)}
        if wait is not None:
            form.current.errors.append(_("This is not your current password."))
        else:
            users.set_password(user, form.password.data, actor=user.username)
            start_session(user, AuthMethod.password())  # other sessions ended with the old password; keep this one
            flash(_("Your password has been changed."), "info")
            return redirect(url_for("home.index"))
    status = 400 if request.method == "POST" else 200
    return render_template("change_password.html", form=form), status


# Served as ``auth.setup`` (see login/views.py), the endpoint it has always had.
def setup(token):
    """Create the first administrator through the one-time link printed on the console."""
    if firstrun.admin_exists():
        return render_template("setup_missing.html", setup_done=True), 404
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
            start_session(user, AuthMethod.password())
            audit.record("login", target=user.username, actor=user.username, detail="first-run setup")
            flash(_("Welcome! You are the first administrator."), "info")
            return redirect(url_for("admin.users"))
    status = 400 if request.method == "POST" else 200
    return render_template("setup.html", form=form), status
