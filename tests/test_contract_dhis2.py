"""The DHIS2 plugin passes the plugin kit's contract for both generations, with canned DHIS2 answers (the
fake DHIS2 processes of test_dhis2_login.py cover the same journeys over real HTTP)."""
from geologin.providers.testing import JSON, Account, OIDCContract, ProviderContract
from tests.contract import RepoContract

BASE = "https://dhis2.example.org/"
SETTINGS = {"base_url": BASE, "client_id": "geologin"}
SECRETS = {"client_secret": "0123456789abcdef0123456789abcdef0123"}


def group_uid(name):
    """A stable 11-character DHIS2-style id for a group name."""
    return ("G" + "".join(ch for ch in name if ch.isalnum()) + "0" * 10)[:11]


def me_for(account):
    """What /api/me states about ``account`` (2.38+ shape, the fields geologin asks for)."""
    return {"id": account.subject, "username": account.username, "firstName": "Alice", "surname": "Example",
            "userGroups": [{"id": group_uid(name), "name": name} for name in account.groups],
            "userRoles": [{"id": "Euq3XfEIEbx", "name": "Data entry clerk"}],
            "organisationUnits": [{"id": "ImspTQPwCqd", "name": "Sierra Leone", "path": "/ImspTQPwCqd"}]}


class TestLegacyDhis2Contract(RepoContract, ProviderContract):
    """DHIS2 2.30-2.41: /uaa, no discovery (404), the user from /api/me."""

    provider_type = "dhis2"
    settings, secrets = SETTINGS, SECRETS
    account = Account(subject="xE7jOejl9FI")
    maps_groups = True

    def external_group_id(self, name):
        return group_uid(name)

    def token_endpoint(self):
        return BASE + "uaa/oauth/token"

    def answer_start(self, mock):
        mock.get(BASE + ".well-known/openid-configuration", status_code=404, text="Not Found")

    def answer_login(self, mock, login):
        mock.post(self.token_endpoint(), headers=JSON,
                  json={"access_token": login.access_token, "token_type": "bearer", "expires_in": 43199,
                        "refresh_token": login.refresh_token, "scope": "ALL"})
        mock.get(BASE + "api/me", headers=JSON, json=me_for(login.account))


class TestDhis2OIDCContract(RepoContract, OIDCContract):
    """DHIS2 2.42+: Spring Authorization Server, the username in the id_token."""

    provider_type = "dhis2"
    settings, secrets = SETTINGS, SECRETS
    issuer = BASE.rstrip("/")
    account = Account(subject="alice")
    maps_groups = True

    def external_group_id(self, name):
        return group_uid(name)

    def discovery_url(self):
        return BASE + ".well-known/openid-configuration"

    def answer_login(self, mock, login, id_token=None, jwks=None):
        mock.get(BASE + "api/me", headers=JSON, json={**me_for(login.account), "id": "xE7jOejl9FI"})
        return super().answer_login(mock, login, id_token=id_token, jwks=jwks)

    def claims_for(self, account):
        return {"username": account.username}
