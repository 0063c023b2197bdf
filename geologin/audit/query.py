"""Reading and pruning the audit trail: one filtered select shared by the admin screen, its CSV export and
``flask --app wsgi audit list``, and ``prune`` for the retention setting (``audit prune``)."""
import re
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import delete, func, or_, select

from .. import audit
from ..extensions import db
from ..models import AuditEvent, IdentityProvider, utcnow

OUTCOMES = (audit.SUCCESS, audit.FAILURE)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(text):
    """``YYYY-MM-DD`` as a date; ValueError for anything else (no other ISO forms, no impossible days)."""
    text = (text or "").strip()
    if not _DAY.fullmatch(text):
        raise ValueError(f"not a YYYY-MM-DD date: {text!r}")
    return date.fromisoformat(text)


def _start_of(day):
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def _like_pattern(text):
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def filtered_events(filters=None):
    """A select of audit events, newest first, narrowed by ``filters`` (missing or empty keys are ignored):

    - ``user``: text contained (case-insensitively) in the actor or the target;
    - ``provider``, ``event``: the exact provider slug / event type;
    - ``outcome``: ``"success"`` or ``"failure"``;
    - ``since``, ``until``: dates (UTC days, both inclusive).
    """
    filters = filters or {}
    statement = select(AuditEvent).order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    user = (filters.get("user") or "").strip()
    if user:
        pattern = _like_pattern(user)
        statement = statement.where(or_(AuditEvent.actor.ilike(pattern, escape="\\"),
                                        AuditEvent.target.ilike(pattern, escape="\\")))
    if filters.get("provider"):
        statement = statement.where(AuditEvent.provider == filters["provider"])
    if filters.get("event"):
        statement = statement.where(AuditEvent.event_type == filters["event"])
    if filters.get("outcome"):
        statement = statement.where(AuditEvent.outcome == filters["outcome"])
    if filters.get("since"):
        statement = statement.where(AuditEvent.created_at >= _start_of(filters["since"]))
    until = filters.get("until")
    if until and until < date.max:  # the last representable day has no "next day"; nothing is later anyway
        statement = statement.where(AuditEvent.created_at < _start_of(until + timedelta(days=1)))
    return statement


def event_types():
    """The event types found in the audit table, sorted."""
    return list(db.session.scalars(select(AuditEvent.event_type).distinct().order_by(AuditEvent.event_type)))


def provider_slugs():
    """The provider slugs found in the audit table or registered now, sorted."""
    seen = set(db.session.scalars(select(AuditEvent.provider).where(AuditEvent.provider.is_not(None)).distinct()))
    seen.update(db.session.scalars(select(IdentityProvider.slug)))
    return sorted(slug for slug in seen if slug)


def cutoff(older_than_days):
    return utcnow() - timedelta(days=older_than_days)


def count_older_than(older_than_days):
    return db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.created_at < cutoff(older_than_days)))


def prune(older_than_days, *, actor):
    """Delete the audit events older than ``older_than_days`` days and return how many went; the pruning
    itself is recorded as an ``audit.prune`` event (in the same transaction)."""
    days = int(older_than_days)
    if days < 1:
        raise ValueError("older_than_days must be at least 1")
    result = db.session.execute(delete(AuditEvent).where(AuditEvent.created_at < cutoff(days))
                                .execution_options(synchronize_session=False))
    deleted = result.rowcount
    audit.record("audit.prune", actor=actor, detail=f"{deleted} event(s) older than {days} day(s) deleted")
    return deleted
