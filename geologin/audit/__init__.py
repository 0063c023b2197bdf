"""The one way to record a security event: a row in the audit table and a line in the application log."""
import logging
import re

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import insert

from ..extensions import db
from ..models import AuditEvent

logger = logging.getLogger("geologin.audit")

SUCCESS = "success"
FAILURE = "failure"
_INSERT = insert(AuditEvent.__table__)
_COLUMN = {"event": "event_type", "ip": "client_ip", "reason": "reason_code"}  # log field -> column
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def clean_text(value, limit=255):
    """Make user- or server-supplied text safe to store and log: control characters (CR/LF included)
    become visible escapes, so nobody can forge a second log line, and the length is capped."""
    if value is None:
        return None
    text = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def client_ip():
    return request.remote_addr if has_request_context() else None


def _current_actor():
    if has_request_context() and current_user and current_user.is_authenticated:
        return current_user.username
    return None


def record(event_type, outcome=SUCCESS, *, target=None, reason=None, provider=None, detail=None,
           actor=None, commit=True):
    """Add an audit event (committing by default, so failures are kept even if the caller rolls back)."""
    entry = {"event": event_type, "outcome": outcome,
             "actor": clean_text(actor if actor is not None else _current_actor(), 150), "ip": client_ip(),
             "target": clean_text(target), "provider": clean_text(provider, 100), "reason": clean_text(reason, 60)}
    # A plain INSERT, not an ORM object: nothing reads the row back, and the unit of work's bookkeeping for
    # it cost as much as the rest of a password login's database work.
    db.session.execute(_INSERT, {_COLUMN.get(key, key): value for key, value in entry.items()}
                       | {"detail": clean_text(detail, 2000)})
    if commit:
        db.session.commit()
    logger.info("audit event=%s outcome=%s actor=%s ip=%s target=%s provider=%s reason=%s", *entry.values(),
                extra={"fields": {"audit": entry}})
