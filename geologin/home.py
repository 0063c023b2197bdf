"""The signed-in user's own pages: the home page and changing one's password."""
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from . import throttle, users
from .auth import check_own_password
from .forms import ChangePasswordForm
from .sessions import start_session

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
        wait = check_own_password(user, form.current.data, "password_change")
        if wait:
            flash(throttle.lockout_message(wait), "error")
            return render_template("change_password.html", form=form), 429, {"Retry-After": str(wait)}
        if wait is not None:
            form.current.errors.append(_("This is not your current password."))
        else:
            users.set_password(user, form.password.data, actor=user.username)
            start_session(user, "password")  # other sessions ended with the old password; keep this one
            flash(_("Your password has been changed."), "info")
            return redirect(url_for("home.index"))
    status = 400 if request.method == "POST" else 200
    return render_template("change_password.html", form=form), status
