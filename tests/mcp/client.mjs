// A real TypeScript MCP client through Warden, for tests/test_mcp_clients.py: the TypeScript SDK 1.x
// (`@modelcontextprotocol/sdk`) or 2.x (`@modelcontextprotocol/client`), as demo-agent (client
// credentials) or as a user (dynamic registration, authorization code + PKCE; the login page is
// driven by examples/mcp/login.py, a person without a browser).
//
//   node client.mjs --sdk 1|2 --mode agent|user --url URL --issuer ISSUER --login "python3 .../login.py"
//
// The same walk as examples/mcp/client.py: list tools, read_orders, delete_customer (403
// insufficient_scope, then a token with the missing scope), list tools again, refund_order (a step-up:
// the user logs in again with her one-time code; the agent cannot). Prints one JSON document: the
// HTTP exchanges, the tokens the SDK stored and each step's outcome.

import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    sdk: { type: 'string', default: '2' },
    mode: { type: 'string', default: 'agent' },
    url: { type: 'string' },
    issuer: { type: 'string' },
    login: { type: 'string' },
    user: { type: 'string', default: 'alice' },
    otp: { type: 'string', default: '123456' },
  },
});

const sdk = args.sdk === '1'
  ? {
    ...(await import('@modelcontextprotocol/sdk/client/index.js')),
    ...(await import('@modelcontextprotocol/sdk/client/streamableHttp.js')),
    ...(await import('@modelcontextprotocol/sdk/client/auth-extensions.js')),
    ...(await import('@modelcontextprotocol/sdk/client/auth.js')),
  }
  : await import('@modelcontextprotocol/client');

const REDIRECT_URI = 'http://127.0.0.1:33419/callback'; // never listened on: login.py stops at the redirect
const trace = { sdk: args.sdk, http: [], tokens: [], steps: [] };
let stepUp = null; // the acr_values/max_age of the last RFC 9470 challenge, for the next authorization
let widen = false; // a 403 insufficient_scope came: the stored token (and its refresh token) will not do
const challenged = new Set(); // every scope a 401/403 challenge named (SEP-835's first source)

function challengeParams(header) {
  const out = {};
  for (const m of header.matchAll(/(\w+)=(?:"([^"]*)"|([^\s,"]+))/g)) out[m[1]] = m[2] ?? m[3];
  return out;
}

// Records every exchange the SDK makes (MCP requests, metadata, token, registration).
async function recordingFetch(input, init) {
  const response = await fetch(input, init);
  const url = String(input instanceof Request ? input.url : input).split('?')[0];
  const headers = new Headers(init?.headers);
  const entry = { method: init?.method ?? 'GET', url, status: response.status };
  if (headers.get('mcp-method')) entry.mcp_method = headers.get('mcp-method');
  const challenge = response.headers.get('www-authenticate');
  if (challenge) entry.www_authenticate = challenge;
  const p = challengeParams(challenge ?? '');
  for (const s of (p.scope ?? '').split(' ').filter(Boolean)) challenged.add(s);
  if (response.status === 403 && p.error === 'insufficient_scope') widen = true;
  if (response.status === 401 && challenge?.includes('insufficient_user_authentication')) {
    stepUp = { acr_values: p.acr_values, ...(p.max_age ? { max_age: p.max_age } : {}) };
  }
  trace.http.push(entry);
  return response;
}

// The user's side of the authorization code flow, headless: the SDK "opens" the authorization URL,
// login.py plays the person at the IdP's login page and returns the redirect back to us.
class HeadlessUserProvider {
  constructor() {
    this._tokens = undefined;
    this._client = undefined;
    this._verifier = undefined;
    this.callback = undefined;
  }

  get redirectUrl() { return REDIRECT_URI; }

  get clientMetadata() {
    return {
      client_name: `warden-test-ts-sdk-${args.sdk}`,
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  clientInformation() { return this._client; }

  saveClientInformation(info) { this._client = info; }

  // After a challenge the stored token is of no use, and neither is its refresh token: a refresh
  // keeps the old login (step-up) and cannot widen the scope (RFC 6749 §6). SDK 1.x refreshes when it
  // can, so it gets none and authorizes anew; SDK 2.x re-authorizes on its own.
  tokens() { return stepUp || widen ? undefined : this._tokens; }

  saveTokens(tokens) {
    widen = false;
    this._tokens = tokens;
    trace.tokens.push({ scope: tokens.scope ?? null });
  }

  saveCodeVerifier(v) { this._verifier = v; }

  // SDK 2.x binds the callback to the authorization server it sent the user to (SEP-2352).
  saveDiscoveryState(state) { this._discovery = state; }

  discoveryState() { return this._discovery; }

  codeVerifier() { return this._verifier; }

  redirectToAuthorization(authorizationUrl) {
    const url = new URL(authorizationUrl);
    const loginArgs = [];
    if (stepUp) {
      for (const [k, v] of Object.entries(stepUp)) url.searchParams.set(k, v);
      const scopes = new Set(['openid', ...(url.searchParams.get('scope') ?? '').split(' ').filter(Boolean)]);
      url.searchParams.set('scope', [...scopes].join(' ')); // OIDC: acr_values comes with openid
      loginArgs.push('--otp', args.otp);
      stepUp = null;
    }
    const [cmd, ...pre] = args.login.split(' ');
    const back = execFileSync(cmd, [...pre, url.href, REDIRECT_URI, '--user', args.user, ...loginArgs], { encoding: 'utf8' }).trim();
    this.callback = new URL(back).searchParams;
  }
}

class RecordingCredentials extends sdk.ClientCredentialsProvider {
  // SDK 1.x asks the token endpoint for the scope the provider was built with, never a challenge's
  // (its code flow follows SEP-835, its client credentials do not): with none, ask for what the
  // challenges named, as the Python SDK does.
  prepareTokenRequest(scope) {
    return super.prepareTokenRequest(scope || [...challenged].join(' ') || undefined);
  }

  saveTokens(tokens) {
    super.saveTokens(tokens);
    trace.tokens.push({ scope: tokens.scope ?? null });
  }
}

const provider = args.mode === 'agent'
  ? new RecordingCredentials({ clientId: 'demo-agent', clientSecret: 'demo-agent-secret', expectedIssuer: args.issuer })
  : new HeadlessUserProvider();

let transport;
let client;

async function connect() {
  transport = new sdk.StreamableHTTPClientTransport(new URL(args.url), { authProvider: provider, fetch: recordingFetch });
  client = new sdk.Client({ name: `warden-test-ts-sdk-${args.sdk}`, version: '1.0.0' });
  await client.connect(transport);
}

// An UnauthorizedError means the SDK sent the user to the login page: hand it the code, try again.
async function authorized(fn) {
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof sdk.UnauthorizedError) || !provider.callback) throw e;
      const params = provider.callback;
      provider.callback = undefined;
      await transport.finishAuth(args.sdk === '1' ? params.get('code') : params);
    }
  }
  throw new Error('still unauthorized after 3 logins');
}

async function call(name, toolArgs) {
  try {
    const result = await authorized(() => client.callTool({ name, arguments: toolArgs }));
    trace.steps.push({ tool: name, ok: !result.isError, result: result.structuredContent ?? result.content });
  } catch (e) {
    const last = trace.http.at(-1) ?? {};
    trace.steps.push({ tool: name, ok: false, status: last.status, www_authenticate: last.www_authenticate, error: String(e).slice(0, 300) });
  }
}

async function listTools() {
  const { tools } = await authorized(() => client.listTools());
  trace.steps.push({ list_tools: tools.map((t) => t.name) });
}

try {
  await authorized(connect);
  await listTools();
  await call('read_orders', { customer: 'acme' });
  await call('delete_customer', { customer: 'globex' });
  await listTools();
  await call('refund_order', { order_id: '42', amount_cents: 1000 });
  await client.close();
} catch (e) {
  trace.error = String(e?.stack ?? e).slice(0, 1000);
}
console.log(JSON.stringify(trace));
process.exit(0);
