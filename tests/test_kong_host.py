"""Gateway detection, checked on a real host: the filter running in Envoy finds out it is Envoy; and
the built warden.wasm links on Kong's Wasm host (ngx_wasm_module): every `env` import is a host function
it declares, with the same types (tests/fixtures/ngx_wasm_module_host_functions.json).

The Kong side of every host difference (detection, shared-data cas and zone, dispatch, `:dispatch_status`,
peer-certificate digest, client address, trailing newline) is tested natively against a double that
answers like ngx_wasm_module: `cargo test -p warden --lib gateway` (plugin/src/gateway.rs). Kong itself
cannot run here (no Docker); kong/README.md says how to run it.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import wasmtime

from conftest import WASM

HOST_FUNCTIONS = Path(__file__).parent / "fixtures" / "ngx_wasm_module_host_functions.json"

# Imports ngx_wasm_module declares but does not implement (a call traps), each with why Warden may
# import it: never called, or called only where `HostRules` says the host has it.
NYI_IMPORTS_ALLOWED = {
    "env.proxy_call_foreign_function": "Envoy's verify_signature; HostRules::foreign_functions is false on Kong",
    "env.proxy_done": "linked by the SDK, never called by Warden",
    "env.proxy_get_status": "linked by the SDK (gRPC status), never called by Warden",
    "env.proxy_close_stream": "linked by the SDK, never called by Warden",
    "env.proxy_resolve_shared_queue": "linked by the SDK, never called by Warden",
    "env.proxy_grpc_call": "linked by the SDK, Warden makes no gRPC calls",
    "env.proxy_grpc_stream": "linked by the SDK, Warden makes no gRPC calls",
    "env.proxy_grpc_send": "linked by the SDK, Warden makes no gRPC calls",
    "env.proxy_grpc_cancel": "linked by the SDK, Warden makes no gRPC calls",
    "env.proxy_grpc_close": "linked by the SDK, Warden makes no gRPC calls",
}


def env_imports(module: wasmtime.Module) -> dict[str, tuple[list[str], list[str]]]:
    return {
        f"{i.module}.{i.name}": ([str(t) for t in i.type.params], [str(t) for t in i.type.results])
        for i in module.imports
        if i.module == "env"
    }


def kong_link_errors(module: wasmtime.Module) -> list[str]:
    """Why ngx_wasm_module (at each of Kong's pins) would refuse the module or trap on an import."""
    imports = env_imports(module)
    errors = []
    for pin, table in json.loads(HOST_FUNCTIONS.read_text())["pins"].items():
        functions = table["functions"]
        for name, types in sorted(imports.items()):
            declared = functions.get(name)
            if declared is None:
                errors.append(f"Kong {pin}: missing host function {name}")
            elif types != (declared["params"], declared["results"]):
                errors.append(f"Kong {pin}: {name} imported as {types}, declared {declared['params']} -> {declared['results']}")
            elif not declared["implemented"] and name not in NYI_IMPORTS_ALLOWED:
                errors.append(f"Kong {pin}: {name} traps when called (NYI)")
    return errors


def test_every_import_links_on_both_kong_pins():
    """A module importing a name ngx_wasm_module lacks, or a name with other types, fails to
    instantiate there and every worker exits (seen by hand: importing `proxy_get_log_level`, which the
    SDK declares `(i32) -> i32` and ngx_wasm_module `(i32, i32) -> i32`). One .wasm serves both
    gateways, so no run-time check can help: the import must not be there."""
    module = wasmtime.Module.from_file(wasmtime.Engine(), str(WASM))
    assert "env.proxy_log" in env_imports(module)
    assert kong_link_errors(module) == []


def test_the_import_check_refuses_what_kong_refuses():
    """The check fails on a module importing what Kong refused by hand, and on unknown names."""
    wat = """(module
      (import "env" "proxy_log" (func (param i32 i32 i32) (result i32)))
      (import "env" "proxy_get_log_level" (func (param i32) (result i32)))
      (import "env" "proxy_set_metric_value" (func (param i32 i64) (result i32)))
      (import "env" "proxy_not_a_host_function" (func)))"""
    module = wasmtime.Module(wasmtime.Engine(), wasmtime.wat2wasm(wat))
    errors = "\n".join(kong_link_errors(module))
    for pin in ("3.9", "3.10"):
        assert f"Kong {pin}: env.proxy_get_log_level imported as" in errors, errors
        assert f"Kong {pin}: env.proxy_set_metric_value traps" in errors, errors
        assert f"Kong {pin}: missing host function env.proxy_not_a_host_function" in errors, errors
    assert "proxy_log" not in errors.replace("proxy_get_log_level", ""), errors


def test_the_filter_detects_envoy(gateway):
    deadline = time.monotonic() + 10
    while "configuration loaded" not in gateway.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    loaded = re.findall(r"warden: configuration loaded \(gateway: (\w+)\)", gateway.log())
    assert loaded, "no configuration-loaded line:\n" + gateway.log()[-2000:]
    assert set(loaded) == {"envoy"}, loaded
