"""The generic OpenID Connect plugin passes the plugin kit's contract: the whole login, every reason code,
checklist items 1-25 and 47-54 with canned server answers (the real OpenID provider: test_oidc_real_op.py)."""
from geologin.providers.testing import OIDCContract
from tests.contract import RepoContract

ISSUER = "https://id.example.org/realms/health"


class TestOIDCContract(RepoContract, OIDCContract):
    provider_type = "oidc"
    issuer = ISSUER
    settings = {"issuer": ISSUER, "client_id": "geologin", "scopes": "openid profile email"}
    secrets = {"client_secret": "contract-secret-0123456789"}
    maps_groups = True

    def discovery_url(self):
        return ISSUER + "/.well-known/openid-configuration"

    def claims_for(self, account):
        return {"preferred_username": account.username, "email": account.email, "name": account.name,
                "groups": list(account.groups) or None}


class TestOIDCContractWithUserinfo(TestOIDCContract):
    """A server that puts only sub in the id_token: the username comes from userinfo (item 24 applies)."""

    userinfo_only_claims = ("preferred_username", "email", "name", "groups")
