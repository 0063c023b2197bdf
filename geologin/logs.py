"""Logging to stdout: one line per request and per audit event, as text or as JSON
(``LOG_FORMAT = "json"``) for log collectors. Request lines carry the path only, never the query string,
which holds authorization codes and state on callbacks; Werkzeug's own access log (``flask run``), which
prints the whole URL, is silenced in favour of that line."""
import json
import logging
import re
import sys
import time
from datetime import datetime, timezone

import click
from flask import g, request

_HANDLER_NAME = "geologin-stdout"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def escape_controls(value):
    """Control characters (CR/LF included) as visible escapes, so no logged value can start a line of its
    own; dicts, lists and other values keep their shape."""
    if isinstance(value, str):
        return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)
    if isinstance(value, dict):
        return {key: escape_controls(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [escape_controls(item) for item in value]
    return value


class TextFormatter(logging.Formatter):
    """One line per record whatever its message and arguments hold; a traceback's lines are indented so
    none of them reads as a record of its own."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record):
        safe = logging.makeLogRecord({**record.__dict__, "msg": escape_controls(record.getMessage()), "args": None})
        return super().format(safe).replace("\n", "\n    ")


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        entry = escape_controls(entry)  # a collector that shows the message shows it on one line too
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time of the record (test capture, reopened streams), except
    inside a ``flask`` command, whose stdout is its output (``users list --json | jq``): there, stderr, and
    only warnings and errors; the command's audit events are in the audit table, not terminal noise."""

    @property
    def stream(self):
        return sys.__stderr__ if _in_command() else sys.stdout

    @stream.setter
    def stream(self, value):
        pass

    def emit(self, record):
        if record.levelno < logging.WARNING and _in_command():
            return
        super().emit(record)


def _in_command():
    # Click's context is per thread: `flask run` serves requests in other threads, which log to stdout.
    return click.get_current_context(silent=True) is not None


_ACCESS_LINE = '"%s" %s %s'  # the end of werkzeug.serving's access-log format
_QUERY = re.compile(r"\?[^\s'\"]*")


class _NoWerkzeugAccessLog(logging.Filter):
    """Drops the dev server's access lines (the full URL, with a callback's code and state; geologin logs
    each request itself) and hides query strings in its other lines (errors about malformed requests)."""

    def filter(self, record):
        if isinstance(record.msg, str) and record.msg.endswith(_ACCESS_LINE):
            return False
        record.msg, record.args = _QUERY.sub("?[query hidden]", record.getMessage()), None
        return True


def configure(app):
    """Send geologin's loggers to stdout in the configured format (idempotent across app instances)."""
    logger = logging.getLogger("geologin")
    logger.setLevel(logging.INFO)
    for handler in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(handler)
    handler = _StdoutHandler()
    handler.set_name(_HANDLER_NAME)
    if str(app.config.get("LOG_FORMAT", "text")).lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    logger.addHandler(handler)
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, _NoWerkzeugAccessLog) for f in werkzeug.filters):
        werkzeug.addFilter(_NoWerkzeugAccessLog())
    logger.propagate = bool(app.testing)  # tests read records through the root logger (caplog)
    if app.config.get("LOG_REQUESTS", True):
        app.before_request(_start_timer)
        app.after_request(_log_request)


_requests = logging.getLogger("geologin.requests")


def _start_timer():
    g.request_started = time.perf_counter()


def _log_request(response):
    elapsed = (time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000
    fields = {"method": request.method, "path": request.path, "status": response.status_code,
              "ms": round(elapsed, 1), "ip": request.remote_addr}
    _requests.info("%s %s %s %.1fms ip=%s", request.method, request.path, response.status_code, elapsed,
                   request.remote_addr, extra={"fields": fields})
    return response
