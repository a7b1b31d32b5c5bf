// Runs a wasm32-wasip1 command under node's V8 (the engine Envoy embeds) and reports the compile time.
// node model/wasm_timing.js target/wasm32-wasip1/release/examples/risk_timing.wasm
'use strict';
const fs = require('fs');
const { WASI } = require('wasi');
const bytes = fs.readFileSync(process.argv[2]);
(async () => {
  const t0 = process.hrtime.bigint();
  const module = await WebAssembly.compile(bytes);
  const compileMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const wasi = new WASI({ version: 'preview1', args: ['risk_timing'], env: {} });
  const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
  console.error(JSON.stringify({ wasm_bytes: bytes.length, compile_ms: Math.round(compileMs) }));
  wasi.start(instance);
})();
