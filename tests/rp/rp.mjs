// rp: a REAL relying party for geologin's end-to-end tests. A test tool, never deployed: it drives panva's
// certified `openid-client` (pinned in package.json), so geologin's OpenID provider is tested against a
// client we did not write. Run by tests/e2e (RP in tests/e2e/rp.py), one command per step:
//
//   node tests/rp/rp.mjs COMMAND --session session.json [--url URL]
//
// session.json holds the client's settings, written by the test: {issuer, client_id, client_secret?,
// auth: "client_secret_basic" | "client_secret_post" | "none", redirect_uri, scope,
// post_logout_redirect_uri?}; the commands add what the client must remember between steps (PKCE verifier,
// state, nonce, tokens), as a real RP keeps it in its session. Commands (each prints one JSON object):
//   discover            the provider's metadata
//   start               {authorization_url}: PKCE S256 + state + nonce
//   callback --url URL  the code exchange at the redirect URI URL: {id_token_claims, userinfo, scope,
//                       refresh_token: bool}; openid-client validates the response (state, iss) and the ID
//                       token (signature from the JWKS, iss, aud, exp, nonce), userinfo's sub must match
//   refresh             a refresh-token grant: {id_token_claims?, refresh_token_rotated, userinfo}
//   userinfo            userinfo with the current access token
//   logout-url          {end_session_url}: RP-initiated logout with id_token_hint, post_logout_redirect_uri,
//                       state
// On failure: {"error": {step, name, code, message, status?, body?}} on stdout and exit status 1.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as client from 'openid-client';

const { values: args, positionals } = parseArgs({ allowPositionals: true, options: {
  session: { type: 'string' }, url: { type: 'string' },
} });
const command = positionals[0];
const session = JSON.parse(readFileSync(args.session, 'utf8'));
const save = () => writeFileSync(args.session, JSON.stringify(session, null, 1));
let step = 'discovery';

function authentication() {
  switch (session.auth || 'client_secret_basic') {
    case 'client_secret_basic': return client.ClientSecretBasic(session.client_secret);
    case 'client_secret_post': return client.ClientSecretPost(session.client_secret);
    case 'none': return client.None();
    default: throw new Error(`unknown auth ${session.auth}`);
  }
}

async function discover() {
  // Plain http is allowed only because geologin listens on loopback in these tests.
  return client.discovery(new URL(session.issuer), session.client_id, undefined, authentication(),
    { execute: [client.allowInsecureRequests] });
}

async function userinfo(config, claims) {
  step = 'userinfo';
  return client.fetchUserInfo(config, session.access_token, claims.sub);
}

const commands = {
  async discover(config) { return config.serverMetadata(); },

  async start(config) {
    step = 'start';
    session.code_verifier = client.randomPKCECodeVerifier();
    session.state = client.randomState();
    session.nonce = client.randomNonce();
    save();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: session.redirect_uri, scope: session.scope, state: session.state, nonce: session.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(session.code_verifier),
      code_challenge_method: 'S256', ...(session.extra_authorization_params || {}),
    });
    return { authorization_url: url.href };
  },

  async callback(config) {
    step = 'callback'; // the redirect back (state, iss, error), then the code exchange
    const tokens = await client.authorizationCodeGrant(config, new URL(args.url), {
      pkceCodeVerifier: session.code_verifier, expectedState: session.state, expectedNonce: session.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    Object.assign(session, { access_token: tokens.access_token, refresh_token: tokens.refresh_token,
      id_token: tokens.id_token, sub: claims.sub });
    save();
    return { id_token_claims: claims, scope: tokens.scope ?? null, token_type: tokens.token_type,
      expires_in: tokens.expiresIn() ?? null, refresh_token: Boolean(tokens.refresh_token),
      userinfo: await userinfo(config, claims) };
  },

  async refresh(config) {
    step = 'refresh';
    const before = session.refresh_token;
    const tokens = await client.refreshTokenGrant(config, before);
    Object.assign(session, { access_token: tokens.access_token, refresh_token: tokens.refresh_token ?? before });
    if (tokens.id_token) session.id_token = tokens.id_token;
    save();
    const claims = tokens.claims(); // a new ID token is optional on refresh; userinfo must name the same sub
    return { id_token_claims: claims ?? null, scope: tokens.scope ?? null,
      refresh_token_rotated: Boolean(tokens.refresh_token) && tokens.refresh_token !== before,
      userinfo: await userinfo(config, claims ?? { sub: session.sub }) };
  },

  async userinfo(config) {
    return { userinfo: await userinfo(config, { sub: session.sub }) };
  },

  async 'logout-url'(config) {
    step = 'logout-url';
    session.logout_state = client.randomState();
    save();
    const params = { id_token_hint: session.id_token, state: session.logout_state };
    if (session.post_logout_redirect_uri) params.post_logout_redirect_uri = session.post_logout_redirect_uri;
    return { end_session_url: client.buildEndSessionUrl(config, params).href };
  },
};

function describe(error) {
  let message = String(error?.message ?? error);
  if (step === 'discovery') message = `discovery of ${session.issuer} failed: ${message}`;
  const out = { step, name: error?.name, code: error?.code ?? null, message };
  for (const source of [error, error?.cause]) {
    if (source?.status) out.status = source.status;
    if (source?.error) out.oauth_error = source.error;
    if (source?.error_description) out.error_description = source.error_description;
  }
  if (error?.cause && !(error.cause instanceof Response)) {
    out.cause = error.cause instanceof Error ? `${error.cause.name}: ${error.cause.message}` : error.cause;
  }
  return out;
}

try {
  if (!commands[command]) throw new Error(`unknown command ${command}; one of ${Object.keys(commands).join(', ')}`);
  const config = await discover();
  const result = await commands[command](config);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: describe(error) }, (k, v) => (typeof v === 'symbol' ? String(v) : v))}\n`);
  process.exitCode = 1;
}
