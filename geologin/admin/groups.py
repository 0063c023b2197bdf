"""Administrators' screens for geologin groups (docs/groups.md): list, add, edit, delete, members by hand,
mappings from an identity provider's groups, and who is in a group through them.

Nested in the admin blueprint (see admin/__init__.py), so the admin guard runs before every route here. Every
change goes through geologin/groups/service.py, which the CLI uses too; bad input shows the form again with
the message and saves nothing."""
import json

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l, ngettext
from sqlalchemy import func, select
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import Length, ValidationError

from ..accounts import users
from ..apps import clients
from ..extensions import db
from ..groups import membership, service
from ..idp import cache
from ..models import (Application, ApplicationGroup, ExternalIdentity, Group, GroupMapping, GroupMember,
                      IdentityProvider, ProviderGroup, User)
from ..validation import row_id
from ..web import Form, requested_page, strip
from .blueprint import actor
from .forms import ApplicationAllowForm, DisallowForm
from .setting_fields import MarkRequired, choice

bp = Blueprint("groups", __name__, url_prefix="/groups")

BULK_MAX_LINES = 10000
MAX_SEEN = 1000  # provider groups offered when mapping: enough to help, bounded whatever the bindings hold


class GroupForm(Form):
    name = StringField(_l("Name"), validators=[MarkRequired()], filters=[strip],
                       description=_l("What applications see, e.g. “Malaria programme”. No commas or colons."))
    description = TextAreaField(_l("Description"), validators=[Length(max=service.MAX_DESCRIPTION)],
                                filters=[strip], description=_l("For administrators: who belongs in it."))


class MappingForm(Form):
    provider_id = SelectField(_l("Identity provider"), coerce=row_id, validate_choice=False)
    external_id = StringField(_l("Id of the group at the provider"), validators=[MarkRequired()], filters=[strip],
                              description=_l("Its members there are in this group from what their last login "
                                             "through the provider said. The list offers the groups geologin has "
                                             "seen."),
                              render_kw={"list": "seen-groups", "autocapitalize": "none", "spellcheck": "false"})
    external_name = StringField(_l("Its name there"), filters=[strip],
                                description=_l("For these screens. Optional: the name geologin has seen is used."))

    def validate_provider_id(self, field):
        """A form opened before another administrator deleted the provider still names it."""
        if db.session.get(IdentityProvider, field.data or 0) is None:
            raise ValidationError(_l("Choose an identity provider from the list."))


_PURPOSES = {"access": _l("its members may log in through it"),
             "create": _l("its members get an account at their first login through it")}


def _group_or_404(group_id):
    group = db.session.get(Group, group_id)
    if group is None:
        abort(404)
    return group


def _lines(text):
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _put_error(form, error):
    target = getattr(form, error.field or "", None)
    (target.errors if target is not None else form.form_errors).append(error.message)


def _access(group):
    """The access the group gives: [(provider, purpose text)], [application]."""
    providers = [(provider, _PURPOSES.get(purpose, purpose)) for provider, purpose in db.session.execute(
        select(IdentityProvider, ProviderGroup.purpose)
        .join(ProviderGroup, ProviderGroup.provider_id == IdentityProvider.id)
        .where(ProviderGroup.group_id == group.id).order_by(IdentityProvider.position, ProviderGroup.purpose))]
    applications = list(db.session.scalars(
        select(Application).join(ApplicationGroup, ApplicationGroup.application_id == Application.id)
        .where(ApplicationGroup.group_id == group.id).order_by(Application.name)))
    return providers, applications


def _seen_groups():
    """The provider groups geologin has seen in stored bindings: [(provider, id, name)], to help map."""
    providers = {p.id: p for p in cache.ordered_providers()}
    seen = {}
    for provider_id, text in db.session.execute(
            select(ExternalIdentity.provider_id, ExternalIdentity.groups_json)
            .where(ExternalIdentity.groups_json.is_not(None))):
        try:
            groups = json.loads(text) if text else []
        except ValueError:
            continue
        for item in groups if isinstance(groups, list) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str) and provider_id in providers:
                seen.setdefault((provider_id, item["id"]), str(item.get("name") or item["id"]))
        if len(seen) >= MAX_SEEN:
            break
    return sorted(((providers[pid], gid, name) for (pid, gid), name in seen.items()),
                  key=lambda row: (row[0].position, row[2].lower(), row[1]))


def _group_page(group, *, form=None, add_form=None, mapping_form=None, status=200):
    """A group's page: its settings, members by hand, mappings and members through mappings."""
    query = (request.args.get("q") or "").strip()[:200]
    statement = (users.search_users(query).join(GroupMember, GroupMember.user_id == User.id)
                 .where(GroupMember.group_id == group.id))
    page = db.paginate(statement, page=requested_page(), per_page=current_app.config["USERS_PER_PAGE"],
                       error_out=False, max_per_page=200)
    if mapping_form is None:
        mapping_form = MappingForm(formdata=None)
    mapping_form.provider_id.choices = [choice(p.id, f"{p.label} ({p.slug})") for p in cache.ordered_providers()]
    mapped = [(user, [s for s in sources if s.provider is not None]) for user, sources in service.members(group)]
    providers, applications = _access(group)
    mappings = sorted(db.session.scalars(select(GroupMapping).where(GroupMapping.group_id == group.id)),
                      key=lambda m: (m.provider.position, m.external_name.lower(), m.external_id))
    return render_template(
        "admin/group.html", group=group, form=form or GroupForm(formdata=None, obj=group),
        add_form=add_form or ApplicationAllowForm(formdata=None), remove_form=DisallowForm(formdata=None),
        mapping_form=mapping_form, page=page, query=query, mappings=mappings,
        mapped=[(user, sources) for user, sources in mapped if sources], seen=_seen_groups(),
        access_providers=providers, access_applications=applications), status


# -- list, add, edit, delete ---------------------------------------------------------------------------------
@bp.route("", endpoint="index")
def groups_list():
    query = (request.args.get("q") or "").strip()[:200]
    statement = select(Group).order_by(Group.name)
    if query:
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(Group.name.ilike(pattern, escape="\\") |
                                    Group.description.ilike(pattern, escape="\\"))
    page = db.paginate(statement, page=requested_page(), per_page=current_app.config["USERS_PER_PAGE"],
                       error_out=False, max_per_page=200)
    counts = {group.id: len(service.member_ids(group)) for group in page.items}
    return render_template("admin/groups.html", page=page, query=query, counts=counts)


@bp.route("/new", methods=["GET", "POST"])
def new():
    form = GroupForm()
    if form.validate_on_submit():
        try:
            group = service.create(form.name.data, form.description.data, actor=actor())
        except service.GroupError as error:
            db.session.rollback()
            _put_error(form, error)
        else:
            flash(_("Group %(name)s created.", name=group.name), "info")
            return redirect(url_for("admin.groups.show", group_id=group.id))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/group_new.html", form=form), status


@bp.route("/<int:group_id>", methods=["GET", "POST"], endpoint="show")
def show(group_id):
    group = _group_or_404(group_id)
    if request.method == "GET":
        return _group_page(group)
    form = GroupForm()
    if form.validate_on_submit():
        try:
            changed = service.edit(group, name=form.name.data, description=form.description.data, actor=actor())
        except service.GroupError as error:
            db.session.rollback()
            _put_error(form, error)
        else:
            flash(_("Changes saved.") if changed else _("Nothing changed."), "info")
            return redirect(url_for("admin.groups.show", group_id=group.id))
    return _group_page(group, form=form, status=400)


@bp.route("/<int:group_id>/delete", methods=["GET", "POST"])
def delete(group_id):
    group = _group_or_404(group_id)
    if request.method == "POST":  # CSRF is checked for every POST by CSRFProtect
        name = group.name
        service.remove(group, actor=actor())
        flash(_("Group %(name)s deleted.", name=name), "info")
        return redirect(url_for("admin.groups.index"))
    by_hand = db.session.scalar(select(func.count()).select_from(GroupMember).where(GroupMember.group_id == group.id))
    providers, applications = _access(group)
    return render_template("admin/group_delete.html", group=group, members=len(service.member_ids(group)),
                           by_hand=by_hand,
                           mappings=list(db.session.scalars(select(GroupMapping)
                                                            .where(GroupMapping.group_id == group.id))),
                           access_providers=providers, access_applications=applications)


# -- members by hand -----------------------------------------------------------------------------------------
@bp.route("/<int:group_id>/members/add", methods=["POST"])
def members_add(group_id):
    """Every name must be a user, or nobody is added (the CLI's rule too): a typo is fixed, not half done."""
    group = _group_or_404(group_id)
    form = ApplicationAllowForm()
    if form.validate_on_submit():
        names = list(dict.fromkeys(_lines(form.usernames.data)))
        if len(names) > BULK_MAX_LINES:
            form.usernames.errors.append(_("At most %(n)d usernames at once.", n=BULK_MAX_LINES))
        else:
            try:
                added = service.add_members(group, clients.users_named(names), actor=actor())
            except clients.ApplicationError as error:
                db.session.rollback()
                form.usernames.errors.append(error.message)
            else:
                already = len(names) - len(added)
                flash(ngettext("Added: %(num)d member.", "Added: %(num)d members.", len(added)) +
                      (" " + ngettext("%(num)d was already a member.", "%(num)d were already members.", already)
                       if already else ""), "info")
                return redirect(url_for("admin.groups.show", group_id=group.id))
    return _group_page(group, add_form=form, status=400)


@bp.route("/<int:group_id>/members/remove", methods=["POST"])
def members_remove(group_id):
    group = _group_or_404(group_id)
    form = DisallowForm()
    if form.validate_on_submit() and form.user_ids.data:
        chosen = users.users_with_ids(form.user_ids.data[:BULK_MAX_LINES])
        removed = service.remove_members(group, chosen, actor=actor())
        flash(ngettext("%(num)d member removed from %(name)s.", "%(num)d members removed from %(name)s.",
                       len(removed), name=group.name), "info")
    else:
        flash(_("Tick the members to remove first."), "error")
    return redirect(url_for("admin.groups.show", group_id=group.id, q=request.args.get("q") or None))


# -- mappings ------------------------------------------------------------------------------------------------
@bp.route("/<int:group_id>/mappings/add", methods=["POST"])
def mappings_add(group_id):
    group = _group_or_404(group_id)
    form = MappingForm()
    form.provider_id.choices = [choice(p.id, p.label) for p in cache.ordered_providers()]
    if form.validate_on_submit():
        provider = db.session.get(IdentityProvider, form.provider_id.data)
        name = form.external_name.data or next(
            (seen_name for seen_provider, seen_id, seen_name in _seen_groups()
             if seen_provider.id == provider.id and seen_id == form.external_id.data), "")
        try:
            service.add_mapping(group, provider, form.external_id.data, name, actor=actor())
        except service.GroupError as error:
            db.session.rollback()
            _put_error(form, error)
        else:
            flash(_("Members of %(external)s at %(label)s are now in %(name)s.",
                    external=name or form.external_id.data, label=provider.label, name=group.name), "info")
            return redirect(url_for("admin.groups.show", group_id=group.id) + "#mappings")
    return _group_page(group, mapping_form=form, status=400)


@bp.route("/<int:group_id>/mappings/<int:mapping_id>/remove", methods=["POST"])
def mappings_remove(group_id, mapping_id):
    group = _group_or_404(group_id)
    mapping = db.session.get(GroupMapping, mapping_id)
    if mapping is None or mapping.group_id != group.id:
        abort(404)
    service.remove_mapping(mapping, actor=actor())
    flash(_("Mapping removed: its members are no longer in %(name)s through it.", name=group.name), "info")
    return redirect(url_for("admin.groups.show", group_id=group.id) + "#mappings")
