"""The relying parties of the end-to-end tests work, without geologin: Apache with mod_auth_openidc and
openid-client (rp.mjs) sign a person in at a real OpenID provider we did not write either (the npm
oidc-provider, tests/realop), show the claims and log out; and each says clearly when there is no provider.
So a failure in test_apache.py or test_openid_client.py is geologin's, not the harness's."""
import pytest
import requests

from tests.e2e.relying_parties import (Apache, OpenIDClient, RPError, claims_page, free_port, query, require_apache,
                                       require_openid_client)
from tests.realop import ACCOUNTS, ALICE_PASSWORD, CLIENT_ID, CLIENT_SECRET, OPUser, RealOP, op_config, require_realop

pytestmark = [pytest.mark.e2e, pytest.mark.real_op]

ALICE_SUB = ACCOUNTS[0]["sub"]
APP_URL = f"http://127.0.0.1:{free_port()}"  # nobody listens: the browser stops at the redirect to it
REDIRECT_URI, LOGGED_OUT = APP_URL + "/callback", APP_URL + "/logged-out"


def test_openid_client_signs_in_at_a_real_op_and_builds_its_logout():
    require_openid_client()
    require_realop()
    with RealOP(op_config([REDIRECT_URI], [LOGGED_OUT])) as op:
        rp = OpenIDClient(op.issuer, CLIENT_ID, CLIENT_SECRET, redirect_uri=REDIRECT_URI,
                          post_logout_redirect_uri=LOGGED_OUT)
        try:
            assert rp.discover()["issuer"] == op.issuer
            authorization_url = rp.authorization_url()
            request = query(authorization_url)
            assert request["code_challenge_method"] == "S256" and request["state"] and request["nonce"]
            person = OPUser("alice", ALICE_PASSWORD)
            result = rp.callback(person.authorize(authorization_url))
            assert result["id_token_claims"]["sub"] == ALICE_SUB
            assert result["userinfo"]["preferred_username"] == "alice"
            assert rp.userinfo()["userinfo"]["email"] == "alice@example.org"
            back = person.logout(rp.end_session_url())
            assert back.startswith(LOGGED_OUT) and query(back)["state"] == rp.session()["logout_state"]
        finally:
            rp.close()


def test_apache_signs_in_at_a_real_op_shows_the_claims_and_logs_out():
    require_apache()
    require_realop()
    port = free_port()
    url, redirect_uri, logged_out = Apache.urls(port)
    with RealOP(op_config([redirect_uri], [logged_out])) as op:
        apache = Apache(op.issuer, CLIENT_ID, CLIENT_SECRET, port)
        try:
            person = OPUser("alice", ALICE_PASSWORD)  # one cookie jar for Apache and the OP, as a browser's
            to_op = person.browser.get(url + "/protected/", allow_redirects=False, timeout=10)
            assert to_op.status_code == 302 and to_op.headers["Location"].startswith(op.issuer), apache.log()
            back = person.authorize(to_op.headers["Location"])
            page = person.browser.get(back, timeout=10)
            assert page.url == url + "/protected/", apache.log()
            seen = claims_page(page.text)
            assert seen["REMOTE_USER"] == seen["sub"] == ALICE_SUB
            assert seen["preferred_username"] == "alice" and seen["email"] == "alice@example.org"
            to_logout = person.browser.get(apache.logout_url(), allow_redirects=False, timeout=10)
            assert to_logout.status_code == 302, apache.log()
            assert person.logout(to_logout.headers["Location"]) == logged_out
            again = person.browser.get(url + "/protected/", allow_redirects=False, timeout=10)
            assert again.status_code == 302  # Apache's session ended: back to the OP
        finally:
            apache.stop()


def test_openid_client_says_clearly_when_discovery_fails():
    require_openid_client()
    nowhere = f"http://127.0.0.1:{free_port()}"
    rp = OpenIDClient(nowhere, "client", "secret", redirect_uri=REDIRECT_URI)
    try:
        with pytest.raises(RPError) as failed:
            rp.discover()
    finally:
        rp.close()
    assert failed.value.error["step"] == "discovery"
    assert f"discovery of {nowhere} failed" in failed.value.error["message"]


def test_apache_without_a_provider_protects_its_location_and_logs_why():
    require_apache()
    port = free_port()
    apache = Apache(f"http://127.0.0.1:{free_port()}", "client", "secret", port)
    try:
        assert requests.get(apache.logged_out_url, timeout=5).status_code == 200  # Apache serves
        protected = requests.get(apache.url + "/protected/", allow_redirects=False, timeout=10)
        assert protected.status_code == 500 and "REMOTE_USER" not in protected.text
        assert "could not retrieve metadata" in apache.log()
    finally:
        apache.stop()
