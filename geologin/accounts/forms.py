"""The account forms (first run, user details, passwords). Field rules call the same checks as the CLI
(see users.py)."""
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from ..web import Form, strip
from .passwords import password_problems
from .users import email_problem, username_problem


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


class NewPasswordMixin:
    password = PasswordField(_l("New password"), validators=[DataRequired(_l("Enter a password.")),
                                                             _password_rule()],
                             render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("Repeat the password"),
                            validators=[DataRequired(_l("Repeat the password.")),
                                        EqualTo("password", _l("The two passwords differ."))],
                            render_kw={"autocomplete": "new-password"})


class UserDetailsMixin:
    display_name = StringField(_l("Display name"), validators=[Optional(), Length(max=200)], filters=[strip],
                               render_kw={"autocomplete": "name"})
    email = StringField(_l("Email"), validators=[Optional(), _email_rule], filters=[strip],
                        render_kw={"autocomplete": "email", "type": "email"})


class SetupForm(UserDetailsMixin, Form):
    username = StringField(_l("Username"), validators=[DataRequired(_l("Enter a username.")), _username_rule],
                           filters=[strip], render_kw={"autocomplete": "username", "autocapitalize": "none"})
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter a password.")),
                                                         _password_rule("username")],
                             render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("Repeat the password"),
                            validators=[DataRequired(_l("Repeat the password.")),
                                        EqualTo("password", _l("The two passwords differ."))],
                            render_kw={"autocomplete": "new-password"})


class UserCreateForm(UserDetailsMixin, Form):
    username = StringField(_l("Username"), validators=[DataRequired(_l("Enter a username.")), _username_rule],
                           filters=[strip], render_kw={"autocapitalize": "none"},
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
