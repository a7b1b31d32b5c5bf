"""kong/warden.meta.json against Kong's own rules, and the config schema against the engine's parser.

Kong (3.4 to 3.10) reads `<filter>.meta.json` beside the `.wasm` and validates it with
`json_schema.validate(meta, FILTER_META_SCHEMA)` where FILTER_META_SCHEMA is
`{type: object, properties: {config_schema: <draft 4 meta-schema>}}` (kong/runloop/wasm.lua), then
validates every filter `config` against `config_schema` with lua-resty-ljsonschema (draft 4 only;
kong/db/schema/json.lua refuses any other `$schema`). Here the same checks run with Python's
`jsonschema` Draft4Validator, and every config the project ships (examples/, the integration tests'
own config, tests/fixtures/kong/valid) must validate while every invalid fixture must not.

The schema and the engine must agree: `warden check` (Engine::from_json, the filter's own parser)
accepts exactly the fixtures the schema accepts, and names the same field.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
from conftest import ROOT, warden_config

META = ROOT / "kong" / "warden.meta.json"
CLI = ROOT / "target" / "release" / "warden"
FIXTURES = ROOT / "tests" / "fixtures" / "kong"
DRAFT_4 = "http://json-schema.org/draft-04/schema#"

# kong/runloop/wasm.lua: FILTER_META_SCHEMA, with json_schema.metaschema = the draft 4 meta-schema
# (resty.ljsonschema.metaschema).
KONG_FILTER_META_SCHEMA = {
    "type": "object",
    "properties": {"config_schema": jsonschema.Draft4Validator.META_SCHEMA},
}


def meta() -> dict:
    return json.loads(META.read_text())


def validator() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(meta()["config_schema"])


def shipped_configs() -> list[Path]:
    """Every complete JSON config in the repo that a user or test feeds the filter."""
    found = sorted(ROOT.glob("examples/**/*.json")) + sorted(ROOT.glob("envoy/**/*.json"))
    return [p for p in found if "node_modules" not in p.parts and p.name != "package.json"
            and p.name != "package-lock.json"]


def valid_fixtures() -> list[Path]:
    return sorted((FIXTURES / "valid").glob("*.json"))


def invalid_fixtures() -> list[Path]:
    return sorted((FIXTURES / "invalid").glob("*.json"))


def warden_path(path) -> str:
    """A jsonschema error path in the engine's notation: `providers[0].claims`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def check(path: Path) -> subprocess.CompletedProcess:
    assert CLI.exists(), f"{CLI} missing: run `make build` first"
    return subprocess.run([str(CLI), "check", str(path)], capture_output=True, text=True, timeout=60)


def test_warden_schema_prints_the_checked_in_file():
    assert CLI.exists(), f"{CLI} missing: run `make build` first"
    res = subprocess.run([str(CLI), "schema"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout == META.read_text(), "kong/warden.meta.json is stale: run `make schema`"


def test_meta_json_passes_kongs_filter_meta_schema():
    doc = meta()
    jsonschema.Draft4Validator.check_schema(KONG_FILTER_META_SCHEMA)
    jsonschema.Draft4Validator(KONG_FILTER_META_SCHEMA).validate(doc)
    # kong/db/schema/json.lua: a schema declaring any $schema other than draft 4 is refused.
    assert doc["config_schema"]["$schema"].rstrip("#") == DRAFT_4.rstrip("#")
    assert set(doc) == {"config_schema", "metrics"}
    # Kong's Prometheus plugin (wasmx.lua) labels `pw:warden:<name>.label.value` metrics with these
    # PCRE patterns: the second group is the value, the first is cut from the name.
    name = "pw:warden:warden_decisions_total.verdict.allow.reason.ok.route.read-order"
    found = {}
    for p in doc["metrics"]["label_patterns"]:
        m = re.search(p["pattern"], name)
        if m:
            found[p["label"]] = m.group(2)
            name = name.replace(m.group(1), "")
    assert found == {"verdict": "allow", "reason": "ok", "route": "read-order"}
    assert name.replace(":", "_") == "pw_warden_warden_decisions_total"


def test_config_schema_is_a_valid_draft4_schema_and_closed():
    schema = meta()["config_schema"]
    jsonschema.Draft4Validator.check_schema(schema)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    text = json.dumps(schema)
    for later_keyword in ('"$defs"', '"const"', '"$ref"', '"if"', '"prefixItems"', '"$id"'):
        assert later_keyword not in text, f"{later_keyword} is not draft 4"


def test_kong_meta_schema_refuses_a_broken_schema():
    """The replica of Kong's check is not vacuous: a non-draft-4 schema fails it."""
    bad = {"config_schema": {"type": "objekt", "required": []}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(KONG_FILTER_META_SCHEMA).validate(bad)


def test_there_are_configs_and_fixtures_to_check():
    assert len(valid_fixtures()) >= 3
    assert len(invalid_fixtures()) >= 10
    assert shipped_configs(), "examples/ holds no JSON config"


@pytest.mark.parametrize("path", shipped_configs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_configs_validate(path):
    doc = json.loads(path.read_text())
    errors = [f"{warden_path(e.absolute_path)}: {e.message}" for e in validator().iter_errors(doc)]
    assert not errors, f"{path.relative_to(ROOT)} fails kong/warden.meta.json: {errors}"


def test_integration_test_configs_validate(keys, api_key):
    for mode in ("enforce", "shadow"):
        validator().validate(warden_config(keys, api_key, mode))


@pytest.mark.parametrize("path", valid_fixtures(), ids=lambda p: p.stem)
def test_valid_fixture_passes_schema_and_engine(path):
    validator().validate(json.loads(path.read_text()))
    res = check(path)
    assert res.returncode == 0, f"schema accepts {path.name} but the engine refuses it: {res.stdout}{res.stderr}"


@pytest.mark.parametrize("path", invalid_fixtures(), ids=lambda p: p.stem)
def test_invalid_fixture_fails_schema_and_engine_at_the_same_field(path):
    doc = json.loads(path.read_text())
    errors = list(validator().iter_errors(doc))
    assert errors, f"kong/warden.meta.json accepts {path.name}"
    res = check(path)
    assert res.returncode == 1, f"the engine accepts {path.name} but the schema refuses it"
    # Both name the same place: the engine's error path starts with (or is) the schema error's path.
    where = {warden_path(e.absolute_path) for e in errors}
    named = res.stdout + res.stderr
    assert any(f"`{w}" in named or (w == "" and "invalid config" in named) for w in where), (
        f"schema errors at {where}, engine says: {named}"
    )
