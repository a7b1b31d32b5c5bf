// The MCP conformance fixture server: the tools, resources, prompts and completions that the server
// scenarios of `@modelcontextprotocol/conformance` call (`test_simple_text`, `test://static-text`,
// `test_simple_prompt`, ...), on the TypeScript SDK 1.x (`@modelcontextprotocol/sdk`). It speaks the
// stateless wire of protocol 2026-07-28 (SEP-2575: no initialize, per-request `_meta`, `Mcp-Method` /
// `Mcp-Name` headers) at /mcp, which SDK 1.x does not know yet: this file checks the envelope and hands
// each request to an SDK 1.x `McpServer` over an in-memory transport (a fresh server per request, so
// nothing is shared between requests), then stamps what 2026-07-28 adds to a result (`resultType`,
// the SEP-2549 caching hints). tests/test_mcp_conformance.py runs the scenarios against it, alone and
// behind Envoy + Warden. Every request received (headers and body) is appended as one JSON line to --log.
//
//   node conformance-server.mjs --port PORT --log FILE

import { appendFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
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
    argsSchema: { arg1: z.string().describe('First test argument'), arg2: z.string().describe('Second test argument') },
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

// completion/complete: the SDK completes prompt arguments only when the argument schema says how; this
// fixture answers for any argument, from a fixed list filtered by what was typed.
const COMPLETIONS = ['paris', 'park', 'party', 'test-value-1', 'test-value-2'];

/** Runs one JSON-RPC request on a fresh SDK 1.x server; `onNotification` gets what it emits meanwhile. */
async function dispatch(method, params, onNotification) {
  const server = fixtures();
  server.server.setRequestHandler(
    z.object({ method: z.literal('completion/complete'), params: z.any() }),
    async (req) => {
      const typed = String(req.params?.argument?.value ?? '');
      const values = COMPLETIONS.filter((v) => v.startsWith(typed));
      return { completion: { values, total: values.length, hasMore: false } };
    },
  );
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: 'stateless-bridge', version: '1.0.0' });
  client.fallbackNotificationHandler = async (n) => onNotification(n);
  await server.connect(serverSide);
  await client.connect(clientSide);
  try {
    // The progress token is the caller's: the bridge forwards `_meta` as it came, unrenamed.
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
    let name = req.headers['mcp-name'];
    if (name === undefined) return [400, -32020, 'Missing Mcp-Name header'];
    const encoded = /^=\?base64\?(.*)\?=$/.exec(name);
    if (encoded) name = Buffer.from(encoded[1], 'base64').toString('utf8');
    if (name !== nameSource) return [400, -32020, 'Mcp-Name header does not match the body'];
  }
  return null;
}

async function handle(req, res, raw) {
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
  const bad = envelopeError(req, body);
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
    res.write(`event: message\ndata: ${JSON.stringify(n)}\n\n`);
  };
  try {
    const result = await dispatch(method, body.params, onNotification);
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
      res.writeHead(code === ErrorCode.MethodNotFound ? 404 : 200, { 'content-type': 'application/json' }).end(JSON.stringify(error));
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
