"""The built module imports no host function that stops it loading on Kong.

ngx_wasm_module refuses to instantiate a module whose import of one of its host functions has another
signature, and every nginx worker then exits (`gateway::NEVER_IMPORTED`). One .wasm serves Envoy and
Kong, so a call gated at run time still imports the function: the import itself must be absent."""

from __future__ import annotations

import re
from pathlib import Path

import wasmtime

ROOT = Path(__file__).resolve().parent.parent
WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "warden.wasm"


def never_imported() -> list[str]:
    """`NEVER_IMPORTED` in plugin/src/gateway.rs (each name spelled as two `concat!` halves)."""
    src = (ROOT / "plugin" / "src" / "gateway.rs").read_text()
    body = re.search(r"pub const NEVER_IMPORTED: \[&str; \d+\] = \[(.*?)\];", src, re.S)
    assert body, "NEVER_IMPORTED not found in gateway.rs"
    names = ["".join(re.findall(r'"([^"]*)"', c)) for c in re.findall(r"concat!\((.*?)\)", body.group(1))]
    assert names and all(n.startswith("proxy_") for n in names), names
    return names


def test_the_module_does_not_import_what_kong_refuses():
    assert WASM.exists(), f"{WASM} missing: run `make build` first"
    module = wasmtime.Module.from_file(wasmtime.Engine(), str(WASM))
    imported = {imp.name for imp in module.imports if imp.module == "env"}
    assert "proxy_log" in imported  # the import section was read
    assert not imported & set(never_imported())
