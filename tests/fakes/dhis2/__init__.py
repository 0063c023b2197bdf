"""Fake DHIS2 server: an OAuth 2 authorization server plus a sliver of the DHIS2 Web API.

NOT FOR PRODUCTION.  It exists for geologin's tests (run as a real HTTP process on loopback) and
for demos.  State lives in memory (guarded by one lock), there is no CSRF protection, and
test-only endpoints under ``/__fake__/`` let a test add users/clients and switch failure modes.

It behaves as ``shared/reference/dhis2-oauth.md`` (the project's reference page on DHIS2 OAuth)
says, for both DHIS2 OAuth generations, chosen by ``--version``:

* ``< 2.42`` (2.30 - 2.40, and 2.41.1+): legacy Spring Security OAuth ("uaa"):
  ``/uaa/oauth/authorize``, ``/uaa/oauth/token``, profile from ``/api/me``;
* ``2.41.0`` (and ``2.41``, which means 2.41.0): no OAuth at all, every OAuth URL answers 404;
* ``>= 2.42``: Spring Authorization Server: ``/.well-known/openid-configuration``,
  ``/oauth2/authorize``, ``/oauth2/token``, ``/oauth2/jwks``, ``/userinfo``; ``/uaa/...`` is 404.

Usage (from the repository's root)::

    python -m tests.fakes.dhis2 --port 0 --version 2.40 [--base-path /dhis]
        [--public-url URL] [--config FILE.json] [--quiet] [--bcrypt-secrets]
        [--user USERNAME:PASSWORD[:UID[:EMAIL]]]...
        [--client CLIENT_ID:SECRET:REDIRECT_URI[,REDIRECT_URI2...]]...

On start it prints ``fake-dhis2 listening on http://HOST:PORT/BASE`` on stdout.  The socket is bound
with werkzeug's ``make_server`` (what ``run_simple`` uses underneath) so that ``--port 0`` works and
the real port can be printed.

Default data (when no user / no client is given): users ``admin:district`` (uid M5zQapPyTZI; group
Data managers), ``alice:Alice-pass-123`` (uid xE7jOejl9FI, alice@example.org; groups Malaria programme
and Data managers, org units Bo and Bombali), ``bob:Bob-pass-123`` (uid pAhIq1x2f9a, no email; group
HIV programme, org unit Bo); client ``geologin`` with the 36-character secret
``0123456789abcdef0123456789abcdef0123`` and redirect URI
``http://127.0.0.1:5000/auth/dhis2/callback``.

Client secrets on 2.42+: real DHIS2 stores them bcrypt-hashed.  Here a client's ``secret`` is
given in plain text and compared in plain text, unless it is itself a bcrypt hash (``$2a$``,
``$2b$``, ``$2y$``): then it is checked with the ``bcrypt`` package if that is importable (the
request fails with ``invalid_client`` if it is not).  A client with ``"secret_unhashed": true``
simulates an admin who stored the secret unhashed: on 2.42+ its authentication always fails,
as DHIS2's BCrypt encoder refuses non-bcrypt values.  ``--bcrypt-secrets`` (config
``"bcrypt_secrets": true``) stores every plain secret given at start bcrypt-hashed (strength 10, as
DHIS2's encoder), so each token request costs what a real 2.42 spends; the benchmarks use it.

Test-control endpoints (fake-only; served at ``/__fake__/`` and also under the base path):

* ``POST /__fake__/users``      JSON user (or list): add/update/rename/re-create/delete; a user's
  ``userGroups``, ``userRoles`` and ``organisationUnits`` (lists of ``{id, name[, path]}``) replace the
  previous ones, so a test changes them between two logins;
* ``POST /__fake__/clients``    JSON client (or list): add/update/delete;
* ``POST /__fake__/behaviour``  JSON failure modes, see ``FAULT_TARGETS`` / ``FAULT_MODES`` /
  ``ID_TOKEN_FAULTS``; sticky until changed (``null`` clears) unless ``"once": true``;
  also ``stall_seconds`` and ``huge_bytes``;
* ``GET  /__fake__/log``        requests received (secret values redacted);
* ``GET  /__fake__/state``      users (no passwords), clients, behaviour, version;
* ``POST /__fake__/reset``      back to the start-up data (keeps the signing key);
* ``POST /__fake__/login``      JSON {username, password}: sets the DHIS2 session cookie;
* ``POST /__fake__/rotate-keys`` new signing key (what a DHIS2 restart without keystore does);
* ``POST /__fake__/expire-tokens`` expires every access token issued so far;
* ``POST /__fake__/revoke``     JSON {refresh_token} and/or {access_token}, or {username}: revokes them.

Failure modes (``POST /__fake__/behaviour``): targets ``token``, ``me`` (/api/me),
``userinfo``, ``discovery``, ``jwks`` take ``"500"`` (HTML 500), ``"html"`` (200 HTML page),
``"array"`` (200 ``[]``), ``"missing_access_token"`` (the key fields removed: access_token;
id/username/userCredentials; sub; issuer/endpoints; keys), ``"wrong_token_type"`` (token_type
"mac"; elsewhere the key fields become the number 12345), ``"stall"`` (sleep ``stall_seconds``,
default 30, then answer normally), ``"huge"`` (a streamed body of ``huge_bytes``, default 50 MB);
``access_token_seconds`` (the lifetime of access tokens issued from now on; ``null``: the version's
default) and ``rotate_refresh_tokens`` (``true``: a refresh grant replaces the refresh token, as 2.42+
does; ``false``: it keeps it, as /uaa's DefaultTokenServices does; ``null``: the version's default); the
state and behaviour answers count ``refresh_grants`` (refresh-grant requests answered);
``"refuse-nothing"`` and ``null`` mean normal behaviour.  ``id_token`` takes ``bad_sig``,
``wrong_iss``, ``wrong_aud``, ``no_sub``, ``expired``, ``wrong_nonce``, ``alg_none``,
``hs256_pubkey`` (HMAC keyed with the public key PEM), ``unknown_kid`` (signed by a key not in
the JWKS), ``no_kid`` (validly signed, no ``kid`` header).  "500"/"html"/"array"/"huge" answer
before the request is processed, so e.g. an authorization code is not consumed.

Choices where the reference page is silent (from the Spring sources DHIS2 uses):

* legacy error descriptions are the reference's short texts ("Invalid authorization code",
  "Invalid access token"); real Spring appends ": <the value>";
* legacy: an unknown client shows the same redirect_uri_mismatch error page (Spring itself
  may say invalid_client there); both never redirect;
* 2.42+: OAuth parameters are validated before the login redirect (as Spring Authorization
  Server does); asking scope ``openid`` alone never needs consent (Spring's default rule), any
  other scope shows the consent page until approved; unticking everything (or "Cancel") is
  the deny path and forgets the consent; ``localhost`` redirect URIs are refused (only loopback
  IP literals get the any-port rule); a ``code_verifier`` without a ``code_challenge`` is
  refused; a replayed code revokes the tokens it produced;
* ``/api/me`` honours ``fields`` as DHIS2's field filter does: only the fields named (nested lists such as
  ``userGroups[id,name]`` too), unknown fields left out silently, a list of objects named without
  sub-fields answered as references (``{id}`` only), ``*``/``:all`` and ``!field``; without ``fields``
  it answers its whole shape for the version;
* ``/api/system/ping`` answers the text "pong" without a login (every version, as DHIS2's
  SystemController); ``/api/loginConfig`` (2.41+) needs no login; ``/api/system/info`` does;
* the HTML login page (every version) posts j_username/j_password to
  ``/dhis-web-commons-security/login.action``; ``/api/auth/login`` (JSON) exists on 2.41+.

Modules: ``app`` (``create_app`` and the command line), ``state`` (users, clients, sessions, codes, tokens,
failure switches), ``web`` (responses, DHIS2 sessions, the failure-mode decorators), ``login`` (DHIS2's
login pages), ``api`` (/api/me, /api/system/*, /api/loginConfig), ``legacy`` (the /uaa OAuth endpoints
and approval page), ``oidc`` (2.42+: discovery, jwks, authorize, consent, token, userinfo), ``control``
(the ``/__fake__/`` API tests use).
"""
from .app import create_app, main

__all__ = ["create_app", "main"]
