"""Every screen in French, Portuguese, Spanish and Arabic (issue 9).

- Each language: the login page and admin screens render in it (asserted with the catalog's own
  translation, never with the absence of English), with ``<html lang dir>`` right.
- The catalogs of the core and of every plugin are complete: every message extracted from the sources is
  in every language, translated, not fuzzy, with the msgid's placeholders.
- A scan of the templates and the Python sources finds no user-visible literal that bypasses gettext.
- The language picker, its cookie and the user's profile, and the precedence order; error pages;
  dates in GEOLOGIN_TIMEZONE; plugins' own catalogs merged by the core.
"""
import ast
import html as html_lib
import re
import textwrap
from datetime import datetime, timezone
from functools import lru_cache

from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from sqlalchemy import select

from geologin import ROOT, audit
from geologin import idp as instances
from geologin.config import ConfigError
from geologin.extensions import db
from geologin.i18n import LOCALE_COOKIE, TRANSLATIONS, available_locales
from geologin.models import AuditEvent, User
from geologin.providers.registry import discover
from tests.conftest import csrf_from

LANGUAGES = [code for code in available_locales() if code != "en"]
PLUGINS_FOLDER = ROOT / "plugins"
BUNDLED_PLUGINS = sorted(p for p in PLUGINS_FOLDER.iterdir() if (p / "__init__.py").is_file())
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None,
            "lazy_ngettext": (1, 2), "pgettext": ((1, "c"), 2), "npgettext": ((1, "c"), 2, 3)}
PLACEHOLDER = re.compile(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")


def test_the_four_languages_are_there():
    assert {"fr", "pt", "es", "ar"} <= set(LANGUAGES)


# -- catalogs ----------------------------------------------------------------------------------------
def catalog_folders():
    """(name, folder with babel.cfg, translations folder): the core, then every bundled plugin folder
    that extracts messages (plugins/<name>/babel.cfg), whichever plugins exist."""
    folders = [("core", ROOT, TRANSLATIONS)]
    folders += [(f"plugin {p.name}", p, p / "translations") for p in BUNDLED_PLUGINS if (p / "babel.cfg").is_file()]
    return folders


CATALOGS = catalog_folders()


@lru_cache(maxsize=None)
def load_po(path):
    with open(path, "rb") as handle:
        return read_po(handle, locale=Path(path).parent.parent.name)


def po_path(translations, lang):
    return translations / lang / "LC_MESSAGES" / "messages.po"


def _mapping(cfg):
    """[(method, glob pattern)] from a babel.cfg (the format pybabel reads)."""
    sections = re.findall(r"^\[(\w+):\s*(.+?)\]\s*$", Path(cfg).read_text(), re.M)
    return [(method, pattern.strip()) for method, pattern in sections]


@lru_cache(maxsize=None)
def extracted_messages(folder):
    """msgid (or (msgid, msgid_plural)) of every message the sources under ``folder`` mark, as `make i18n`
    extracts them (same babel.cfg, same keywords)."""
    found = set()
    for method, pattern in _mapping(Path(folder) / "babel.cfg"):
        glob = pattern.replace("**.", "**/*.") if "**." in pattern else pattern
        for path in sorted(Path(folder).glob(glob)):
            options = {"extensions": "jinja2.ext.i18n"} if method == "jinja2" else {}
            for _line, message, _comments, _context in extract_from_file(method, str(path), keywords=KEYWORDS,
                                                                         options=options):
                found.add(message if isinstance(message, str) else tuple(message[:2]))
    return frozenset(found)


def test_the_extraction_finds_messages_everywhere():
    for name, folder, _translations in CATALOGS:
        assert len(extracted_messages(folder)) > 20, name
    assert "Log in" in extracted_messages(ROOT)


def test_every_bundled_plugin_that_translates_ships_its_own_catalogs():
    """A plugin whose sources call gettext has a babel.cfg and a catalog per language: its strings live with
    it, not in the core's catalog."""
    for plugin in BUNDLED_PLUGINS:
        sources = " ".join(p.read_text(errors="replace") for p in plugin.rglob("*.py")
                           if not p.name.startswith("fake_"))
        templates = " ".join(p.read_text(errors="replace") for p in plugin.rglob("*.html"))
        if re.search(r"\b(_l|_|lazy_gettext|gettext|ngettext)\(", sources + templates):
            assert (plugin / "babel.cfg").is_file(), f"{plugin.name}: add babel.cfg (see docs/plugins.md)"
            for lang in LANGUAGES:
                assert po_path(plugin / "translations", lang).is_file(), (
                    f"{plugin.name} has no {lang} catalog: pybabel init (see the README, 'How to add a language')")


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name,folder,translations", CATALOGS, ids=[c[0] for c in CATALOGS])
def test_catalog_is_complete(name, folder, translations, lang):
    """Every extracted message is in the catalog, translated (every plural form), not fuzzy, and keeps the
    msgid's %(name)s placeholders. A failure lists the messages: translate them, then make i18n."""
    path = po_path(translations, lang)
    assert path.is_file(), f"{path} is missing: pybabel init (see the README, 'How to add a language')"
    catalog = load_po(str(path))
    messages = {m.id[0] if isinstance(m.id, (tuple, list)) else m.id: m for m in catalog if m.id}
    keys = {m if isinstance(m, str) else m[0]: m for m in extracted_messages(folder)}
    problems = [f"missing (run make i18n): {key!r}" for key in sorted(keys) if key not in messages]
    for key in sorted(keys):
        message = messages.get(key)
        if message is None:
            continue
        if message.fuzzy:
            problems.append(f"fuzzy: {key!r}")
        forms = list(message.string) if isinstance(message.string, (tuple, list)) else [message.string]
        if not forms or any(not (form or "").strip() for form in forms):
            problems.append(f"untranslated: {key!r}")
            continue
        ids = message.id if isinstance(message.id, (tuple, list)) else (message.id,)
        wanted = {p for msgid in ids for p in PLACEHOLDER.findall(msgid)}
        for form in forms:
            used = set(PLACEHOLDER.findall(form))
            # A plural form may leave out the number ("une minute"), never another placeholder.
            required = wanted - {"num"} if len(ids) > 1 else wanted
            if not required <= used or not used <= wanted:
                problems.append(f"placeholders {sorted(used)} instead of {sorted(wanted)}: {key!r} -> {form!r}")
        if "%" in "".join(forms).replace("%%", "") and not ("%" in "".join(ids)):
            problems.append(f"stray %: {key!r}")
    for error_message, errors in catalog.check():
        problems.extend(f"{error}: {error_message.id!r}" for error in errors)
    assert not problems, f"{path.relative_to(ROOT)}: {len(problems)} problem(s):\n" + "\n".join(problems)


@pytest.mark.parametrize("name,folder,translations", CATALOGS, ids=[c[0] for c in CATALOGS])
def test_every_language_of_the_core_has_a_catalog_here(name, folder, translations):
    have = {p.parent.parent.name for p in translations.glob("*/LC_MESSAGES/messages.po")}
    assert set(LANGUAGES) <= have, f"{name}: no catalog for {sorted(set(LANGUAGES) - have)}"


def test_compiled_catalogs_are_not_committed():
    assert "*.mo" in (ROOT / ".gitignore").read_text().split()


def text(response):
    """The page with its character references decoded, to look for translations in."""
    return html_lib.unescape(response.get_data(as_text=True))


def translated(lang, msgid, translations=TRANSLATIONS):
    """The catalog's translation of ``msgid`` (the test fails on a missing one, not on English text)."""
    message = load_po(str(po_path(translations, lang))).get(msgid)
    assert message is not None and message.string, f"{lang}: no translation of {msgid!r}"
    return message.string


# -- each language on screen -------------------------------------------------------------------------
def choose(client, lang, page="/login"):
    response = client.post("/language", data={"csrf_token": csrf_from(client.get(page)), "language": lang,
                                              "next": page})
    assert response.status_code == 302
    return response


@pytest.mark.parametrize("lang", LANGUAGES)
def test_login_page_in_each_language(app, client, lang):
    with app.app_context():
        instances.create_provider("dhis2", slug="moh", label="MoH", settings={"base_url": "https://dhis2.example.org/"},
                                  secrets={"client_secret": "s3cret"}, actor="test")
    client.set_cookie(LOCALE_COOKIE, lang)
    html = text(client.get("/login"))
    direction = "rtl" if lang == "ar" else "ltr"
    assert f'<html lang="{lang}" dir="{direction}">' in html
    for msgid in ("Log in", "Username", "Password", "Language", "Change language"):
        assert translated(lang, msgid) in html, msgid
    dhis2 = PLUGINS_FOLDER / "dhis2" / "translations"
    assert translated(lang, "Log in with DHIS2", dhis2) in html  # the plugin's own catalog


@pytest.mark.parametrize("lang", LANGUAGES)
def test_admin_screens_in_each_language(app, admin_client, lang):
    choose(admin_client, lang, "/admin/users")
    users = text(admin_client.get("/admin/users"))
    assert f'lang="{lang}"' in users
    for msgid in ("Users", "New user", "Search users", "Identity providers", "Audit", "Log out"):
        assert translated(lang, msgid) in users, msgid
    audit_page = text(admin_client.get("/admin/audit"))
    for msgid in ("Audit trail", "Download CSV", "Filters", "From day"):
        assert translated(lang, msgid) in audit_page, msgid
    providers = text(admin_client.get("/admin/providers/new?type=dhis2"))
    dhis2 = PLUGINS_FOLDER / "dhis2" / "translations"
    assert translated(lang, "DHIS2 address", dhis2) in providers  # a plugin's setting label


@pytest.mark.parametrize("lang", LANGUAGES)
def test_form_errors_and_flashes_in_each_language(app, client, lang):
    client.set_cookie(LOCALE_COOKIE, lang)
    page = text(client.post("/login", data={"csrf_token": csrf_from(client.get("/login")), "username": "",
                                            "password": ""}))
    assert translated(lang, "Enter your username.") in page
    page = text(client.post("/login", data={"csrf_token": csrf_from(client.get("/login")), "username": "nobody",
                                            "password": "wrong-password"}))
    assert translated(lang, "Invalid username or password.") in page


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_external_login_failure_message_in_each_language(app, lang):
    from geologin.login.external import MESSAGES

    with app.test_request_context("/", headers={"Accept-Language": lang}):
        for reason, message in MESSAGES.items():
            assert str(message) == translated(lang, message._args[0]), reason


@pytest.mark.parametrize("lang", LANGUAGES)
def test_first_run_setup_page_in_each_language(app, client, lang):
    from geologin.accounts import firstrun

    with app.app_context():
        token = firstrun.issue_setup_token()
    client.set_cookie(LOCALE_COOKIE, lang)
    html = text(client.get(f"/setup/{token}"))
    assert translated(lang, "Create administrator") in html


@pytest.mark.parametrize("lang", LANGUAGES)
def test_error_pages_in_each_language(app_factory, make_user, lang):
    app = app_factory(TESTING=False, DEBUG=False, ENV="development", LOGIN_RATE_LIMIT="2 per minute")

    @app.route("/boom")
    def boom():
        raise RuntimeError("boom")

    client = app.test_client()
    client.set_cookie(LOCALE_COOKIE, lang)

    def page(response, code, *msgids):
        assert response.status_code == code
        html = text(response)
        assert f'lang="{lang}"' in html
        for msgid in msgids:
            assert translated(lang, msgid) in html, (code, msgid)

    page(client.get("/nowhere"), 404, "Page not found", "There is no page at this address.")
    page(client.get("/boom"), 500, "Server error", "Something went wrong on our side. It has been logged; please "
                                                  "try again later.")
    page(client.post("/language", data={"language": "fr"}), 400, "Form expired")
    token = csrf_from(client.get("/login"))
    page(client.post("/language", data={"csrf_token": token, "language": "xx"}), 400, "Bad request",
         "The request could not be understood. Go back, reload the page and try again.")
    make_user("plain")
    plain = app.test_client()
    plain.set_cookie(LOCALE_COOKIE, lang)
    plain.post("/login", data={"csrf_token": csrf_from(plain.get("/login")), "username": "plain",
                               "password": "Correct-horse-battery-9"})
    page(plain.get("/admin/users"), 403, "Access denied", "You do not have permission to see this page.")
    for _ in range(3):
        response = client.post("/login", data={"csrf_token": token, "username": "x", "password": "y"})
    page(response, 429, "Too many requests", "Too many attempts from your network. Wait a minute and try again.")


# -- the picker, the cookie, the profile and the order -------------------------------------------------
def test_picker_is_on_every_page_and_needs_no_javascript(client, admin_client):
    anonymous = client.application.test_client()
    for c, path in ((anonymous, "/login"), (anonymous, "/nowhere"), (admin_client, "/admin/users"),
                    (admin_client, "/account/password")):
        html = c.get(path).get_data(as_text=True)
        form = re.search(r'<form method="post" action="/language" class="language-picker">(.*?)</form>', html, re.S)
        assert form, path
        assert 'name="csrf_token"' in form.group(1) and '<select id="language-picker" name="language">' in form.group(1)
        assert '<button type="submit">' in form.group(1) and "<script" not in html
        for code, name in (("en", "English"), ("fr", "Français"), ("pt", "Português"), ("es", "Español"),
                           ("ar", "العربية")):
            assert f'<option value="{code}" lang="{code}"' in form.group(1) and f">{name}</option>" in form.group(1)
        assert f'name="next" value="{path}"' in form.group(1)


def test_picker_sets_a_long_lived_cookie_and_goes_back_to_the_page(client):
    response = choose(client, "pt", "/login?next=/admin/users")
    assert response.headers["Location"] == "/login?next=/admin/users"
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(f"{LOCALE_COOKIE}="))
    assert cookie.startswith(f"{LOCALE_COOKIE}=pt;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Max-Age=31536000" in cookie and "Secure" not in cookie  # http PUBLIC_URL in tests
    assert 'lang="pt"' in client.get("/login").get_data(as_text=True)


def test_picker_cookie_is_secure_under_https(app_factory):
    client = app_factory(PUBLIC_URL="https://login.example.org").test_client()
    token = csrf_from(client.get("/login", base_url="https://login.example.org"))
    response = client.post("/language", data={"csrf_token": token, "language": "fr"},
                           base_url="https://login.example.org",
                           headers={"Referer": "https://login.example.org/login"})  # Flask-WTF's https check
    assert "Secure" in next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(LOCALE_COOKIE))


def test_picker_goes_back_only_to_this_site(client):
    token = csrf_from(client.get("/login"))
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = client.post("/language", data={"csrf_token": token, "language": "fr", "next": target})
        assert response.status_code == 302 and "evil" not in response.headers["Location"]


def test_picker_refuses_a_missing_token_or_an_unknown_language(client):
    assert client.post("/language", data={"language": "fr"}).status_code == 400
    token = csrf_from(client.get("/login"))
    assert client.post("/language", data={"csrf_token": token, "language": "xx"}).status_code == 400
    assert client.post("/language", data={"csrf_token": token}).status_code == 400


def test_picker_stores_the_choice_on_the_logged_in_user(app, admin_client, admin):
    choose(admin_client, "es", "/admin/users")
    with app.app_context():
        assert User.by_username(admin).locale == "es"
    # The profile follows the user to another browser, whatever that browser says.
    other = app.test_client()
    other.post("/login", data={"csrf_token": csrf_from(other.get("/login")), "username": admin,
                               "password": "Correct-horse-battery-9"})
    html = other.get("/admin/users", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert 'lang="es"' in html


def test_precedence_profile_then_cookie_then_accept_language_then_default(app_factory, make_user):
    app = app_factory(DEFAULT_LOCALE="pt")
    client = app.test_client()

    def lang(**headers):
        html = client.get("/login", headers=headers).get_data(as_text=True)
        return re.search(r'<html lang="([^"]+)"', html).group(1)

    assert lang() == "pt"  # nothing else: DEFAULT_LOCALE
    assert lang(**{"Accept-Language": "de-DE,de;q=0.9"}) == "pt"  # a language we do not have
    assert lang(**{"Accept-Language": "es-CO,es;q=0.9,en;q=0.5"}) == "es"  # regional variants match
    assert lang(**{"Accept-Language": "fr-SN"}) == "fr"
    client.set_cookie(LOCALE_COOKIE, "ar")
    assert lang(**{"Accept-Language": "es"}) == "ar"  # the cookie beats the browser
    client.set_cookie(LOCALE_COOKIE, "klingon")
    assert lang(**{"Accept-Language": "es"}) == "es"  # a nonsense cookie is ignored
    make_user("maria")
    with app.app_context():
        User.by_username("maria").locale = "fr"
        db.session.commit()
    client.set_cookie(LOCALE_COOKIE, "ar")
    client.post("/login", data={"csrf_token": csrf_from(client.get("/login")), "username": "maria",
                                "password": "Correct-horse-battery-9"})
    html = client.get("/account/password", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert '<html lang="fr" dir="ltr">' in html  # the profile beats the cookie and the browser


def test_html_lang_and_dir(client):
    for lang, direction in (("en", "ltr"), ("fr", "ltr"), ("pt", "ltr"), ("es", "ltr"), ("ar", "rtl")):
        html = client.get("/login", headers={"Accept-Language": lang}).get_data(as_text=True)
        assert f'<html lang="{lang}" dir="{direction}">' in html


def test_pages_vary_on_the_language(client):
    vary = client.get("/login").headers["Vary"]
    assert "Accept-Language" in vary and "Cookie" in vary


def test_default_locale_must_be_a_language_we_have(app_factory):
    with pytest.raises(ConfigError, match="DEFAULT_LOCALE"):
        app_factory(DEFAULT_LOCALE="tlh")
    assert app_factory(DEFAULT_LOCALE="pt-BR").config["DEFAULT_LOCALE"] == "pt"


def test_cli_output_stays_english(app_factory):
    """Outside a web request (the CLI) messages are English, whatever DEFAULT_LOCALE says."""
    app = app_factory(DEFAULT_LOCALE="fr")
    result = app.test_cli_runner().invoke(args=["users", "create", "bad name", "--no-password"])
    assert result.exit_code == 1
    assert "Use only letters, digits and . _ @ + - in a username (no spaces)." in result.output


# -- time zone -----------------------------------------------------------------------------------------
def _event_at(app, when):
    with app.app_context():
        audit.record("tz.event", target="alice", actor="root")
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "tz.event")).one()
        event.created_at = when
        db.session.commit()


def test_times_are_shown_in_the_configured_zone_and_stored_in_utc(app_factory, make_user):
    app = app_factory(TIMEZONE="Africa/Maputo")  # UTC+2, no daylight saving
    make_user("root", is_admin=True)
    client = app.test_client()
    client.post("/login", data={"csrf_token": csrf_from(client.get("/login")), "username": "root",
                                "password": "Correct-horse-battery-9"})
    _event_at(app, datetime(2025, 3, 2, 23, 30, 5, tzinfo=timezone.utc))
    html = client.get("/admin/audit?event=tz.event").get_data(as_text=True)
    assert '<time datetime="2025-03-02T23:30:05+00:00">Mar 3, 2025, 1:30:05' in html  # the next day, locally
    assert "Time (Africa/Maputo)" in html
    csv_text = client.get("/admin/audit.csv?event=tz.event").get_data(as_text=True)
    assert "2025-03-02T23:30:05Z" in csv_text  # machine values stay UTC
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "tz.event")).one()
        assert event.created_at == datetime(2025, 3, 2, 23, 30, 5, tzinfo=timezone.utc)
        user_id = User.by_username("root").id
    # French formatting, same zone, on the user screen (which names the zone).
    client.set_cookie(LOCALE_COOKIE, "fr")
    with app.app_context():
        User.by_username("root").created_at = datetime(2025, 3, 2, 23, 30, 5, tzinfo=timezone.utc)
        db.session.commit()
    html = client.get(f"/admin/users/{user_id}").get_data(as_text=True)
    assert '<time datetime="2025-03-02T23:30:05+00:00">3 mars 2025, 01:30:05 Africa/Maputo</time>' in html


def test_default_zone_is_utc(app, admin_client):
    _event_at(app, datetime(2025, 3, 2, 23, 30, 5, tzinfo=timezone.utc))
    html = admin_client.get("/admin/audit?event=tz.event").get_data(as_text=True)
    assert "Time (UTC)" in html and ">Mar 2, 2025, 11:30:05" in html


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../../etc/passwd", 5])
def test_a_bad_time_zone_refuses_to_start(app_factory, zone):
    with pytest.raises(ConfigError, match="TIMEZONE"):
        app_factory(TIMEZONE=zone)


def test_time_zone_from_the_environment(monkeypatch):
    from geologin.config import environment_overrides

    assert environment_overrides({"GEOLOGIN_TIMEZONE": "America/Bogota"})["TIMEZONE"] == "America/Bogota"


# -- plugins carry their own catalogs --------------------------------------------------------------------
def _compiled(folder, lang, messages):
    """Write translations/<lang>/LC_MESSAGES/messages.po and .mo with ``messages`` {msgid: msgstr}."""
    from babel.messages.catalog import Catalog

    catalog = Catalog(locale=lang)
    for msgid, msgstr in messages.items():
        catalog.add(msgid, msgstr)
    target = folder / "translations" / lang / "LC_MESSAGES"
    target.mkdir(parents=True)
    with open(target / "messages.mo", "wb") as handle:
        write_mo(handle, catalog)


ACME = textwrap.dedent('''
    from flask_babel import lazy_gettext as _l
    from geologin.providers import Provider, Setting

    class Acme(Provider):
        type = "acme"
        display_name = "Acme ID"
        settings = (Setting("server_url", _l("Acme server"), kind="url", required=True),)

    provider = Acme
''')


def test_registry_records_every_plugins_translations_folder(app):
    registry = app.extensions["geologin.plugins"]
    for plugin in BUNDLED_PLUGINS:
        if (plugin / "translations").is_dir():
            loaded = [p for p in registry.plugins.values() if p.origin == f"folder {plugin}"]
            assert loaded and loaded[0].translations == plugin / "translations"
    directories = app.config["BABEL_TRANSLATION_DIRECTORIES"].split(";")
    assert directories[-1] == str(TRANSLATIONS)  # the core last: its own messages win
    assert {str(p.translations) for p in registry.plugins.values() if p.translations} <= set(directories)


def test_a_third_party_plugin_ships_translations_and_the_core_merges_them(app_factory, tmp_path, monkeypatch):
    folder = tmp_path / "plugins" / "acme"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text(ACME)
    _compiled(folder, "fr", {"Acme server": "Serveur Acme", "Log in": "NOT the core's"})
    registry = discover([tmp_path / "plugins"])
    assert registry.plugins["acme"].translations == folder / "translations"
    app = app_factory(PLUGINS_FOLDER=[str(PLUGINS_FOLDER), str(tmp_path / "plugins")])
    from flask_babel import gettext

    with app.test_request_context("/", headers={"Accept-Language": "fr"}):
        assert gettext("Acme server") == "Serveur Acme"
        assert gettext("Log in") == translated("fr", "Log in")  # a plugin cannot change the core's messages
        assert gettext("Log in with DHIS2") == translated("fr", "Log in with DHIS2",
                                                          PLUGINS_FOLDER / "dhis2" / "translations")
    # Another app of the same process without that plugin does not see its catalog.
    with app_factory().test_request_context("/", headers={"Accept-Language": "fr"}):
        assert gettext("Acme server") == "Acme server"


def test_an_entry_point_plugin_records_its_translations(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "acme_idp").mkdir(parents=True)
    (site / "acme_idp" / "__init__.py").write_text(ACME)
    _compiled(site / "acme_idp", "es", {"Acme server": "Servidor Acme"})
    info = site / "acme_idp-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-idp\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[geologin.providers]\nacme = acme_idp\n")
    monkeypatch.syspath_prepend(str(site))
    registry = discover([])
    assert registry.plugins["acme"].translations == site / "acme_idp" / "translations"


# -- no user-visible literal bypasses gettext -------------------------------------------------------------
# Words that are the same in every language: product and standard names. Punctuation and arrows have no
# letters, so they never count.
ALLOWED_WORDS = {"geologin", "DHIS2", "OAuth2", "OpenID", "Connect", "CSV", "URL"}
VISIBLE_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "label", "aria-description"}
SKIPPED_ELEMENTS = {"script", "style", "code", "pre", "kbd", "samp"}
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
LETTERS = re.compile(r"[^\W\d_]{2,}")


def _has_words(text):
    return any(word not in ALLOWED_WORDS for word in LETTERS.findall(text))


class _TemplateScanner(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.skipping = []
        self.found = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in SKIPPED_ELEMENTS:
            self.skipping.append(tag)
        for name, value in attrs:
            visible = name in VISIBLE_ATTRIBUTES or (
                name == "value" and (tag == "button" or attributes.get("type") in {"submit", "button", "reset"}))
            if visible and value and _has_words(value):
                self.found.append((self.getpos()[0], f"{name}={value!r}"))

    def handle_endtag(self, tag):
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data):
        if not self.skipping and _has_words(data):
            self.found.append((self.getpos()[0], data.strip()))


JINJA_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
GETTEXT_ARGS = re.compile(r"\b(?:_|gettext|ngettext)\(\s*(?:%s)(?:\s*,\s*(?:%s))?" % ((JINJA_STRING.pattern,) * 2))
# Text-like: a capitalised word ('Yes') or several words ('Not set'); identifiers, endpoints, CSS classes
# and attribute names ('admin.users', ' has-error', 'BooleanField') are neither.
TEXT_LIKE = re.compile(r"^\s*(?:[A-Z][a-z]+|[^\W\d_]{2,}(?:\s+[^\W\d_]+)+)[.!?:]?\s*$")


def template_literals(source):
    """(line, text) of words in a template that are not inside {{ }}/{% %}, and text-like string literals
    inside them that are not gettext's arguments: neither would be translated."""
    found = []
    for match in JINJA.finditer(source):
        if match.group(0).startswith("{#"):
            continue  # a comment
        expression = GETTEXT_ARGS.sub("_(", match.group(0))
        for literal in JINJA_STRING.findall(expression):
            if TEXT_LIKE.match(literal[1:-1]):
                found.append((source.count("\n", 0, match.start()) + 1, f"{{{{ {literal} }}}}"))
    # Keep line numbers: each Jinja construct becomes spaces plus its newlines.
    stripped = JINJA.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), source)
    scanner = _TemplateScanner()
    scanner.feed(stripped)
    scanner.close()
    return found + scanner.found


def template_files():
    return sorted([*(ROOT / "templates").rglob("*.html"), *PLUGINS_FOLDER.glob("*/templates/**/*.html")])


# Calls whose arguments people read: name -> positions (and keywords) that must not be plain literals.
USER_TEXT_CALLS = {
    "flash": ((0,), ()), "ValidationError": ((0,), ("message",)), "UserError": ((0,), ("message",)),
    "Check": ((0, 2), ("name", "message")), "Setting": ((1,), ("label", "help")),
    "DataRequired": ((0,), ("message",)), "InputRequired": ((0,), ("message",)), "Optional": ((0,), ("message",)),
    "Length": ((), ("message",)), "EqualTo": ((1,), ("message",)), "Email": ((0,), ("message",)),
    "Regexp": ((), ("message",)), "NumberRange": ((), ("message",)), "URL": ((), ("message",)),
    "AnyOf": ((), ("message",)), "NoneOf": ((), ("message",)),
    "render_template": ((), ("title", "message", "error", "notice", "hint", "heading")),
}
ALLOWED_LITERALS = set()  # none needed so far: add a code sample or a product name here, with a reason
GETTEXT_CALLS = {"_", "_l", "gettext", "lazy_gettext", "ngettext", "lazy_ngettext"}


def _literal(node):
    if isinstance(node, ast.JoinedStr):  # an f-string: its own words
        return _has_words(" ".join(v.value for v in node.values if isinstance(v, ast.Constant)))
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and _has_words(node.value) \
        and node.value not in ALLOWED_LITERALS


def _call_name(node):
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def python_literals(source):
    """(line, what) for plain str literals in places a user reads them: flash(), form-field labels,
    descriptions and validator messages, ValidationError, render_template titles and messages, errors
    dictionaries and .errors.append(), render_kw placeholders, provider Settings and Checks, and words
    substituted into a translated message."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = _call_name(node) or ""
            positions, keywords = USER_TEXT_CALLS.get(name, ((), ()))
            if name.endswith("Field"):
                positions, keywords = (0,), ("label", "description")
            for index in positions:
                if index < len(node.args) and _literal(node.args[index]):
                    found.append((node.lineno, f"{name}() argument {index + 1}"))
            for keyword in node.keywords:
                if keyword.arg in keywords and _literal(keyword.value):
                    found.append((node.lineno, f"{name}({keyword.arg}=...)"))
                if keyword.arg == "render_kw" and isinstance(keyword.value, ast.Dict):
                    for key, value in zip(keyword.value.keys, keyword.value.values):
                        if isinstance(key, ast.Constant) and key.value in VISIBLE_ATTRIBUTES and _literal(value):
                            found.append((node.lineno, f"render_kw {key.value}"))
                if keyword.arg == "choices" and isinstance(keyword.value, (ast.Tuple, ast.List)):
                    for choice in keyword.value.elts:
                        if isinstance(choice, (ast.Tuple, ast.List)) and len(choice.elts) == 2 \
                                and _literal(choice.elts[1]):
                            found.append((node.lineno, f"{name}(choices=...) label"))
            if name in GETTEXT_CALLS:  # words passed into a translated message are not translated
                for keyword in node.keywords:
                    if _literal(keyword.value) or (isinstance(keyword.value, ast.IfExp) and (
                            _literal(keyword.value.body) or _literal(keyword.value.orelse))):
                        found.append((node.lineno, f"{name}({keyword.arg}=...) value"))
            if name == "append" and isinstance(node.func, ast.Attribute) and \
                    getattr(node.func.value, "attr", None) == "errors" and node.args and _literal(node.args[0]):
                found.append((node.lineno, ".errors.append()"))
        elif isinstance(node, ast.Assign) and _literal(node.value):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and getattr(target.value, "id", None) == "errors":
                    found.append((node.lineno, "errors[...] = literal"))
    return found


def python_files():
    """The core and the plugins; not the CLI (its output stays English), migrations or test fakes."""
    core = [p for p in (ROOT / "geologin").rglob("*.py")
            if "migrations" not in p.parts and not p.name.startswith("cli")]
    plugins = [p for p in PLUGINS_FOLDER.rglob("*.py") if not p.name.startswith("fake_")]
    return sorted(core + plugins)


def test_no_template_shows_text_that_bypasses_gettext():
    problems = [f"{path.relative_to(ROOT)}:{line}: {text}" for path in template_files()
                for line, text in template_literals(path.read_text())]
    assert not problems, "wrap these in {{ _('...') }}:\n" + "\n".join(problems)


def test_no_python_source_shows_text_that_bypasses_gettext():
    problems = [f"{path.relative_to(ROOT)}:{line}: {what}" for path in python_files()
                for line, what in python_literals(path.read_text())]
    assert not problems, "wrap these in _() / _l():\n" + "\n".join(problems)


def test_the_scans_catch_what_they_are_for():
    template = textwrap.dedent('''
        {% block title %}{{ _('Fine') }} · geologin{% endblock %}
        <h1>Welcome back</h1>
        <input type="search" placeholder="Search here" value="{{ q }}">
        <input type="submit" value="Send">
        <input type="hidden" name="next" value="/admin">
        <a href="/" aria-label="Home page">{{ _('Home') }}</a>
        <img src="x.png" alt="A map">
        {% if x %}Not translated{% endif %}
        <pre>flask --app wsgi setup-link</pre><code>make i18n</code> ← →
        <td>{{ 'Yes' if user.active else _('No') }}</td><p class="{{ ' has-error' if e }}">{{ x or 'Not set' }}</p>
        <a href="{{ url_for('admin.users') }}">{{ _('%(n)s users', n=n) }}</a>{{ _("It's fine") }}
    ''')
    found = [text for _line, text in template_literals(template)]
    assert found == ["{{ 'Yes' }}", "{{ 'Not set' }}", "Welcome back", "placeholder='Search here'", "value='Send'", "aria-label='Home page'",
                     "alt='A map'", "Not translated"]
    python = textwrap.dedent('''
        flash("Saved.", "info")
        flash(_("Saved."), "info")
        name = StringField("Name", validators=[DataRequired("Enter it."), Length(max=5, message=f"Too long: {n}")])
        ok = StringField(_l("Name"), description=_l("Hint"), render_kw={"placeholder": "Your name"})
        raise ValidationError("Bad value")
        form.username.errors.append("Taken")
        errors["slug"] = "Use letters"
        return render_template("x.html", title="Oops")
        Setting("url", "Server address", help=_l("ok"), choices=(("a", "Automatic"),))
        logger.info("not for users: %s", x)
        _l("Answers at %(url)s%(version)s.", url=url, version=f" (version {v})" if v else "")
    ''')
    found = sorted(what for _line, what in python_literals(python))
    assert found == sorted(["flash() argument 1", "StringField() argument 1", "DataRequired() argument 1",
                     "Length(message=...)", "render_kw placeholder", "ValidationError() argument 1",
                     ".errors.append()", "errors[...] = literal", "render_template(title=...)",
                     "Setting() argument 2", "Setting(choices=...) label", "_l(version=...) value"]), found


# -- make i18n -------------------------------------------------------------------------------------------
def _make_variable(name):
    match = re.search(rf"^{name}\s*:=\s*(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, f"Makefile has no {name}"
    return match.group(1).split()


@pytest.mark.parametrize("name,folder,translations", CATALOGS, ids=[c[0] for c in CATALOGS])
def test_make_i18n_is_idempotent_and_keeps_every_translation(name, folder, translations, tmp_path):
    """What `make i18n` runs (its EXTRACT and UPDATE flags, read from the Makefile), on a copy: the second
    run changes nothing, and every translation of a message still in the sources survives."""
    import shutil
    import subprocess
    import sys

    pybabel = Path(sys.executable).parent / "pybabel"
    if not pybabel.exists():
        pytest.skip("pybabel is not installed next to this Python")
    copy = tmp_path / "translations"
    shutil.copytree(translations, copy, ignore=shutil.ignore_patterns("*.mo"))
    pot = tmp_path / "messages.pot"
    subprocess.run([str(pybabel), "-q", *_make_variable("EXTRACT"), "-o", str(pot), "."], cwd=folder, check=True,
                   capture_output=True)

    def update():
        subprocess.run([str(pybabel), "-q", *_make_variable("UPDATE"), "-i", str(pot), "-d", str(copy)], check=True,
                       capture_output=True)
        return {p: p.read_bytes() for p in sorted(copy.glob("*/LC_MESSAGES/messages.po"))}

    first = update()
    assert update() == first, "a second make i18n changed the catalogs"
    current = {m if isinstance(m, str) else m[0] for m in extracted_messages(folder)}
    for path in first:
        lang = path.parent.parent.name
        before = load_po(str(po_path(translations, lang)))
        with open(path, "rb") as handle:
            after = read_po(handle, locale=lang)
        for message in before:
            key = message.id[0] if isinstance(message.id, (tuple, list)) else message.id
            if key and key in current and message.string and any(message.string if not isinstance(
                    message.string, str) else [message.string]):
                kept = after.get(message.id)
                assert kept is not None and kept.string == message.string and not kept.fuzzy, (lang, key)
