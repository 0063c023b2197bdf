// realop: a REAL OpenID provider for geologin's tests. A test tool, never deployed: it runs panva's
// certified `oidc-provider` (pinned in package.json) on loopback with in-memory storage, so the OpenID
// Connect plugin is tested against an OP we did not write. Started by tests/realop.py (RealOP).
//
//   node tests/realop/op.mjs --port 0 --config config.json [--path /oidc]
//
// Prints `realop listening on <issuer>` on stdout when ready; the issuer is http://127.0.0.1:PORT[PATH].
// config.json: {"clients": [{client_id, client_secret, redirect_uris, post_logout_redirect_uris?,
//   token_endpoint_auth_method? (client_secret_basic), id_token_signed_response_alg? (RS256), ...}],
//   "accounts": [{sub, password, preferred_username, email, email_verified, name, ...extra claims}],
//   "claims": {scope: [claim, ...]} (optional, merged over the standard mapping; account claims that no
//   scope names are released with `profile`), "conformIdTokenClaims": true (default: when an access token
//   for userinfo is issued, the id_token carries only sub and protocol claims; false puts them all in)}.
// Interactions are plain HTML forms (no JavaScript): login (username = preferred_username or sub), then
// consent with Authorize / Deny. POST /__control__/rotate-keys signs with a new key from then on (old keys
// stay in the JWKS unless the JSON body says {"keep_old": false}).
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

const { values: args } = parseArgs({ options: {
  port: { type: 'string', default: '0' }, config: { type: 'string' }, path: { type: 'string', default: '' },
} });
const config = args.config ? JSON.parse(readFileSync(args.config, 'utf8')) : {};
const mount = args.path.replace(/\/+$/, '');
const accounts = config.accounts || [];
const accountBySub = new Map(accounts.map((a) => [String(a.sub), a]));

const claims = { openid: ['sub'], profile: ['preferred_username', 'name'], email: ['email', 'email_verified'],
  ...config.claims };
const mapped = new Set(Object.values(claims).flat());
const extra = new Set(accounts.flatMap((a) => Object.keys(a)).filter((k) => k !== 'password' && !mapped.has(k)));
claims.profile = [...claims.profile, ...extra];

let generation = 0;
function newKeys() { // one RSA key (RS256, PS256) and one P-256 key (ES256) per generation
  generation += 1;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return [{ ...rsa, kid: `rsa-${generation}`, use: 'sig' }, { ...ec, kid: `ec-${generation}`, use: 'sig' }];
}

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title>`
  + `</head><body><h1>${esc(title)}</h1>${body}</body></html>`;

function makeProvider(issuer, keys) {
  return new Provider(issuer, {
    clients: (config.clients || []).map((c) => ({ grant_types: ['authorization_code'], ...c })),
    jwks: { keys },
    cookies: { keys: ['realop-test-cookie-key-not-secret'] }, // `secure` only when the request is https
    claims,
    conformIdTokenClaims: config.conformIdTokenClaims ?? true,
    allowOmittingSingleRegisteredRedirectUri: false, // strict, as most OPs: redirect_uri always required
    scopes: ['openid', 'offline_access', ...Object.keys(claims)],
    responseTypes: ['code'], // the authorization code flow only, as the plugin uses
    pkce: { methods: ['S256'], required: () => true }, // every client, confidential ones too
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) => { // `form` is oidc-provider's <form id="op.logoutForm"> with its xsrf input
          ctx.body = page('Log out', `${form.replace('</form>', '')}<p>Log out of ${esc(ctx.host)}?</p>`
            + '<button type="submit" name="logout" value="yes">Yes, log me out</button>'
            + '<button type="submit">No, stay logged in</button></form>');
        },
        postLogoutSuccessSource: (ctx) => { ctx.body = page('Logged out', '<p>You are logged out.</p>'); },
      },
    },
    findAccount: (ctx, sub) => {
      const account = accountBySub.get(String(sub));
      if (!account) return undefined;
      const { password, ...rest } = account;
      return { accountId: String(sub), claims: () => ({ ...rest, sub: String(sub) }) };
    },
    interactions: { url: (ctx, interaction) => `${mount}/interaction/${interaction.uid}` },
    renderError: (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Error', Object.entries(out).map(([k, v]) => `<p>${esc(k)}: ${esc(v)}</p>`).join(''));
    },
    ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, Interaction: 600, Session: 3600,
      Grant: 3600, RefreshToken: 86400 },
  });
}

async function readBody(req) {
  let data = '';
  for await (const chunk of req) data += chunk;
  return data;
}

function loginPage(uid, details, error) {
  return page('Sign in', `<p>to continue to ${esc(details.params.client_id)}</p>`
    + (error ? `<p class="error" role="alert">${esc(error)}</p>` : '')
    + `<form method="post" action="${mount}/interaction/${esc(uid)}/login">`
    + '<label>Username <input name="username" autocomplete="username"></label>'
    + '<label>Password <input name="password" type="password" autocomplete="current-password"></label>'
    + '<button type="submit">Sign in</button></form>');
}

function consentPage(uid, details) {
  return page('Authorize access', `<p>${esc(details.params.client_id)} asks for: `
    + `${esc(details.params.scope)}</p><form method="post" action="${mount}/interaction/${esc(uid)}/confirm">`
    + '<button type="submit" name="decision" value="authorize">Authorize</button>'
    + '<button type="submit" name="decision" value="deny">Deny</button></form>');
}

async function interaction(provider, req, res, path) {
  const [, , uid, action] = path.split('/'); // /interaction/<uid>[/login|/confirm]
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const send = (status, html) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  };
  if (req.method === 'GET' && !action) {
    return send(200, details.prompt.name === 'login' ? loginPage(uid, details) : consentPage(uid, details));
  }
  if (req.method !== 'POST') return send(405, page('Method not allowed', ''));
  const form = new URLSearchParams(await readBody(req));
  if (action === 'login') {
    const name = form.get('username');
    const account = accounts.find((a) => a.preferred_username === name || String(a.sub) === name);
    if (!account || account.password !== form.get('password')) {
      return send(200, loginPage(uid, details, 'Wrong username or password.'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: String(account.sub) } },
      { mergeWithLastSubmission: false });
  }
  if (action === 'confirm' && form.get('decision') !== 'authorize') {
    return provider.interactionFinished(req, res,
      { error: 'access_denied', error_description: 'End-User denied the authorization' },
      { mergeWithLastSubmission: false });
  }
  if (action === 'confirm') {
    const { prompt: { details: missing }, params, session, grantId } = details;
    const grant = grantId ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } },
      { mergeWithLastSubmission: true });
  }
  return send(404, page('Not found', ''));
}

let keys = newKeys();
let provider;
let handler; // provider.callback(), made once per provider
const server = http.createServer(async (req, res) => {
  try {
    const { pathname } = new URL(req.url, 'http://x');
    if (pathname === '/__control__/rotate-keys' && req.method === 'POST') {
      const keepOld = JSON.parse((await readBody(req)) || '{}').keep_old ?? true;
      keys = [...newKeys(), ...(keepOld ? keys : [])];
      provider = makeProvider(provider.issuer, keys); // storage is module-level: sessions and grants survive
      handler = provider.callback();
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ kids: keys.map((k) => k.kid) }));
    }
    if (mount && !(pathname === mount || pathname.startsWith(`${mount}/`))) {
      res.writeHead(404);
      return res.end();
    }
    const inner = pathname.slice(mount.length) || '/';
    if (inner.startsWith('/interaction/')) return await interaction(provider, req, res, inner);
    req.originalUrl = req.url; // oidc-provider derives its mount path from originalUrl vs url
    req.url = req.url.slice(mount.length).replace(/^(?!\/)/, '/');
    return handler(req, res);
  } catch (err) {
    process.stderr.write(`realop: ${err.stack || err}\n`);
    if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' });
    return res.end(page('Error', `<p>${esc(err.message)}</p>`));
  }
});

server.listen(Number(args.port), '127.0.0.1', () => {
  provider = makeProvider(`http://127.0.0.1:${server.address().port}${mount}`, keys);
  handler = provider.callback();
  process.stdout.write(`realop listening on ${provider.issuer}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
