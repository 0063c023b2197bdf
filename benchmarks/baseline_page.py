"""Baseline for benchmark item 1: a bare Flask app rendering, with Jinja, a login page of exactly the byte
size of geologin's login page with three DHIS2 servers (``BASELINE_PAGE_BYTES``, measured by run.py).

It is the ceiling for this stack (gunicorn gthread + Flask + Jinja) at that page size: the same structure as
geologin's page (layout, a form with two fields, a server select looping over three servers), but no
session, no CSRF token, no database, no i18n, no rate limiter, no request log and no extra headers. Padding
(an HTML comment) brings the body to the exact size; if the natural page were already larger, it refuses to
start rather than serve a different size.

Served as ``benchmarks.timed_wsgi:app`` with ``BENCH_APP=baseline_page:app`` (see run.py), at ``/login``.
"""
import os

from flask import Flask, render_template
from jinja2 import DictLoader

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{{ title }} · baseline</title>
  <link rel="stylesheet" href="{{ url_for('static', filename='site.css') }}">
</head>
<body>
  <a class="skip-link" href="#main">Skip to content</a>
  <header class="site-header">
    <a class="brand" href="/">baseline</a>
    <nav aria-label="Main"><ul><li><a href="{{ url_for('login') }}">{{ title }}</a></li></ul></nav>
  </header>
  <main id="main">
<section class="card narrow">
  <h1>{{ title }}</h1>
  <form method="post" action="{{ url_for('login') }}" novalidate>
    <input id="csrf_token" name="csrf_token" type="hidden" value="{{ token }}">
    {% for name, label, kind in fields %}
    <div class="field">
      <label for="{{ name }}">{{ label }}</label>
      <input id="{{ name }}" name="{{ name }}" type="{{ kind }}" required>
    </div>
    {% endfor %}
    <button type="submit" class="primary">{{ title }}</button>
  </form>
  <div class="external-logins">
    <p class="or"><span>or</span></p>
    <form method="post" action="/auth/start" class="external-login dhis2-login">
      <input type="hidden" name="csrf_token" value="{{ token }}">
      <div class="field">
        <label for="dhis2-server">DHIS2 server</label>
        <select id="dhis2-server" name="provider">
          {% for server in servers %}
          <option value="{{ server.slug }}"{{ ' selected' if server.slug == remembered }}>{{ server.label }}</option>
          {% endfor %}
        </select>
      </div>
      <button type="submit" class="primary">Log in with DHIS2</button>
    </form>
  </div>
</section>
{{ padding|safe }}
  </main>
</body>
</html>
"""

SERVERS = [{"slug": f"moh{n}", "label": f"Ministry of Health {n} (DHIS2 2.40)"} for n in (1, 2, 3)]
FIELDS = [("username", "Username", "text"), ("password", "Password", "password")]
TOKEN = "IjBkYjM5ZGM3YjM3YzQ4ZDA0ZTAxNTAwNWM0ODhiMjhkNzE1YmU2ODYi.Z1x2Yg.abcdefghijklmnopqrstuvwxyz0"

app = Flask(__name__, static_folder=None)
app.jinja_loader = DictLoader({"login.html": PAGE})
app.add_url_rule("/static/<path:filename>", endpoint="static", view_func=lambda filename: ("", 404))
PADDING = ""


@app.route("/login")
def login():
    return _render(PADDING)


def _render(padding):
    return render_template("login.html", title="Log in", fields=FIELDS, servers=SERVERS, remembered=None,
                           token=TOKEN, padding=padding)


def _padding_for(target):
    with app.test_request_context("/login"):
        natural = len(_render("").encode())
    if target <= 0:
        return ""
    missing = target - natural
    if missing == 0:
        return ""
    if missing < len("<!--  -->"):
        raise SystemExit(f"baseline page: cannot pad {natural} bytes to exactly {target} bytes")
    return "<!-- " + "p" * (missing - len("<!--  -->")) + " -->"


PADDING = _padding_for(int(os.environ.get("BASELINE_PAGE_BYTES", "0")))
