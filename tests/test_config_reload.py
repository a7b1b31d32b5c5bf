"""Config changes under load: a real Envoy (--concurrency 2) whose listener comes from an LDS file is
given a new Warden config (the file is replaced atomically, as a control plane would) while wrk sends
authorised requests. No request may fail, the verified-token cache must not carry a token the new
config refuses, and shared state (rate-limit buckets under the deployment's slot key) must survive."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import AUDIENCE, ISSUER, WASM, Gateway, bearer, render

LIMIT = 3


def config(keys, trusted: list[dict], generation: int) -> dict:
    return {
        "providers": [{"name": "corp", "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": {"keys": trusted}}],
        "routes": [
            {"name": "limited", "methods": ["GET"], "path": "/limited"},
            {"name": "any", "prefix": "/", "mode": "enforce"},
        ],
        "rate_limits": {"policies": [{"name": "per-subject", "key": "subject", "limit": LIMIT, "window_s": 3600,
                                      "routes": ["limited"]}]},
        # Something visible changes with each generation (the audit flag), so Envoy sees a new config.
        "audit": {"enabled": generation % 2 == 0},
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lds_bootstrap(cfg: dict, port: int, upstream_port: int, lds: Path, transform=lambda text: text,
                  **render_args) -> tuple[str, str]:
    """The shipped bootstrap (`render_args` as `render.render` takes them, then `transform`ed) with its
    listener moved to an LDS file: (bootstrap, LDS document)."""
    doc = yaml.safe_load(transform(
        render.render(cfg, wasm=WASM, listen_port=port, admin_port=0, upstream_port=upstream_port, **render_args)
    ))
    listener = doc["static_resources"].pop("listeners")[0]
    listener["@type"] = "type.googleapis.com/envoy.config.listener.v3.Listener"
    doc["node"] = {"id": "warden-test", "cluster": "warden-test"}
    doc["dynamic_resources"] = {"lds_config": {"path_config_source": {"path": str(lds)}, "resource_api_version": "V3"}}
    return yaml.safe_dump(doc), yaml.safe_dump({"resources": [listener]})


def start_lds_envoy(envoys, cfg: dict, upstream_port: int, tmp_path: Path, extra_args: tuple[str, ...] = (),
                    **bootstrap_args):
    """Envoy (2 workers, `extra_args`) on a free port, its listener in an LDS file (`bootstrap_args` as
    `lds_bootstrap` takes them): (envoy, port, LDS path)."""
    port = free_port()
    lds = tmp_path / "lds.yaml"
    boot, listener = lds_bootstrap(cfg, port, upstream_port, lds, **bootstrap_args)
    lds.write_text(listener)
    (tmp_path / "envoy.yaml").write_text(boot)
    envoy = render.Envoy(bootstrap=tmp_path / "envoy.yaml", log_path=tmp_path / "envoy.log", concurrency=2,
                         extra_args=list(extra_args))
    envoys.started.append(envoy)
    envoy.start().wait_ready()
    return envoy, port, lds


def replace_lds(lds: Path, text: str) -> None:
    tmp = lds.with_suffix(".tmp")
    tmp.write_text(text)
    os.rename(tmp, lds)  # Envoy watches for the move


def test_listener_update_under_load(envoys, upstream, keys, tmp_path):
    if not shutil.which("wrk"):
        pytest.skip("wrk not installed (`make integration` installs it)")
    both = [keys.es256.jwk, keys.eddsa.jwk]
    envoy, port, lds = start_lds_envoy(envoys, config(keys, both, 0), upstream.port, tmp_path)
    gw = Gateway(envoy, port)
    deadline = time.monotonic() + 15
    while gw.get("/health", headers=bearer(keys.mint())).status_code != 200:
        assert time.monotonic() < deadline, envoy.read_log()[-2000:]
        time.sleep(0.1)

    # Before the change: an EdDSA token is verified (and cached on both workers); a subject spends
    # its whole rate limit.
    eddsa = keys.mint(key=keys.eddsa)
    for _ in range(4):
        assert gw.get("/orders/1", headers=bearer(eddsa)).status_code == 200
    spender = keys.mint(sub="spender")
    assert [gw.get("/limited", headers=bearer(spender)).status_code for _ in range(LIMIT + 1)] == [200] * LIMIT + [429]

    # Under load, three config updates; the last one no longer trusts the EdDSA key.
    steady = keys.mint(exp=int(time.time()) + 3600)
    wrk = subprocess.Popen(
        ["wrk", "-t2", "-c8", "-d8s", "--latency", "-H", f"Authorization: Bearer {steady}", f"http://127.0.0.1:{port}/orders/7"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    for generation, trusted in [(1, both), (2, both), (3, [keys.es256.jwk])]:
        time.sleep(2)
        _, text = lds_bootstrap(config(keys, trusted, generation), port, upstream.port, lds)
        replace_lds(lds, text)
    out, _ = wrk.communicate(timeout=60)
    assert wrk.returncode == 0, out
    requests_done = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert requests_done > 100, out
    assert non_2xx is None, out
    stats = envoy.stats("listener_manager.")
    assert stats.get("listener_manager.listener_modified", 0) >= 3, stats

    # The new config refuses the EdDSA token on every worker, though the old one had cached it.
    deadline = time.monotonic() + 10
    while gw.get("/orders/1", headers=bearer(eddsa)).status_code != 401:
        assert time.monotonic() < deadline, "a token the new config refuses is still accepted"
        time.sleep(0.1)
    assert all(gw.get("/orders/1", headers=bearer(eddsa)).status_code == 401 for _ in range(10))
    # Shared state survived: the spent bucket is still spent (same slot key, same slot).
    assert gw.get("/limited", headers=bearer(spender)).status_code == 429
    assert gw.get("/limited", headers=bearer(keys.mint(sub="fresh"))).status_code == 200
