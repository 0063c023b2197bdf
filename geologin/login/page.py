"""The login page: the password form (its empty copy rendered once per language and process) and each
plugin's widget for its enabled providers (cached while the providers are unchanged). Cached fragments carry
a placeholder where each visitor's own CSRF token goes."""
import secrets

from flask import current_app, render_template, request
from flask_babel import get_locale
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from ..accounts import firstrun
from ..idp import cache
from .forms import LoginForm
from .redirects import safe_next

REMEMBER_COOKIE = "geologin_provider"


def login_page(form, status, headers=None):
    """The login page with ``form`` (its errors, the username typed), or with an empty form (None)."""
    if form is None:
        form_html = _empty_login_form()
    else:
        form.password.data = ""
        form_html = None
    return render_template("login.html", form=form, login_form_html=form_html,
                           needs_setup=not firstrun.admin_known_to_exist(),
                           widgets=login_widgets()), status, headers or {}


def _empty_login_form():
    """The ``login_form`` block of login.html for an empty LoginForm (no next target), in the request's
    language, with this visitor's CSRF token. The block is rendered once per language and process: it
    depends on nothing else (the field labels and WTForms' attributes are fixed per language)."""
    cache = current_app.extensions.setdefault("geologin.empty_login_form", {})
    locale = str(get_locale())
    html = cache.get(locale)
    if html is None:
        form = LoginForm()
        form.next.data = ""
        token = form.csrf_token.current_token
        template = current_app.jinja_env.get_template("login.html")
        context = {"form": form, "login_form_html": None}
        current_app.update_template_context(context)
        html = "".join(template.blocks["login_form"](template.new_context(context))).replace(token, CSRF_SLOT)
        if CSRF_SLOT not in html:
            raise RuntimeError("login.html's login_form block must render the form's CSRF token")
        cache[locale] = html
    return Markup(with_csrf_token(html))


def login_widgets():
    """Rendered login widgets of the enabled providers, one per plugin type, in the admins' order."""
    usable = cache.usable()
    remembered = request.cookies.get(REMEMBER_COOKIE)
    next_url = safe_next(request.args.get("next")) or ""
    widgets = []
    for type_name, group in usable.by_type.items():
        plugin = cache.plugin_registry().get(type_name)
        widgets.append(Markup(_widget(usable, type_name, group, plugin, remembered, next_url)))
    return widgets


# Stands for the CSRF token in a cached page fragment; each page view puts its own token in its place.
CSRF_SLOT = "csrf-slot-" + secrets.token_hex(16)


def with_csrf_token(html):
    """A cached fragment rendered with ``CSRF_SLOT``, carrying this visitor's own CSRF token."""
    return html.replace(CSRF_SLOT, generate_csrf())

_MAX_CACHED_WIDGETS = 64


def _widget(usable, type_name, group, plugin, remembered, next_url):
    """One plugin's widget. The core's default widget, and a plugin's that declares ``widget_cacheable``
    (it depends only on its variables, the language and csrf_token()), is rendered once per language and
    remembered server (while the providers are unchanged) with a placeholder for the CSRF token, then
    served with each visitor's own token. A ``next`` target or an unknown remembered value renders afresh."""
    template = plugin.widget_template or "external_widget.html"
    context = {"instances": group, "provider": plugin, "remembered": remembered, "next": next_url}
    cacheable = ((plugin.widget_template is None or getattr(plugin, "widget_cacheable", False))
                 and not next_url and (remembered is None or remembered in usable.by_slug))
    if not cacheable:
        return render_template(template, **context)
    key = (type_name, str(get_locale()), remembered)
    html = usable.widgets.get(key)
    if html is None:
        html = render_template(template, csrf_token=lambda: CSRF_SLOT, **context)
        if len(usable.widgets) >= _MAX_CACHED_WIDGETS:
            usable.widgets.clear()
        usable.widgets[key] = html
    return with_csrf_token(html)
