"""Request-wide behaviour: security headers, error pages, what every template can use, and the base of every
form."""
import logging
from functools import lru_cache

from babel import support
from flask import current_app, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from wtforms.i18n import messages_path
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from . import validation
from .extensions import db

logger = logging.getLogger("geologin.web")

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'")


MAX_PAGE = 100_000


def requested_page():
    """The ``page`` query parameter as a sane page number (a huge one would overflow the SQL offset)."""
    return max(1, min(request.args.get("page", 1, type=int), MAX_PAGE))


def _security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if current_user and current_user.is_authenticated:
        headers["Cache-Control"] = "no-store"
    if current_app.config["SESSION_COOKIE_SECURE"]:  # served over https (PUBLIC_URL)
        headers.setdefault("Strict-Transport-Security", f"max-age={current_app.config['HSTS_MAX_AGE']}")
    return response


# code -> (title, message), translated when the page is rendered. Werkzeug's own English names and
# descriptions are never shown: any other code gets the generic title and the 400 message.
_PAGES = {
    400: lambda: (_("Bad request"), _("The request could not be understood. Go back, reload the page and try again.")),
    403: lambda: (_("Access denied"), _("You do not have permission to see this page.")),
    404: lambda: (_("Page not found"), _("There is no page at this address.")),
    405: lambda: (_("Method not allowed"), _("This page cannot be used that way.")),
    429: lambda: (_("Too many requests"), _("Too many attempts from your network. Wait a minute and try again.")),
}


def _http_error(error):
    code = error.code or 500
    if code in _PAGES:
        title, message = _PAGES[code]()
    else:
        title, message = _("Error %(code)d", code=code), _PAGES[400]()[1]
    return render_template("error.html", code=code, title=title, message=message), code


def _undecodable_request(error):
    """A query string or form that is not UTF-8 (only raw bytes can do that): a 400, not a 500."""
    message = _("The address or form contains characters that are not valid text.")
    return render_template("error.html", code=400, title=_("Bad request"), message=message), 400


def _csrf_error(error):
    message = _("Your form expired or did not come from this site. Reload the page and try again.")
    return render_template("error.html", code=400, title=_("Form expired"), message=message), 400


def _unexpected_error(error):
    db.session.rollback()
    logger.exception("unhandled error on %s %s", request.method, request.path)
    message = _("Something went wrong on our side. It has been logged; please try again later.")
    return render_template("error.html", code=500, title=_("Server error"), message=message), 500


def init_app(app):
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies:
        # Exactly N hops: a client cannot add its own X-Forwarded-For entry and be believed.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    # First of all hooks: input with control characters is refused before anything reads it.
    app.before_request_funcs.setdefault(None, []).insert(0, validation.refuse_control_characters)
    app.after_request(_security_headers)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(UnicodeDecodeError, _undecodable_request)
    app.register_error_handler(HTTPException, _http_error)
    if not app.debug and not app.testing:
        app.register_error_handler(Exception, _unexpected_error)


# -- forms ----------------------------------------------------------------------------------------------
@lru_cache(maxsize=32)
def _wtforms_catalog(locale):
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


class _WTFormsTranslations:
    """WTForms' own messages (e.g. Length's) in the request's language, as Flask-WTF gives them, but with
    each language's catalog read from disk once per process instead of once per request."""

    def _catalog(self):
        if not request or "babel" not in current_app.extensions:
            return None
        return _wtforms_catalog(str(get_locale()))

    def gettext(self, string):
        catalog = self._catalog()
        return string if catalog is None else catalog.ugettext(string)

    def ngettext(self, singular, plural, n):
        catalog = self._catalog()
        if catalog is None:
            return singular if n == 1 else plural
        return catalog.ungettext(singular, plural, n)


_TRANSLATIONS = _WTFormsTranslations()


class Form(FlaskForm):
    """The base of geologin's forms (CSRF-protected Flask-WTF forms)."""

    class Meta(FlaskForm.Meta):
        def get_translations(self, form):
            if not current_app.config.get("WTF_I18N_ENABLED", True):
                return super().get_translations(form)
            return _TRANSLATIONS


def strip(value):
    """A field filter: what was typed, without surrounding spaces (non-strings unchanged)."""
    return value.strip() if isinstance(value, str) else value
