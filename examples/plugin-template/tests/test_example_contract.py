"""geologin's plugin contract, run on this plugin: the whole login, every reason code and the security
checklist items that apply, from the settings and the server's canned answers below."""
from geologin.providers.testing import JSON, ProviderContract

SERVER = "https://id.example.org"


class TestExampleContract(ProviderContract):
    provider_type = "example"
    settings = {"server_url": SERVER, "client_id": "geologin"}
    secrets = {"client_secret": "example-secret-0123456789"}

    def token_endpoint(self):
        return SERVER + "/oauth/token"

    def answer_login(self, mock, login):
        mock.post(self.token_endpoint(), headers=JSON,
                  json={"access_token": login.access_token, "token_type": "bearer"})
        mock.get(SERVER + "/api/user", headers=JSON,
                 json={"id": login.account.subject, "login": login.account.username, "name": login.account.name})
