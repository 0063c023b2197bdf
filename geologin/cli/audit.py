"""The ``audit`` commands: read and prune the audit trail."""
import json

import click
from flask import current_app
from flask.cli import AppGroup

from ..audit import query as audit_query
from ..extensions import db
from .common import CLI_ACTOR

audit_cli = AppGroup("audit", help="Read and prune the audit trail.")


_DAY = click.DateTime(formats=["%Y-%m-%d"])


@audit_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000),
              help="How many of the newest events to print.")
@click.option("--user", default=None, help="Only events whose actor or target contains this text.")
@click.option("--provider", default=None, help="Only events of this identity-provider slug.")
@click.option("--event", default=None, help="Only events of this type, e.g. login or user.update.")
@click.option("--outcome", default=None, type=click.Choice(audit_query.OUTCOMES), help="Only this outcome.")
@click.option("--since", default=None, type=_DAY, metavar="YYYY-MM-DD", help="From this UTC day (included).")
@click.option("--until", default=None, type=_DAY, metavar="YYYY-MM-DD", help="To this UTC day (included).")
def audit_list(as_json, limit, user, provider, event, outcome, since, until):
    """Print the newest audit events (matching the filters), oldest first."""
    if since and until and since > until:
        raise click.UsageError("--since is after --until.")
    filters = {"user": user, "provider": provider, "event": event, "outcome": outcome,
               "since": since.date() if since else None, "until": until.date() if until else None}
    events = list(db.session.scalars(audit_query.filtered_events(filters).limit(limit)))[::-1]
    if as_json:
        click.echo(json.dumps([e.as_dict() for e in events], indent=2))
        return
    for e in events:
        fields = [e.created_at.strftime(audit_query.TIME_FORMAT), e.event_type, e.outcome,
                  f"actor={e.actor or '-'}", f"ip={e.client_ip or '-'}", f"target={e.target or '-'}"]
        if e.provider:
            fields.append(f"provider={e.provider}")
        if e.reason_code:
            fields.append(f"reason={e.reason_code}")
        click.echo(" ".join(fields))


def _retention_days():
    days = current_app.config.get("AUDIT_RETENTION_DAYS")  # a whole number, at least 1 (config's table)
    if days is None:
        raise click.UsageError("Give --older-than DAYS (AUDIT_RETENTION_DAYS is not set).")
    return days


@audit_cli.command("prune")
@click.option("--older-than", "days", type=click.IntRange(min=1), default=None, metavar="DAYS",
              help="Delete events older than DAYS days (default: AUDIT_RETENTION_DAYS).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for cron or a systemd timer).")
def audit_prune(days, yes):
    """Delete audit events older than DAYS days; the pruning itself is recorded."""
    if days is None:
        days = _retention_days()
    if not yes:
        count = audit_query.count_older_than(days)
        click.confirm(f"Delete {count} audit event(s) older than {days} days?", abort=True)
    deleted = audit_query.prune(days, actor=CLI_ACTOR)
    click.echo(f"Deleted {deleted} audit events older than {days} days.")
