"""What geologin assumes about library internals (issue 15): the two speed tricks measured to pay
(benchmarks/RESULTS.md, "Speed tricks that lean on library internals") and how each app installs its own
catalogs. When a library changes under one, these tests fail with a message naming the trick and what to do,
before it silently stops working or starts serving wrong pages."""
import time

import flask_babel
import pytest
from flask import render_template
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from wtforms import PasswordField, StringField

DOMAIN_INSTALL = ("geologin's per-app catalog cache (i18n._AppDomain, installed by i18n.init_app writing "
                  "babel.__dict__['domain_instance'] over Flask-Babel's cached property; apps in one process may "
                  "load different plugins, so each keeps its own merged catalogs)")
BLOCK_TRICK = ("geologin's cached empty password form (auth._empty_login_form renders login.html's "
               "'login_form' block alone through Jinja's Template.blocks and Template.new_context, with a "
               "placeholder for Flask-WTF's CSRF token)")


def _installed_domain(app):
    return app.extensions["babel"].instance.__dict__.get("domain_instance")


# -- each app's own catalogs (Flask-Babel) -----------------------------------------------------------------
def test_flask_babel_still_lets_an_app_install_its_own_domain(app):
    babel, domain = flask_babel.Babel(), flask_babel.Domain()
    babel.__dict__["domain_instance"] = domain
    assert babel.domain_instance is domain, (
        f"{DOMAIN_INSTALL}: Babel.domain_instance no longer reads a value written into the instance's __dict__ "
        "(it was a cached property), so geologin's domain is not installed. Install it another way (e.g. "
        "Domain.as_default() in a before_request hook) and keep its per-app cache.")
    installed = _installed_domain(app)
    with app.test_request_context("/login"):
        assert installed is not None and flask_babel.get_domain() is installed, (
            f"{DOMAIN_INSTALL}: flask_babel.get_domain() no longer returns the domain written into "
            "babel.__dict__, so every app shares one catalog cache. Install the domain the way this "
            "Flask-Babel version supports.")


def test_flask_babel_still_keeps_merged_catalogs_where_the_app_says(app):
    installed = _installed_domain(app)
    with app.test_request_context("/login", headers={"Accept-Language": "fr"}):
        french = flask_babel.gettext("Log in")
        expected = flask_babel.Domain.get_translations(installed).ugettext("Log in")
        with flask_babel.force_locale("es"):
            spanish = flask_babel.gettext("Log in")
        assert expected != "Log in" and french == expected and spanish not in ("Log in", french), (
            f"{DOMAIN_INSTALL}: gettext through geologin's domain no longer gives the request's language "
            "(French, then Spanish under flask_babel.force_locale).")
    cache = app.extensions.get("geologin.translations_cache", {})
    assert {key[0] for key in cache} >= {"fr", "es"}, (
        f"{DOMAIN_INSTALL}: Flask-Babel no longer keeps merged catalogs in Domain.get_translations_cache(ctx), "
        "the hook geologin overrides to keep them per app: apps with other plugins would share catalogs.")


# -- the empty password form rendered once per language (Jinja, Flask-WTF) ----------------------------------------
def test_jinja_still_renders_one_block_as_it_appears_in_the_page(app):
    class Form(FlaskForm):  # the fields login.html's block shows
        username = StringField("Username")
        password = PasswordField("Password")

    with app.test_request_context("/login"):
        form = Form()
        template = app.jinja_env.get_template("login.html")
        context = {"form": form, "login_form_html": None}
        app.update_template_context(context)
        assert "login_form" in getattr(template, "blocks", {}), (
            f"{BLOCK_TRICK}: the compiled template has no 'blocks' mapping with login_form any more. Render "
            "the empty form from a template of its own instead (an include), or drop the cache.")
        block = "".join(template.blocks["login_form"](template.new_context(context)))
        page = render_template("login.html", form=form, login_form_html=None, widgets=[], needs_setup=False)
    assert "<form" in block and block in page, (
        f"{BLOCK_TRICK}: the block rendered alone is not the markup the full page has for it, so the cached "
        "form would differ from the one a ?next= page view renders. Render the form from a template of its "
        "own instead, or drop the cache.")


def test_flask_wtf_form_token_is_the_one_generate_csrf_gives_the_request(app):
    class Form(FlaskForm):
        pass

    with app.test_request_context("/login"):
        form = Form()
        token = getattr(form.csrf_token, "current_token", None)
        rendered = str(form.hidden_tag())
        assert token and token == generate_csrf() and token in rendered, (
            f"{BLOCK_TRICK}: Flask-WTF's csrf_token field no longer exposes the token it renders as "
            "current_token, or it differs from generate_csrf() in the same request, so the placeholder "
            "swap would serve a token the form check refuses. Find the token the field renders another way.")


# -- the limiter's in-process storage without a timer thread (limits) -------------------------------------------
STORAGE_TRICK = ("geologin's limiter storage without a timer thread (throttle.SweepingMemoryStorage, the "
                 "geologin-memory:// default without REDIS_URL: limits' MemoryStorage with incr/decr copied and "
                 "its private storage, expirations and locks swept in place of the timer)")


def _storage_class(app):
    (limiter,) = app.extensions["limiter"]
    return type(limiter.storage)


def test_limits_memory_storage_counts_as_the_copied_incr_and_decr_do(app, monkeypatch):
    from limits.storage import MemoryStorage
    ours, theirs = _storage_class(app)(), MemoryStorage()
    assert isinstance(ours, MemoryStorage) and type(ours) is not MemoryStorage
    steps = [("incr", "a", 60), ("incr", "a", 60), ("decr", "a"), ("incr", "b", 30), ("incr", "b", 30, 5)]
    for name, *arguments in steps:
        got, expected = getattr(ours, name)(*arguments), getattr(theirs, name)(*arguments)
        assert got == expected, (
            f"{STORAGE_TRICK}: {name}{tuple(arguments)} gives {got}, limits' MemoryStorage {expected}. limits "
            "changed how it counts: copy its new incr/decr into the subclass, or drop the subclass if limits "
            "no longer starts a thread per call.")
    for key in ("a", "b"):
        assert ours.get_expiry(key) == pytest.approx(theirs.get_expiry(key), abs=1), (
            f"{STORAGE_TRICK}: the expiry the subclass stores in MemoryStorage.expirations is not the one "
            "limits' get_expiry reports.")
    for field in ("storage", "expirations", "locks"):
        assert "b" in getattr(ours, field, {}), (
            f"{STORAGE_TRICK}: limits' MemoryStorage no longer keeps a counter in its private '{field}', which "
            "the subclass's sweep empties. Rework the sweep on limits' new fields.")
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 120)
    assert ours.get("a") == 0 and "a" not in ours.storage and "a" not in ours.expirations, (
        f"{STORAGE_TRICK}: limits' MemoryStorage.get no longer forgets an expired counter, which the "
        "subclass's incr and decr rely on before counting.")


def test_limits_memory_storage_still_starts_a_timer_thread(monkeypatch):
    import threading

    from limits.storage import MemoryStorage
    started = []

    class CountingTimer(threading.Timer):
        def start(self):
            started.append(self)
            super().start()

    monkeypatch.setattr(threading, "Timer", CountingTimer)
    storage = MemoryStorage()
    for _ in range(3):
        for thread in started:
            thread.join()
        storage.incr("key", 60)
    assert len(started) >= 3, (
        f"{STORAGE_TRICK}: limits' MemoryStorage started {len(started)} timer threads for construction and 3 "
        "counts (it used to start one whenever the last had ended). If limits no longer starts a thread per "
        "call, the subclass has no reason left: measure with benchmarks/library_tricks.py and drop it.")


GLIBC_HASH_MEMORY = """
import re, sys, threading
from argon2 import PasswordHasher
def rss():
    return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
if sys.argv[1] == "fixed":  # importing passwords fixes the threshold; the default run must not import it
    from geologin.accounts.passwords import return_hash_memory_to_system
    if not return_hash_memory_to_system():
        print("no-glibc")
        sys.exit()
hasher = PasswordHasher(time_cost=1, memory_cost=19 * 1024, parallelism=1)
stored = hasher.hash("x")
before = rss()
threads = [threading.Thread(target=lambda: [hasher.verify(stored, "x") for _ in range(3)]) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(rss() - before)
"""


def _rss_growth_after_concurrent_hashes(mode):
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", GLIBC_HASH_MEMORY, mode], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_glibc_keeps_argon2_memory_unless_its_mmap_threshold_is_fixed():
    """passwords.return_hash_memory_to_system depends on glibc giving argon2's 19 MiB blocks back when its mmap
    threshold is fixed, and on it keeping them in per-thread arenas when not (the 170 MiB workers of issue 20)."""
    fixed = _rss_growth_after_concurrent_hashes("fixed")
    if fixed == "no-glibc":
        pytest.skip("not glibc")
    assert float(fixed) < 15
    assert float(_rss_growth_after_concurrent_hashes("default")) > 30
