"""The fake DHIS2's --bcrypt-secrets (benchmarks): secrets kept as 2.42+ keeps them, checked with bcrypt."""
import argparse

from tests.fakes.dhis2.app import build_config, create_app, parse_client_arg

SECRET = "0123456789abcdef0123456789abcdef0123"


def fake(bcrypt_secrets):
    args = argparse.Namespace(config=None, version="2.42.5", base_path=None, public_url=None, user=[],
                              client=[parse_client_arg(f"bench:{SECRET}:http://127.0.0.1:9/cb")],
                              bcrypt_secrets=bcrypt_secrets)
    return create_app(build_config(args))


def token_status(app, secret):
    return app.test_client().post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": "no-such-code", "redirect_uri": "http://127.0.0.1:9/cb",
        "client_id": "bench", "client_secret": secret}).status_code


def test_bcrypt_secrets_are_stored_hashed_and_still_accept_the_plain_secret():
    app = fake(bcrypt_secrets=True)
    stored = app.extensions["fake_dhis2"].clients["bench"]["secret"]
    assert stored.startswith("$2a$10$") and SECRET not in stored
    assert token_status(app, SECRET) == 400          # client accepted; the unknown code is refused
    assert token_status(app, SECRET[:-1] + "x") == 401


def test_without_the_option_secrets_stay_plain():
    app = fake(bcrypt_secrets=False)
    assert app.extensions["fake_dhis2"].clients["bench"]["secret"] == SECRET
    assert token_status(app, SECRET) == 400
