// An MCP server on the TypeScript SDK 1.x (`@modelcontextprotocol/sdk`), stateless streamable HTTP at
// /mcp, with the demo's three tools. The SDK 1.x server acts on the JSON-RPC body and ignores the
// `Mcp-Method` / `Mcp-Name` headers of protocol 2026-07-28: a gateway that authorized on those headers
// would let a body call a tool its header does not name. tests/test_mcp_clients.py puts it behind
// Warden and checks that such a request never reaches it: every request it receives (headers and
// body) is appended as one JSON line to --log, and every tool it runs is logged too.
//
//   node server-sdk1.mjs --port PORT --log FILE

import { appendFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

const { values: args } = parseArgs({ options: { port: { type: 'string' }, log: { type: 'string' } } });
const record = (entry) => appendFileSync(args.log, `${JSON.stringify(entry)}\n`);

function mcpServer() {
  const server = new McpServer({ name: 'orders-mcp-ts-sdk1', version: '1.0.0' });
  const tool = (name, shape, run) => server.registerTool(name, { description: name, inputSchema: shape }, async (input) => {
    record({ ran: name, input });
    return { content: [{ type: 'text', text: JSON.stringify(run(input)) }] };
  });
  tool('read_orders', { customer: z.string().optional() }, ({ customer }) => ({ orders: [], customer }));
  tool('refund_order', { order_id: z.string(), amount_cents: z.number() }, (x) => ({ refunded: x }));
  tool('delete_customer', { customer: z.string() }, ({ customer }) => ({ deleted: customer }));
  return server;
}

const httpServer = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const text = Buffer.concat(chunks).toString();
  record({ method: req.method, path: req.url, headers: req.headers, body: text });
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    return;
  }
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    res.writeHead(400).end();
    return;
  }
  // Stateless: a server and a transport per request (the SDK's documented stateless pattern).
  const server = mcpServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res, body);
});
httpServer.listen(Number(args.port), '127.0.0.1', () => console.log(`listening on 127.0.0.1:${args.port}`));
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { httpServer.close(); process.exit(0); });
