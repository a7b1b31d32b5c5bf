#!/usr/bin/env python3
"""A person at the demo IdP's login page, without a browser: follows an OAuth authorization URL, fills
in the login form the IdP shows (user, password, and the one-time code when the page asks for one),
and stops at the redirect back to the client, whose URL (with `code`, `state` and `iss`) it returns.

Used by the MCP clients of the demo and the tests (examples/mcp/client.py, tests/mcp/*.mjs through the
command line) so that authorization code + PKCE runs headlessly against the real IdP pages.

    python3 examples/mcp/login.py AUTHORIZATION_URL REDIRECT_URI --user alice --password alice-password [--otp 123456]

Standard library only.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import sys
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser

DEMO_USERS = {"alice": "alice-password", "bob": "bob-password"}
DEMO_OTP = "123456"  # the demo IdP's one-time code


class LoginError(RuntimeError):
    pass


class _Form(HTMLParser):
    """The first form of a page: its action and the names of its inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.inputs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action") or ""
        elif tag == "input" and a.get("name"):
            self.inputs.append(a["name"] or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003 - urllib's signature
        return None  # every redirect is followed by hand (the last one must not be)


def login(authorization_url: str, redirect_uri: str, user: str, password: str, otp: str | None = None,
          max_steps: int = 10) -> str:
    """The URL the IdP redirects to at the end (`redirect_uri?code=...&state=...&iss=...`)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    url, data = authorization_url, None
    for _ in range(max_steps):
        req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
        if data is not None:
            req.add_header("content-type", "application/x-www-form-urlencoded")
        try:
            resp = opener.open(req, timeout=10)
            status, headers, body = resp.status, resp.headers, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as e:  # 3xx (not followed) and 4xx land here
            status, headers, body = e.code, e.headers, e.read().decode(errors="replace")
        if 300 <= status < 400:
            url, data = urllib.parse.urljoin(url, headers.get("location", "")), None
            if url.split("?", 1)[0] == redirect_uri:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
                if "error" in query:
                    raise LoginError(f"{query['error'][0]}: {query.get('error_description', [''])[0]}")
                return url
            continue
        form = _Form()
        form.feed(body)
        if status != 200 or form.action is None:
            raise LoginError(f"the IdP answered {status}: {' '.join(''.join(form.text).split())[:300]}")
        fields = {"username": user, "password": password}
        if "otp" in form.inputs:
            if otp is None:
                raise LoginError("the IdP asks for a one-time code (the client asked for MFA)")
            fields["otp"] = otp
        url, data = urllib.parse.urljoin(url, form.action), urllib.parse.urlencode(fields).encode()
    raise LoginError(f"no redirect to {redirect_uri} after {max_steps} steps")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Log in at the demo IdP headlessly; prints the redirect URL.")
    ap.add_argument("authorization_url")
    ap.add_argument("redirect_uri")
    ap.add_argument("--user", default="alice")
    ap.add_argument("--password", default=None, help="default: the demo user's")
    ap.add_argument("--otp", default=None, help=f"the one-time code, if the page asks for one (demo: {DEMO_OTP})")
    a = ap.parse_args(argv)
    try:
        print(login(a.authorization_url, a.redirect_uri, a.user, a.password or DEMO_USERS.get(a.user, ""), a.otp))
    except LoginError as e:
        print(f"login: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
