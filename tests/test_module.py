"""The shipped warden.wasm carries code and data only: no `name` section (function names) and no DWARF
debug sections. Both are custom sections no proxy-wasm host reads (Envoy and Kong find the filter by its
exports); they only make the file larger. The release profile strips them (`strip = true`, passed to
wasm-ld as `--strip-all`); a `[profile.release.package.warden]` table without its own `strip = true`
silently turns that into `--strip-debug`, which kept a 660 KB `name` section (22 % of the module).

The sections are read by V8 (node's `WebAssembly.Module.customSections`), the engine Envoy runs the
filter in.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import wasmtime

from conftest import WASM

NODE = shutil.which("node") or "node"

# Custom sections a toolchain writes for debuggers and profilers: the function names and the DWARF
# sections LLVM emits for wasm (DWARF 4 and 5), plus the pointers to separate debug files.
DEBUG_SECTIONS = [
    "name",
    ".debug_abbrev", ".debug_addr", ".debug_aranges", ".debug_frame", ".debug_info", ".debug_line",
    ".debug_line_str", ".debug_loc", ".debug_loclists", ".debug_macinfo", ".debug_macro",
    ".debug_names", ".debug_pubnames", ".debug_pubtypes", ".debug_ranges", ".debug_rnglists",
    ".debug_str", ".debug_str_offsets", ".debug_types",
    "external_debug_info", "sourceMappingURL",
]

SECTION_SIZES_JS = """
const m = new WebAssembly.Module(require('fs').readFileSync(process.argv[1]));
const names = JSON.parse(process.argv[2]);
console.log(JSON.stringify(Object.fromEntries(names.map(n =>
  [n, WebAssembly.Module.customSections(m, n).reduce((sum, s) => sum + s.byteLength, 0)]))));
"""


def debug_sections(wasm: Path) -> dict[str, int]:
    """Bytes in each debug custom section the module carries (the absent ones left out)."""
    out = subprocess.run([NODE, "-e", SECTION_SIZES_JS, str(wasm), json.dumps(DEBUG_SECTIONS)],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    return {name: size for name, size in json.loads(out).items() if size}


def test_the_shipped_module_has_no_names_or_debug_info():
    assert WASM.exists(), f"{WASM} missing: run `make build` first"
    assert debug_sections(WASM) == {}


def test_the_check_finds_a_name_section(tmp_path):
    """The same check on a module that has one: wat2wasm writes a `name` section for `$` names."""
    named = tmp_path / "named.wasm"
    named.write_bytes(wasmtime.wat2wasm("(module (func $warden_function))"))
    sections = debug_sections(named)
    assert list(sections) == ["name"], sections
