"""kong/kong.yml and kong/docker-compose.yml, checked as far as possible without Kong (no Docker here).

Rules checked come from Kong's own schemas: kong/db/schema/entities/filter_chains.lua (a chain has a
non-empty `filters` list, each with a `name` and an optional JSON `config`, attached to a service or a
route), kong/runloop/wasm/plugins.lua (a Wasm filter as a plugin, 3.9+: no consumer, http protocols,
on a service or route), kong/runloop/wasm.lua (filter `<name>` is `<name>.wasm` in wasm_filters_path,
with `<name>.meta.json` beside it), and the nginx template (`KONG_NGINX_WASM_SHM_KV_<NAME>` declares
`shm_kv <name> <size>`; ngx_wasm_module requires at least 15k).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path, PurePosixPath

import jsonschema
import pytest
import yaml
from conftest import ROOT

KONG = ROOT / "kong"
CLI = ROOT / "target" / "release" / "warden"
WASM_BUILD = "target/wasm32-wasip1/release/warden.wasm"  # the Makefile's WASM
FILTER = "warden"


def kong_yml() -> dict:
    return yaml.safe_load((KONG / "kong.yml").read_text())


def compose() -> dict:
    return yaml.safe_load((KONG / "docker-compose.yml").read_text())


def schema() -> dict:
    return json.loads((KONG / "warden.meta.json").read_text())["config_schema"]


def chains_and_plugins(doc: dict) -> tuple[list[tuple[str, dict]], list[tuple[str, dict]]]:
    """(where, entity) for every filter chain and every plugin, top level or nested in services/routes."""
    chains, plugins = [], []

    def attached_to(entity: dict, parent: str | None) -> str | None:
        """Nested under a service or route, or (top level) naming one."""
        return parent or next((k for k in ("service", "route") if entity.get(k)), None)

    def visit(entity: dict, where: str, parent: str | None) -> None:
        for i, chain in enumerate(entity.get("filter_chains", [])):
            chains.append((f"{where}.filter_chains[{i}]", dict(chain, _parent=attached_to(chain, parent))))
        for i, plugin in enumerate(entity.get("plugins", [])):
            plugins.append((f"{where}.plugins[{i}]", dict(plugin, _parent=attached_to(plugin, parent))))
        for i, route in enumerate(entity.get("routes", [])):
            visit(route, f"{where}.routes[{i}]", "route")

    visit(doc, "", None)
    for i, svc in enumerate(doc.get("services", [])):
        visit(svc, f"services[{i}]", "service")
    return chains, plugins


def warden_configs() -> list[tuple[str, dict]]:
    chains, plugins = chains_and_plugins(kong_yml())
    out = []
    for where, chain in chains:
        for j, f in enumerate(chain["filters"]):
            if f["name"] == FILTER:
                out.append((f"{where}.filters[{j}]", f.get("config")))
    for where, plugin in plugins:
        if plugin["name"] == FILTER:
            out.append((where, plugin.get("config")))
    return out


def test_kong_yml_is_declarative_config_30():
    doc = kong_yml()
    assert doc["_format_version"] == "3.0"
    chains, plugins = chains_and_plugins(doc)
    assert any(any(f["name"] == FILTER for f in c["filters"]) for _, c in chains), "no filter chain"
    assert any(p["name"] == FILTER for _, p in plugins), "no plugin example"


def test_filter_chains_follow_kongs_entity_schema():
    chains, _ = chains_and_plugins(kong_yml())
    for where, chain in chains:
        assert chain["_parent"] in ("service", "route"), f"{where}: a chain needs a service or a route"
        assert isinstance(chain["filters"], list) and chain["filters"], f"{where}: filters must be non-empty"
        for f in chain["filters"]:
            assert set(f) <= {"name", "enabled", "config"}, f"{where}: unknown filter keys {set(f)}"
            assert isinstance(f.get("enabled", True), bool)
        assert set(chain) - {"_parent"} <= {"name", "enabled", "filters", "tags", "id", "service", "route"}


def test_plugins_follow_kongs_wasm_plugin_schema():
    _, plugins = chains_and_plugins(kong_yml())
    for where, plugin in plugins:
        if plugin["name"] != FILTER:
            continue
        assert plugin["_parent"] in ("service", "route"), f"{where}: a Wasm plugin needs a service or route"
        assert "consumer" not in plugin, f"{where}: Wasm plugins take no consumer"
        assert set(plugin.get("protocols", ["http", "https"])) <= {"http", "https"}


@pytest.mark.parametrize("where, config", warden_configs(), ids=lambda v: v if isinstance(v, str) else "")
def test_each_warden_config_passes_the_schema_and_the_engine(where, config, tmp_path):
    assert isinstance(config, dict), f"{where}: config must be a JSON object (Kong 3.5+ with meta.json)"
    errors = [e.message for e in jsonschema.Draft4Validator(schema()).iter_errors(config)]
    assert not errors, f"{where}: {errors}"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert CLI.exists(), f"{CLI} missing: run `make build` first"
    res = subprocess.run([str(CLI), "check", str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"{where}: the engine refuses it: {res.stdout}{res.stderr}"


def test_warden_configs_have_no_empty_lists():
    """Kong re-encodes a filter's config with cjson before passing it on; an empty Lua table may come
    out as `{}`, which Warden refuses where a list is expected. Omit the key instead (lists default to
    empty)."""

    def empties(v, at):
        if isinstance(v, list):
            if not v:
                yield at
            for i, x in enumerate(v):
                yield from empties(x, f"{at}[{i}]")
        elif isinstance(v, dict):
            for k, x in v.items():
                yield from empties(x, f"{at}.{k}")

    for where, config in warden_configs():
        assert not list(empties(config, where))


def kong_service() -> dict:
    return compose()["services"]["kong"]


def env() -> dict:
    e = kong_service()["environment"]
    return e if isinstance(e, dict) else dict(item.split("=", 1) for item in e)


def mounts() -> dict[str, str]:
    """Container path -> host path (relative to kong/) of the kong service's bind mounts."""
    out = {}
    for v in kong_service()["volumes"]:
        # Long syntax only: a missing file must fail `up`, not become an empty directory in its place.
        assert isinstance(v, dict) and v["type"] == "bind", v
        assert v.get("bind", {}).get("create_host_path") is False, v
        out[v["target"]] = v["source"]
    return out


def test_compose_runs_a_kong_with_wasm_between_34_and_310():
    image = kong_service()["image"]
    m = re.fullmatch(r"kong(?:/kong-gateway)?:(\d+)\.(\d+)(?:\.\d+)*(?:-[\w.]+)?", image)
    assert m, f"unexpected Kong image {image!r}"
    version = (int(m.group(1)), int(m.group(2)))
    assert (3, 9) <= version <= (3, 10), f"{image}: kong.yml uses the plugin form (3.9+); 3.11 removed Wasm"
    e = env()
    assert e["KONG_DATABASE"] == "off"
    assert e["KONG_WASM"] == "on"
    for log in ("KONG_PROXY_ACCESS_LOG", "KONG_ADMIN_ACCESS_LOG"):
        assert e[log] == "/dev/stdout"
    for log in ("KONG_PROXY_ERROR_LOG", "KONG_ADMIN_ERROR_LOG"):
        assert e[log] in ("/dev/stderr", "/dev/stdout")


def test_compose_mounts_the_filter_its_schema_and_the_config():
    e, m = env(), mounts()
    filters = PurePosixPath(e["KONG_WASM_FILTERS_PATH"])
    wasm, meta = str(filters / f"{FILTER}.wasm"), str(filters / f"{FILTER}.meta.json")
    assert wasm in m and meta in m, f"{FILTER}.wasm and {FILTER}.meta.json must be in {filters}: {m}"
    assert (KONG / m[wasm]).resolve() == (ROOT / WASM_BUILD).resolve()
    assert (KONG / m[meta]).resolve() == (KONG / "warden.meta.json").resolve()
    assert (KONG / m[e["KONG_DECLARATIVE_CONFIG"]]).resolve() == (KONG / "kong.yml").resolve()
    # The filter's name is the .wasm file's name: the crate builds warden.wasm.
    assert Path(WASM_BUILD).stem == FILTER
    assert 'name = "warden"' in (ROOT / "plugin" / "Cargo.toml").read_text()


def test_compose_declares_the_shm_zone_the_filter_uses():
    source = (ROOT / "plugin" / "src" / "gateway.rs").read_text()
    zone = re.search(r'pub const SHM_ZONE: &str = "([^"]+)";', source).group(1)
    sizes = {k[len("KONG_NGINX_WASM_SHM_KV_"):].lower(): v for k, v in env().items()
             if k.startswith("KONG_NGINX_WASM_SHM_KV_")}
    assert zone in sizes, f"no KONG_NGINX_WASM_SHM_KV_{zone.upper()} (shm_kv {zone}); the filter traps without it"
    m = re.fullmatch(r"(\d+)([km]?)", str(sizes[zone]).lower())
    assert m, sizes[zone]
    size = int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2)]
    assert size >= 15 * 1024, "ngx_wasm_module needs at least 15k per zone"


def test_compose_runs_the_demo_upstream_and_idp():
    services = compose()["services"]
    upstream = services["upstream"]
    assert (ROOT / "examples" / "upstream" / "echo.py").exists()
    port = upstream["command"][upstream["command"].index("--port") + 1]
    urls = {s["url"] for s in kong_yml()["services"]}
    assert urls == {f"http://127.0.0.1:{port}"}, urls
    assert upstream.get("network_mode") == "service:kong"
    idp = services["idp"]
    assert idp.get("network_mode") == "service:kong"
    source, target = idp["volumes"][0].split(":")[:2]
    assert (KONG / source).resolve() == (ROOT / "examples" / "idp").resolve()
    command = " ".join(idp["command"])
    assert f"{target}/server.js" in command and "node server.js --port 9000" in command
    assert f"{target}/package-lock.json" in command and "npm ci" in command
    pkg = json.loads((ROOT / "examples" / "idp" / "package.json").read_text())
    assert pkg.get("main") == "server.js"
    assert (ROOT / "examples" / "idp" / "package-lock.json").exists()
    # server.js must run alone from the copy: it imports packages and node builtins only.
    imports = re.findall(r"^import .* from '([^']+)';", (ROOT / "examples" / "idp" / "server.js").read_text(), re.M)
    assert imports and not [i for i in imports if i.startswith(".")], imports


def test_kong_yml_config_answers_as_kong_readme_says(envoys):
    """kong/README.md's curl examples, run against the kong.yml config in a real gateway (Envoy here;
    the engine and the filter are the same in Kong)."""
    from conftest import seen_by_upstream

    (_, config), *_ = warden_configs()
    gw = envoys.gateway(config, "kong-yml")
    r = gw.get("/orders/7")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="warden"'
    key = {"x-api-key": "demo-kong-key"}
    r = gw.get("/orders/7", headers=key)
    assert r.status_code == 200
    assert seen_by_upstream(r)["headers"]["x-auth-subject"] == "svc:demo"
    r = gw.get("/admin", headers=key)
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert json.loads(r.text.strip())["error"] == "insufficient_scope"


def test_kong_yml_config_accepts_the_demo_idps_tokens(upstream, tmp_path):
    """kong/README.md's token walk-through with kong.yml's config in a real gateway (Envoy here, the
    `idp` cluster standing for Kong's host:port): the IdP's keys are fetched, its JWT accepted."""
    import sys
    import time

    import requests
    from conftest import WASM, Gateway, bearer, seen_by_upstream

    sys.path.insert(0, str(ROOT / "examples" / "idp"))
    sys.path.insert(0, str(ROOT / "envoy"))
    import idp as demo_idp
    import render

    from test_idp import free_port

    (_, config), *_ = warden_configs()
    idp = demo_idp.DemoIdP(port=free_port(), log_path=tmp_path / "idp.log").start()
    envoy = None
    try:
        # The same config, with the IdP on a free port instead of 9000 (the tests may run in parallel).
        config = json.loads(json.dumps(config).replace("127.0.0.1:9000", f"127.0.0.1:{idp.port}"))
        bootstrap = tmp_path / "envoy.yaml"
        bootstrap.write_text(render.render(config, wasm=WASM, listen_port=0, admin_port=0,
                                           upstream_port=upstream.port, idp_port=idp.port))
        envoy = render.Envoy(bootstrap=bootstrap, log_path=tmp_path / "envoy.log", concurrency=2)
        envoy.start().wait_ready()
        gw = Gateway(envoy, envoy.listener_port())
        token = idp.token(scope="orders:read orders:write")
        deadline = time.monotonic() + 15
        while True:  # the first JWKS fetch happens in the background
            r = gw.get("/orders/42", headers=bearer(token))
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert seen_by_upstream(r)["headers"]["x-auth-subject"] == "demo-agent"
        assert gw.get("/admin", headers=bearer(token)).status_code == 403
    finally:
        if envoy:
            envoy.stop()
        idp.stop()
