"""WTForms used by the core's pages. Field rules call the same checks as the CLI (see users.py)."""
from functools import lru_cache

from babel import support
from flask import current_app, request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms.i18n import messages_path
from wtforms import BooleanField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from .passwords import password_problems
from .users import USERNAME_MAX, email_problem, username_problem


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


def _username_rule(form, field):
    problem = username_problem(field.data or "")
    if problem:
        raise ValidationError(problem)


def _email_rule(form, field):
    problem = email_problem((field.data or "").strip())
    if problem:
        raise ValidationError(problem)


def _password_rule(username_field=None):
    def check(form, field):
        username = None
        if username_field is not None:
            username = getattr(form, username_field).data
        elif getattr(form, "username_for_policy", None):
            username = form.username_for_policy
        problems = password_problems(field.data or "", username)
        if problems:
            raise ValidationError(" ".join(str(p) for p in problems))
    return check


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class LoginForm(Form):
    username = StringField(_l("Username"), validators=[DataRequired(_l("Enter your username.")),
                                                       Length(max=USERNAME_MAX)],
                           filters=[_strip], render_kw={"autocomplete": "username", "autocapitalize": "none"})
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter your password.")),
                                                         Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})
    next = HiddenField()


class ReauthForm(Form):
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter your password.")),
                                                         Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})
    next = HiddenField()


class NewPasswordMixin:
    password = PasswordField(_l("New password"), validators=[DataRequired(_l("Enter a password.")),
                                                             _password_rule()],
                             render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("Repeat the password"),
                            validators=[DataRequired(_l("Repeat the password.")),
                                        EqualTo("password", _l("The two passwords differ."))],
                            render_kw={"autocomplete": "new-password"})


class UserDetailsMixin:
    display_name = StringField(_l("Display name"), validators=[Optional(), Length(max=200)], filters=[_strip],
                               render_kw={"autocomplete": "name"})
    email = StringField(_l("Email"), validators=[Optional(), _email_rule], filters=[_strip],
                        render_kw={"autocomplete": "email", "type": "email"})


class SetupForm(UserDetailsMixin, Form):
    username = StringField(_l("Username"), validators=[DataRequired(_l("Enter a username.")), _username_rule],
                           filters=[_strip], render_kw={"autocomplete": "username", "autocapitalize": "none"})
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter a password.")),
                                                         _password_rule("username")],
                             render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("Repeat the password"),
                            validators=[DataRequired(_l("Repeat the password.")),
                                        EqualTo("password", _l("The two passwords differ."))],
                            render_kw={"autocomplete": "new-password"})


class UserCreateForm(UserDetailsMixin, Form):
    username = StringField(_l("Username"), validators=[DataRequired(_l("Enter a username.")), _username_rule],
                           filters=[_strip], render_kw={"autocapitalize": "none"},
                           description=_l("Must be exactly the username the person has at the identity "
                                          "provider (case matters)."))
    is_admin = BooleanField(_l("Administrator"))
    password_login_allowed = BooleanField(_l("Password login allowed"), default=True)
    password = PasswordField(_l("Password"), validators=[Optional(), _password_rule("username")],
                             description=_l("Leave empty for a user who logs in only through an identity "
                                            "provider."),
                             render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("Repeat the password"),
                            validators=[EqualTo("password", _l("The two passwords differ."))],
                            render_kw={"autocomplete": "new-password"})


class UserEditForm(UserDetailsMixin, Form):
    is_admin = BooleanField(_l("Administrator"))
    active = BooleanField(_l("Active"), description=_l("An inactive user cannot log in in any way."))
    password_login_allowed = BooleanField(_l("Password login allowed"),
                                          description=_l("When off, no password works for this user."))


class SetPasswordForm(NewPasswordMixin, Form):
    username_for_policy = None


class ChangePasswordForm(NewPasswordMixin, Form):
    username_for_policy = None
    current = PasswordField(_l("Current password"), validators=[DataRequired(_l("Enter your current password."))],
                            render_kw={"autocomplete": "current-password"})
