"""Flask-Babel set-up: every user-visible string goes through gettext; catalogs live in translations/."""
from functools import lru_cache
from pathlib import Path

from flask import current_app, request
from flask_babel import get_locale

from .extensions import babel

TRANSLATIONS = Path(__file__).parent / "translations"


@lru_cache(maxsize=1)
def available_locales():
    found = {"en"}
    if TRANSLATIONS.is_dir():
        found.update(p.name for p in TRANSLATIONS.iterdir() if (p / "LC_MESSAGES").is_dir())
    return tuple(sorted(found))


def select_locale():
    default = current_app.config["DEFAULT_LOCALE"]
    if request:
        return request.accept_languages.best_match(available_locales(), default=default)
    return default


def init_app(app):
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.globals["get_locale"] = get_locale
