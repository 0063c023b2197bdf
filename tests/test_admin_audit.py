"""The audit screen, its CSV export and the ``audit prune`` / ``audit list`` commands (issue 5; checklist
items 53, 54 and 55)."""
import csv
import io
import json
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest
from babel import dates as babel_dates
from sqlalchemy import func, select

from tests.conftest import STRONG_PASSWORD, AuthActions
from geologin import audit
from geologin import idp as instances
from geologin.config import DEFAULTS, environment_overrides
from geologin.extensions import db
from geologin.models import AuditEvent, utcnow

INJECTION = "=cmd|' /C calc'!A0"
SECRET = "Zq8-audit-secret-never-shown-0123456789"


def _at(text):
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def _event(app, event_type="test.event", outcome="success", created_at=None, **fields):
    """An audit row written straight through the model (so its time can be chosen)."""
    with app.app_context():
        event = AuditEvent(event_type=event_type, outcome=outcome, **fields)
        if created_at is not None:
            event.created_at = created_at
        db.session.add(event)
        db.session.commit()
        return event.id


def _count(app, **where):
    with app.app_context():
        statement = select(func.count()).select_from(AuditEvent)
        for name, value in where.items():
            statement = statement.where(getattr(AuditEvent, name) == value)
        return db.session.scalar(statement)


class _Table(HTMLParser):
    """The cells of the audit table's body rows, and the header cells."""

    def __init__(self):
        super().__init__()
        self.rows, self.headers, self._cell, self._in_body = [], [], None, False

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag in ("td", "th") and self._cell is not None:
            (self.rows[-1] if tag == "td" and self._in_body else self.headers).append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _table(response):
    assert response.status_code == 200, response.status_code
    parser = _Table()
    parser.feed(response.get_data(as_text=True))
    return parser


def _types(client, query=""):
    return [row[1] for row in _table(client.get("/admin/audit" + query)).rows]


def _csv(response):
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))


# -- the screen -------------------------------------------------------------------------------------------
def test_sec_53_screen_lists_events_newest_first_with_every_column(app, admin_client):
    _event(app, "old.event", created_at=_at("2025-03-01T08:00:00"))
    _event(app, "provider.update", "failure", created_at=_at("2025-03-02T09:30:05"), actor="alice",
           client_ip="203.0.113.7", target="moh", provider="moh", reason_code="provider_error",
           detail="changed: label")
    table = _table(admin_client.get("/admin/audit"))
    assert table.headers == ["Time (UTC)", "Event type", "Outcome", "Actor", "Client IP", "Target",
                             "Identity provider", "Reason code", "Detail"]
    types = [row[1] for row in table.rows]
    assert types[-2:] == ["provider.update", "old.event"]
    assert types[0] == "login" and "user.create" in types  # the admin's own login is the newest
    shown = babel_dates.format_datetime(_at("2025-03-02T09:30:05"), "medium", tzinfo=timezone.utc, locale="en")
    assert table.rows[-2] == [shown, "provider.update", "Failure", "alice", "203.0.113.7",
                              "moh", "moh", "provider_error", "changed: label"]
    page = admin_client.get("/admin/audit").get_data(as_text=True)
    assert "<caption>" in page and 'datetime="2025-03-02T09:30:05+00:00"' in page
    for label in ("User (actor or target; part of the name is enough)", "Identity provider", "Event type",
                  "Outcome", "From day", "To day"):
        assert f">{label}</label>" in page


def test_admin_nav_links_to_audit(app, client, auth, admin_client, make_user):
    assert 'href="/admin/audit"' in admin_client.get("/admin/users").get_data(as_text=True)
    make_user("plain")
    other = app.test_client()
    AuthActions(other).login("plain")
    assert 'href="/admin/audit"' not in other.get("/").get_data(as_text=True)


def test_user_filter_matches_actor_or_target_by_part_of_the_name(app, admin_client):
    _event(app, "by.alice", actor="alice", target="x", created_at=_at("2025-03-01T00:00:00"))
    _event(app, "alice.target", actor="bob", target="alice", created_at=_at("2025-03-02T00:00:00"))
    assert _types(admin_client, "?user=alice") == ["alice.target", "by.alice"]  # as actor and as target
    assert _types(admin_client, "?user=bo") == ["alice.target"]
    assert _types(admin_client, "?user=+ALI+") == ["alice.target", "by.alice"]  # any case, spaces trimmed
    assert _types(admin_client, "?user=%25") == _types(admin_client, "?user=_") == []  # no LIKE wildcards
    assert "No event matches these filters." in admin_client.get("/admin/audit?user=carol").get_data(as_text=True)


def test_provider_event_and_outcome_filters(app, admin_client):
    with app.app_context():
        instances.create_provider("dhis2", slug="registered", label="Registered",
                                  settings={"base_url": "https://dhis2.example.org/", "client_id": "geologin"},
                                  secrets={"client_secret": SECRET}, actor="test")
    _event(app, "login", "failure", provider="gone", target="amina", reason_code="not_allowed")
    _event(app, "login", "success", provider="gone", target="amina")
    assert _types(admin_client, "?provider=gone") == ["login", "login"]
    assert _types(admin_client, "?provider=registered") == ["provider.create"]
    assert _types(admin_client, "?event=provider.create") == ["provider.create"]
    rows = _table(admin_client.get("/admin/audit?provider=gone&outcome=failure")).rows
    assert [(r[1], r[2], r[7]) for r in rows] == [("login", "Failure", "not_allowed")]
    assert all(r[2] == "Success" for r in _table(admin_client.get("/admin/audit?outcome=success")).rows)
    assert _types(admin_client, "?provider=nowhere") == []
    page = admin_client.get("/admin/audit?event=login").get_data(as_text=True)
    # the selects offer the slugs seen in the audit table plus the registered ones, and the event types seen
    assert '<option value="gone">gone</option>' in page and '<option value="registered">' in page
    assert '<option selected value="login">login</option>' in page
    assert '<option value="provider.create">provider.create</option>' in page


def test_date_range_is_inclusive_utc_days(app, admin_client):
    _event(app, "day.one", created_at=_at("2025-03-01T00:00:00"))
    _event(app, "day.two.start", created_at=_at("2025-03-02T00:00:00"))
    _event(app, "day.two.end", created_at=_at("2025-03-02T23:59:59.999999"))
    _event(app, "day.three", created_at=_at("2025-03-03T00:00:00"))
    assert _types(admin_client, "?since=2025-03-02&until=2025-03-02") == ["day.two.end", "day.two.start"]
    assert _types(admin_client, "?since=2025-03-01&until=2025-03-02") == ["day.two.end", "day.two.start",
                                                                          "day.one"]
    assert _types(admin_client, "?until=2025-03-01") == ["day.one"]
    assert _types(admin_client, "?since=2025-03-03")[-1] == "day.three"
    assert _types(admin_client, "?since=0001-01-01&until=9999-12-31")[-1] == "day.one"


@pytest.mark.parametrize("query, field, message", [
    ("?since=2025-13-01", "since", "Enter a date as YYYY-MM-DD"),
    ("?since=yesterday", "since", "Enter a date as YYYY-MM-DD"),
    ("?until=2025-02-30", "until", "Enter a date as YYYY-MM-DD"),
    ("?until=20250301", "until", "Enter a date as YYYY-MM-DD"),
    ("?since=2025-03-03&until=2025-03-01", "until", "The last day is before the first day"),
    ("?outcome=maybe", "outcome", "Choose success, failure or any"),
])
def test_bad_filter_values_give_a_message_and_the_list_without_them(app, admin_client, query, field, message):
    _event(app, "day.one", created_at=_at("2025-03-01T00:00:00"))
    response = admin_client.get("/admin/audit" + query + "&event=day.one")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'id="{field}-error"' in page and message in page
    assert f'aria-describedby="{field}-hint {field}-error"' in page or f'aria-describedby="{field}-error"' in page
    assert _types(admin_client, query + "&event=day.one") == ["day.one"]  # other filters still apply
    # the download link carries only the filters that were applied
    assert f"{field}=" not in page.split("Download CSV")[0].rsplit("href=", 1)[1]


@pytest.mark.parametrize("page", ["abc", "-3", "0", "99999999999999999999999", "1e9"])
def test_odd_page_numbers_never_fail(admin_client, page):
    assert admin_client.get(f"/admin/audit?page={page}").status_code == 200


def test_paging_keeps_the_filters(app, admin_client):
    app.config["AUDIT_PER_PAGE"] = 3
    for n in range(7):
        _event(app, "page.test", target=f"t{n}", created_at=_at("2025-03-01T00:00:00") + timedelta(minutes=n))
    first = admin_client.get("/admin/audit?event=page.test")
    page = first.get_data(as_text=True)
    assert "7 events" in page and "Page 1 of 3" in page
    assert [r[5] for r in _table(first).rows] == ["t6", "t5", "t4"]
    assert 'href="/admin/audit?page=2&amp;event=page.test"' in page
    second = admin_client.get("/admin/audit?page=2&event=page.test")
    assert [r[5] for r in _table(second).rows] == ["t3", "t2", "t1"]
    assert 'rel="prev" href="/admin/audit?page=1&amp;event=page.test"' in second.get_data(as_text=True)
    assert [r[5] for r in _table(admin_client.get("/admin/audit?page=3&event=page.test")).rows] == ["t0"]


def test_default_page_size_and_retention(tmp_path):
    assert DEFAULTS["AUDIT_PER_PAGE"] == 50 and DEFAULTS["AUDIT_RETENTION_DAYS"] is None
    assert environment_overrides({"GEOLOGIN_AUDIT_RETENTION_DAYS": "400"}) == {"AUDIT_RETENTION_DAYS": 400}


# -- access ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["/admin/audit", "/admin/audit.csv", "/admin/audit.csv?user=root"])
def test_anonymous_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("url", ["/admin/audit", "/admin/audit.csv"])
def test_non_admin_gets_403(client, auth, make_user, url):
    make_user("plain")
    auth.login("plain")
    assert client.get(url).status_code == 403


def test_audit_pages_are_not_cached(admin_client):
    assert admin_client.get("/admin/audit").headers["Cache-Control"] == "no-store"
    assert admin_client.get("/admin/audit.csv").headers["Cache-Control"] == "no-store"


# -- CSV -------------------------------------------------------------------------------------------------
def test_csv_export_has_every_matching_row_and_attachment_headers(app, admin_client):
    app.config["AUDIT_PER_PAGE"] = 2
    for n in range(5):
        _event(app, "csv.test", "failure", actor="alice", client_ip="198.51.100.1", target=f"t{n}",
               provider="moh", reason_code="bad_password", detail=f"d{n}",
               created_at=_at("2025-03-01T10:00:00") + timedelta(hours=n))
    _event(app, "csv.test", "success", actor="alice", target="other")
    response = admin_client.get("/admin/audit.csv?event=csv.test&outcome=failure")
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f"attachment; filename=geologin-audit-{utcnow():%Y%m%d}.csv")
    rows = _csv(response)
    assert rows[0] == ["time", "event_type", "outcome", "actor", "client_ip", "target", "provider",
                       "reason_code", "detail"]
    assert rows[1] == ["2025-03-01T14:00:00Z", "csv.test", "failure", "alice", "198.51.100.1", "t4", "moh",
                       "bad_password", "d4"]
    assert [r[5] for r in rows[1:]] == ["t4", "t3", "t2", "t1", "t0"]  # all of them, not one page
    assert [r[5] for r in _csv(admin_client.get("/admin/audit.csv?since=2025-03-01&until=2025-03-01"))[1:]] \
        == ["t4", "t3", "t2", "t1", "t0"]
    everything = _csv(admin_client.get("/admin/audit.csv"))
    assert len(everything) == 1 + _count(app)


def test_screen_links_to_the_csv_with_its_filters(app, admin_client):
    page = admin_client.get("/admin/audit?user=alice&outcome=failure&since=2025-03-01").get_data(as_text=True)
    assert 'href="/admin/audit.csv?user=alice&amp;outcome=failure&amp;since=2025-03-01"' in page


def test_csv_with_a_bad_filter_is_refused_not_widened(admin_client):
    assert admin_client.get("/admin/audit.csv?since=2025-02-30").status_code == 400
    assert admin_client.get("/admin/audit.csv?outcome=maybe").status_code == 400


def test_sec_55_csv_cells_cannot_become_formulas(app, admin_client):
    with app.app_context():
        audit.record("login", audit.FAILURE, target=INJECTION, actor="", reason="unknown_user")
    for text in ("+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "plain"):
        _event(app, "formula.test", target=text)  # straight into the table, as an old row could be
    rows = _csv(admin_client.get("/admin/audit.csv"))
    login = next(r for r in rows if r[1] == "login" and r[2] == "failure")
    assert login[5] == "'" + INJECTION
    targets = {r[5] for r in rows if r[1] == "formula.test"}
    assert targets == {"'+1+1", "'-2+3", "'@SUM(A1)", "'\\tx", "'\\rx", "plain"}


def test_sec_55_crlf_in_usernames_cannot_forge_csv_rows_or_table_lines(app, admin_client):
    with app.app_context():
        audit.record("login", audit.FAILURE, target="eve\r\nforged", actor="", reason="unknown_user")
    _event(app, "raw.row", target="mallory\r\nforged,x\n\"q\"")  # written around record(): defence in depth
    body = admin_client.get("/admin/audit.csv").get_data(as_text=True)
    lines = body.split("\r\n")
    assert lines[-1] == "" and all("\n" not in line and "\r" not in line for line in lines)
    rows = list(csv.reader(io.StringIO(body, newline="")))
    assert len(rows) == 1 + _count(app) == len(lines) - 1
    assert not any(r[0].startswith("forged") for r in rows)
    assert [r[5] for r in rows if r[1] in ("login", "raw.row") and r[2] == "failure"] == ["eve\\r\\nforged"]
    assert [r[5] for r in rows if r[1] == "raw.row"] == ["mallory\\r\\nforged,x\\n\"q\""]

    response = admin_client.get("/admin/audit?user=eve")
    table = _table(response)
    assert len(table.rows) == 1 and table.rows[0][5] == "eve\\r\\nforged"
    assert all(len(row) == 9 for row in _table(admin_client.get("/admin/audit")).rows)
    assert "eve\r\n" not in response.get_data(as_text=True)


def test_sec_54_audit_screen_and_export_hold_no_secrets_or_passwords(app, admin_client, make_user):
    with app.app_context():
        instances.create_provider("dhis2", slug="moh", label="MoH",
                                  settings={"base_url": "https://dhis2.example.org/", "client_id": "geologin"},
                                  secrets={"client_secret": SECRET}, actor="root")
    make_user("amina")
    AuthActions(app.test_client()).login("amina", "Wrong-password-123")
    AuthActions(app.test_client()).login("amina")
    for body in (admin_client.get("/admin/audit").get_data(as_text=True),
                 admin_client.get("/admin/audit.csv").get_data(as_text=True)):
        assert "provider.create" in body and "bad_password" in body
        for secret in (SECRET, STRONG_PASSWORD, "Wrong-password-123"):
            assert secret not in body


# -- flask --app wsgi audit prune / list ------------------------------------------------------------------
def _aged(app, days, event_type="aged"):
    return _event(app, event_type, created_at=utcnow() - timedelta(days=days))


def _aged_rows(app):
    with app.app_context():
        return sorted(db.session.scalars(select(AuditEvent.id).where(AuditEvent.event_type == "aged")))


@pytest.fixture
def aged(app):
    return {days: _aged(app, days) for days in (400, 40, 31, 29, 1)}


def test_audit_prune_deletes_only_older_events_and_records_itself(app, runner, aged):
    result = runner.invoke(args=["audit", "prune", "--older-than", "30", "--yes"])
    assert result.exit_code == 0, result.output
    assert result.output == "Deleted 3 audit events older than 30 days.\n"
    assert _aged_rows(app) == sorted([aged[29], aged[1]])
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.event_type == "audit.prune"))
        assert (event.actor, event.outcome) == ("cli", "success")
        assert event.detail == "3 event(s) older than 30 day(s) deleted"


def test_audit_prune_asks_first(app, runner, aged):
    result = runner.invoke(args=["audit", "prune", "--older-than", "30"], input="n\n")
    assert result.exit_code != 0 and "Delete 3 audit event(s) older than 30 days?" in result.output
    assert len(_aged_rows(app)) == 5 and _count(app, event_type="audit.prune") == 0
    result = runner.invoke(args=["audit", "prune", "--older-than", "30"], input="y\n")
    assert result.exit_code == 0 and "Deleted 3 audit events older than 30 days." in result.output
    assert len(_aged_rows(app)) == 2


@pytest.mark.parametrize("value", ["0", "-5", "x", "1.5", ""])
def test_audit_prune_bad_values_delete_nothing(app, runner, aged, value):
    result = runner.invoke(args=["audit", "prune", "--older-than", value, "--yes"])
    assert result.exit_code != 0
    assert len(_aged_rows(app)) == 5 and _count(app, event_type="audit.prune") == 0


def test_audit_prune_defaults_to_the_retention_setting(app, runner, aged):
    result = runner.invoke(args=["audit", "prune", "--yes"])
    assert result.exit_code != 0 and "AUDIT_RETENTION_DAYS is not set" in result.output
    app.config["AUDIT_RETENTION_DAYS"] = "soon"
    assert runner.invoke(args=["audit", "prune", "--yes"]).exit_code != 0
    app.config["AUDIT_RETENTION_DAYS"] = 0
    assert runner.invoke(args=["audit", "prune", "--yes"]).exit_code != 0
    assert len(_aged_rows(app)) == 5 and _count(app, event_type="audit.prune") == 0
    app.config["AUDIT_RETENTION_DAYS"] = 35
    result = runner.invoke(args=["audit", "prune", "--yes"])
    assert result.output == "Deleted 2 audit events older than 35 days.\n"
    assert _aged_rows(app) == sorted([aged[31], aged[29], aged[1]])
    result = runner.invoke(args=["audit", "prune", "--older-than", "2", "--yes"])  # the option wins
    assert result.output == "Deleted 2 audit events older than 2 days.\n"


def test_audit_list_filters(app, runner):
    _event(app, "login", "failure", actor="", client_ip="127.0.0.1", target="amina", provider="moh",
           reason_code="not_allowed", created_at=_at("2025-03-01T12:00:00"))
    _event(app, "login", "success", actor="amina", target="amina", provider="moh",
           created_at=_at("2025-03-02T12:00:00"))
    _event(app, "user.update", actor="root", target="bob", created_at=_at("2025-03-03T12:00:00"))

    def lines(*args):
        result = runner.invoke(args=["audit", "list", *args])
        assert result.exit_code == 0, result.output
        return result.output.splitlines()

    assert lines("--user", "amina") == [
        "2025-03-01T12:00:00Z login failure actor=- ip=127.0.0.1 target=amina provider=moh reason=not_allowed",
        "2025-03-02T12:00:00Z login success actor=amina ip=- target=amina provider=moh",
    ]
    assert lines("--user", "ROO") == ["2025-03-03T12:00:00Z user.update success actor=root ip=- target=bob"]
    assert len(lines("--provider", "moh")) == 2
    assert [line.split()[1] for line in lines("--event", "user.update")] == ["user.update"]
    assert [line.split()[2] for line in lines("--provider", "moh", "--outcome", "success")] == ["success"]
    assert [line[:10] for line in lines("--since", "2025-03-02", "--until", "2025-03-02")] == ["2025-03-02"]
    assert [line[:10] for line in lines("--until", "2025-03-02")] == ["2025-03-01", "2025-03-02"]
    assert lines("--provider", "moh", "--limit", "1") == [
        "2025-03-02T12:00:00Z login success actor=amina ip=- target=amina provider=moh"]
    events = json.loads(runner.invoke(args=["audit", "list", "--json", "--event", "user.update"]).output)
    assert [(e["actor"], e["target"]) for e in events] == [("root", "bob")]
    for bad in (["--since", "2025-02-30"], ["--until", "tomorrow"], ["--outcome", "maybe"],
                ["--since", "2025-03-03", "--until", "2025-03-01"]):
        assert runner.invoke(args=["audit", "list", *bad]).exit_code != 0, bad
