// Demo OpenID Provider for Warden: `make run` and the integration tests (tests/test_idp*.py).
//
// oidc-provider (an OpenID Certified OAuth 2.0 / OIDC server) on 127.0.0.1 only, with:
//   - JWT access tokens (`typ: at+jwt`, ES256) for the resource `urn:warden:orders-api` (aud `orders-api`),
//     carrying the client's `tenant`; opaque tokens for `urn:warden:orders-api:opaque` (same audience),
//     which a resource server can only check by introspection (RFC 7662);
//   - clients: `demo-agent` (client credentials, an AI agent), `demo-dpop-agent` (DPoP-bound tokens),
//     `warden` (may introspect, nothing else);
//   - an RFC 8693 token-exchange grant: an agent presents a user's token and gets a delegated token
//     whose `sub` is the user and whose `act` names the agent;
//   - a loopback-only admin API for tests: key rotation, a user token (standing in for a browser
//     login, which a headless demo cannot do), and counters of JWKS/discovery/introspection requests.
//
//   node server.js [--port 9000]        (issuer: http://127.0.0.1:PORT)

import crypto from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '9000' },
    quiet: { type: 'boolean', default: false },
  },
});
const PORT = Number(args.port);
const ISSUER = `http://127.0.0.1:${PORT}`;
const RESOURCE = 'urn:warden:orders-api';
const OPAQUE_RESOURCE = 'urn:warden:orders-api:opaque';
const AUDIENCE = 'orders-api';
const API_SCOPES = 'orders:read orders:write admin';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const TOKEN_TTL_S = 600;

const log = (msg) => { if (!args.quiet) console.log(`[idp] ${msg}`); };

// ---- keys -------------------------------------------------------------------------------------

let keyCounter = 0;
async function newSigningKey() {
  const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  keyCounter += 1;
  return { ...jwk, kid: `demo-${Date.now().toString(36)}-${keyCounter}`, alg: 'ES256', use: 'sig' };
}

function publicJwks(keys) {
  return {
    keys: keys.map(({ d, ...pub }) => pub), // eslint-disable-line no-unused-vars
  };
}

// ---- the provider -----------------------------------------------------------------------------

const clients = [
  {
    client_id: 'demo-agent',
    client_secret: 'demo-agent-secret',
    grant_types: ['client_credentials', TOKEN_EXCHANGE],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'orders:read orders:write',
    tenant: 'acme',
  },
  {
    client_id: 'demo-dpop-agent',
    client_secret: 'demo-dpop-agent-secret',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    dpop_bound_access_tokens: true,
    scope: 'orders:read',
    tenant: 'acme',
  },
  {
    // Warden itself: authenticates to the introspection endpoint, may do nothing else.
    client_id: 'warden',
    client_secret: 'warden-introspection-secret',
    grant_types: [],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  },
];

const resourceServers = {
  [RESOURCE]: { audience: AUDIENCE, scope: API_SCOPES, accessTokenTTL: TOKEN_TTL_S, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } },
  [OPAQUE_RESOURCE]: { audience: AUDIENCE, scope: API_SCOPES, accessTokenTTL: TOKEN_TTL_S, accessTokenFormat: 'opaque' },
};

function buildProvider(keys) {
  const provider = new Provider(ISSUER, {
    clients,
    jwks: { keys },
    scopes: ['openid', ...API_SCOPES.split(' ')],
    extraClientMetadata: { properties: ['tenant'] },
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Only Warden may introspect.
        allowedPolicy: async (ctx, client) => client.clientId === 'warden',
      },
      revocation: { enabled: true },
      dPoP: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, indicator) => {
          const info = resourceServers[indicator];
          if (!info) throw new errors.InvalidTarget();
          return info;
        },
      },
    },
    // Tenant of the client (and, for delegated tokens, the delegation) in every access token.
    extraTokenClaims: async (ctx, token) => {
      const extra = {};
      const client = ctx?.oidc?.client;
      if (client?.tenant) extra.tenant = client.tenant;
      const delegation = ctx?.state?.delegation;
      if (delegation) Object.assign(extra, delegation.claims);
      return extra;
    },
    formats: {
      customizers: {
        // A delegated token's subject is the user, not the agent (RFC 8693 §4.1: `act` is the agent).
        jwt: async (ctx, token, jwt) => {
          const delegation = ctx?.state?.delegation;
          if (delegation) jwt.payload.sub = delegation.sub;
        },
      },
    },
    ttl: { ClientCredentials: TOKEN_TTL_S },
  });
  provider.proxy = false;
  provider.on('server_error', (ctx, err) => log(`server_error: ${err.stack || err}`));
  provider.registerGrantType(TOKEN_EXCHANGE, tokenExchange, [
    'subject_token', 'subject_token_type', 'scope', 'resource', 'requested_token_type',
  ], ['resource']);
  return provider;
}

// RFC 8693 token exchange: `subject_token` is a user's access token from this IdP; the caller (an
// authenticated agent client) gets a token for the same resource, `sub` = the user, `act.sub` = the agent.
// Scopes: the intersection of what the user's token and the agent may have (and what was asked).
async function tokenExchange(ctx) {
  const { params, client } = ctx.oidc;
  const { InvalidGrant, InvalidRequest, InvalidScope } = errors;
  if (!params.subject_token) throw new InvalidRequest('missing subject_token');
  if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
    throw new InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
  }
  let subject;
  try {
    ({ payload: subject } = await jose.jwtVerify(params.subject_token, state.verifyKeys, {
      issuer: ISSUER, audience: AUDIENCE, typ: 'at+jwt',
    }));
  } catch (e) {
    throw new InvalidGrant(`subject_token is not valid: ${e.code || e.message}`);
  }
  if (subject.act) throw new InvalidGrant('subject_token is already delegated');
  const userScopes = new Set(String(subject.scope || '').split(' ').filter(Boolean));
  const agentScopes = new Set(String(client.scope || '').split(' ').filter(Boolean));
  const asked = params.scope ? params.scope.split(' ') : [...userScopes];
  const granted = asked.filter((s) => userScopes.has(s) && agentScopes.has(s));
  if (!granted.length) throw new InvalidScope('no requested scope is held by both the user and the agent');
  const resource = params.resource || RESOURCE;
  const info = resourceServers[resource];
  if (!info) throw new errors.InvalidTarget();

  ctx.state.delegation = {
    sub: subject.sub,
    claims: {
      act: { sub: client.clientId },
      ...(subject.tenant ? { tenant: subject.tenant } : {}),
    },
  };
  const token = new ctx.oidc.provider.ClientCredentials({ client, scope: granted.join(' ') });
  token.resourceServer = new ctx.oidc.provider.ResourceServer(resource, info);
  const value = await token.save();
  ctx.body = {
    access_token: value,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: 'Bearer',
    expires_in: token.expiration,
    scope: token.scope,
  };
}

// ---- state, admin API, server -----------------------------------------------------------------

const state = {
  keys: [],
  provider: null,
  handler: null,
  verifyKeys: null,
  counts: { jwks: 0, discovery: 0, introspection: 0, token: 0, revocation: 0 },
};

async function install(keys) {
  state.keys = keys;
  state.provider = buildProvider(keys.map((k) => ({ ...k })));
  state.handler = state.provider.callback();
  state.verifyKeys = jose.createLocalJWKSet(publicJwks(keys));
  log(`signing key ${keys[0].kid}; published: ${keys.map((k) => k.kid).join(', ')}`);
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 64 * 1024) throw new Error('body too large');
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString() || '{}';
  return JSON.parse(text);
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

// A user's access token, as an interactive login would have produced it (the demo has no browser).
// `acr` says how the user authenticated: a password by default, `urn:warden:acr:mfa` after a step-up.
async function userToken({ sub = 'alice', tenant = 'acme', scope = 'orders:read orders:write', acr = 'urn:warden:acr:pwd' }) {
  const [key] = state.keys;
  const now = Math.floor(Date.now() / 1000);
  const privateKey = await jose.importJWK(key, 'ES256');
  return new jose.SignJWT({ scope, tenant, client_id: 'demo-web', acr: String(acr), auth_time: now })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(sub)
    .setIssuedAt(now)
    .setExpirationTime(now + TOKEN_TTL_S)
    .setJti(crypto.randomUUID())
    .sign(privateKey);
}

async function admin(req, res, path) {
  const remote = req.socket.remoteAddress;
  if (remote !== '127.0.0.1' && remote !== '::1' && remote !== '::ffff:127.0.0.1') {
    return send(res, 403, { error: 'admin API is loopback only' });
  }
  if (req.method === 'GET' && path === '/admin/stats') {
    return send(res, 200, { ...state.counts, kids: state.keys.map((k) => k.kid) });
  }
  if (req.method === 'POST' && path === '/admin/rotate') {
    // A new signing key first; the previous ones stay published unless ?drop_old=1.
    const url = new URL(req.url, ISSUER);
    const fresh = await newSigningKey();
    const keep = url.searchParams.get('drop_old') === '1' ? [] : state.keys;
    await install([fresh, ...keep].slice(0, 3));
    return send(res, 200, { kid: fresh.kid, kids: state.keys.map((k) => k.kid) });
  }
  if (req.method === 'POST' && path === '/admin/user-token') {
    const body = await readJson(req);
    return send(res, 200, { access_token: await userToken(body), token_type: 'Bearer' });
  }
  return send(res, 404, { error: 'not_found' });
}

function count(path) {
  if (path === '/jwks') state.counts.jwks += 1;
  else if (path === '/.well-known/openid-configuration') state.counts.discovery += 1;
  else if (path === '/token/introspection') state.counts.introspection += 1;
  else if (path === '/token/revocation') state.counts.revocation += 1;
  else if (path === '/token') state.counts.token += 1;
}

await install([await newSigningKey()]);

const server = http.createServer((req, res) => {
  const path = new URL(req.url, ISSUER).pathname;
  if (path.startsWith('/admin/')) {
    admin(req, res, path).catch((e) => send(res, 400, { error: 'invalid_request', error_description: String(e.message) }));
    return;
  }
  count(path);
  log(`${req.method} ${path}`);
  state.handler(req, res);
});
server.listen(PORT, '127.0.0.1', () => {
  console.log(`[idp] listening on ${ISSUER} (issuer ${ISSUER})`);
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { server.close(); process.exit(0); });
}
