"""A bad config is refused by Envoy at start-up (on_configure returns false), and the log names the field."""

from __future__ import annotations

import copy
import json

import pytest
from conftest import warden_config


def _refused(envoys, config, name):
    code, log = envoys.refused(config, name)
    assert code != 0, "Envoy accepted a config it must refuse"
    return log


def test_unknown_top_level_key_is_refused(envoys, keys, api_key):
    cfg = warden_config(keys, api_key)
    cfg["rotues"] = cfg.pop("routes")  # a typo must not silently disable the route policy
    log = _refused(envoys, cfg, "unknown-key")
    assert "rotues" in log
    assert "warden: invalid config" in log


def test_bad_jwk_is_refused_naming_the_field(envoys, keys, api_key):
    cfg = warden_config(keys, api_key)
    bad = copy.deepcopy(cfg["providers"][0]["jwks"]["keys"][0])
    bad["x"] = "not-a-coordinate"
    cfg["providers"][0]["jwks"]["keys"][0] = bad
    log = _refused(envoys, cfg, "bad-jwk")
    assert "providers[0].jwks.keys[0]" in log


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda c: c["providers"][0].update(clock_skew_s="soon"), "providers[0].clock_skew_s"),
        (lambda c: c["providers"][0].update(algorithms=["none"]), "providers[0].algorithms[0]"),
        (lambda c: c["routes"][1].update(path="orders/{id}"), "routes[1].path"),
    ],
    ids=["clock_skew_type", "alg_none", "relative_path"],
)
def test_other_bad_fields_are_named(envoys, keys, api_key, mutate, field):
    cfg = warden_config(keys, api_key)
    mutate(cfg)
    log = _refused(envoys, cfg, "bad-" + field.replace("[", "").replace("]", "").replace(".", "-"))
    assert field in log


def test_not_json_is_refused(envoys):
    log = _refused(envoys, "{not json", "not-json")
    assert "warden: invalid config" in log


def test_private_key_material_is_refused(envoys, keys, api_key):
    cfg = warden_config(keys, api_key)
    cfg["providers"][0]["jwks"]["keys"][0] = dict(cfg["providers"][0]["jwks"]["keys"][0], d="AAAA")
    log = _refused(envoys, json.dumps(cfg), "private-jwk")
    assert "providers[0].jwks.keys[0]" in log
