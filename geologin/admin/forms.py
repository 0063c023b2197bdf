"""The administrators' forms for identity providers (the account forms are accounts/forms.py's)."""
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

from ..validation import row_id
from ..web import Form, strip
from .setting_fields import MarkRequired


class ProviderEditForm(Form):
    label = StringField(_l("Label"), validators=[MarkRequired()], filters=[strip],
                        description=_l("What users see on the login page, e.g. “Ministry of Health DHIS2”."))
    description = TextAreaField(_l("Description"), validators=[Length(max=2000)], filters=[strip],
                                description=_l("For administrators: what this server is and who uses it."))
    enabled = BooleanField(_l("Enabled"), default=True,
                           description=_l("When off, the login page does not offer it and nobody can log in "
                                          "through it."))
    allow_all_users = BooleanField(_l("Every active local user may use it"), default=False,
                                   description=_l("When off, only the users allowed one by one may log in "
                                                  "through it. Administrators must always be allowed one by "
                                                  "one, even when it is on."))


class ProviderCreateForm(ProviderEditForm):
    enabled = BooleanField(_l("Enabled"), default=True,
                           description=_l("Enabled once geologin has tested the connection and it passed; until "
                                          "then it is created disabled."))
    enable_untested = BooleanField(_l("Enable it even if the connection test does not pass"), default=False,
                                   description=_l("For a server geologin cannot reach yet. Users are offered it at "
                                                  "once, so make sure the address and secret are right."))
    slug = StringField(_l("Slug"), validators=[MarkRequired()], filters=[strip],
                       description=_l("Part of the redirect URI; cannot be changed later. Lowercase letters, "
                                      "digits and dashes, e.g. moh-dhis2."),
                       render_kw={"autocapitalize": "none", "spellcheck": "false"})


class BulkAllowForm(Form):
    usernames = TextAreaField(_l("Usernames, one per line"),
                              validators=[DataRequired(_l("Enter at least one username."))],
                              description=_l("Exact usernames (case matters). Unknown names are reported; "
                                             "the others are allowed."),
                              render_kw={"rows": 8, "autocapitalize": "none", "spellcheck": "false"})


class DisallowForm(Form):
    user_ids = SelectMultipleField(_l("Users"), coerce=row_id, validate_choice=False)


class UserProvidersForm(Form):
    """The user screen's checkboxes: the identity providers this user may log in through."""

    provider_ids = SelectMultipleField(_l("Identity providers"), coerce=row_id, validate_choice=False)

    def validate_provider_ids(self, field):
        """A form opened before another administrator deleted a provider still names its id."""
        known = {option[0] for option in field.iter_choices()}
        if any(provider_id not in known for provider_id in field.data or []):
            raise ValidationError(_l("An identity provider ticked here no longer exists: another administrator "
                                     "deleted it. Check the list below and save again."))
