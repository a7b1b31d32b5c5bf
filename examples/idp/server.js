// Demo OpenID Provider for Warden: `make run` and the integration tests (tests/test_idp*.py).
//
// oidc-provider (an OpenID Certified OAuth 2.0 / OIDC server) on 127.0.0.1 only, with:
//   - JWT access tokens (`typ: at+jwt`, ES256) for the resource `urn:warden:orders-api` (aud `orders-api`),
//     carrying the client's `tenant`; opaque tokens for `urn:warden:orders-api:opaque` (same audience),
//     which a resource server can only check by introspection (RFC 7662);
//   - clients: `demo-agent` (client credentials, an AI agent), `demo-dpop-agent` (DPoP-bound tokens),
//     `warden` (may introspect, nothing else);
//   - an RFC 8693 token-exchange grant: an agent presents a user's token and gets a delegated token
//     whose `sub` is the user and whose `act` names the agent, carrying when (`auth_time`) and how
//     (`acr`, `amr`) the user authenticated;
//   - OpenID CIBA (poll mode): an agent asks the user to approve an operation (`binding_message` names
//     it); the user's device is a loopback admin endpoint (/admin/ciba/...: list, approve, deny). An
//     approved request gives the agent a delegated token with `acr` urn:warden:acr:approved and
//     `auth_time` the moment of approval;
//   - MCP resources (`--mcp-resource URL`, repeatable): JWT access tokens whose `aud` is that URL, asked
//     for with `resource=URL` (RFC 8707), by `demo-agent` (client credentials) or by MCP clients that
//     register themselves (RFC 7591 dynamic registration, public clients, authorization code + PKCE);
//   - a login page a test drives with plain HTTP (examples/mcp/login.py): demo users with a password,
//     and a one-time code when the client asks for `acr_values=urn:warden:acr:mfa` (a step-up); the
//     token then says `acr` and `auth_time`. Consent is part of the login: the user grants what the
//     client asked, and a scope the user may not hold ends the flow with `access_denied`;
//   - a loopback-only admin API for tests: key rotation, a user token (standing in for a browser
//     login), and counters of JWKS/discovery/introspection requests.
//
//   node server.js [--port 9000] [--mcp-resource http://127.0.0.1:10000/mcp]   (issuer http://127.0.0.1:PORT)

import crypto from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '9000' },
    quiet: { type: 'boolean', default: false },
    'mcp-resource': { type: 'string', multiple: true, default: [] },
  },
});
const PORT = Number(args.port);
const ISSUER = `http://127.0.0.1:${PORT}`;
const RESOURCE = 'urn:warden:orders-api';
const OPAQUE_RESOURCE = 'urn:warden:orders-api:opaque';
const AUDIENCE = 'orders-api';
const API_SCOPES = 'orders:read orders:write admin';
const MCP_RESOURCES = args['mcp-resource'];
const MCP_SCOPES = 'orders:read orders:refund admin';
const PWD_ACR = 'urn:warden:acr:pwd';
const MFA_ACR = 'urn:warden:acr:mfa';
const APPROVED_ACR = 'urn:warden:acr:approved'; // the user approved this operation (CIBA)
const CIBA = 'urn:openid:params:grant-type:ciba';
const DEMO_OTP = '123456'; // the demo's one-time code (a real IdP checks a TOTP or a passkey)
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
    grant_types: ['client_credentials', TOKEN_EXCHANGE, CIBA],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    backchannel_token_delivery_mode: 'poll',
    scope: 'openid orders:read orders:write orders:refund admin', // per resource: see CLIENT_RESOURCE_SCOPES
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
// An MCP server's tokens name the server itself as their audience (RFC 8707; MCP authorization).
for (const url of MCP_RESOURCES) {
  resourceServers[url] = { audience: url, scope: MCP_SCOPES, accessTokenTTL: TOKEN_TTL_S, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
}

// What a static client may hold at each resource: a scope granted at one resource is not granted at
// another (demo-agent may delete customers through the MCP server, not be `admin` of the orders API).
const CLIENT_RESOURCE_SCOPES = {
  'demo-agent': {
    [RESOURCE]: 'orders:read orders:write',
    [OPAQUE_RESOURCE]: 'orders:read orders:write',
    ...Object.fromEntries(MCP_RESOURCES.map((url) => [url, MCP_SCOPES])),
  },
};

function allowedAtResource(client, indicator) {
  const table = CLIENT_RESOURCE_SCOPES[client?.clientId];
  if (!table) return resourceServers[indicator]?.scope;
  return table[indicator] ?? '';
}

// The demo's users (login page): password, tenant, and what each may grant a client at an MCP resource.
const USERS = Object.assign(Object.create(null), {
  alice: { password: 'alice-password', tenant: 'acme', scopes: MCP_SCOPES },
  bob: { password: 'bob-password', tenant: 'acme', scopes: 'orders:read' },
});

function buildProvider(keys) {
  const provider = new Provider(ISSUER, {
    clients,
    jwks: { keys },
    scopes: ['openid', ...new Set([...API_SCOPES.split(' '), ...MCP_SCOPES.split(' ')])],
    extraClientMetadata: { properties: ['tenant'], validator: checkRegistration },
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    findAccount: async (ctx, sub) => (USERS[sub] ? { accountId: sub, claims: async () => ({ sub }) } : undefined),
    interactions: { url: async (ctx, interaction) => `/interaction/${interaction.uid}` },
    acrValues: [PWD_ACR, MFA_ACR, APPROVED_ACR],
    // Refresh tokens for the clients registered for them (MCP clients), with or without offline_access.
    issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token') && !!code.accountId,
    features: {
      devInteractions: { enabled: false },
      // RFC 7591: MCP clients register themselves (open registration; see checkRegistration).
      registration: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Only Warden may introspect.
        allowedPolicy: async (ctx, client) => client.clientId === 'warden',
      },
      revocation: { enabled: true },
      dPoP: { enabled: true },
      // OpenID CIBA: an agent asks a user to approve an operation; the user answers on their own device.
      ciba: {
        enabled: true,
        deliveryModes: ['poll'],
        processLoginHint: async (ctx, hint) => (USERS[hint] ? hint : undefined),
        processLoginHintToken: async () => { throw new errors.InvalidRequest('login_hint_token is not supported'); },
        verifyUserCode: async () => {},
        validateRequestContext: async () => {},
        // The operation's name, shown to the user: required, short, plain.
        validateBindingMessage: async (ctx, message) => {
          if (!/^[\w .:#/+-]{1,64}$/.test(message || '')) {
            throw new errors.InvalidBindingMessage('binding_message (the operation, 1-64 plain characters) is required');
          }
        },
        triggerAuthenticationDevice: async (ctx, request, account, client) => {
          const id = request.jti;
          state.ciba.set(id, {
            id, user: account.accountId, client: client.clientId, binding_message: request.params.binding_message,
            scope: request.scope, resource: request.resource, created: Math.floor(Date.now() / 1000),
          });
          while (state.ciba.size > 100) state.ciba.delete(state.ciba.keys().next().value); // bounded
          log(`CIBA: ${account.accountId}, ${client.clientId} asks you to approve "${request.params.binding_message}"`);
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, indicator, client) => {
          const info = resourceServers[indicator];
          if (!info) throw new errors.InvalidTarget();
          const allowed = new Set(allowedAtResource(client, indicator).split(' ').filter(Boolean));
          const asked = ctx.oidc?.params ? ctx.oidc.requestParamScopes : new Set();
          for (const scope of asked) {
            if (info.scope.split(' ').includes(scope) && !allowed.has(scope)) {
              throw new errors.InvalidScope('requested scope is not allowed at this resource', scope);
            }
          }
          return { ...info, scope: info.scope.split(' ').filter((s) => allowed.has(s)).join(' ') };
        },
      },
    },
    // Tenant of the client (and, for delegated tokens, the delegation) in every access token.
    // A user's token (authorization code, refresh) carries how and when the user logged in (`acr`,
    // `auth_time`: what an RFC 9470 step-up asks for) and the user's tenant.
    extraTokenClaims: async (ctx, token) => {
      const extra = {};
      const client = ctx?.oidc?.client;
      if (client?.tenant) extra.tenant = client.tenant;
      const login = ctx?.oidc?.entities?.AuthorizationCode ?? ctx?.oidc?.entities?.RefreshToken
        ?? ctx?.oidc?.entities?.BackchannelAuthenticationRequest;
      if (token.accountId && login) {
        if (USERS[token.accountId]) extra.tenant = USERS[token.accountId].tenant;
        if (login.acr) extra.acr = login.acr;
        if (login.amr) extra.amr = login.amr;
        if (login.authTime) extra.auth_time = login.authTime;
      }
      // A CIBA approval: the agent acts for the user who approved (RFC 8693 `act`).
      if (token.accountId && ctx?.oidc?.entities?.BackchannelAuthenticationRequest && client) {
        extra.act = { sub: client.clientId };
      }
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

// Open registration (RFC 7591) is for MCP clients acting for a user: a registered client may only use
// the authorization code grant (a machine client with a secret of its own choosing would otherwise mint
// itself tokens), and its tenant is the user's, never one it claims. What it may get is what the user
// may grant, so a `scope` it registers is dropped (RFC 7591 §3.2.1 lets the server replace metadata):
// kept, it would cap the scopes the client can step up to after a 403 insufficient_scope.
function checkRegistration(ctx, key, value, metadata) {
  if (ctx?.oidc?.route !== 'registration') return;
  if (key === 'tenant') delete metadata.scope; // eslint-disable-line no-param-reassign -- once per client
  if (key === 'tenant' && value !== undefined) {
    throw new errors.InvalidClientMetadata('tenant is not client metadata a client may register');
  }
  const grants = metadata.grant_types ?? [];
  if (grants.some((g) => g !== 'authorization_code' && g !== 'refresh_token')) {
    throw new errors.InvalidClientMetadata('only authorization_code and refresh_token may be registered');
  }
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
  const resource = params.resource || RESOURCE;
  const info = resourceServers[resource];
  if (!info) throw new errors.InvalidTarget();
  const agentScopes = new Set(String(allowedAtResource(client, resource) || '').split(' ').filter(Boolean));
  const asked = params.scope ? params.scope.split(' ') : [...userScopes];
  const granted = asked.filter((s) => userScopes.has(s) && agentScopes.has(s));
  if (!granted.length) throw new InvalidScope('no requested scope is held by both the user and the agent');

  // When and how the user authenticated travel with the delegation: a resource server can then ask
  // that the user behind an agent's call was present recently (Warden's `presence`).
  const carried = Object.fromEntries(['tenant', 'auth_time', 'acr', 'amr']
    .filter((c) => subject[c] !== undefined).map((c) => [c, subject[c]]));
  ctx.state.delegation = {
    sub: subject.sub,
    claims: { act: { sub: client.clientId }, ...carried },
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
  ciba: new Map(), // pending CIBA requests by auth_req_id: what the user's device shows
};

async function install(keys) {
  state.keys = keys;
  state.provider = buildProvider(keys.map((k) => ({ ...k })));
  state.handler = state.provider.callback();
  state.verifyKeys = jose.createLocalJWKSet(publicJwks(keys));
  log(`signing key ${keys[0].kid}; published: ${keys.map((k) => k.kid).join(', ')}`);
}

async function readBody(req, limit) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > limit) throw new Error('body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString();
}

async function readJson(req) {
  return JSON.parse((await readBody(req, 64 * 1024)) || '{}');
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

// A user's access token, as an interactive login would have produced it (the demo has no browser).
// `acr` says how the user authenticated: a password by default, `urn:warden:acr:mfa` after a step-up.
// `auth_age_s` makes the login that long ago; `amr` says how (RFC 8176: `["pwd", "mfa"]` ...).
async function userToken({ sub = 'alice', tenant = 'acme', scope = 'orders:read orders:write', acr = 'urn:warden:acr:pwd', auth_age_s: authAge = 0, amr }) {
  const [key] = state.keys;
  const now = Math.floor(Date.now() / 1000);
  const privateKey = await jose.importJWK(key, 'ES256');
  const how = Array.isArray(amr) ? { amr: amr.map(String) } : {};
  return new jose.SignJWT({ scope, tenant, client_id: 'demo-web', acr: String(acr), auth_time: now - Number(authAge || 0), ...how })
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
  if (path.startsWith('/admin/ciba')) return cibaDevice(req, res, path);
  return send(res, 404, { error: 'not_found' });
}

// The user's device for CIBA (loopback admin API, standing in for a phone): GET /admin/ciba?user=alice
// lists what waits for the user's answer; POST /admin/ciba/ID/approve or /deny answers it.
async function cibaDevice(req, res, path) {
  const provider = state.provider;
  if (req.method === 'GET' && path === '/admin/ciba') {
    const user = new URL(req.url, ISSUER).searchParams.get('user');
    return send(res, 200, { pending: [...state.ciba.values()].filter((r) => !user || r.user === user) });
  }
  const m = /^\/admin\/ciba\/([\w-]+)\/(approve|deny)$/.exec(path);
  const pending = m && state.ciba.get(m[1]);
  if (req.method !== 'POST' || !pending) return send(res, 404, { error: 'not_found' });
  state.ciba.delete(pending.id);
  if (m[2] === 'deny') {
    await provider.backchannelResult(pending.id, new errors.AccessDenied('the user denied the request'));
    log(`CIBA: ${pending.user} denied "${pending.binding_message}"`);
    return send(res, 200, { denied: pending.id });
  }
  const grant = new provider.Grant({ accountId: pending.user, clientId: pending.client });
  grant.addOIDCScope('openid');
  const apiScopes = pending.scope.split(' ').filter((s) => s !== 'openid').join(' ');
  for (const resource of [pending.resource || RESOURCE].flat()) grant.addResourceScope(resource, apiScopes);
  await grant.save();
  await provider.backchannelResult(pending.id, grant, {
    acr: APPROVED_ACR, amr: ['user'], authTime: Math.floor(Date.now() / 1000),
  });
  log(`CIBA: ${pending.user} approved "${pending.binding_message}"`);
  return send(res, 200, { approved: pending.id });
}

// ---- the login page (interactions) ------------------------------------------------------------

const escapeHtml = (v) => String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html><head><title>Demo IdP login</title></head><body>${html}</body></html>`);
}


const wantsMfa = (params) => String(params.acr_values || '').split(' ').includes(MFA_ACR);

// GET /interaction/:uid: the login (and consent) form. POST /interaction/:uid/login: checks the
// password (and the one-time code when MFA was asked for), grants the requested scopes the user may
// grant, and sends the browser back to the authorization endpoint.
async function interaction(req, res, path) {
  const provider = state.provider;
  const details = await provider.interactionDetails(req, res);
  const { uid, params } = details;
  if (req.method === 'GET' && path === `/interaction/${uid}`) {
    const client = await provider.Client.find(params.client_id);
    const mfa = wantsMfa(params);
    return page(res, 200, `<h1>Sign in to the demo IdP</h1>
<p>${escapeHtml(client?.clientName || params.client_id)} asks for <code>${escapeHtml(params.scope || '')}</code>
at <code>${escapeHtml(params.resource || '')}</code>.</p>
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>user <input name="username" autocomplete="username"></label>
<label>password <input name="password" type="password"></label>
${mfa ? '<label>one-time code <input name="otp" inputmode="numeric"></label>' : ''}
<button type="submit">Sign in and allow</button></form>`);
  }
  if (req.method !== 'POST' || path !== `/interaction/${uid}/login`) return page(res, 404, 'not found');
  const form = new URLSearchParams(await readBody(req, 16 * 1024));
  const name = form.get('username') || '';
  const user = USERS[name];
  const given = Buffer.from(form.get('password') || '');
  const expected = Buffer.from(user?.password || '');
  if (!user || given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    return page(res, 401, '<p>wrong user or password</p>');
  }
  const mfa = form.get('otp') === DEMO_OTP;
  if (wantsMfa(params) && !mfa) return page(res, 401, '<p>a one-time code is required</p>');

  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: name, clientId: params.client_id });
  const asked = String(params.scope || '').split(' ').filter(Boolean);
  // The API scopes are also provider scopes (`scopes` above), so the grant holds them as both.
  if (asked.length) grant.addOIDCScope(asked.join(' '));
  const entitled = new Set(user.scopes.split(' '));
  for (const resource of [params.resource || RESOURCE].flat()) {
    const offered = new Set((resourceServers[resource]?.scope || '').split(' '));
    const scopes = asked.filter((s) => offered.has(s));
    const refused = scopes.filter((s) => !entitled.has(s));
    if (refused.length) {
      return provider.interactionFinished(req, res, {
        error: 'access_denied', error_description: `${name} may not grant ${refused.join(' ')}`,
      }, { mergeWithLastSubmission: false });
    }
    grant.addResourceScope(resource, scopes.join(' '));
  }
  const grantId = await grant.save();
  log(`login ${name} (${mfa ? 'password + one-time code' : 'password'}) for ${params.client_id}`);
  return provider.interactionFinished(req, res, {
    login: { accountId: name, acr: mfa ? MFA_ACR : PWD_ACR, amr: mfa ? ['pwd', 'otp'] : ['pwd'] },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
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
  if (path.startsWith('/interaction/')) {
    interaction(req, res, path).catch((e) => page(res, 400, `<p>${escapeHtml(e.message)}</p>`));
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
