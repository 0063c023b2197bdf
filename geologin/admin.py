"""Administrators' screens for local users. Every route here is admin-only through one before_request
hook, so a new route cannot be added unprotected."""
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from . import users
from .extensions import db, login_manager
from .forms import SetPasswordForm, UserCreateForm, UserEditForm
from .models import User

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def require_admin():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin:
        abort(403)
    return None


def _user_or_404(user_id):
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _actor():
    return current_user.username


@bp.route("/")
def index():
    return redirect(url_for("admin.users"))


@bp.route("/users", endpoint="users")
def users_list():
    query = (request.args.get("q") or "").strip()[:200]
    page = db.paginate(users.search_users(query), per_page=int(current_app.config["USERS_PER_PAGE"]),
                       error_out=False, max_per_page=200)
    return render_template("admin/users.html", page=page, query=query)


@bp.route("/users/new", methods=["GET", "POST"])
def user_new():
    form = UserCreateForm()
    if form.validate_on_submit():
        try:
            user = users.create_user(
                form.username.data, display_name=form.display_name.data, email=form.email.data,
                password=form.password.data or None, is_admin=form.is_admin.data,
                password_login_allowed=form.password_login_allowed.data, actor=_actor(),
            )
        except users.UserError as error:
            getattr(form, error.field or "username").errors.append(error.message)
        else:
            flash(_("User %(name)s created.", name=user.username), "info")
            return redirect(url_for("admin.user_edit", user_id=user.id))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/user_new.html", form=form), status


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def user_edit(user_id):
    user = _user_or_404(user_id)
    form = UserEditForm(obj=user)
    if form.validate_on_submit():
        try:
            changed = users.update_user(
                user, display_name=form.display_name.data, email=form.email.data, is_admin=form.is_admin.data,
                active=form.active.data, password_login_allowed=form.password_login_allowed.data, actor=_actor(),
            )
        except users.UserError as error:
            db.session.rollback()
            (getattr(form, error.field).errors if error.field else form.form_errors).append(error.message)
        else:
            flash(_("Changes saved.") if changed else _("Nothing changed."), "info")
            return redirect(url_for("admin.user_edit", user_id=user.id))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/user_edit.html", user=user, form=form), status


@bp.route("/users/<int:user_id>/password", methods=["GET", "POST"])
def user_password(user_id):
    user = _user_or_404(user_id)
    form = SetPasswordForm()
    form.username_for_policy = user.username
    if form.validate_on_submit():
        users.set_password(user, form.password.data, actor=_actor())
        flash(_("New password set for %(name)s. Their other sessions have ended.", name=user.username), "info")
        return redirect(url_for("admin.user_edit", user_id=user.id))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/user_password.html", user=user, form=form), status


def _set_active(user_id, active):
    user = _user_or_404(user_id)
    try:
        users.update_user(user, active=active, actor=_actor())
    except users.UserError as error:
        db.session.rollback()
        flash(error.message, "error")
    else:
        flash(_("%(name)s can log in again.", name=user.username) if active
              else _("%(name)s is deactivated and logged out.", name=user.username), "info")
    return redirect(url_for("admin.user_edit", user_id=user.id))


@bp.route("/users/<int:user_id>/deactivate", methods=["POST"])
def user_deactivate(user_id):
    return _set_active(user_id, False)


@bp.route("/users/<int:user_id>/activate", methods=["POST"])
def user_activate(user_id):
    return _set_active(user_id, True)


@bp.route("/users/<int:user_id>/delete", methods=["GET", "POST"])
def user_delete(user_id):
    user = _user_or_404(user_id)
    if request.method == "POST":  # CSRF is checked for every POST by CSRFProtect
        try:
            users.delete_user(user, actor=_actor())
        except users.UserError as error:
            db.session.rollback()
            flash(error.message, "error")
            return redirect(url_for("admin.user_edit", user_id=user_id))
        flash(_("User %(name)s deleted.", name=user.username), "info")
        return redirect(url_for("admin.users"))
    return render_template("admin/user_delete.html", user=user)
