// Runs a wasm32-wasip1 timing example (plugin/examples/*_timing.rs, pipeline_profile.rs) under node's
// V8, the engine Envoy embeds: `node bench/wasi_run.js FILE.wasm [ARGS...]`; the example gets ARGS
// and the NO_RISK, NO_RECORD and COLD variables of this environment. The library's proxy-wasm
// exports import the host's functions; the examples never call them, so each is a stub answering 0.
const { WASI } = require('wasi');
const bytes = require('fs').readFileSync(process.argv[2]);
const passed = Object.fromEntries(['NO_RISK', 'NO_RECORD', 'COLD']
  .filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
const wasi = new WASI({ version: 'preview1', args: process.argv.slice(2), env: passed });
const env = new Proxy({}, { get: () => () => 0 });
WebAssembly.instantiate(bytes, { ...wasi.getImportObject(), env })
  .then(({ instance: { exports: e } }) => wasi.start({ exports: { memory: e.memory, _start: e._start } }));
