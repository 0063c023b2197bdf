"""Languages and local time.

- Catalogs: the core's in ``geologin/i18n/translations/``, and every plugin's own ``translations/`` folder
  (recorded by the plugin registry), merged by Flask-Babel into one ``messages`` domain.
- The language of a request: the logged-in user's choice, else the ``geologin_locale`` cookie, else the
  browser's Accept-Language, else ``DEFAULT_LOCALE``. The language picker on every page sets the first two.
- Dates on screens are shown in the locale's format and in the configured ``TIMEZONE``; stored times and
  machine-readable values (CSV, JSON, ``<time datetime>``) stay UTC.
"""
from functools import lru_cache
from pathlib import Path

import pytz
from babel import Locale, UnknownLocaleError
from flask import Blueprint, abort, current_app, g, redirect, request, url_for
from flask_babel import Domain, format_datetime, get_locale
from flask_login import current_user
from markupsafe import Markup

from ..config import ConfigError
from ..extensions import babel, db
from ..login.redirects import safe_next

TRANSLATIONS = Path(__file__).parent / "translations"
SOURCE_LOCALE = "en"  # the language of the msgids: needs no catalog
LOCALE_COOKIE = "geologin_locale"
LOCALE_COOKIE_MAX_AGE = 365 * 24 * 3600

bp = Blueprint("i18n", __name__)


@lru_cache(maxsize=1)
def available_locales():
    """The languages geologin speaks: English plus every language the core has a catalog for."""
    found = {SOURCE_LOCALE}
    if TRANSLATIONS.is_dir():
        found.update(p.name for p in TRANSLATIONS.iterdir() if (p / "LC_MESSAGES").is_dir())
    return tuple(sorted(found))


def supported(code):
    """``code`` (``pt``, ``pt-BR``...) as one of the available locales, or None."""
    if not isinstance(code, str) or not code or len(code) > 35:
        return None
    code = code.strip().replace("-", "_")
    if code in available_locales():
        return code
    language = code.split("_", 1)[0].lower()
    return language if language in available_locales() else None


@lru_cache(maxsize=64)
def native_name(code):
    """A language's name in that language (Français, العربية), so anyone can find their own."""
    try:
        name = Locale.parse(code).get_display_name(code) or code
    except (ValueError, UnknownLocaleError):
        return code
    return name[:1].upper() + name[1:]


def language_choices():
    return [(code, native_name(code)) for code in available_locales()]


def select_locale():
    """Profile, then cookie, then Accept-Language, then DEFAULT_LOCALE. Outside a request (the CLI, whose
    human output stays English) the messages' own language."""
    if not request:
        return SOURCE_LOCALE
    if g.get("requested_locale"):  # an application's ui_locales, for the page it sent the person to
        return g.requested_locale
    default = current_app.config["DEFAULT_LOCALE"]
    user = current_user
    if user and user.is_authenticated:
        chosen = supported(getattr(user, "locale", None))
        if chosen:
            return chosen
    chosen = supported(request.cookies.get(LOCALE_COOKIE))
    if chosen:
        return chosen
    return request.accept_languages.best_match(available_locales(), default=default)


def html_lang():
    """The current language as a BCP 47 tag for ``<html lang>`` (pt_BR -> pt-BR)."""
    return str(get_locale() or current_app.config["DEFAULT_LOCALE"]).replace("_", "-")


def text_direction():
    locale = get_locale()
    return locale.text_direction if locale is not None else "ltr"


def current_page():
    """Where the language picker sends the browser back to: this page (path and query string)."""
    path = request.path
    if request.query_string:
        try:  # raw bytes that are not UTF-8 (only a hand-made URL has them): come back without the query
            path += "?" + request.query_string.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return safe_next(path) or ""


def local_datetime(value, with_zone=False):
    """``<time datetime="UTC ISO 8601">`` around the time in the locale's format and the configured zone
    (followed by the zone's name when ``with_zone``: where no column heading names it)."""
    if value is None:
        return ""
    shown = format_datetime(value, "medium")
    if with_zone:
        shown = f"{shown} {current_app.config['TIMEZONE']}"
    return Markup('<time datetime="{}">{}</time>').format(value.isoformat(), shown)


@bp.route("/language", methods=["POST"])
def choose_language():
    """The picker (a plain form: works without JavaScript). Remembered in a cookie, and on the user."""
    code = supported(request.form.get("language"))
    if code is None:
        abort(400)
    response = remember_locale(redirect(safe_next(request.form.get("next")) or url_for("home.index")), code)
    if current_user.is_authenticated:
        current_user.locale = code
        db.session.commit()
    return response


def remember_locale(response, code):
    """Make ``code`` this browser's language from the next page on (the language cookie)."""
    response.set_cookie(LOCALE_COOKIE, code, max_age=LOCALE_COOKIE_MAX_AGE, httponly=True, samesite="Lax",
                        secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def _vary(response):
    """Pages are negotiated on Accept-Language and the language cookie: caches must keep them apart."""
    if response.mimetype == "text/html":
        response.vary.add("Accept-Language")
        response.vary.add("Cookie")
    return response


class _AppDomain(Domain):
    """Flask-Babel caches merged catalogs on its one Babel object, shared by every app of the process;
    apps may load different plugins (tests do), so each app keeps its own cache."""

    def get_translations_cache(self, ctx):
        return current_app.extensions.setdefault("geologin.translations_cache", {})


def translation_directories(app):
    """Every plugin's translations folder, then the core's. Later catalogs win when Flask-Babel merges
    them, so a plugin cannot change the core's own messages, and the core's plural rule applies."""
    registry = app.extensions.get("geologin.plugins")
    plugin_dirs = [str(plugin.translations) for _, plugin in sorted(registry.plugins.items())
                   if plugin.translations] if registry else []
    core = app.config.get("BABEL_TRANSLATION_DIRECTORIES") or str(TRANSLATIONS)
    return ";".join(plugin_dirs + [d for d in core.split(";") if d not in plugin_dirs])


def init_app(app):
    default = supported(app.config.get("DEFAULT_LOCALE"))
    if default is None:
        raise ConfigError(f"DEFAULT_LOCALE {app.config.get('DEFAULT_LOCALE')!r} is not a language geologin has; "
                          f"choose one of: {', '.join(available_locales())}.")
    app.config["DEFAULT_LOCALE"] = default
    app.config["BABEL_DEFAULT_LOCALE"] = default
    try:  # config.py checked it with zoneinfo; Flask-Babel 4 formats with pytz, whose zone list may be older
        pytz.timezone(app.config["TIMEZONE"])
    except pytz.UnknownTimeZoneError:
        raise ConfigError(f"TIMEZONE {app.config['TIMEZONE']!r} is not known to pytz, which formats dates here; "
                          "upgrade pytz or choose another IANA time zone name.") from None
    app.config["BABEL_DEFAULT_TIMEZONE"] = app.config["TIMEZONE"]
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = translation_directories(app)
    babel.init_app(app, locale_selector=select_locale)
    babel.__dict__["domain_instance"] = _AppDomain()  # replaces Flask-Babel's cached_property value
    app.register_blueprint(bp)
    app.after_request(_vary)
    app.jinja_env.globals.update(get_locale=get_locale, html_lang=html_lang, text_direction=text_direction,
                                 language_choices=language_choices, current_page=current_page,
                                 timezone_name=lambda: app.config["TIMEZONE"])
    app.jinja_env.filters["local_datetime"] = local_datetime
