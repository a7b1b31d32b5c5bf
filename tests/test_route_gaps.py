"""Requests that an upstream usually treats like a scoped route (a trailing slash, HEAD for GET) must
fall under that route's scopes, not through to "any valid credential"."""

from __future__ import annotations

import pytest
from conftest import bearer, raw_request


@pytest.mark.parametrize(
    "method, path",
    [("GET", "/orders/7/"), ("POST", "/orders/"), ("GET", "/t/acme/x/9/")],
    ids=["template-trailing-slash", "exact-trailing-slash", "tenant-template-trailing-slash"],
)
def test_trailing_slash_does_not_skip_scopes(gateway, keys, method, path):
    status, _, _ = raw_request(gateway.port, method, path, list(bearer(keys.mint(scope="nothing")).items()))
    assert status == 403



def test_head_does_not_skip_the_get_routes_scopes(gateway, keys):
    status, _, _ = raw_request(gateway.port, "HEAD", "/orders/7", list(bearer(keys.mint(scope="nothing")).items()))
    assert status == 403


def test_same_requests_without_a_token_are_still_refused(gateway):
    for method, path in [("GET", "/orders/7/"), ("POST", "/orders/"), ("HEAD", "/orders/7")]:
        status, _, _ = raw_request(gateway.port, method, path, [])
        assert status == 401, (method, path)
