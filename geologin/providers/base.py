"""The provider contract: what a plugin declares, what it is given, and what it must hand back."""
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l

# Reasons a plugin may give; the core adds the user-matching ones (unknown_user, not_allowed, ...).
ACCESS_DENIED = "access_denied"
PROVIDER_ERROR = "provider_error"
PROVIDER_UNAVAILABLE = "provider_unavailable"
# The server refused a refresh token (revoked, expired, or issued to another client): only a new login helps.
REFRESH_REFUSED = "refresh_refused"


@dataclass(frozen=True)
class Setting:
    """One plugin setting. The core turns it into an admin form field and a CLI option (``--name-with-
    dashes``; secrets are read from standard input with ``--name-stdin``)."""

    name: str
    label: str
    kind: str = "text"  # text | url | secret | choice | bool
    required: bool = False
    default: Any = None
    help: str = ""
    choices: tuple = ()  # ((value, label), ...) for kind="choice"

    @property
    def secret(self):
        return self.kind == "secret"


class SettingsError(ValueError):
    """Settings were refused; ``errors`` maps a setting name to a message for the admin."""

    def __init__(self, errors):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True)
class Group:
    """A group the person is a member of at the provider: the provider's stable id for it (what the core
    compares) and its display name (what people read; the id when the provider has no other name)."""

    id: str
    name: str | None = None


@dataclass(frozen=True)
class Attribute:
    """One value of a named attribute the provider states about the person (a DHIS2 user role or
    organisation unit): its stable id, its display name, and for values in a tree the path of ids from the
    root (a DHIS2 org unit's ``/ImspTQPwCqd/O6uvpzGd5pu``)."""

    id: str
    name: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class Tokens:
    """What the provider issued at this login, kept by the core (encrypted) when the provider keeps tokens,
    so applications can call the provider as the person. Never in a repr, a log or the audit trail."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_in: float | None = None  # seconds from now; None: the provider did not say
    scope: str | None = None


@dataclass(frozen=True)
class Identity:
    """Who the provider says logged in. ``subject`` is the provider's stable id for the account; the
    scheme says what kind of id it is, so a change of scheme (a server upgrade) is not taken as a
    different person.

    ``groups`` (Group values) and ``attributes`` (an attribute name such as ``"roles"`` -> a tuple of
    Attribute values) are what the provider says about the person at this login; the core stores them per
    user and provider, replacing what the previous login said (empty: the person has none). ``remarks`` are
    short notes for the audit log about what the plugin could not take from the server's answer.

    ``raw`` is what the server answered about the person (id_token claims, userinfo, DHIS2's /api/me
    fields), keyed by where it came from; only an administrator's Test login shows it (bounded by the core).
    Never put tokens, secrets or the authorization code in it. ``tokens`` (Tokens) are what the provider
    issued; OAuth plugins get them set by the base class."""

    subject: str
    username: str
    subject_scheme: str = "sub"
    display_name: str | None = None
    email: str | None = None
    claims: Mapping = field(default_factory=dict)
    groups: tuple = ()
    attributes: Mapping = field(default_factory=dict)
    remarks: tuple = ()
    raw: Mapping = field(default_factory=dict)
    tokens: Tokens | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DirectoryCredentials:
    """An administrator's own credentials at the server, for one directory listing: a username and password,
    or a personal access token. Never stored or logged by the core; a plugin uses them for that call only."""

    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)


class LoginFailure(Exception):
    """The login cannot go on. ``reason`` is a reason code; ``detail`` goes to the audit log only (it may
    contain what the server said, never secrets or tokens); ``hint`` is an optional translated sentence the
    user reads after the reason's message (what to do differently at the server)."""

    reason = PROVIDER_ERROR

    def __init__(self, detail="", reason=None, hint=None):
        super().__init__(detail)
        self.detail = detail
        self.hint = hint
        if reason:
            self.reason = reason


class ProviderError(LoginFailure):
    """The server answered with an error or with something that is not a valid answer."""

    reason = PROVIDER_ERROR


class DiscoveryNotFound(ProviderError):
    """The server has no OpenID Connect discovery document (it answered 404): a server of a kind or
    version that publishes none, which a plugin may handle (DHIS2 before 2.42)."""


class ProviderUnavailable(LoginFailure):
    """The server did not answer usefully: refused, timed out, TLS or DNS failure, 5xx."""

    reason = PROVIDER_UNAVAILABLE


@dataclass(frozen=True)
class LoginRequest:
    """Everything the core prepared for one authorization request. ``data`` is the plugin's own scratch
    space, stored with the login transaction and handed back at the callback."""

    state: str
    nonce: str
    code_challenge: str
    redirect_uri: str
    code_challenge_method: str = "S256"
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CallbackContext:
    """The callback's query parameters with what the core kept from the start of the login."""

    params: Mapping[str, str]
    redirect_uri: str
    nonce: str
    code_verifier: str
    data: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """One line of a connection test: what was checked, whether it passed (None: the server does not let
    geologin find out, and the message says so), and what was seen."""

    name: str
    ok: bool | None
    message: str

    def __post_init__(self):
        # Plain text: a lazy gettext string formatted with what a server said would render as markup.
        object.__setattr__(self, "name", str(self.name))
        object.__setattr__(self, "message", str(self.message))


@dataclass(frozen=True)
class SettingsContext:
    """What ``clean_settings`` may need to know about the deployment."""

    allow_insecure_http: bool = False
    public_url: str | None = None  # e.g. https://login.example.org (no trailing slash)
    callback_url: str | None = None  # this instance's own callback URL, when PUBLIC_URL is set


@dataclass(frozen=True)
class InstanceView:
    """A registered instance as a plugin sees it: plain settings and a way to read its secrets."""

    slug: str
    label: str
    settings: Mapping[str, Any]
    secret_reader: Any = field(repr=False, default=None)

    def secret(self, name):
        return self.secret_reader(name) if self.secret_reader else None


class Provider:
    """Base class of every provider plugin. Subclasses set the class attributes and implement
    ``authorization_url`` and ``complete_login``; see docs/plugins.md."""

    type: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    settings: ClassVar[tuple[Setting, ...]] = ()
    # Extra fixed callback paths (e.g. those of a system being replaced); the core finds the instance
    # through the state parameter when a callback arrives on one of them.
    callback_paths: ClassVar[tuple[str, ...]] = ()
    # Template (in the plugin's templates/ folder) of the login-page widget; it gets ``instances``.
    widget_template: ClassVar[str | None] = None
    # True when the widget's HTML depends only on its variables, the language and csrf_token() (no request,
    # session or user): the core may then render it once and reuse it with each visitor's CSRF token.
    widget_cacheable: ClassVar[bool] = False
    # Template of the admin "Setup" page for one instance; it gets ``provider`` and ``setup``.
    setup_template: ClassVar[str | None] = None
    # True when the plugin implements ``directory_members`` (``users import-from`` uses it).
    lists_directory: ClassVar[bool] = False
    # The server has a web API the core's read-only proxy may forward to as the person (api_url).
    serves_api: ClassVar[bool] = False

    def __init__(self, instance, *, http, default_redirect_uri, allow_insecure_http=False, cache=None,
                 post_logout_redirect_uri=None):
        self.instance = instance
        self.http = http
        self.default_redirect_uri = default_redirect_uri
        # Where a server should send the browser after logging it out there (geologin's login page).
        self.post_logout_redirect_uri = post_logout_redirect_uri
        self.allow_insecure_http = allow_insecure_http
        self.cache = cache if cache is not None else {}

    @property
    def slug(self):
        return self.instance.slug

    @property
    def label(self):
        return self.instance.label

    def setting(self, name):
        return self.instance.settings.get(name)

    def secret(self, name):
        return self.instance.secret(name)

    # -- what plugins implement -------------------------------------------------------------------
    @classmethod
    def clean_settings(cls, values, context):
        """Normalise and validate plain settings (``context`` is a SettingsContext); raise SettingsError.
        The default checks required fields, choices, and that URLs are https (or http when allowed)."""
        errors, cleaned = {}, {}
        for setting in cls.settings:
            if setting.secret:
                continue
            value = values.get(setting.name, setting.default)
            if isinstance(value, str):
                value = value.strip()
            if setting.required and value in (None, ""):
                errors[setting.name] = _l("This setting is required.")
                continue
            if setting.kind == "url" and value:
                problem = url_problem(value, context.allow_insecure_http)
                if problem:
                    errors[setting.name] = problem
            if setting.kind == "choice" and value not in {c[0] for c in setting.choices}:
                errors[setting.name] = _l("Choose one of: %(choices)s.",
                                          choices=", ".join(c[0] for c in setting.choices))
            cleaned[setting.name] = value
        if errors:
            raise SettingsError(errors)
        return cleaned

    def redirect_uri(self):
        """The redirect URI this instance sends to its server."""
        return self.default_redirect_uri

    def allowed_hosts(self):
        """Hosts this instance may call: by default, those of its URL settings."""
        return {urlsplit(self.setting(s.name)).netloc for s in self.settings
                if s.kind == "url" and self.setting(s.name)}

    def authorization_url(self, request):
        raise NotImplementedError

    def complete_login(self, callback):
        raise NotImplementedError

    def logout_url(self):
        """Where to send the browser after a local logout to end the server's session too, or None (the
        default: logging out of geologin leaves the person logged in at the server)."""
        return None

    def test_connection(self):
        """Checks an admin can run from the setup page or ``providers test``."""
        return []

    def setup_context(self):
        """Extra values for ``setup_template``."""
        return {}

    def check_refresh_grant(self):
        """A connection-test line for a provider that keeps tokens: does the server let geologin's client use
        the refresh_token grant? None when the plugin cannot tell (the core then judges from the tokens the
        last logins brought)."""
        return None

    def refresh(self, refresh_token):
        """New Tokens for a kept ``refresh_token``; LoginFailure with reason REFRESH_REFUSED when the server
        refused it (revoked, expired), another LoginFailure when the server failed. OAuth2Provider has it."""
        raise LoginFailure("this provider cannot refresh tokens", reason=REFRESH_REFUSED)

    def api_url(self, path):
        """The absolute URL of ``path`` (already checked: relative, no ``..``) in the server's web API, for the
        read-only proxy; set ``serves_api`` when implemented."""
        raise NotImplementedError

    def admin_action(self, name, form):
        """Handle a plugin-specific button on the setup page; return values for the template."""
        raise LookupError(name)

    def directory_members(self, group_id, credentials):
        """The accounts in the server's group ``group_id`` as Identity values (subject, username, and
        display name and email when known), asked with an administrator's ``credentials``
        (DirectoryCredentials). Optional: set ``lists_directory`` when implemented. Raise ProviderError for
        refused credentials or an unknown group, ProviderUnavailable when the server cannot be reached."""
        raise NotImplementedError


def url_problem(value, allow_insecure_http=False):
    """Why ``value`` is not an acceptable server URL, or None."""
    parts = urlsplit(value)
    if parts.scheme not in {"https", "http"} or not parts.netloc:
        return _l("Enter a full URL such as https://dhis2.example.org/.")
    if parts.scheme == "http" and not allow_insecure_http:
        return _l("Use https://. Plain http:// is refused outside development "
                  "(GEOLOGIN_ALLOW_INSECURE_HTTP=1 allows it, for testing only).")
    if parts.username or parts.password:
        return _l("Do not put credentials in the URL.")
    if parts.query or parts.fragment:
        return _l("The URL cannot have a query (?…) or fragment (#…).")
    return None
