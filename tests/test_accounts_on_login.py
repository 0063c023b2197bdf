"""Accounts on first login (issue 18): a provider that creates accounts gives one to a member of its "may
create an account" groups on their first login, refuses or links a clashing username as its policy says, and
audits what it did. Runs through a whole DHIS2 (2.30-2.41) login with canned answers."""
import json
from dataclasses import replace

import pytest
from sqlalchemy import select

from geologin.extensions import db
from geologin.idp import permissions
from geologin.models import AuditEvent, ExternalIdentity, IdentityProvider, User, UserProviderPermission
from geologin.providers.testing import JSON, Account, LoginHarness
from tests.contract import RepoContract
from tests.test_contract_dhis2 import BASE, SECRETS, SETTINGS, group_uid, me_for

MALARIA = ("Malaria programme",)


class AccountsHarness(RepoContract, LoginHarness):
    provider_type = "dhis2"
    settings, secrets = SETTINGS, SECRETS
    account = Account(username="bob", subject="xE7jOejl9FI", groups=MALARIA)

    def external_group_id(self, name):
        return group_uid(name)

    def token_endpoint(self):
        return BASE + "uaa/oauth/token"

    def answer_start(self, mock):
        mock.get(BASE + ".well-known/openid-configuration", status_code=404, text="Not Found")

    def answer_login(self, mock, login):
        mock.post(self.token_endpoint(), headers=JSON,
                  json={"access_token": login.access_token, "token_type": "bearer", "expires_in": 43199})
        mock.get(BASE + "api/me", headers=JSON, json={**me_for(login.account), "email": "bob@example.org"})

    def creating(self, app, clash="refuse"):
        """Provider "contract" creating accounts for members of DHIS2's "Malaria programme" group."""
        self.register(app, allow=())
        self.map_group(app, "Malaria", "Malaria programme", purpose="create")
        with app.app_context():
            permissions.set_account_creation(IdentityProvider.by_slug("contract"), create_accounts=True,
                                             account_clash=clash, actor="test")

    @staticmethod
    def events(app, event_type):
        with app.app_context():
            return [(e.target, e.actor, e.detail) for e in db.session.scalars(
                select(AuditEvent).where(AuditEvent.event_type == event_type).order_by(AuditEvent.id))]

    @staticmethod
    def bound(app, username):
        with app.app_context():
            return db.session.scalar(select(ExternalIdentity.subject).join(User, User.id == ExternalIdentity.user_id)
                                     .where(User.username == username))


class TestAccountsOnFirstLogin(AccountsHarness):
    def test_a_member_of_a_create_group_gets_an_account_without_password_nor_admin(self, contract_app,
                                                                                  contract_client):
        self.creating(contract_app)
        self.login(contract_client)
        assert self.logged_in(contract_client)
        with contract_app.app_context():
            user = User.by_username("bob")
            assert (user.display_name, user.email) == ("Alice Example", "bob@example.org")
            assert (user.password_hash, user.password_login_allowed, user.is_admin) == (None, False, False)
            assert db.session.get(UserProviderPermission,
                                  (user.id, IdentityProvider.by_slug("contract").id)) is not None
        assert self.bound(contract_app, "bob") == "xE7jOejl9FI"
        assert self.events(contract_app, "user.create") == [("bob", "bob", "created by login through contract")]
        self.logout(contract_client)
        self.login(contract_client)  # the next login finds the account
        assert self.logged_in(contract_client)
        assert len(self.events(contract_app, "user.create")) == 1

    def test_outside_the_create_groups_the_person_is_an_unknown_user(self, contract_app, contract_client):
        self.creating(contract_app)
        self.login(contract_client, account=replace(self.account, groups=("HIV programme",)))
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "unknown_user")
        assert "account-creating group of contract (Malaria)" in self.last_login_detail(contract_app)
        with contract_app.app_context():
            assert User.by_username("bob") is None

    def test_off_by_default(self, contract_app, contract_client):
        self.register(contract_app, allow=())
        self.map_group(contract_app, "Malaria", "Malaria programme", purpose="create")
        self.login(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "unknown_user")
        with contract_app.app_context():
            assert User.by_username("bob") is None

    def test_a_username_geologin_cannot_use_is_refused_with_its_reason(self, contract_app, contract_client):
        self.creating(contract_app)
        response, _ = self.login(contract_client, account=replace(self.account, username="bob smith"))
        assert self.last_login(contract_app)[:2] == ("failure", "username_invalid")
        assert "cannot use as a username" in contract_client.get(response.headers["Location"]).get_data(as_text=True)
        with contract_app.app_context():
            assert User.by_username("bob smith") is None


class TestUsernameClash(AccountsHarness):
    def test_sec_14_refuse_says_the_username_is_taken_and_changes_nothing(self, contract_app, contract_client):
        self.make_user(contract_app, "bob")
        self.creating(contract_app, clash="refuse")
        response, _ = self.login(contract_client)
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "username_taken")
        page = contract_client.get(response.headers["Location"]).get_data(as_text=True)
        assert "already exists here and is not linked" in page
        assert self.bound(contract_app, "bob") is None

    def test_link_binds_an_unbound_account_logs_in_and_says_so_in_the_audit(self, contract_app, contract_client):
        self.make_user(contract_app, "bob")
        self.creating(contract_app, clash="link")
        self.login(contract_client)
        assert self.logged_in(contract_client)
        assert self.bound(contract_app, "bob") == "xE7jOejl9FI"
        [(target, actor, detail)] = self.events(contract_app, "identity.link")
        assert (target, actor) == ("bob", "bob") and "linked by login through contract" in detail

    def test_sec_14_link_never_takes_an_administrator(self, contract_app, contract_client):
        self.make_user(contract_app, "bob")
        with contract_app.app_context():
            User.by_username("bob").is_admin = True
            db.session.commit()
        self.creating(contract_app, clash="link")
        self.login(contract_client)
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "username_taken")
        assert self.events(contract_app, "identity.link") == [] and self.bound(contract_app, "bob") is None

    def test_link_never_takes_a_deactivated_account(self, contract_app, contract_client):
        self.make_user(contract_app, "bob", active=False)
        self.creating(contract_app, clash="link")
        self.login(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "inactive_user")
        assert self.bound(contract_app, "bob") is None

    def test_sec_14_link_never_rebinds_an_account_bound_to_another_person_there(self, contract_app, contract_client):
        self.make_user(contract_app, "bob")
        self.creating(contract_app, clash="link")
        self.login(contract_client, account=replace(self.account, subject="firstPerson"))
        self.logout(contract_client)
        with contract_app.app_context():  # the administrator withdraws the permission the link gave
            permissions.disallow([User.by_username("bob")], IdentityProvider.by_slug("contract"), actor="test")
        self.login(contract_client)
        assert not self.logged_in(contract_client)
        assert self.last_login(contract_app)[:2] == ("failure", "not_allowed")
        assert self.bound(contract_app, "bob") == "firstPerson"
        assert len(self.events(contract_app, "identity.link")) == 1

    def test_an_account_allowed_otherwise_logs_in_as_before(self, contract_app, contract_client):
        self.make_user(contract_app, "bob")
        self.creating(contract_app, clash="refuse")
        with contract_app.app_context():
            permissions.allow([User.by_username("bob")], IdentityProvider.by_slug("contract"), actor="test")
        self.login(contract_client)
        assert self.logged_in(contract_client)
        assert self.events(contract_app, "identity.link") == []


@pytest.mark.parametrize("clash", ["refuse", "link"])
def test_the_clash_policy_is_checked(app, clash):
    with app.app_context():
        from geologin.idp import service

        provider = service.create_provider("dhis2", slug="moh", label="MoH", settings=dict(SETTINGS),
                                           secrets=dict(SECRETS), actor="test")
        assert permissions.set_account_creation(provider, account_clash=clash, actor="test") == (
            [] if clash == "refuse" else ["account_clash"])
        with pytest.raises(ValueError):
            permissions.set_account_creation(provider, account_clash="merge", actor="test")


def test_providers_edit_sets_access_and_account_settings_and_show_prints_them(app):
    from geologin.groups import service as groups

    cli = app.test_cli_runner()
    with app.app_context():
        groups.create("Malaria", actor="test")
        groups.create("Data managers", actor="test")
    added = cli.invoke(args=["providers", "add", "dhis2", "--slug", "moh", "--label", "MoH", "--base-url",
                             "https://dhis2.example.org/", "--client-secret-stdin", "--disabled"], input="s" * 32 + "\n")
    assert added.exit_code == 0, added.output
    edited = cli.invoke(args=["providers", "edit", "moh", "--access-group", "Malaria", "--access-group",
                              "Data managers", "--create-accounts", "--account-group", "Malaria",
                              "--account-clash", "link"])
    assert edited.exit_code == 0, edited.output
    assert "access groups, account groups, create_accounts, account_clash" in edited.output
    shown = cli.invoke(args=["providers", "show", "moh"]).output
    assert "access groups: Data managers, Malaria" in shown
    assert "accounts on first login: yes (groups: Malaria; clashing username: link)" in shown
    for args, message in [(["--access-group", "Nope"], "--access-group: no group called 'Nope'"),
                          (["--account-group", "X", "--no-account-groups"], "cannot be combined"),
                          (["--account-clash", "merge"], "Invalid value for '--account-clash'")]:
        result = cli.invoke(args=["providers", "edit", "moh", *args])
        assert result.exit_code != 0 and message in result.output, result.output
    cleared = cli.invoke(args=["providers", "edit", "moh", "--no-access-groups", "--no-create-accounts"])
    assert "access groups, create_accounts" in cleared.output
    shown = cli.invoke(args=["providers", "show", "moh", "--json"]).output
    row = json.loads(shown)
    assert (row["access_groups"], row["create_accounts"], row["account_groups"]) == ([], False, ["Malaria"])
    with app.app_context():
        details = [e.detail for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.event_type == "provider.access_groups").order_by(AuditEvent.id))]
    assert details == ["Data managers, Malaria", "none"]


def test_the_provider_edit_screen_sets_access_groups_and_accounts_on_first_login(app, admin_client):
    from geologin.groups import service as groups
    from geologin.idp import service
    from tests.conftest import post_form
    from tests.test_admin_providers import _edit_form

    with app.app_context():
        malaria, managers = groups.create("Malaria", actor="test").id, groups.create("Data managers", actor="test").id
        service.create_provider("dhis2", slug="moh", label="MOH", actor="test", secrets=dict(SECRETS),
                                settings={"base_url": "https://dhis2.example.org", "client_id": "geologin"})
    page = admin_client.get("/admin/providers/moh/edit").get_data(as_text=True)
    assert "Members of these groups may use it" in page and "Create an account on the first login" in page
    response = post_form(admin_client, "/admin/providers/moh/edit", _edit_form(
        label="MOH", access_group_ids=[str(malaria), str(managers)], create_accounts="y",
        create_group_ids=[str(malaria)], account_clash="link"))
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    with app.app_context():
        provider = IdentityProvider.by_slug("moh")
        assert permissions.access_group_ids(provider) == {malaria, managers}
        assert permissions.access_group_ids(provider, permissions.CREATE) == {malaria}
        assert (provider.create_accounts, provider.account_clash) == (True, "link")
    page = admin_client.get("/admin/providers/moh/edit").get_data(as_text=True)
    assert page.count("checked") >= 4  # enabled, two access groups, create accounts, one create group
    users_page = admin_client.get("/admin/providers/moh/users").get_data(as_text=True)
    assert "Data managers, Malaria" in users_page
    refused = post_form(admin_client, "/admin/providers/moh/edit", _edit_form(
        label="MOH", access_group_ids=["999999"], account_clash="merge"))
    assert refused.status_code == 400
    assert "A group ticked here no longer exists" in refused.get_data(as_text=True)
    with app.app_context():
        assert permissions.access_group_ids(IdentityProvider.by_slug("moh")) == {malaria, managers}
