"""Administrators' screens for local users: list, create, edit, password, unlock, (de)activate, delete,
and the identity providers each user may log in through."""
from datetime import timedelta

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import audit
from ..accounts import users
from ..accounts.forms import SetPasswordForm, UserCreateForm, UserEditForm
from ..extensions import db
from ..groups import membership
from ..idp import attributes, cache, permissions, tokens
from ..login import throttle
from ..models import IdentityProvider, User, utcnow
from ..web import requested_page
from .blueprint import actor, bp
from .forms import UserProvidersForm
from .setting_fields import choice


def _user_or_404(user_id):
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _providers_form(user, formdata=None):
    form = UserProvidersForm(formdata=formdata, data=None if formdata else
                             {"provider_ids": sorted(permissions.allowed_provider_ids(user))})
    form.provider_ids.choices = [choice(i.id, i.label) for i in cache.ordered_providers()]
    return form


def _user_page(user, form, providers_form=None, status=200):
    """The user screen: the details form, the identity providers ticked for them, their linked accounts."""
    locked_for = throttle.locked_for(user.username)
    identities = permissions.identities_of(user)
    return render_template(
        "admin/user_edit.html", user=user, form=form,
        providers_form=providers_form or _providers_form(user),
        provider_instances={i.id: i for i in cache.ordered_providers()},
        identities=identities, seen={i.id: attributes.as_dict(i) for i in identities},
        groups=membership.of(user),
        kept={status["provider"]: status for status in tokens.status_of(user)},
        locked_until=utcnow() + timedelta(seconds=locked_for) if locked_for else None,
    ), status


@bp.route("/")
def index():
    return redirect(url_for("admin.users"))


@bp.route("/users", endpoint="users")
def users_list():
    query = (request.args.get("q") or "").strip()[:200]
    page = db.paginate(users.search_users(query), page=requested_page(),
                       per_page=current_app.config["USERS_PER_PAGE"],
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
                password_login_allowed=form.password_login_allowed.data, actor=actor(),
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
                active=form.active.data, password_login_allowed=form.password_login_allowed.data, actor=actor(),
            )
        except users.UserError as error:
            db.session.rollback()
            (getattr(form, error.field).errors if error.field else form.form_errors).append(error.message)
        else:
            flash(_("Changes saved.") if changed else _("Nothing changed."), "info")
            return redirect(url_for("admin.user_edit", user_id=user.id))
    status = 400 if request.method == "POST" else 200
    return _user_page(user, form, status=status)


@bp.route("/users/<int:user_id>/providers", methods=["POST"])
def user_providers(user_id):
    user = _user_or_404(user_id)
    providers_form = _providers_form(user, formdata=request.form)
    if providers_form.validate_on_submit():
        permissions.set_user_permissions(user, providers_form.provider_ids.data or [], actor=actor())
        flash(_("Identity providers of %(name)s saved.", name=user.username), "info")
        return redirect(url_for("admin.user_edit", user_id=user.id))
    return _user_page(user, UserEditForm(formdata=None, obj=user), providers_form, status=400)


@bp.route("/users/<int:user_id>/identities/<int:provider_id>/unlink", methods=["POST"])
def user_unlink(user_id, provider_id):
    user = _user_or_404(user_id)
    provider = db.session.get(IdentityProvider, provider_id)
    if provider is None:
        abort(404)
    if permissions.unlink(user, provider, actor=actor()):
        flash(_("The %(label)s account is no longer linked to %(name)s; their next login through it links "
                "the account it comes from.", label=provider.label, name=user.username), "info")
    else:
        flash(_("%(name)s has no linked %(label)s account.", name=user.username, label=provider.label), "error")
    return redirect(url_for("admin.user_edit", user_id=user.id))


@bp.route("/users/<int:user_id>/password", methods=["GET", "POST"])
def user_password(user_id):
    user = _user_or_404(user_id)
    form = SetPasswordForm()
    form.username_for_policy = user.username
    if form.validate_on_submit():
        users.set_password(user, form.password.data, actor=actor())
        flash(_("New password set for %(name)s. Their other sessions have ended.", name=user.username), "info")
        return redirect(url_for("admin.user_edit", user_id=user.id))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/user_password.html", user=user, form=form), status


@bp.route("/users/<int:user_id>/unlock", methods=["POST"])
def user_unlock(user_id):
    """Lift a lockout: anyone can lock an account by failing its logins, an administrator's included."""
    user = _user_or_404(user_id)
    throttle.unlock(user.username)
    audit.record("user.unlock", target=user.username, actor=actor())
    flash(_("%(name)s can try to log in again.", name=user.username), "info")
    return redirect(url_for("admin.user_edit", user_id=user.id))


def _set_active(user_id, active):
    user = _user_or_404(user_id)
    try:
        users.update_user(user, active=active, actor=actor())
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
            users.delete_user(user, actor=actor())
        except users.UserError as error:
            db.session.rollback()
            flash(error.message, "error")
            return redirect(url_for("admin.user_edit", user_id=user_id))
        flash(_("User %(name)s deleted.", name=user.username), "info")
        return redirect(url_for("admin.users"))
    return render_template("admin/user_delete.html", user=user)
