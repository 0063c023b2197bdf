"""A relying party for flow tests: builds authorization requests with Authlib's client helpers (PKCE,
state, nonce), walks geologin's pages with Flask's test client, redeems codes and checks ID tokens with
joserfc against the published key set, as an application would."""
import base64
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from geologin.apps import clients
from tests.conftest import csrf_from

REDIRECT_URI = "https://app.example.org/callback"
POST_LOGOUT_URI = "https://app.example.org/bye"
ISSUER = "http://localhost"  # conftest's PUBLIC_URL


def register(app, name="Superset", **kwargs):
    """Register an application; returns (client_id, client_secret)."""
    kwargs.setdefault("post_logout_uris", [POST_LOGOUT_URI])
    with app.app_context():
        application, secret = clients.create(name, kwargs.pop("redirect_uris", [REDIRECT_URI]), actor="test",
                                             **kwargs)
        return application.client_id, secret


def query_of(location):
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


class RelyingParty:
    def __init__(self, client, client_id, client_secret=None, redirect_uri=REDIRECT_URI):
        self.client = client
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.state = self.nonce = self.verifier = None

    def authorization_url(self, scope="openid profile email", pkce=True, **extra):
        self.state, self.nonce = generate_token(20), generate_token(20)
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
                  "scope": scope, "state": self.state, "nonce": self.nonce}
        if pkce:
            self.verifier = generate_token(48)
            params |= {"code_challenge": create_s256_code_challenge(self.verifier), "code_challenge_method": "S256"}
        params.update({key: value for key, value in extra.items() if value is not None})
        return "/oauth/authorize?" + urlencode(params)

    def authorize(self, consent=True, **extra):
        """Start an authorization request as a logged-in browser; agree on the consent page if one is shown.
        Returns the final response (a redirect to the application, or a page)."""
        response = self.client.get(self.authorization_url(**extra))
        if response.status_code == 200 and "consent_decision" in response.get_data(as_text=True):
            if not consent:
                return response
            response = self.decide(response, "allow")
        return response

    def decide(self, page, decision):
        html = page.get_data(as_text=True)
        match = re.search(r'<form method="post" action="([^"]+)" id="consent-form"', html)
        assert match, "no consent form on the page"
        action = match.group(1).replace("&amp;", "&")
        return self.client.post(action, data={"csrf_token": csrf_from(html), "consent_decision": decision})

    def code_from(self, response):
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        params = query_of(response.headers["Location"])
        assert response.headers["Location"].startswith(self.redirect_uri)
        assert params.get("state") == self.state
        assert params.get("iss") == ISSUER
        return params["code"]

    def token_request(self, data, auth="basic"):
        headers = {}
        if self.client_secret and auth == "basic":
            raw = f"{self.client_id}:{self.client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        elif self.client_secret and auth == "post":
            data = data | {"client_id": self.client_id, "client_secret": self.client_secret}
        else:
            data = data | {"client_id": self.client_id}
        return self.client.post("/oauth/token", data=data, headers=headers)

    def redeem(self, code, **extra):
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
        if self.verifier:
            data["code_verifier"] = self.verifier
        return self.token_request(data | extra)

    def refresh(self, refresh_token, **extra):
        return self.token_request({"grant_type": "refresh_token", "refresh_token": refresh_token} | extra)

    def key_set(self):
        return KeySet.import_key_set(self.client.get("/oauth/jwks").get_json())

    def id_token_claims(self, id_token, nonce=True):
        """Verify the ID token's signature against the published keys and its claims as a relying party must."""
        token = jwt.decode(id_token, self.key_set(), algorithms=["RS256", "ES256"])
        expected = {"iss": {"essential": True, "value": ISSUER}, "aud": {"essential": True, "value": self.client_id},
                    "sub": {"essential": True}, "exp": {"essential": True}, "iat": {"essential": True}}
        if nonce:
            expected["nonce"] = {"essential": True, "value": self.nonce}
        JWTClaimsRegistry(**expected).validate(token.claims)
        return token.claims, token.header

    def sign_in(self, **extra):
        """authorize -> code -> tokens; returns the token response's JSON."""
        response = self.redeem(self.code_from(self.authorize(**extra)))
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def userinfo(self, access_token, method="GET"):
        if method == "GET":
            return self.client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"})
        return self.client.post("/oauth/userinfo", data={"access_token": access_token})


def random_text(n=24):
    return secrets.token_urlsafe(n)
