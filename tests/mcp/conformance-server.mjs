// The MCP conformance fixture server: the tools, resources, prompts and completions that the server
// scenarios of `@modelcontextprotocol/conformance` call (`test_simple_text`, `test://static-text`,
// `test_simple_prompt`, ...), on the TypeScript SDK 1.x (`@modelcontextprotocol/sdk`). It speaks the
// stateless wire of protocol 2026-07-28 (SEP-2575: no initialize, per-request `_meta`, `Mcp-Method` /
// `Mcp-Name` headers) at /mcp, which SDK 1.x does not know yet: this file checks the envelope and hands
// each request to an SDK 1.x `McpServer` over an in-memory transport (a fresh server per request, so
// nothing is shared between requests), then stamps what 2026-07-28 adds to a result (`resultType`,
// the SEP-2549 caching hints). tests/test_mcp_conformance.py runs the scenarios against it, alone and
// behind Envoy + Warden. What SDK 1.x cannot express at all (input-required results, -32021, a raw
// JSON Schema 2020-12 tool, `x-mcp-header` parameters) the bridge answers itself (BRIDGE_TOOLS).
// Every request received (headers and body) is appended as one JSON line to --log.
//
//   node conformance-server.mjs --port PORT --log FILE

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode, McpError, ProgressNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const { values: args } = parseArgs({ options: { port: { type: 'string' }, log: { type: 'string' } } });
const record = (entry) => args.log && appendFileSync(args.log, `${JSON.stringify(entry)}\n`);

const VERSION = '2026-07-28';
const META = 'io.modelcontextprotocol/';
// A 1x1 PNG and a short WAV header: content the scenarios only check for type and MIME type.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const WAV = Buffer.from('RIFF$\u0000\u0000\u0000WAVEfmt ', 'latin1').toString('base64');
// Results a client may cache: 2026-07-28 wants `ttlMs` and `cacheScope` on them (SEP-2549).
const CACHEABLE = new Set(['server/discover', 'tools/list', 'prompts/list', 'resources/list',
  'resources/templates/list', 'resources/read']);
// Methods the 2026-07-28 wire serves; anything else is 404 + -32601 (initialize, ping, ... were removed).
const METHODS = new Set([...CACHEABLE, 'tools/call', 'prompts/get', 'completion/complete']);

// What completion/complete offers for `test_prompt_with_arguments`'s arg1, filtered by what was typed.
const COMPLETIONS = ['paris', 'park', 'party', 'test-value-1', 'test-value-2'];

const text = (t) => ({ type: 'text', text: t });
const image = { type: 'image', data: PNG, mimeType: 'image/png' };

function fixtures() {
  const server = new McpServer({ name: 'warden-conformance-fixtures', version: '1.0.0' },
    { capabilities: { logging: {}, completions: {} } });
  const tool = (name, description, run, inputSchema) => server.registerTool(name, { description, inputSchema }, run);

  tool('test_simple_text', 'Returns one text block', async () => ({ content: [text('This is a simple text response for testing.')] }));
  tool('test_image_content', 'Returns one image', async () => ({ content: [image] }));
  tool('test_audio_content', 'Returns one audio clip', async () => ({ content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] }));
  tool('test_embedded_resource', 'Returns an embedded resource', async () => ({ content: [{
    type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' },
  }] }));
  tool('test_multiple_content_types', 'Returns text, an image and a resource', async () => ({ content: [
    text('Multiple content types test:'), image,
    { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: '{"test":"data","value":123}' } },
  ] }));
  tool('test_error_handling', 'Always fails', async () => ({ isError: true, content: [text('This tool intentionally returns an error for testing')] }));
  tool('test_tool_with_progress', 'Reports progress 0, 50, 100', async (_args, extra) => {
    const token = extra._meta?.progressToken;
    for (const progress of [0, 50, 100]) {
      if (token !== undefined) {
        await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress, total: 100, message: `${progress}%` } });
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return { content: [text(String(token ?? 'no progress token'))] };
  }, {});

  server.registerResource('static-text', 'test://static-text', { mimeType: 'text/plain', description: 'A static text resource' },
    async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }] }));
  server.registerResource('static-binary', 'test://static-binary', { mimeType: 'image/png', description: 'A static binary resource' },
    async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'image/png', blob: PNG }] }));
  server.registerResource('template', new ResourceTemplate('test://template/{id}/data', { list: undefined }),
    { mimeType: 'application/json', description: 'A resource template' },
    async (uri, { id }) => ({ contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) }] }));

  server.registerPrompt('test_simple_prompt', { description: 'A prompt without arguments' },
    () => ({ messages: [{ role: 'user', content: text('This is a simple prompt for testing.') }] }));
  server.registerPrompt('test_prompt_with_arguments', {
    description: 'A prompt with two arguments',
    argsSchema: {
      arg1: completable(z.string().describe('First test argument'), (typed) => COMPLETIONS.filter((v) => v.startsWith(typed ?? ''))),
      arg2: z.string().describe('Second test argument'),
    },
  }, ({ arg1, arg2 }) => ({ messages: [{ role: 'user', content: text(`Prompt with arguments: arg1='${arg1}', arg2='${arg2}'`) }] }));
  server.registerPrompt('test_prompt_with_embedded_resource', {
    description: 'A prompt that embeds a resource', argsSchema: { resourceUri: z.string().describe('The resource to embed') },
  }, ({ resourceUri }) => ({ messages: [
    { role: 'user', content: { type: 'resource', resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' } } },
    { role: 'user', content: text('Please process the embedded resource above.') },
  ] }));
  server.registerPrompt('test_prompt_with_image', { description: 'A prompt with an image' },
    () => ({ messages: [{ role: 'user', content: image }, { role: 'user', content: text('Please analyze the image above.') }] }));
  return server;
}

// ---- What SDK 1.x cannot express: the bridge answers these itself ---------------------------------
// Input-required results (SEP-2322: the server asks the client for elicitation, sampling or roots and
// the client retries with `inputResponses` and the opaque `requestState`), the missing-capability error
// (-32021), a raw JSON Schema 2020-12 `inputSchema` (SEP-1613) and `x-mcp-header` parameters (SEP-2243).

// requestState is signed (HMAC-SHA256, a key per process): a client may echo it, never forge it.
const STATE_KEY = randomBytes(32);
const mac = (payload) => createHmac('sha256', STATE_KEY).update(payload).digest('base64url');

function sealState(state) {
  const payload = Buffer.from(JSON.stringify(state)).toString('base64url');
  return `${payload}.${mac(payload)}`;
}

function openState(sealed, tool) {
  const [payload, sig] = String(sealed ?? '').split('.');
  const want = Buffer.from(payload ? mac(payload) : '');
  const got = Buffer.from(sig ?? '');
  if (!payload || want.length !== got.length || !timingSafeEqual(want, got)) {
    throw new McpError(ErrorCode.InvalidParams, 'requestState failed its integrity check');
  }
  const state = JSON.parse(Buffer.from(payload, 'base64url').toString());
  if (state.tool !== tool) throw new McpError(ErrorCode.InvalidParams, 'requestState belongs to another request');
  return state;
}

const ask = {
  elicit: (message, field, type = 'string') => ({ method: 'elicitation/create', params: {
    message, requestedSchema: { type: 'object', properties: { [field]: { type } }, required: [field] },
  } }),
  sample: (prompt, maxTokens) => ({ method: 'sampling/createMessage', params: {
    messages: [{ role: 'user', content: text(prompt) }], maxTokens,
  } }),
  roots: () => ({ method: 'roots/list', params: {} }),
};
const CAPABILITY = { 'elicitation/create': 'elicitation', 'sampling/createMessage': 'sampling', 'roots/list': 'roots' };

// What each kind of answer must look like before the server uses it.
const answered = {
  'elicitation/create': (r) => r?.action === 'accept' && typeof r.content === 'object' && r.content !== null,
  'sampling/createMessage': (r) => typeof r?.content?.text === 'string',
  'roots/list': (r) => Array.isArray(r?.roots),
};

function missingCapability(needed) {
  return new McpError(-32021, `Missing required client capability: ${needed}`, { requiredCapabilities: { [needed]: {} } });
}

/** One round of an input-required flow: the answers to `requests` if all came back valid, else a
 * result asking for them again (only what the client declared it can answer). */
function inputs(ctx, requests, state) {
  const responses = ctx.params.inputResponses ?? {};
  const got = {};
  for (const [key, request] of Object.entries(requests)) {
    if (!answered[request.method](responses[key])) {
      const asked = Object.fromEntries(Object.entries(requests).filter(([, r]) => ctx.caps[CAPABILITY[r.method]]));
      if (Object.keys(asked).length === 0) throw missingCapability(CAPABILITY[Object.values(requests)[0].method]);
      return { result: { resultType: 'input_required', inputRequests: asked, ...(state ? { requestState: sealState(state) } : {}) } };
    }
    got[key] = responses[key];
  }
  return { got };
}

/** A flow that keeps `requestState`: answers count only with the state the server issued echoed back. */
function stateful(ctx, requests, state, done) {
  const r = inputs(ctx.params.requestState === undefined ? { ...ctx, params: {} } : ctx, requests, state);
  return r.result ?? done(r.got);
}

const complete = (t) => ({ content: [text(t)] });
const noArgs = { type: 'object', properties: {} };

const BRIDGE_TOOLS = {
  test_missing_capability: {
    description: 'Needs the sampling capability: -32021 when the client did not declare it',
    run(ctx) {
      if (!ctx.caps.sampling) throw missingCapability('sampling');
      const r = inputs(ctx, { answer: ask.sample('Say hello', 20) });
      return r.result ?? complete(`Sampled: ${r.got.answer.content.text}`);
    },
  },
  test_input_required_result_elicitation: {
    description: 'Asks the user for a name (elicitation), then greets them',
    run(ctx) {
      const r = inputs(ctx, { user_name: ask.elicit('What is your name?', 'name') });
      return r.result ?? complete(`Hello, ${r.got.user_name.content.name}!`);
    },
  },
  test_input_required_result_sampling: {
    description: 'Asks the client to sample an answer',
    run(ctx) {
      const r = inputs(ctx, { capital_question: ask.sample('What is the capital of France?', 100) });
      return r.result ?? complete(`Sampling said: ${r.got.capital_question.content.text}`);
    },
  },
  test_input_required_result_list_roots: {
    description: "Asks for the client's roots",
    run(ctx) {
      const r = inputs(ctx, { client_roots: ask.roots() });
      return r.result ?? complete(`Roots: ${r.got.client_roots.roots.map((x) => x.uri).join(', ')}`);
    },
  },
  test_input_required_result_request_state: {
    description: 'Asks for a confirmation and checks the echoed requestState',
    run(ctx) {
      const state = ctx.params.requestState === undefined ? { tool: this.name } : openState(ctx.params.requestState, this.name);
      return stateful(ctx, { confirm: ask.elicit('Please confirm', 'ok', 'boolean') }, state, () => complete('state-ok: confirmed'));
    },
  },
  test_input_required_result_multiple_inputs: {
    description: 'Asks for a name, a sampled greeting and the roots at once',
    run(ctx) {
      const state = ctx.params.requestState === undefined ? { tool: this.name } : openState(ctx.params.requestState, this.name);
      const requests = { user_name: ask.elicit('What is your name?', 'name'), greeting: ask.sample('Generate a greeting', 50), client_roots: ask.roots() };
      return stateful(ctx, requests, state, (got) => complete(
        `${got.greeting.content.text} ${got.user_name.content.name} (${got.client_roots.roots.length} roots)`));
    },
  },
  test_input_required_result_multi_round: {
    description: 'Two rounds of questions, the answers so far carried in requestState',
    run(ctx) {
      const state = ctx.params.requestState === undefined ? { tool: this.name, round: 1 } : openState(ctx.params.requestState, this.name);
      const step2 = { step2: ask.elicit('Step 2: What is your favorite color?', 'color') };
      if (state.round === 1) {
        return stateful(ctx, { step1: ask.elicit('Step 1: What is your name?', 'name') }, state,
          (got) => inputs({ ...ctx, params: {} }, step2, { tool: this.name, round: 2, name: got.step1.content.name }).result);
      }
      return stateful(ctx, step2, state, (got) => complete(`${state.name} likes ${got.step2.content.color}`));
    },
  },
  test_input_required_result_tampered_state: {
    description: 'Signs its requestState and refuses one that was changed',
    run(ctx) {
      const state = ctx.params.requestState === undefined ? { tool: this.name } : openState(ctx.params.requestState, this.name);
      return stateful(ctx, { confirm: ask.elicit('Please confirm', 'ok', 'boolean') }, state, () => complete('state-ok: untampered'));
    },
  },
  test_input_required_result_capabilities: {
    description: 'Asks only for what the client declared it can answer',
    run(ctx) {
      const r = inputs(ctx, { user_input: ask.elicit('Anything to add?', 'note'), summary: ask.sample('Summarize', 50) });
      return r.result ?? complete('done');
    },
  },
  json_schema_2020_12_tool: {
    description: 'A tool whose inputSchema uses JSON Schema 2020-12 keywords',
    inputSchema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      $defs: { address: { $anchor: 'addressDef', type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } } },
      properties: {
        name: { type: 'string' }, address: { $ref: '#/$defs/address' },
        contactMethod: { type: 'string', enum: ['phone', 'email'] }, phone: { type: 'string' }, email: { type: 'string' },
      },
      allOf: [{ anyOf: [{ required: ['phone'] }, { required: ['email'] }] }],
      if: { properties: { contactMethod: { const: 'phone' } }, required: ['contactMethod'] },
      then: { required: ['phone'] },
      else: { required: ['email'] },
      additionalProperties: false,
    },
    run: (ctx) => complete(JSON.stringify(ctx.params.arguments ?? {})),
  },
  test_custom_header: {
    description: 'Echoes its region, which also travels in the Mcp-Param-Region header',
    inputSchema: { type: 'object', properties: { region: { type: 'string', 'x-mcp-header': 'Region' } }, required: ['region'] },
    run: (ctx) => complete(`region: ${ctx.params.arguments?.region}`),
  },
};
for (const [name, tool] of Object.entries(BRIDGE_TOOLS)) tool.name = name;

const BRIDGE_PROMPTS = {
  test_input_required_result_prompt: {
    description: 'A prompt that first asks the user for context',
    get(ctx) {
      const r = inputs(ctx, { user_context: ask.elicit('What context should the prompt use?', 'context') });
      return r.result ?? { messages: [{ role: 'user', content: text(`Context: ${r.got.user_context.content.context}`) }] };
    },
  },
};

/** The bridge's own answer to `method`, or undefined when the SDK server answers. */
function bridged(method, ctx, sdkResult) {
  const name = ctx.params.name;
  if (method === 'tools/call' && Object.hasOwn(BRIDGE_TOOLS, name)) return BRIDGE_TOOLS[name].run(ctx);
  if (method === 'prompts/get' && Object.hasOwn(BRIDGE_PROMPTS, name)) return BRIDGE_PROMPTS[name].get(ctx);
  if (method === 'tools/list' && sdkResult) {
    const extra = Object.entries(BRIDGE_TOOLS).map(([n, t]) => ({ name: n, description: t.description, inputSchema: t.inputSchema ?? noArgs }));
    return { ...sdkResult, tools: [...sdkResult.tools, ...extra] };
  }
  if (method === 'prompts/list' && sdkResult) {
    const extra = Object.entries(BRIDGE_PROMPTS).map(([n, p]) => ({ name: n, description: p.description }));
    return { ...sdkResult, prompts: [...sdkResult.prompts, ...extra] };
  }
  return undefined;
}

/** A header value as SEP-2243 writes it: plain, or `=?base64?...?=` (strict standard Base64 of UTF-8);
 * null when the Base64 is malformed. */
function headerValue(raw) {
  const encoded = /^=\?base64\?(.*)\?=$/.exec(raw);
  if (!encoded) return raw;
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(encoded[1])) return null;
  return Buffer.from(encoded[1], 'base64').toString('utf8');
}

/** SEP-2243 custom headers: each `x-mcp-header` argument of the tool called must also come, equal, in
 * its `Mcp-Param-*` header (`=?base64?...?=` strictly decoded; anything else is taken literally). */
function customHeaderError(req, body) {
  const tool = body.method === 'tools/call' ? BRIDGE_TOOLS[body.params?.name] : undefined;
  for (const [param, schema] of Object.entries(tool?.inputSchema?.properties ?? {})) {
    const suffix = schema['x-mcp-header'];
    const value = body.params?.arguments?.[param];
    if (suffix === undefined || value === undefined) continue;
    const raw = req.headers[`mcp-param-${suffix.toLowerCase()}`];
    if (raw === undefined) return `Missing Mcp-Param-${suffix} header`;
    const header = headerValue(raw);
    if (header === null) return `Mcp-Param-${suffix} is not valid Base64`;
    if (header !== String(value)) return `Mcp-Param-${suffix} header does not match the body`;
  }
  return null;
}

/** Runs one JSON-RPC request on a fresh SDK 1.x server; `onNotification` gets what it emits meanwhile. */
async function dispatch(method, params, onNotification) {
  const server = fixtures();
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: 'stateless-bridge', version: '1.0.0' });
  client.fallbackNotificationHandler = async (n) => onNotification(n);
  // Progress carries the caller's own token, which this in-memory client did not issue: pass it on.
  client.setNotificationHandler(ProgressNotificationSchema, async (n) => onNotification(n));
  await server.connect(serverSide);
  await client.connect(clientSide);
  try {
    // Of the caller's `_meta`, the SDK server needs only the progress token (the envelope is checked).
    const { _meta, ...rest } = params ?? {};
    const progressToken = _meta?.progressToken;
    const payload = { method, params: { ...rest, ...(progressToken !== undefined ? { _meta: { progressToken } } : {}) } };
    return await client.request(payload, z.object({}).passthrough(), { timeout: 30000 });
  } finally {
    await client.close();
    await server.close();
  }
}

function jsonError(res, status, id, code, message, data) {
  res.writeHead(status, { 'content-type': 'application/json' })
    .end(JSON.stringify({ jsonrpc: '2.0', id, error: { code, message, ...(data !== undefined ? { data } : {}) } }));
}

/** The 2026-07-28 envelope: header and `_meta` present and agreeing, `Mcp-Method`/`Mcp-Name` matching the body. */
function envelopeError(req, body) {
  const params = body.params ?? {};
  const meta = params._meta;
  const header = req.headers['mcp-protocol-version'];
  if (!header) return [400, -32020, 'Missing MCP-Protocol-Version header'];
  if (!meta || !meta[`${META}protocolVersion`] || !meta[`${META}clientCapabilities`]) {
    return [400, -32602, 'Invalid params: _meta with protocolVersion and clientCapabilities is required'];
  }
  if (header !== meta[`${META}protocolVersion`]) return [400, -32020, 'MCP-Protocol-Version header does not match _meta'];
  if (header !== VERSION) {
    return [400, -32022, 'Unsupported protocol version', { supported: [VERSION], requested: String(header) }];
  }
  const mcpMethod = req.headers['mcp-method'];
  if (mcpMethod === undefined) return [400, -32020, 'Missing Mcp-Method header'];
  if (mcpMethod !== body.method) return [400, -32020, 'Mcp-Method header does not match the body'];
  const nameSource = body.method === 'resources/read' ? params.uri
    : ['tools/call', 'prompts/get'].includes(body.method) ? params.name : undefined;
  if (nameSource !== undefined) {
    const raw = req.headers['mcp-name'];
    if (raw === undefined) return [400, -32020, 'Missing Mcp-Name header'];
    if (headerValue(raw) !== nameSource) return [400, -32020, 'Mcp-Name header does not match the body'];
  }
  return null;
}

// DNS rebinding (a web page's script reaching this local server): only local names in Host and Origin.
const LOCAL = new Set(['localhost', '127.0.0.1', '[::1]']);
function isLocal(req) {
  const host = String(req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
  if (!LOCAL.has(host)) return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return LOCAL.has(new URL(origin).hostname.toLowerCase());
  } catch {
    return false;
  }
}

async function handle(req, res, raw) {
  if (!isLocal(req)) {
    jsonError(res, 403, null, ErrorCode.InvalidRequest, 'Host or Origin is not local');
    return;
  }
  if (req.method !== 'POST') {
    res.writeHead(405, { allow: 'POST' }).end();
    return;
  }
  let body;
  try {
    body = JSON.parse(raw);
  } catch {
    jsonError(res, 400, null, ErrorCode.ParseError, 'Parse error');
    return;
  }
  if (Array.isArray(body) || typeof body !== 'object' || body === null || body.jsonrpc !== '2.0') {
    jsonError(res, 400, null, ErrorCode.InvalidRequest, 'Invalid Request');
    return;
  }
  const id = body.id ?? null;
  if (body.id === undefined) {
    res.writeHead(202).end(); // a notification: nothing to answer
    return;
  }
  const headerProblem = customHeaderError(req, body);
  const bad = envelopeError(req, body) ?? (headerProblem ? [400, -32020, headerProblem] : null);
  if (bad) {
    jsonError(res, bad[0], id, bad[1], bad[2], bad[3]);
    return;
  }
  const { method } = body;
  if (method === 'server/discover') {
    respond(res, method, id, {
      supportedVersions: [VERSION],
      capabilities: { tools: {}, prompts: {}, resources: {}, completions: {}, logging: {} },
      _meta: { [`${META}serverInfo`]: { name: 'warden-conformance-fixtures', version: '1.0.0' } },
    });
    return;
  }
  if (!METHODS.has(method)) {
    jsonError(res, 404, id, ErrorCode.MethodNotFound, `Method not found: ${method}`);
    return;
  }
  // Notifications (progress) go out as server-sent events ahead of the result, when the client takes them.
  const streams = String(req.headers.accept ?? '').includes('text/event-stream');
  let sse = false;
  const onNotification = (n) => {
    if (!streams) return;
    if (!sse) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      sse = true;
    }
    res.write(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', ...n })}\n\n`);
  };
  const ctx = { params: body.params ?? {}, caps: body.params._meta[`${META}clientCapabilities`] };
  try {
    let result = bridged(method, ctx);
    if (result === undefined) {
      result = await dispatch(method, body.params, onNotification);
      result = bridged(method, ctx, result) ?? result;
    }
    respond(res, method, id, result, sse);
  } catch (e) {
    const code = e instanceof McpError ? e.code : ErrorCode.InternalError;
    let message = e instanceof McpError ? e.message.replace(/^MCP error -?\d+: /, '') : String(e);
    let data = e instanceof McpError ? e.data : undefined;
    if (method === 'resources/read' && code === ErrorCode.InvalidParams) {
      data = { uri: body.params?.uri }; // SEP-2164: not found names the URI
      message = 'Resource not found';
    }
    const error = { jsonrpc: '2.0', id, error: { code, message, ...(data !== undefined ? { data } : {}) } };
    if (sse) {
      res.end(`event: message\ndata: ${JSON.stringify(error)}\n\n`);
    } else {
      // HTTP statuses of 2026-07-28: 404 for an unknown method, 400 for a missing client capability.
      const status = { [ErrorCode.MethodNotFound]: 404, [-32021]: 400 }[code] ?? 200;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(error));
    }
  }
}

/** Sends a result with what 2026-07-28 adds: `resultType`, and the caching hints on cacheable results. */
function respond(res, method, id, result, sse = false) {
  const stamped = { ...result, resultType: result.resultType ?? 'complete' };
  if (CACHEABLE.has(method)) {
    stamped.ttlMs ??= 0;
    stamped.cacheScope ??= 'private';
  }
  const message = JSON.stringify({ jsonrpc: '2.0', id, result: stamped });
  if (sse) {
    res.end(`event: message\ndata: ${message}\n\n`);
  } else {
    res.writeHead(200, { 'content-type': 'application/json' }).end(message);
  }
}

const httpServer = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const raw = Buffer.concat(chunks).toString();
  record({ method: req.method, path: req.url, headers: req.headers, body: raw });
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    return;
  }
  if (req.url !== '/mcp') {
    res.writeHead(404).end();
    return;
  }
  try {
    await handle(req, res, raw);
  } catch (e) {
    if (!res.headersSent) jsonError(res, 500, null, ErrorCode.InternalError, String(e));
  }
});
httpServer.listen(Number(args.port), '127.0.0.1', () => console.log(`listening on 127.0.0.1:${args.port}`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { httpServer.close(); process.exit(0); });
