"""Gateway detection, checked on a real host: the filter running in Envoy finds out it is Envoy.

The Kong side of every host difference (detection, shared-data cas and zone, dispatch, `:dispatch_status`,
peer-certificate digest, client address, trailing newline) is tested natively against a double that
answers like ngx_wasm_module: `cargo test -p warden --lib gateway` (plugin/src/gateway.rs). Kong itself
cannot run here (no Docker); kong/README.md says how to run it.
"""

from __future__ import annotations

import re
import time


def test_the_filter_detects_envoy(gateway):
    deadline = time.monotonic() + 10
    while "configuration loaded" not in gateway.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    loaded = re.findall(r"warden: configuration loaded \(gateway: (\w+)\)", gateway.log())
    assert loaded, "no configuration-loaded line:\n" + gateway.log()[-2000:]
    assert set(loaded) == {"envoy"}, loaded
