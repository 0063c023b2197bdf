"""The core's tables: local users, their server-side sessions, the audit trail, first-run setup tokens, the
registered identity providers, groups, and what the OpenID provider keeps: signing keys, applications, consents,
codes and tokens."""
import uuid
from datetime import datetime, timezone

from flask_login import UserMixin
from sqlalchemy import (DateTime, ForeignKey, Integer, String, Text, TypeDecorator, UniqueConstraint, bindparam, delete,
                        false, func, select)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


def utcnow():
    return datetime.now(timezone.utc)


# SQLite otherwise gives a deleted row's id (the highest) to the next row, which then inherits whatever still
# names that id (a cookie, a copied link, an audit reference). PostgreSQL sequences never reuse. Migration 0005.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class UTCDateTime(TypeDecorator):
    """Stores naive UTC and always returns aware UTC, so SQLite and PostgreSQL compare the same way."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=timezone.utc)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Compared exactly (case-sensitive), as identity providers such as DHIS2 do.
    username: Mapped[str] = mapped_column(String(150), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False, nullable=False)
    active: Mapped[bool] = mapped_column(default=True, nullable=False)
    password_login_allowed: Mapped[bool] = mapped_column(default=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The language the user chose with the picker (a locale code such as "fr"); None: cookie or browser.
    locale: Mapped[str | None] = mapped_column(String(35))
    # When an administrator last lifted the account's lockout. Lockout counters may live in each process's
    # memory; every process compares its own counters with this before it refuses a login.
    unlocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What applications know the user by (the ID token's sub): random, never changed, never reused, and
    # unlike the username it says nothing and survives a rename. Migration 0008 gave existing users theirs.
    subject: Mapped[str] = mapped_column(String(36), unique=True, nullable=False, default=lambda: str(uuid.uuid4()))

    sessions: Mapped[list["UserSession"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def is_active(self):
        return self.active

    @property
    def has_password(self):
        return self.password_hash is not None

    @property
    def label(self):
        return self.display_name or self.username

    @classmethod
    def by_username(cls, username):
        if "\x00" in (username or ""):  # no username has one (users.username_problem), and PostgreSQL errs
            return None
        return db.session.scalar(_BY_USERNAME, {"username": username})

    @classmethod
    def active_admin_count(cls):
        return db.session.scalar(select(func.count()).select_from(cls).where(cls.is_admin, cls.active))

    def __repr__(self):
        return f"<User {self.username!r}>"


# Built once: every password login runs it (building a statement costs more than running it on SQLite).
_BY_USERNAME = select(User).where(User.username == bindparam("username"))


class UserSession(db.Model):
    """A logged-in browser. The cookie holds a random token; only its hash is stored, so a leaked
    database cannot be replayed as cookies, and deleting the row ends the session everywhere."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the cookie token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    auth_method: Mapped[str] = mapped_column(String(120), nullable=False, default="password")
    client_ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(255))

    user: Mapped[User] = relationship(back_populates="sessions")


class AuditEvent(db.Model):
    """One security-relevant event. Actor and target are stored as text so history outlives deletions."""

    __tablename__ = "audit_events"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)
    event_type: Mapped[str] = mapped_column(String(60), nullable=False, index=True)
    outcome: Mapped[str] = mapped_column(String(10), nullable=False)
    actor: Mapped[str | None] = mapped_column(String(150), index=True)
    client_ip: Mapped[str | None] = mapped_column(String(45))
    target: Mapped[str | None] = mapped_column(String(255), index=True)
    provider: Mapped[str | None] = mapped_column(String(100), index=True)
    reason_code: Mapped[str | None] = mapped_column(String(60))
    detail: Mapped[str | None] = mapped_column(Text)

    def as_dict(self):
        return {
            "id": self.id,
            "time": self.created_at.isoformat(),
            "event_type": self.event_type,
            "outcome": self.outcome,
            "actor": self.actor,
            "client_ip": self.client_ip,
            "target": self.target,
            "provider": self.provider,
            "reason_code": self.reason_code,
            "detail": self.detail,
        }


class SetupToken(db.Model):
    """The one-time first-run link. Only the token's hash is kept; it dies once an admin exists."""

    __tablename__ = "setup_tokens"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class IdentityProvider(db.Model):
    """A registered identity provider (one DHIS2 server, one OIDC issuer...). ``type`` names the plugin;
    ``settings`` holds the plugin's plain settings as JSON, ``secrets`` its encrypted ones."""

    __tablename__ = "provider_instances"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True, nullable=False)
    type: Mapped[str] = mapped_column(String(60), nullable=False)
    label: Mapped[str] = mapped_column(String(120), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    enabled: Mapped[bool] = mapped_column(default=True, nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    allow_all_users: Mapped[bool] = mapped_column(default=False, nullable=False)
    # Every group the provider states is also a geologin group named "<slug>:<its name>" (docs/groups.md).
    groups_prefixed: Mapped[bool] = mapped_column(default=False, nullable=False, server_default=false())
    # Accounts on first login: off, or on for members of the provider's account groups (ProviderGroup
    # "create"); a username already taken is refused ("refuse") or linked ("link") when that account has no
    # binding to this provider yet and is no administrator.
    create_accounts: Mapped[bool] = mapped_column(default=False, nullable=False, server_default=false())
    account_clash: Mapped[str] = mapped_column(String(10), nullable=False, default="refuse",
                                               server_default="refuse")
    # Keep the tokens the provider issues at each login (KeptToken), for applications to call it as the person.
    keep_tokens: Mapped[bool] = mapped_column(default=False, nullable=False, server_default=false())
    # The DHIS2 API paths the read-only proxy forwards (JSON array of patterns; None: the defaults).
    proxy_paths_json: Mapped[str | None] = mapped_column(Text)
    settings_json: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    secrets_json: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)

    permissions: Mapped[list["UserProviderPermission"]] = relationship(
        back_populates="provider", cascade="all, delete-orphan", passive_deletes=True)
    identities: Mapped[list["ExternalIdentity"]] = relationship(
        back_populates="provider", cascade="all, delete-orphan", passive_deletes=True)

    @classmethod
    def by_slug(cls, slug):
        return db.session.scalar(select(cls).where(cls.slug == slug))

    def __repr__(self):
        return f"<IdentityProvider {self.slug!r} ({self.type})>"


class UserProviderPermission(db.Model):
    """This user may log in through this provider (unless the provider admits every active user)."""

    __tablename__ = "user_provider_permissions"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider_instances.id", ondelete="CASCADE"),
                                             primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    user: Mapped[User] = relationship()
    provider: Mapped[IdentityProvider] = relationship(back_populates="permissions")


class ExternalIdentity(db.Model):
    """The provider's stable id for a local user, bound at the first successful login so a different
    account that later takes the same username cannot take over."""

    __tablename__ = "external_identities"
    __table_args__ = (UniqueConstraint("provider_id", "user_id"), UniqueConstraint("provider_id", "subject"),
                      NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider_instances.id", ondelete="CASCADE"),
                                             nullable=False)
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    subject_scheme: Mapped[str] = mapped_column(String(40), nullable=False, default="sub")
    external_username: Mapped[str | None] = mapped_column(String(255))
    first_login_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_login_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # What the provider said about the person at the last login through it (geologin/idp/attributes.py):
    # JSON lists of {id, name} and {attribute name: [{id, name, path}]}; seen_at is None until a login said.
    groups_json: Mapped[str | None] = mapped_column(Text)
    attributes_json: Mapped[str | None] = mapped_column(Text)
    attributes_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()
    provider: Mapped[IdentityProvider] = relationship(back_populates="identities")


class KeptToken(db.Model):
    """The tokens a provider issued at the person's last login through it, kept when the provider keeps
    tokens (docs/dhis2-tokens.md): encrypted with ENCRYPTION_KEY, one row per user and provider, gone at
    logout-everywhere, deactivation, deletion, unlink and the provider's removal."""

    __tablename__ = "kept_tokens"
    __table_args__ = (UniqueConstraint("user_id", "provider_id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider_instances.id", ondelete="CASCADE"),
                                             nullable=False, index=True)
    access_token: Mapped[str] = mapped_column(Text, nullable=False)  # Fernet token
    refresh_token: Mapped[str | None] = mapped_column(Text)  # Fernet token
    scope: Mapped[str | None] = mapped_column(Text)
    obtained_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: the provider did not say
    # One refresh at a time across threads, workers and nodes (geologin/idp/tokens.py): ``version`` changes
    # with every new set of tokens, and a refresh may start only by setting ``refreshing_until`` (a lease)
    # in a conditional UPDATE on the version it read.
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    refreshing_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refresh_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refresh_failure: Mapped[str | None] = mapped_column(String(300))  # why, never a token

    provider: Mapped[IdentityProvider] = relationship()

    @classmethod
    def forget(cls, user_id, provider_id=None):
        """Delete the kept tokens of a user (at one provider, or all); returns how many (not committed)."""
        statement = delete(cls).where(cls.user_id == user_id)
        if provider_id is not None:
            statement = statement.where(cls.provider_id == provider_id)
        return db.session.execute(statement).rowcount


class Group(db.Model):
    """A geologin group: what applications see in the ``groups`` claim and the Remote-Groups header. Members
    are added locally (GroupMember) or come from an identity provider's groups (GroupMapping)."""

    __tablename__ = "groups"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    members: Mapped[list["GroupMember"]] = relationship(
        back_populates="group", cascade="all, delete-orphan", passive_deletes=True)
    mappings: Mapped[list["GroupMapping"]] = relationship(
        back_populates="group", cascade="all, delete-orphan", passive_deletes=True)

    @classmethod
    def by_name(cls, name):
        return db.session.scalar(select(cls).where(cls.name == name))

    def __repr__(self):
        return f"<Group {self.name!r}>"


class GroupMember(db.Model):
    """A user an administrator put in a group by hand."""

    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    group: Mapped[Group] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class GroupMapping(db.Model):
    """Members of the provider's group ``external_id`` (as its last login through the provider said) are in
    the geologin group. ``external_name`` is the name the group had when mapped, for the screens."""

    __tablename__ = "group_mappings"
    __table_args__ = (UniqueConstraint("group_id", "provider_id", "external_id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), nullable=False, index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider_instances.id", ondelete="CASCADE"),
                                             nullable=False, index=True)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    external_name: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    group: Mapped[Group] = relationship(back_populates="mappings")
    provider: Mapped[IdentityProvider] = relationship()


class ProviderGroup(db.Model):
    """A geologin group a provider admits for logins (``purpose`` "access") or creates accounts for on first
    login ("create")."""

    __tablename__ = "provider_groups"

    provider_id: Mapped[int] = mapped_column(ForeignKey("provider_instances.id", ondelete="CASCADE"),
                                             primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True,
                                          index=True)
    purpose: Mapped[str] = mapped_column(String(10), primary_key=True)

    group: Mapped[Group] = relationship()


class LoginTransaction(db.Model):
    """One external login in flight: kept server-side (so any node can finish it), keyed by a hash of
    the OAuth ``state``, bound to the browser that started it, used once."""

    __tablename__ = "login_transactions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of state
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider_instances.id", ondelete="CASCADE"),
                                             nullable=False)
    browser_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    nonce: Mapped[str] = mapped_column(String(128), nullable=False)
    code_verifier: Mapped[str] = mapped_column(String(128), nullable=False)
    redirect_uri: Mapped[str] = mapped_column(String(2000), nullable=False)
    next_url: Mapped[str | None] = mapped_column(String(2000))
    # None: a login; "test": an administrator's dry run (nobody is logged in or bound).
    purpose: Mapped[str | None] = mapped_column(String(10))
    data_json: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False, index=True)


class SigningKey(db.Model):
    """A key the OpenID provider signs tokens with (geologin/apps/keys.py). It is published from creation,
    signs from ``signs_from`` until a newer key of its algorithm signs, then stays published for as long as
    the tokens it signed live; the private JWK is encrypted with ENCRYPTION_KEY, the public one is not."""

    __tablename__ = "signing_keys"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    alg: Mapped[str] = mapped_column(String(10), nullable=False)
    private_jwk: Mapped[str] = mapped_column(Text, nullable=False)  # Fernet token of the private JWK's JSON
    public_jwk: Mapped[str] = mapped_column(Text, nullable=False)  # JSON
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    signs_from: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)


class Application(db.Model):
    """A relying party registered by an administrator (geologin/apps). ``client_id`` is random and never
    changes; only a hash of a confidential client's secret is kept. Lists of URIs are JSON arrays."""

    __tablename__ = "applications"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True, nullable=False)
    # "oidc": an OpenID Connect client; "forward_auth": a site behind a proxy that asks geologin (hosts).
    kind: Mapped[str] = mapped_column(String(20), nullable=False, default="oidc", server_default="oidc")
    client_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    secret_hash: Mapped[str | None] = mapped_column(String(64))  # sha256 hex; None: a public client
    redirect_uris_json: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    post_logout_uris_json: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(2000))
    first_party: Mapped[bool] = mapped_column(default=False, nullable=False)
    allow_all_users: Mapped[bool] = mapped_column(default=True, nullable=False)
    # True: only sessions opened through one of the application's listed providers are admitted.
    providers_only: Mapped[bool] = mapped_column(default=False, nullable=False)
    # Refresh tokens for every sign-in, not only when the application asks for offline_access.
    refresh_tokens: Mapped[bool] = mapped_column(default=False, nullable=False)
    id_token_alg: Mapped[str] = mapped_column(String(10), nullable=False, default="RS256")
    # Provider attributes given to the application as claims, e.g. ["roles", "org_units"]: each is the
    # claim "<plugin type>_<name>" (dhis2_roles) from the person's bindings. JSON array.
    attribute_claims_json: Mapped[str] = mapped_column(Text, nullable=False, default="[]", server_default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)
    secret_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    allowed_users: Mapped[list["ApplicationUser"]] = relationship(
        back_populates="application", cascade="all, delete-orphan", passive_deletes=True)
    allowed_providers: Mapped[list["ApplicationProvider"]] = relationship(
        back_populates="application", cascade="all, delete-orphan", passive_deletes=True)
    hosts: Mapped[list["ApplicationHost"]] = relationship(
        back_populates="application", cascade="all, delete-orphan", passive_deletes=True,
        order_by="ApplicationHost.id")

    @property
    def is_public(self):
        return self.secret_hash is None

    @property
    def is_forward_auth(self):
        return self.kind == "forward_auth"

    def __repr__(self):
        return f"<Application {self.name!r}>"


class ApplicationHost(db.Model):
    """A host name (with its port, if not the scheme's) served by a protected site: the proxy's request
    names it, and only these hosts are ever redirected back to after a login."""

    __tablename__ = "application_hosts"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"), nullable=False,
                                                index=True)
    host: Mapped[str] = mapped_column(String(260), unique=True, nullable=False)

    application: Mapped["Application"] = relationship(back_populates="hosts")


class ForwardAuthVisit(db.Model):
    """This session has used this protected site: its first access is audited, later ones are not."""

    __tablename__ = "forward_auth_visits"

    session_id: Mapped[str] = mapped_column(ForeignKey("user_sessions.id", ondelete="CASCADE"), primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"),
                                                primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class ApplicationUser(db.Model):
    """This user may sign in to this application (unless it admits every active user)."""

    __tablename__ = "application_users"

    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"),
                                                primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    application: Mapped[Application] = relationship(back_populates="allowed_users")
    user: Mapped[User] = relationship()


class ApplicationGroup(db.Model):
    """Members of this geologin group may sign in to this application (unless it admits every active user)."""

    __tablename__ = "application_groups"

    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"),
                                                primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True,
                                          index=True)

    group: Mapped["Group"] = relationship()


class ApplicationProvider(db.Model):
    """Sessions opened through this identity provider are admitted (when the application lists providers)."""

    __tablename__ = "application_providers"

    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"),
                                                primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider_instances.id", ondelete="CASCADE"),
                                             primary_key=True, index=True)

    application: Mapped[Application] = relationship(back_populates="allowed_providers")
    provider: Mapped[IdentityProvider] = relationship()


class ApplicationTokenProvider(db.Model):
    """This application may receive the person's kept tokens of this provider (token exchange, the proxy)."""

    __tablename__ = "application_token_providers"

    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"),
                                                primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider_instances.id", ondelete="CASCADE"),
                                             primary_key=True, index=True)

    provider: Mapped[IdentityProvider] = relationship()


class Consent(db.Model):
    """A user agreed that this application receives these scopes; asked again only for more."""

    __tablename__ = "consents"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"),
                                                primary_key=True, index=True)
    scope: Mapped[str] = mapped_column(Text, nullable=False)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class AuthorizationCode(db.Model):
    """A code issued to an application, kept (hashed) after use so that a replay can be told from a typo and
    revoke what the code issued. ``session_id`` binds it to the geologin session that authorized it."""

    __tablename__ = "authorization_codes"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"), nullable=False,
                                                index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    session_id: Mapped[str | None] = mapped_column(ForeignKey("user_sessions.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str] = mapped_column(String(2000), nullable=False)
    scope: Mapped[str] = mapped_column(Text, nullable=False)
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    auth_method: Mapped[str] = mapped_column(String(120), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    application: Mapped[Application] = relationship()
    user: Mapped[User] = relationship()


class OAuthToken(db.Model):
    """An access token and, optionally, its refresh token (both stored as hashes). Tokens bound to a
    geologin session (``session_id``) die with it; ``offline_access`` ones are not bound. A refresh makes a
    new row of the same ``chain``; reusing a rotated refresh token revokes the whole chain."""

    __tablename__ = "oauth_tokens"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"), nullable=False,
                                                index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    session_id: Mapped[str | None] = mapped_column(ForeignKey("user_sessions.id", ondelete="CASCADE"), index=True)
    # The geologin session's public id (the ID token's sid), kept after the session row is gone.
    sid: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    code_id: Mapped[int | None] = mapped_column(ForeignKey("authorization_codes.id", ondelete="SET NULL"),
                                                index=True)
    chain: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    scope: Mapped[str] = mapped_column(Text, nullable=False)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    auth_method: Mapped[str] = mapped_column(String(120), nullable=False)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    access_expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # its refresh token was used (rotated)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    application: Mapped[Application] = relationship()
    user: Mapped[User] = relationship()


class CacheVersion(db.Model):
    """A token that changes whenever the data a process caches changes: database triggers (migration 0004)
    set a new random token on every write to the cached tables, whoever writes. Only 'providers' exists."""

    __tablename__ = "cache_versions"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    token: Mapped[str] = mapped_column(String(64), nullable=False)


def alembic_render_item(type_, obj, autogen_context):
    """Render UTCDateTime as a plain DateTime in generated migrations, so they never import app code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False
