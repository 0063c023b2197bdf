"""Logging to stdout: one line per request and per audit event, as text or as JSON
(``LOG_FORMAT = "json"``) for log collectors. Request lines carry the path only, never the query string,
which holds authorization codes and state on callbacks."""
import json
import logging
import sys
import time
from datetime import datetime, timezone

import click
from flask import g, request

_HANDLER_NAME = "geologin-stdout"


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is at the time of the record (test capture, reopened streams), except
    inside a ``flask`` command, whose stdout is its output (``users list --json | jq``): there, stderr."""

    @property
    def stream(self):
        return sys.__stderr__ if click.get_current_context(silent=True) is not None else sys.stdout

    @stream.setter
    def stream(self, value):
        pass


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
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
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
