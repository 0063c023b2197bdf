"""Administrators' screens for local users. Every route here is admin-only through one before_request
hook, so a new route cannot be added unprotected."""
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import SelectMultipleField
from wtforms.validators import ValidationError

from . import audit, instances, throttle, users
from .admin_audit import bp as audit_bp
from .admin_providers import bp as providers_bp
from .extensions import db, login_manager
from .forms import Form, SetPasswordForm, UserCreateForm, UserEditForm
from .models import ProviderInstance, User, utcnow
from .redirects import safe_next
from .sessions import login_age
from .web import requested_page
from .setting_fields import choice
from .validation import row_id

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def require_admin():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_admin:
        abort(403)
    fresh = timedelta(minutes=int(current_app.config["ADMIN_FRESH_LOGIN_MINUTES"]))
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


def _user_or_404(user_id):
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _actor():
    return current_user.username


class UserProvidersForm(Form):
    """The user screen's checkboxes: the identity providers this user may log in through."""

    provider_ids = SelectMultipleField(_l("Identity providers"), coerce=row_id, validate_choice=False)

    def validate_provider_ids(self, field):
        """A form opened before another administrator deleted a provider still names its id."""
        known = {option[0] for option in field.iter_choices()}
        if any(provider_id not in known for provider_id in field.data or []):
            raise ValidationError(_l("An identity provider ticked here no longer exists: another administrator "
                                     "deleted it. Check the list below and save again."))


def _providers_form(user, formdata=None):
    form = UserProvidersForm(formdata=formdata, data=None if formdata else
                             {"provider_ids": sorted(instances.allowed_instance_ids(user))})
    form.provider_ids.choices = [choice(i.id, i.label) for i in instances.ordered_instances()]
    return form


def _user_page(user, form, providers_form=None, status=200):
    """The user screen: the details form, the identity providers ticked for them, their linked accounts."""
    locked_for = throttle.locked_for(user.username)
    return render_template(
        "admin/user_edit.html", user=user, form=form,
        providers_form=providers_form or _providers_form(user),
        provider_instances={i.id: i for i in instances.ordered_instances()},
        identities=instances.identities_of(user),
        locked_until=utcnow() + timedelta(seconds=locked_for) if locked_for else None,
    ), status


@bp.route("/")
def index():
    return redirect(url_for("admin.users"))


@bp.route("/users", endpoint="users")
def users_list():
    query = (request.args.get("q") or "").strip()[:200]
    page = db.paginate(users.search_users(query), page=requested_page(),
                       per_page=int(current_app.config["USERS_PER_PAGE"]),
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
    return _user_page(user, form, status=status)


@bp.route("/users/<int:user_id>/providers", methods=["POST"])
def user_providers(user_id):
    user = _user_or_404(user_id)
    providers_form = _providers_form(user, formdata=request.form)
    if providers_form.validate_on_submit():
        instances.set_user_permissions(user, providers_form.provider_ids.data or [], actor=_actor())
        flash(_("Identity providers of %(name)s saved.", name=user.username), "info")
        return redirect(url_for("admin.user_edit", user_id=user.id))
    return _user_page(user, UserEditForm(formdata=None, obj=user), providers_form, status=400)


@bp.route("/users/<int:user_id>/identities/<int:provider_id>/unlink", methods=["POST"])
def user_unlink(user_id, provider_id):
    user = _user_or_404(user_id)
    instance = db.session.get(ProviderInstance, provider_id)
    if instance is None:
        abort(404)
    if instances.unlink(user, instance, actor=_actor()):
        flash(_("The %(label)s account is no longer linked to %(name)s; their next login through it links "
                "the account it comes from.", label=instance.label, name=user.username), "info")
    else:
        flash(_("%(name)s has no linked %(label)s account.", name=user.username, label=instance.label), "error")
    return redirect(url_for("admin.user_edit", user_id=user.id))


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


@bp.route("/users/<int:user_id>/unlock", methods=["POST"])
def user_unlock(user_id):
    """Lift a lockout: anyone can lock an account by failing its logins, an administrator's included."""
    user = _user_or_404(user_id)
    throttle.unlock(user.username)
    audit.record("user.unlock", target=user.username, actor=_actor())
    flash(_("%(name)s can try to log in again.", name=user.username), "info")
    return redirect(url_for("admin.user_edit", user_id=user.id))


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


# Identity-provider screens, nested so require_admin guards them too (endpoints admin.providers.*).
bp.register_blueprint(providers_bp)
bp.register_blueprint(audit_bp)  # the audit screen and its CSV export (endpoints admin.audit.*)
