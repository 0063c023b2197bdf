"""Control characters are bad input wherever input enters: refused in one place for the web (every path,
query string, form value and the stored request headers) and one for the CLI (every argument), before any
of it reaches SQL. PostgreSQL cannot store NUL in text at all (a 500 otherwise), and no name, label,
search or token of geologin's has a use for the others. Tab, CR and LF stay allowed: multi-line fields."""
import re

import click
from flask import render_template, request
from flask_babel import gettext as _
from werkzeug.routing import IntegerConverter

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The largest id a table can hold (PostgreSQL's integer). A larger number in a URL or a form would reach
# the database and fail there (SQLite overflows past 2**63), a 500 instead of "no such thing".
MAX_ID = 2**31 - 1


def has_control(value):
    """True when ``value`` is text containing a control character other than tab, CR and LF."""
    return isinstance(value, str) and CONTROL.search(value) is not None


def _request_has_control():
    if has_control(request.path) or has_control(request.remote_addr):
        return True
    if has_control(request.headers.get("User-Agent")):  # stored with the session
        return True
    for values in (request.args, request.form):
        if any(has_control(key) or has_control(value) for key, value in values.items(multi=True)):
            return True
    return False


def refuse_control_characters():
    """A before_request hook: the 400 page for a request carrying a control character; nothing runs."""
    if _request_has_control():
        return render_template("error.html", code=400, title=_("Bad request"),
                               message=_("The address or form contains characters that are not valid text.")), 400
    return None


def guard_cli(group):
    """Make each command of ``group`` refuse an argument with a control character (one line, exit 1).
    Wraps each command once, however many apps are created in one process (tests)."""
    for command in group.commands.values():
        if getattr(command, "_geologin_guarded", False):
            continue
        command.parse_args = _checking(command.parse_args)
        command._geologin_guarded = True


def _checking(parse_args):
    def parse(ctx, args):
        for arg in args:
            if has_control(arg):
                raise click.ClickException(f"Bad input: {arg!r} contains a control character; nothing was done.")
        return parse_args(ctx, args)
    return parse


class IdConverter(IntegerConverter):
    """``<int:...>`` in every route: a number beyond any id is no page (404), not a database error."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def row_id(value):
    """``coerce`` for form fields that carry ids: ValueError (an invalid choice) outside 1..MAX_ID."""
    number = int(value)
    if not 1 <= number <= MAX_ID:
        raise ValueError("not an id")
    return number


def init_app(app):
    """Before any route is added: the int converter of every route becomes ``IdConverter``."""
    app.url_map.converters["int"] = IdConverter
