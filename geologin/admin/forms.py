"""The administrators' forms for identity providers (the account forms are accounts/forms.py's)."""
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

from ..validation import row_id
from ..web import Form, strip
from .setting_fields import MarkRequired, choice


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
    groups_prefixed = BooleanField(_l("All of its groups are geologin groups too, named “slug:name”"),
                                   default=False,
                                   description=_l("Applications then see every group the provider states, e.g. "
                                                  "“moh:Malaria programme”, without a mapping. When off, only its "
                                                  "groups mapped to a geologin group count."))
    access_group_ids = SelectMultipleField(_l("Members of these groups may use it"), coerce=row_id,
                                           validate_choice=False)
    create_accounts = BooleanField(_l("Create an account on the first login"), default=False,
                                   description=_l("For a person without a local account who is, by what this "
                                                  "login says, in one of the groups ticked below: an account "
                                                  "with their username there, no password, not an "
                                                  "administrator, allowed to log in through it."))
    create_group_ids = SelectMultipleField(_l("Groups that may get an account"), coerce=row_id,
                                           validate_choice=False)
    account_clash = SelectField(_l("When the username already exists here"),
                                choices=[choice("refuse", _l("Refuse the login")),
                                         choice("link", _l("Link it, if that account is active, not an "
                                                           "administrator and not linked to this provider"))],
                                default="refuse",
                                description=_l("For a member of those groups whose username is a local account "
                                               "not allowed through it. A link is written in the audit log."))
    keep_tokens = BooleanField(_l("Keep the tokens it issues"), default=False,
                               description=_l("Keep each person's access and refresh tokens (encrypted) so "
                                              "applications can call this server as the person "
                                              "(docs/dhis2-tokens.md). Turning it off forgets every kept "
                                              "token."))
    proxy_paths = TextAreaField(_l("API paths the DHIS2 proxy forwards, one per line"),
                                description=_l("As after /api/: me, organisationUnits, or organisationUnits/* for "
                                               "everything under it. Applications read these through geologin "
                                               "as the person; nothing else, and never a write."),
                                render_kw={"rows": 5, "spellcheck": "false", "autocapitalize": "none"})

    def _validate_groups(self, field):
        """A form opened before another administrator deleted a group still names its id."""
        known = {option[0] for option in field.iter_choices()}
        if any(group_id not in known for group_id in field.data or []):
            raise ValidationError(_l("A group ticked here no longer exists: another administrator deleted it. "
                                     "Check the list and save again."))

    validate_access_group_ids = validate_create_group_ids = _validate_groups


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


class ApplicationForm(Form):
    """An application (OpenID Connect client). Only the shape is checked here: geologin/apps/clients.py
    judges the values, for the CLI and these screens alike."""

    name = StringField(_l("Name"), validators=[MarkRequired()], filters=[strip],
                       description=_l("Shown to users on the consent screen, e.g. “Superset”."))
    redirect_uris = TextAreaField(_l("Redirect URIs, one per line"), validators=[MarkRequired()],
                                  description=_l("Where geologin may send users back after they sign in, exactly "
                                                 "as the application sends them (https://, no #)."),
                                  render_kw={"rows": 3, "spellcheck": "false", "autocapitalize": "none"})
    post_logout_uris = TextAreaField(_l("Post-logout redirect URIs, one per line"),
                                     description=_l("Where geologin may send users after they log out from the "
                                                    "application. Optional."),
                                     render_kw={"rows": 2, "spellcheck": "false", "autocapitalize": "none"})
    backchannel_logout_uri = StringField(_l("Back-channel logout URI"), filters=[strip],
                                         description=_l("geologin posts a logout token here when the user's "
                                                        "geologin session ends. Optional."),
                                         render_kw={"spellcheck": "false", "autocapitalize": "none"})
    first_party = BooleanField(_l("First party: do not ask users for consent"), default=False,
                               description=_l("Only for applications run by the same organisation as geologin."))
    allow_all_users = BooleanField(_l("Every active user may sign in to it"), default=True,
                                   description=_l("When off, only the users allowed one by one may sign in."))
    refresh_tokens = BooleanField(_l("Refresh tokens at every sign-in"), default=False,
                                  description=_l("When off, only when the application asks for offline_access."))
    id_token_alg = SelectField(_l("ID token signature"),
                               choices=[choice("RS256", _l("RS256 (RSA)")),
                                        choice("ES256", _l("ES256 (elliptic curve)"))],
                               default="RS256",
                               description=_l("RS256 unless the application asks for ES256."))
    provider_ids = SelectMultipleField(_l("Identity providers"), coerce=row_id, validate_choice=False)
    group_ids = SelectMultipleField(_l("Groups whose members may sign in"), coerce=row_id, validate_choice=False,
                                    description=_l("When not every active user may: members of these groups may, "
                                                   "besides the users allowed one by one."))
    attribute_claims = SelectMultipleField(_l("Attributes given as claims"), validate_choice=False)
    token_provider_ids = SelectMultipleField(_l("May receive the kept tokens of"), coerce=row_id,
                                             validate_choice=False)

    def validate_provider_ids(self, field):
        """A form opened before another administrator deleted a provider still names its id."""
        known = {option[0] for option in field.iter_choices()}
        if any(provider_id not in known for provider_id in field.data or []):
            raise ValidationError(_l("An identity provider ticked here no longer exists: another administrator "
                                     "deleted it. Check the list below and save again."))

    validate_token_provider_ids = validate_provider_ids

    def validate_group_ids(self, field):
        """A form opened before another administrator deleted a group still names its id."""
        known = {option[0] for option in field.iter_choices()}
        if any(group_id not in known for group_id in field.data or []):
            raise ValidationError(_l("A group chosen here no longer exists: another administrator deleted it. "
                                     "Check the list and save again."))


class ApplicationCreateForm(ApplicationForm):
    public = BooleanField(_l("Public client (no secret)"), default=False,
                          description=_l("For single-page or native applications that cannot keep a secret; "
                                         "they must use PKCE. Cannot be changed later."))


class SiteForm(Form):
    """A protected site (forward-auth): a name, its hosts, who may sign in and the login methods it admits; no
    URI, secret or token setting, as the proxy asks geologin on the person's behalf."""

    name = StringField(_l("Name"), validators=[MarkRequired()], filters=[strip],
                       description=_l("Shown to people who may not use the site, e.g. “Reports”."))
    hosts = TextAreaField(_l("Hosts, one per line"), validators=[MarkRequired()],
                          description=_l("The host names the site is served at, as the browser shows them, e.g. "
                                         "reports.moh.example (no https://, no path; a port only if not 443)."),
                          render_kw={"rows": 3, "spellcheck": "false", "autocapitalize": "none"})
    allow_all_users = BooleanField(_l("Every active user may sign in to it"), default=True,
                                   description=_l("When off, only the users allowed one by one may sign in."))
    provider_ids = SelectMultipleField(_l("Identity providers"), coerce=row_id, validate_choice=False)
    group_ids = ApplicationForm.group_ids

    validate_provider_ids = ApplicationForm.validate_provider_ids
    validate_group_ids = ApplicationForm.validate_group_ids


class ApplicationAllowForm(Form):
    usernames = TextAreaField(_l("Usernames, one per line"),
                              validators=[DataRequired(_l("Enter at least one username."))],
                              description=_l("Exact usernames (case matters). If one of them is not a user, "
                                             "nobody is added: correct the list and send it again."),
                              render_kw={"rows": 8, "autocapitalize": "none", "spellcheck": "false"})
