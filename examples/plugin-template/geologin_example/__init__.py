"""An example identity-provider plugin for geologin: "Log in with Example ID", an OAuth 2 server that
tells who logged in at ``/api/user``. Copy this package, rename it, and change the field mapping."""
from flask_babel import lazy_gettext as _l

from geologin.providers import Identity, OAuth2Provider, ProviderError, Setting
from geologin.providers.http import json_object


class ExampleProvider(OAuth2Provider):
    type = "example"
    display_name = "Example ID"
    settings = (
        Setting("server_url", _l("Server address"), kind="url", required=True,
                help=_l("Where Example ID runs, e.g. https://id.example.org/")),
        Setting("client_id", _l("Client ID"), required=True),
        Setting("client_secret", _l("Client secret"), kind="secret", required=True),
    )

    def server(self, path):
        return self.setting("server_url").rstrip("/") + path

    def endpoints(self):
        return {"authorization_endpoint": self.server("/oauth/authorize"),
                "token_endpoint": self.server("/oauth/token")}

    def scopes(self):
        return ["read:user"]

    def identity_from(self, tokens, claims):
        response = self.http.get(self.server("/api/user"), headers={
            "Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/json"})
        if response.status_code != 200:
            raise ProviderError(f"/api/user answered HTTP {response.status_code}")
        user = json_object(response, "/api/user")
        if not isinstance(user.get("id"), (str, int)) or not isinstance(user.get("login"), str):
            raise ProviderError("/api/user has no id or login")
        return Identity(subject=str(user["id"]), subject_scheme="example-id", username=user["login"],
                        display_name=user.get("name") if isinstance(user.get("name"), str) else None)


provider = ExampleProvider
