"""Administrators' screens for applications (the OpenID Connect clients that sign their users in through
geologin, and the protected sites a reverse proxy asks geologin about): list, add, edit, rotate the secret,
delete, who may sign in, and which login methods they admit.

Nested in the admin blueprint (see admin/__init__.py), so the admin guard runs before every route here. Every
change goes through geologin/apps/clients.py, which the CLI uses too; a secret is shown once, on the page
that answers the POST that made it, and never stored in clear."""
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, ngettext

from ..accounts import users
from ..apps import clients
from ..extensions import db
from ..groups import service as groups
from ..idp import cache
from ..models import Application, ApplicationUser, User
from ..web import requested_page
from .blueprint import actor
from .forms import ApplicationAllowForm, ApplicationCreateForm, ApplicationForm, DisallowForm, SiteForm
from .setting_fields import choice

bp = Blueprint("apps", __name__, url_prefix="/apps")

BULK_MAX_LINES = 10000
# Form field that shows each service error (clients.ApplicationError.field -> form field).
FIELDS = {"name": "name", "redirect_uris": "redirect_uris", "post_logout_uris": "post_logout_uris",
          "backchannel_logout_uri": "backchannel_logout_uri", "providers": "provider_ids", "hosts": "hosts",
          "groups": "group_ids", "attribute_claims": "attribute_claims", "token_providers": "token_provider_ids"}


def _application_or_404(app_id):
    application = db.session.get(Application, app_id)
    if application is None:
        abort(404)
    return application


def _lines(text):
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _with_providers(form, application=None):
    """The form with its choices: identity providers, groups and (an OpenID client's) attribute claims."""
    form.provider_ids.choices = [choice(p.id, p.label) for p in cache.ordered_providers()]
    form.group_ids.choices = [choice(g.id, g.name) for g in groups.all_groups()]
    if hasattr(form, "attribute_claims"):
        names = set(clients.known_attribute_names())
        names.update(clients.attribute_claim_names(application) if application is not None else ())
        form.attribute_claims.choices = [choice(name, name) for name in sorted(names)]
    if hasattr(form, "token_provider_ids"):  # those that keep tokens, and any already chosen
        chosen = set(clients.token_provider_slugs(application)) if application is not None else set()
        form.token_provider_ids.choices = [choice(p.id, p.label) for p in cache.ordered_providers()
                                           if p.keep_tokens or p.slug in chosen]
    return form


def _chosen_token_providers(form):
    by_id = {p.id: p.slug for p in cache.ordered_providers()}
    return [by_id[provider_id] for provider_id in form.token_provider_ids.data or []]


def _chosen_slugs(form):
    by_id = {p.id: p.slug for p in cache.ordered_providers()}
    return [by_id[provider_id] for provider_id in form.provider_ids.data or []]


def _chosen_groups(form):
    by_id = {group.id: group.name for group in groups.all_groups()}
    return [by_id[group_id] for group_id in form.group_ids.data or [] if group_id in by_id]


def _access_data(application):
    """The edit form's access fields as stored."""
    return {"allow_all_users": application.allow_all_users,
            "provider_ids": sorted(row.provider_id for row in application.allowed_providers),
            "group_ids": sorted(g.id for g in groups.all_groups()
                                if g.name in set(clients.allowed_group_names(application)))}


def _put_error(form, error):
    target = getattr(form, FIELDS.get(error.field, ""), None)
    (target.errors if target is not None else form.form_errors).append(error.message)


def _form_page(form, application=None, status=200):
    template = "admin/apps_site_form.html" if isinstance(form, SiteForm) else "admin/apps_form.html"
    return render_template(template, form=form, application=application,
                           providers={p.id: p for p in cache.ordered_providers()},
                           allowed_groups=clients.allowed_group_names), status


def _public_url():
    return current_app.config.get("PUBLIC_URL") or request.host_url.rstrip("/")


def _cookie_reaches(host):
    """Whether the browser sends geologin's session cookie to ``host`` (else a login there loops back)."""
    hostname = urlsplit("//" + host).hostname
    domain = current_app.config.get("SESSION_COOKIE_DOMAIN")
    if not domain:
        return hostname == urlsplit(_public_url()).hostname
    domain = domain.lstrip(".")
    return hostname == domain or hostname.endswith("." + domain)


def _secret_page(application, secret, created):
    """The one page that ever shows ``secret`` (already no-store: every signed-in page is)."""
    return render_template("admin/apps_secret.html", application=application, secret=secret, created=created)


# -- list, add, edit, delete ---------------------------------------------------------------------------------
@bp.route("", endpoint="index")
def apps_list():
    applications = clients.all_applications()
    return render_template("admin/apps.html", applications=applications,
                           rows={a.id: clients.as_dict(a) for a in applications})


@bp.route("/new", methods=["GET", "POST"])
def new():
    form = _with_providers(ApplicationCreateForm())
    if form.validate_on_submit():
        try:
            application, secret = clients.create(
                form.name.data, _lines(form.redirect_uris.data), post_logout_uris=_lines(form.post_logout_uris.data),
                backchannel_logout_uri=form.backchannel_logout_uri.data or None, public=form.public.data,
                first_party=form.first_party.data, all_users=form.allow_all_users.data,
                refresh_tokens=form.refresh_tokens.data, providers=_chosen_slugs(form),
                id_token_alg=form.id_token_alg.data, groups=_chosen_groups(form),
                attribute_claims=form.attribute_claims.data or [],
                token_providers=_chosen_token_providers(form), actor=actor())
        except clients.ApplicationError as error:
            db.session.rollback()
            _put_error(form, error)
        else:
            return _secret_page(application, secret, created=True)
    return _form_page(form, status=400 if request.method == "POST" else 200)


@bp.route("/new-site", methods=["GET", "POST"])
def new_site():
    form = _with_providers(SiteForm())
    if form.validate_on_submit():
        try:
            application, _secret = clients.create(
                form.name.data, forward_auth=True, hosts=_lines(form.hosts.data), all_users=form.allow_all_users.data,
                providers=_chosen_slugs(form), groups=_chosen_groups(form), actor=actor())
        except clients.ApplicationError as error:
            db.session.rollback()
            _put_error(form, error)
        else:
            flash(_("Protected site %(name)s added.", name=application.name), "info")
            return redirect(url_for("admin.apps.setup", app_id=application.id))
    return _form_page(form, status=400 if request.method == "POST" else 200)


@bp.route("/<int:app_id>/setup")
def setup(app_id):
    """What to configure next for a protected site: the proxy's verification URLs and each host's sign-out link."""
    application = _application_or_404(app_id)
    if not application.is_forward_auth:
        abort(404)
    base = _public_url()
    hosts = [{"name": host, "logout": f"{base}/forward-auth/logout?rd=https://{host}/",
              "cookie_reaches": _cookie_reaches(host)} for host in clients.host_names(application)]
    return render_template("admin/apps_setup.html", application=application, hosts=hosts,
                           nginx_url=f"{base}/forward-auth/nginx", proxy_url=f"{base}/forward-auth")


def _edit_site(application):
    if request.method == "POST":
        form = _with_providers(SiteForm())
    else:
        form = _with_providers(SiteForm(data={
            "name": application.name, "hosts": "\n".join(clients.host_names(application)),
            **_access_data(application)}))
    if form.validate_on_submit():
        try:
            changed = clients.edit(application, name=form.name.data, hosts=_lines(form.hosts.data),
                                   all_users=form.allow_all_users.data, providers=_chosen_slugs(form),
                                   groups=_chosen_groups(form), actor=actor())
        except clients.ApplicationError as error:
            db.session.rollback()
            _put_error(form, error)
        else:
            flash(_("Changes saved.") if changed else _("Nothing changed."), "info")
            return redirect(url_for("admin.apps.edit", app_id=application.id))
    return _form_page(form, application, status=400 if request.method == "POST" else 200)


@bp.route("/<int:app_id>", methods=["GET", "POST"])
def edit(app_id):
    application = _application_or_404(app_id)
    if application.is_forward_auth:
        return _edit_site(application)
    if request.method == "POST":
        form = _with_providers(ApplicationForm(), application)
    else:
        form = _with_providers(ApplicationForm(data={
            "name": application.name,
            "redirect_uris": "\n".join(clients.redirect_uris(application)),
            "post_logout_uris": "\n".join(clients.post_logout_uris(application)),
            "backchannel_logout_uri": application.backchannel_logout_uri or "",
            "first_party": application.first_party, "refresh_tokens": application.refresh_tokens,
            "id_token_alg": application.id_token_alg, "attribute_claims": clients.attribute_claim_names(application),
            "token_provider_ids": [p.id for p in cache.ordered_providers()
                                   if p.slug in clients.token_provider_slugs(application)],
            **_access_data(application)}), application)
    if form.validate_on_submit():
        try:
            changed = clients.edit(
                application, name=form.name.data, redirect_uris=_lines(form.redirect_uris.data),
                post_logout_uris=_lines(form.post_logout_uris.data),
                backchannel_logout_uri=form.backchannel_logout_uri.data or None, first_party=form.first_party.data,
                all_users=form.allow_all_users.data, refresh_tokens=form.refresh_tokens.data,
                providers=_chosen_slugs(form), id_token_alg=form.id_token_alg.data, groups=_chosen_groups(form),
                attribute_claims=form.attribute_claims.data or [],
                token_providers=_chosen_token_providers(form), actor=actor())
        except clients.ApplicationError as error:
            db.session.rollback()
            _put_error(form, error)
        else:
            flash(_("Changes saved.") if changed else _("Nothing changed."), "info")
            return redirect(url_for("admin.apps.edit", app_id=application.id))
    return _form_page(form, application, status=400 if request.method == "POST" else 200)


@bp.route("/<int:app_id>/rotate-secret", methods=["GET", "POST"])
def rotate_secret(app_id):
    application = _application_or_404(app_id)
    if application.is_forward_auth:
        abort(404)  # the proxy asks on the person's behalf: a protected site has no secret to rotate
    if application.is_public:
        flash(_("“%(name)s” is a public client: it has no secret.", name=application.name), "error")
        return redirect(url_for("admin.apps.edit", app_id=application.id))
    if request.method == "POST":  # CSRF is checked for every POST by CSRFProtect
        secret = clients.rotate_secret(application, actor=actor())
        return _secret_page(application, secret, created=False)
    return render_template("admin/apps_rotate.html", application=application)


@bp.route("/<int:app_id>/delete", methods=["GET", "POST"])
def delete(app_id):
    application = _application_or_404(app_id)
    if request.method == "POST":  # CSRF is checked for every POST by CSRFProtect
        name = application.name
        clients.remove(application, actor=actor())
        flash(_("Application %(name)s deleted.", name=name), "info")
        return redirect(url_for("admin.apps.index"))
    return render_template("admin/apps_delete.html", application=application,
                           allowed=len(application.allowed_users), hosts=clients.host_names(application))


# -- who may sign in -----------------------------------------------------------------------------------------
def _users_page(application, *, bulk_form=None, status=200):
    query = (request.args.get("q") or "").strip()[:200]
    statement = (users.search_users(query)
                 .join(ApplicationUser, ApplicationUser.user_id == User.id)
                 .where(ApplicationUser.application_id == application.id))
    page = db.paginate(statement, page=requested_page(), per_page=current_app.config["USERS_PER_PAGE"],
                       error_out=False, max_per_page=200)
    return render_template("admin/apps_users.html", application=application, page=page, query=query,
                           bulk_form=bulk_form or ApplicationAllowForm(formdata=None),
                           disallow_form=DisallowForm(formdata=None)), status


@bp.route("/<int:app_id>/users", endpoint="users")
def users_list(app_id):
    return _users_page(_application_or_404(app_id))


@bp.route("/<int:app_id>/users/allow", methods=["POST"])
def users_allow(app_id):
    """Every name must be a user, or nothing is allowed (the CLI's rule too): a typo is fixed, not half done."""
    application = _application_or_404(app_id)
    form = ApplicationAllowForm()
    if form.validate_on_submit():
        names = list(dict.fromkeys(_lines(form.usernames.data)))
        if len(names) > BULK_MAX_LINES:
            form.usernames.errors.append(_("At most %(n)d usernames at once.", n=BULK_MAX_LINES))
        else:
            try:
                added = clients.allow(application, clients.users_named(names), actor=actor())
            except clients.ApplicationError as error:
                db.session.rollback()
                form.usernames.errors.append(error.message)
            else:
                already = len(names) - len(added)
                flash(ngettext("Allowed: %(num)d user.", "Allowed: %(num)d users.", len(added)) +
                      (" " + ngettext("%(num)d was already allowed.", "%(num)d were already allowed.", already)
                       if already else ""), "info")
                return redirect(url_for("admin.apps.users", app_id=application.id))
    return _users_page(application, bulk_form=form, status=400)


@bp.route("/<int:app_id>/users/disallow", methods=["POST"])
def users_disallow(app_id):
    application = _application_or_404(app_id)
    form = DisallowForm()
    if form.validate_on_submit() and form.user_ids.data:
        chosen = users.users_with_ids(form.user_ids.data[:BULK_MAX_LINES])
        removed = clients.disallow(application, chosen, actor=actor())
        flash(ngettext("%(num)d user may no longer sign in to %(name)s.",
                       "%(num)d users may no longer sign in to %(name)s.", len(removed), name=application.name),
              "info")
    else:
        flash(_("Tick the users to disallow first."), "error")
    return redirect(url_for("admin.apps.users", app_id=application.id, q=request.args.get("q") or None))
