"""Administrators' screens for identity providers: list, add, edit, reorder, delete, the setup
page (what to register at the server, connection test, plugin actions) and who may use each provider.

This blueprint is nested in the admin blueprint (see admin/__init__.py), so the admin guard runs before every
route here. All changes go through geologin/idp/, which the CLI uses too."""
import logging

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, ngettext
from sqlalchemy import func, select

from .. import audit
from ..idp import cache, permissions, service
from ..idp import proxy_paths as proxy_path_rules
from ..idp.checks import all_passed, audit_summary, run_checks
from . import setting_fields
from ..groups import service as groups_service
from ..accounts import users
from ..apps import access as app_access
from ..encryption import SecretUnreadable
from ..extensions import db
from ..web import requested_page
from ..models import Application, IdentityProvider, User, UserProviderPermission
from ..providers.base import Check, LoginFailure
from .blueprint import actor
from .setting_fields import choice
from .forms import BulkAllowForm, DisallowForm, ProviderCreateForm, ProviderEditForm

bp = Blueprint("providers", __name__, url_prefix="/providers")
logger = logging.getLogger("geologin.admin")

BULK_MAX_LINES = 10000
UNKNOWN_SHOWN = 20
# login/dry_run.py's APPLICATIONS_HOOK: the login area may not read the applications, this one may.
TEST_LOGIN_APPLICATIONS = "geologin.test_login_applications"


def _applications_for(user, auth_method):
    """For a Test login: each application, and why ``user`` logged in by ``auth_method`` could not use it
    (None: they could)."""
    return [{"name": application.name, "kind": application.kind,
             "reason": app_access.refusal(application, user, auth_method)}
            for application in db.session.scalars(select(Application).order_by(Application.name))]


bp.record_once(lambda state: state.app.extensions.__setitem__(TEST_LOGIN_APPLICATIONS, _applications_for))


# -- helpers ---------------------------------------------------------------------------------------------
def _provider_or_404(slug):
    provider = IdentityProvider.by_slug(slug)
    if provider is None:
        abort(404)
    return provider


def _plugin_or_flash(provider):
    """The plugin class of ``provider``, or None after flashing why it cannot be used."""
    cls = cache.plugin_registry().get(provider.type)
    if cls is None:
        flash(_("The plugin %(type)s of %(label)s is not installed, so it cannot be edited or tested; you "
                "can still delete it.", type=provider.type, label=provider.label), "error")
    return cls


def _redirect_preview(slug):
    """The callback URL an provider with ``slug`` gets, in parts (``before``, ``slug`` or None while it is
    not a valid slug, ``after``) so the page can show a placeholder; None when PUBLIC_URL is not set."""
    public_url = current_app.config.get("PUBLIC_URL")
    if not public_url:
        return None
    marker = "geologin-slug-marker"
    before, after = url_for("external.callback", slug=marker).split(marker, 1)
    valid = bool(slug and service.SLUG.match(slug))
    return {"before": public_url + before, "slug": slug if valid else None, "after": after}


def _apply_errors(form, cls, errors):
    for name, message in setting_fields.put_errors(form, cls.settings, errors).items():
        target = getattr(form, name, None) if name in ("slug", "label", "description", "proxy_paths") else None
        (target.errors if target is not None else form.form_errors).append(str(message))


def _with_groups(form, provider=None):
    """``form`` with the geologin groups offered for access and account creation (ticked as stored)."""
    offered = [choice(group.id, group.name) for group in groups_service.all_groups()]
    form.access_group_ids.choices = form.create_group_ids.choices = offered
    if provider is not None and request.method != "POST":
        form.access_group_ids.data = sorted(permissions.access_group_ids(provider, permissions.ACCESS))
        form.create_group_ids.data = sorted(permissions.access_group_ids(provider, permissions.CREATE))
    return form


def _save_groups(provider, form):
    """Store the form's access groups and account settings; whether anything changed."""
    by_id = {group.id: group for group in groups_service.all_groups()}
    changed = permissions.set_access_groups(provider, [by_id[i] for i in form.access_group_ids.data or []
                                                       if i in by_id], actor=actor())
    changed |= permissions.set_create_groups(provider, [by_id[i] for i in form.create_group_ids.data or []
                                                        if i in by_id], actor=actor())
    clash = form.account_clash.data if form.account_clash.data in permissions.CLASH_POLICIES else None
    return bool(permissions.set_account_creation(provider, create_accounts=form.create_accounts.data,
                                                 account_clash=clash, actor=actor())) or changed


def _counts():
    rows = db.session.execute(select(UserProviderPermission.provider_id, func.count())
                              .group_by(UserProviderPermission.provider_id))
    return dict(rows.all())


# -- list, add, edit, delete, reorder --------------------------------------------------------------------
@bp.route("", endpoint="index")
def providers_list():
    registry = cache.plugin_registry()
    return render_template("admin/providers.html", instances=cache.ordered_providers(), registry=registry,
                           counts=_counts(), broken=registry.broken)


@bp.route("/new", methods=["GET", "POST"])
def new():
    registry = cache.plugin_registry()
    type_name = request.args.get("type")
    if not type_name:
        types = [registry.get(t) for t in registry.types()]
        status = 400 if request.method == "POST" else 200
        return render_template("admin/providers_new.html", types=types, broken=registry.broken), status
    cls = registry.get(type_name)
    if cls is None:
        abort(404)
    form = _with_groups(setting_fields.with_setting_fields(ProviderCreateForm, cls.settings)())
    if form.validate_on_submit():
        plain, secrets = setting_fields.read_settings(form, cls.settings)
        try:
            provider = service.create_provider(
                type_name, slug=form.slug.data, label=form.label.data, description=form.description.data,
                settings=plain, secrets=secrets, enabled=form.enabled.data and form.enable_untested.data,
                allow_all_users=form.allow_all_users.data, keep_tokens=form.keep_tokens.data, actor=actor())
        except cache.ProviderChangeError as error:
            db.session.rollback()
            _apply_errors(form, cls, error.errors)
        else:
            _save_groups(provider, form)
            flash(_("Identity provider %(label)s created. Now register geologin at the server as shown here.",
                    label=provider.label), "info")
            if form.enabled.data and not form.enable_untested.data:
                _enable_if_tested(provider)
            return redirect(url_for("admin.providers.setup", slug=provider.slug))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/providers_form.html", form=form, plugin=cls, instance=None,
                           settings=setting_fields.setting_fields(form, cls.settings),
                           preview=_redirect_preview(form.slug.data)), status


@bp.route("/<slug>/edit", methods=["GET", "POST"])
def edit(slug):
    provider = _provider_or_404(slug)
    cls = _plugin_or_flash(provider)
    if cls is None:
        return redirect(url_for("admin.providers.index"))
    stored = {s.name for s in cls.settings if s.secret and cache.has_secret(provider, s.name)}
    form_class = setting_fields.with_setting_fields(ProviderEditForm, cls.settings,
                                                    values=cache.settings_of(provider), stored_secrets=stored)
    form = _with_groups(form_class(obj=provider), provider)
    if request.method != "POST":
        form.proxy_paths.data = "\n".join(proxy_path_rules.of(provider))
    if form.validate_on_submit():
        plain, secrets = setting_fields.read_settings(form, cls.settings)
        # Only the proxy reads them; a form without the field (an older page) leaves them as they are.
        paths = ([line.strip() for line in (form.proxy_paths.data or "").splitlines() if line.strip()]
                 if cls.serves_api and "proxy_paths" in request.form else None)
        try:
            changed = service.update_provider(
                provider, label=form.label.data, description=form.description.data, settings=plain,
                secrets=secrets, enabled=form.enabled.data, allow_all_users=form.allow_all_users.data,
                groups_prefixed=form.groups_prefixed.data, keep_tokens=form.keep_tokens.data, proxy_paths=paths,
                actor=actor())
        except cache.ProviderChangeError as error:
            db.session.rollback()
            _apply_errors(form, cls, error.errors)
        else:
            changed = _save_groups(provider, form) or changed
            flash(_("Changes saved.") if changed else _("Nothing changed."), "info")
            return redirect(url_for("admin.providers.setup", slug=provider.slug))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/providers_form.html", form=form, plugin=cls, instance=provider,
                           settings=setting_fields.setting_fields(form, cls.settings),
                           preview=_redirect_preview(provider.slug)), status


@bp.route("/<slug>/delete", methods=["GET", "POST"])
def delete(slug):
    provider = _provider_or_404(slug)
    if request.method == "POST":  # CSRF is checked for every POST by CSRFProtect
        label = provider.label
        service.delete_provider(provider, actor=actor())
        flash(_("Identity provider %(label)s deleted.", label=label), "info")
        return redirect(url_for("admin.providers.index"))
    return render_template("admin/providers_delete.html", instance=provider,
                           allowed=len(permissions.allowed_users(provider)),
                           identities=len(provider.identities))


@bp.route("/<slug>/move", methods=["POST"])
def move(slug):
    provider = _provider_or_404(slug)
    offsets = {"up": -1, "down": 1}
    direction = request.form.get("direction")
    if direction not in offsets:
        abort(400)
    service.move_provider(provider, offsets[direction], actor=actor())
    return redirect(url_for("admin.providers.index"))


# -- setup page: what to register at the server, connection test, plugin actions --------------------------
def _setup_page(provider, *, checks=None, action_result=None, action_error=None, status=200):
    cls = _plugin_or_flash(provider)
    if cls is None:
        return redirect(url_for("admin.providers.index"))
    plugin = cache.plugin_object(provider)
    setup, setup_error = {}, None
    try:
        setup = plugin.setup_context()
    except (LoginFailure, SecretUnreadable) as error:
        setup_error = getattr(error, "detail", None) or str(error)
    return render_template(
        "admin/providers_setup.html", instance=provider, plugin=cls, provider=plugin, setup=setup,
        setup_error=setup_error, checks=checks, action_result=action_result, action_error=action_error,
        callback_url=cache.callback_url(provider), redirect_uri=plugin.redirect_uri(),
        allowed=len(permissions.allowed_users(provider)), summary=_summary(provider, cls),
    ), status


def _summary(provider, cls):
    """The provider's settings for display: plain values as text, secrets only as stored or not."""
    values = cache.settings_of(provider)
    rows = []
    for setting in cls.settings:
        value = values.get(setting.name)
        if setting.kind == "bool":
            text = _("yes") if value else _("no")
        elif setting.kind == "choice":
            text = dict(setting.choices).get(value, value)
        else:
            text = value
        rows.append({"label": setting.label, "secret": setting.secret, "value": text or _("(not set)"),
                     "stored": setting.secret and cache.has_secret(provider, setting.name)})
    return rows


@bp.route("/<slug>/setup")
def setup(slug):
    return _setup_page(_provider_or_404(slug))


def _enable_if_tested(provider):
    """Item 16: a new provider is offered to users only once its connection test passed; otherwise it stays
    disabled and the flash says why and how to enable it."""
    checks = _checks_of(provider)
    ok = all_passed(checks)
    _audit_test(provider, checks, ok)
    if ok:
        service.update_provider(provider, enabled=True, actor=actor())
        flash(_("The connection test passed, so %(label)s is enabled.", label=provider.label), "info")
        return
    failed = "; ".join(f"{check.name}: {check.message}" for check in checks if check.ok is False)
    flash(_("%(label)s was created disabled because the connection test did not pass (%(failed)s). Fix the "
            "settings and run Test connection, then enable it with Edit.", label=provider.label, failed=failed[:600]),
          "error")


def _checks_of(provider):
    """The connection test's checks; a plugin without one shows a failed check that says so."""
    return run_checks(provider) or [Check(_("Connection test"), False,
                                                  _("This plugin has no connection test."))]


def _audit_test(provider, checks, ok):
    audit.record("provider.test", audit.SUCCESS if ok else audit.FAILURE, target=provider.slug,
                 provider=provider.slug, actor=actor(), detail=audit_summary(checks))


@bp.route("/<slug>/test", methods=["POST"])
def test(slug):
    provider = _provider_or_404(slug)
    if cache.plugin_registry().get(provider.type) is None:
        return _setup_page(provider)
    checks = _checks_of(provider)
    _audit_test(provider, checks, all_passed(checks))
    return _setup_page(provider, checks=checks)


@bp.route("/<slug>/action/<name>", methods=["POST"])
def action(slug, name):
    provider = _provider_or_404(slug)
    if cache.plugin_registry().get(provider.type) is None:
        return _setup_page(provider)
    plugin = cache.plugin_object(provider)
    result, problem = None, None
    try:
        result = plugin.admin_action(name, request.form)
    except LookupError:
        abort(404)
    except LoginFailure as failure:
        problem = failure.detail or failure.reason
    except SecretUnreadable as error:
        problem = str(error)
    except Exception as error:
        logger.exception("admin action %r of a provider plugin failed", name)
        problem = _("The plugin failed unexpectedly (%(error)s); details are in the server log.",
                    error=type(error).__name__)
    audit.record("provider.action", audit.FAILURE if problem else audit.SUCCESS, target=provider.slug,
                 provider=provider.slug, actor=actor(), detail=f"action={name}")
    return _setup_page(provider, action_result=result or {}, action_error=problem)


# -- who may use an provider ----------------------------------------------------------------------------
def _users_page(provider, *, bulk_form=None, status=200):
    query = (request.args.get("q") or "").strip()[:200]
    statement = (users.search_users(query)
                 .join(UserProviderPermission, UserProviderPermission.user_id == User.id)
                 .where(UserProviderPermission.provider_id == provider.id))
    page = db.paginate(statement, page=requested_page(), per_page=current_app.config["USERS_PER_PAGE"],
                       error_out=False, max_per_page=200)
    return render_template("admin/providers_users.html", instance=provider, page=page, query=query,
                           access_groups=_group_names(provider),
                           bulk_form=bulk_form or BulkAllowForm(formdata=None),
                           disallow_form=DisallowForm(formdata=None)), status


def _group_names(provider):
    ids = permissions.access_group_ids(provider, permissions.ACCESS)
    return [group.name for group in groups_service.all_groups() if group.id in ids]


@bp.route("/<slug>/users", endpoint="users")
def users_list(slug):
    return _users_page(_provider_or_404(slug))


def _parse_usernames(text):
    names, seen = [], set()
    for line in text.splitlines():
        name = line.strip()
        if name and name not in seen:
            seen.add(name)
            names.append(name)
    return names


def _users_named(names):
    found = {}
    for start in range(0, len(names), 500):
        chunk = names[start:start + 500]
        found.update((u.username, u) for u in db.session.scalars(select(User).where(User.username.in_(chunk))))
    return found


@bp.route("/<slug>/users/allow", methods=["POST"])
def users_allow(slug):
    provider = _provider_or_404(slug)
    form = BulkAllowForm()
    if form.validate_on_submit():
        names = _parse_usernames(form.usernames.data)
        if not names:
            form.usernames.errors.append(_("Enter at least one username."))
        elif len(names) > BULK_MAX_LINES:
            form.usernames.errors.append(_("At most %(n)d usernames at once.", n=BULK_MAX_LINES))
        else:
            found = _users_named(names)
            unknown = [name for name in names if name not in found]
            added = permissions.allow([found[name] for name in names if name in found], provider, actor=actor())
            already = len(found) - len(added)
            flash(ngettext("Allowed: %(num)d user.", "Allowed: %(num)d users.", len(added)) +
                  (" " + ngettext("%(num)d was already allowed.", "%(num)d were already allowed.", already)
                   if already else ""), "info")
            if unknown:  # flashes live in the session cookie: keep the message short
                shown = ", ".join(n if len(n) <= 60 else n[:59] + "…" for n in unknown[:UNKNOWN_SHOWN])
                if len(unknown) > UNKNOWN_SHOWN:
                    shown += " " + _("and %(n)d more", n=len(unknown) - UNKNOWN_SHOWN)
                flash(ngettext("Unknown, nothing done: %(names)s (%(num)d name).",
                               "Unknown, nothing done: %(names)s (%(num)d names).", len(unknown), names=shown),
                      "error")
            return redirect(url_for("admin.providers.users", slug=provider.slug))
    return _users_page(provider, bulk_form=form, status=400)


@bp.route("/<slug>/users/disallow", methods=["POST"])
def users_disallow(slug):
    provider = _provider_or_404(slug)
    form = DisallowForm()
    if form.validate_on_submit() and form.user_ids.data:
        chosen = users.users_with_ids(form.user_ids.data[:BULK_MAX_LINES])
        removed = permissions.disallow(chosen, provider, actor=actor())
        flash(ngettext("%(num)d user may no longer log in through %(label)s.",
                       "%(num)d users may no longer log in through %(label)s.", len(removed), label=provider.label),
              "info")
    else:
        flash(_("Tick the users to disallow first."), "error")
    return redirect(url_for("admin.providers.users", slug=provider.slug, q=request.args.get("q") or None))
