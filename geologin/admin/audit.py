"""Administrators' audit screen: the audit trail newest first, filtered by user, provider, event type,
outcome and UTC days, paged, and exported as CSV with the same filters.

This blueprint is nested in the admin blueprint (see admin/__init__.py), so the admin guard runs before every
route here. It has no URL prefix of its own because the export sits beside the screen (/admin/audit and
/admin/audit.csv), and a prefix would put it under /admin/audit/. Filtering is audit_query's, which the
CLI uses too."""
import csv
import io
import sys

from flask import Blueprint, Response, abort, current_app, render_template, request, stream_with_context
from flask_babel import gettext as _, lazy_gettext as _l
from wtforms import Form, SelectField, StringField
from wtforms.validators import ValidationError

from .. import audit
from ..audit import query as audit_query
from ..extensions import db
from ..web import requested_page, strip
from ..models import utcnow

bp = Blueprint("audit", __name__)

CSV_COLUMNS = ("time", "event_type", "outcome", "actor", "client_ip", "target", "provider", "reason_code",
               "detail")  # the keys of ``audit list --json``: stable for scripts, so not translated
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _bounded(value):
    value = strip(value)
    return value[:255] if isinstance(value, str) else value


def _day_validator(form, field):
    if field.data:
        try:
            audit_query.parse_day(field.data)
        except ValueError:
            raise ValidationError(_("Enter a date as YYYY-MM-DD, for example 2025-01-31. The list below is "
                                    "not limited by this date.")) from None


class AuditFilterForm(Form):
    """The filters, read from the query string (a GET form: no CSRF token, nothing changes)."""

    user = StringField(_l("User (actor or target; part of the name is enough)"), filters=[_bounded],
                       render_kw={"autocapitalize": "none", "spellcheck": "false"})
    provider = SelectField(_l("Identity provider"), default="", validate_choice=False, filters=[_bounded])
    event = SelectField(_l("Event type"), default="", validate_choice=False, filters=[_bounded])
    outcome = SelectField(_l("Outcome"), default="", validate_choice=False, filters=[_bounded])
    since = StringField(_l("From day"), filters=[_bounded], validators=[_day_validator],
                        description=_l("YYYY-MM-DD, UTC; this day is included."),
                        render_kw={"placeholder": _l("YYYY-MM-DD"), "autocomplete": "off"})
    until = StringField(_l("To day"), filters=[_bounded], validators=[_day_validator],
                        description=_l("YYYY-MM-DD, UTC; this day is included."),
                        render_kw={"placeholder": _l("YYYY-MM-DD"), "autocomplete": "off"})

    def validate_outcome(self, field):
        if field.data and field.data not in audit_query.OUTCOMES:
            raise ValidationError(_("Choose success, failure or any. The list below shows every outcome."))

    def fill_choices(self):
        def with_current(values, current):
            return values + ([current] if current and current not in values else [])

        any_choice = [("", _("Any"))]
        self.provider.choices = any_choice + [(s, s) for s in with_current(audit_query.provider_slugs(),
                                                                            self.provider.data)]
        self.event.choices = any_choice + [(t, t) for t in with_current(audit_query.event_types(),
                                                                         self.event.data)]
        self.outcome.choices = any_choice + [(audit.SUCCESS, _("Success")), (audit.FAILURE, _("Failure"))]
        if self.outcome.data and self.outcome.data not in audit_query.OUTCOMES:
            self.outcome.choices.append((self.outcome.data, self.outcome.data))

    def applied_filters(self):
        """Validate, then the filters that can be applied (a field with an error is left out)."""
        self.validate()
        filters = {name: self[name].data for name in ("user", "provider", "event", "outcome")
                   if self[name].data and not self[name].errors}
        days = {name: audit_query.parse_day(self[name].data) for name in ("since", "until")
                if self[name].data and not self[name].errors}
        if len(days) == 2 and days["since"] > days["until"]:
            self.until.errors = list(self.until.errors) + [
                _("The last day is before the first day. The list below is not limited by dates.")]
            days = {}
        filters.update(days)
        return filters

    def query_args(self, only_applied=False):
        """The filters as query-string arguments, for links that keep them."""
        return {f.name: f.data for f in self if f.data and not (only_applied and f.errors)}


def _filter_form():
    form = AuditFilterForm(request.args)
    filters = form.applied_filters()
    return form, filters


def _time(event):
    """The CSV's time: UTC, like the CLI's (the screen shows the configured zone, see i18n.local_datetime)."""
    return event.created_at.strftime(audit_query.TIME_FORMAT)


@bp.route("/audit", endpoint="index")
def events():
    form, filters = _filter_form()
    form.fill_choices()
    page = db.paginate(audit_query.filtered_events(filters), page=requested_page(),
                       per_page=current_app.config["AUDIT_PER_PAGE"], error_out=False, max_per_page=1000)
    return render_template("admin/audit.html", form=form, page=page, filtered=bool(filters),
                           args=form.query_args(), csv_args=form.query_args(only_applied=True))


def csv_cell(value):
    """A CSV cell that a spreadsheet shows as text: a leading ``= + - @`` tab or CR (a formula) gets a
    ``'`` in front, and control characters (CR/LF included) are escaped so one event is one line."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_FORMULA_START):
        text = "'" + text
    return audit.clean_text(text, limit=sys.maxsize)


@bp.route("/audit.csv", endpoint="csv")
def events_csv():
    form, filters = _filter_form()
    if any(f.errors for f in form):
        abort(400)  # only a hand-made URL gets here: the screen links to the filters it applied
    statement = audit_query.filtered_events(filters).execution_options(yield_per=500)

    def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")

        def flush():
            text = buffer.getvalue()
            buffer.seek(0)
            buffer.truncate(0)
            return text

        writer.writerow(CSV_COLUMNS)
        yield flush()
        for count, event in enumerate(db.session.scalars(statement), 1):
            writer.writerow([csv_cell(v) for v in (_time(event), event.event_type, event.outcome, event.actor,
                                                   event.client_ip, event.target, event.provider,
                                                   event.reason_code, event.detail)])
            if count % 200 == 0:
                yield flush()
        yield flush()

    filename = f"geologin-audit-{utcnow():%Y%m%d}.csv"
    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})
