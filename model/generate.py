#!/usr/bin/env python3
"""Deterministic labelled traffic for training and evaluating Warden's risk model.

Writes a trace in the offline contract's format (docs/ARCHITECTURE.md: one JSON request per line,
the trace's own clock), plus `label` (1 = attack) and `scenario`, which `warden features` passes
through. Tokens are real EdDSA JWTs signed with a demo key derived from a fixed seed, so the engine
verifies every one of them with `model/config.json` (written here too, identical on every run).

Benign populations: humans with diurnal habits who sometimes travel, steady service accounts, and
bursty-but-stable AI agents acting for a user (delegated tokens with `act`), and humans behind one office
NAT address (many identities, one source). Benign traffic fails too, as it does in production: a client
sends a token that has expired (401 from the filter), refreshes it and retries; a human opens a page
outside their scopes (403). The requests of an identity in the 15 minutes after its own benign failure
are the `benign_after_failure` population (office humans stay `benign_office`). Attacks, injected after a
warm-up so baselines exist: a stolen token replayed from a new country and client, an agent gone rogue
(100x volume, or a sweep of sensitive endpoints), credential stuffing, privilege probing, off-hours
destructive writes, and impossible travel.

`--seed` and `--prefix` give disjoint identities and episodes, which is how the held-out test set is made.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ISSUER = "https://idp.model.example"
AUDIENCE = "orders-api"
KID = "model-demo-1"
T0_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z, a Monday
DAY_S = 86_400
BAD_NET = "185.220.101"  # in risk.deny_cidrs of config.json
# Benign failures: how often a client starts a session (a service: sends a request) with a token that
# expired since its last one, and how often a human's session opens a page outside their scopes.
EXPIRED_HUMAN, EXPIRED_AGENT, EXPIRED_SERVICE, OUT_OF_SCOPE = 0.15, 0.10, 0.02, 0.12
AFTER_FAILURE_S = 900

# country: (UTC offset in hours, first octet of its address space in this simulation)
COUNTRIES = {
    "NO": (1, 31), "DE": (1, 46), "GB": (0, 51), "US": (-5, 64), "BR": (-3, 177),
    "IN": (5, 49), "JP": (9, 60), "AU": (10, 101), "SG": (8, 103), "ZA": (2, 105),
}
HOME_COUNTRIES = ["NO", "DE", "GB", "US", "IN"]
FAR = {"NO": "AU", "DE": "BR", "GB": "JP", "US": "SG", "IN": "BR"}

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2) Mobile/15E148",
]
PHONE_APP = "orders-mobile/5.3 (Android 14)"
MCP_CLIENT = "mcp-client/1.2 (node)"
ATTACK_CLIENTS = ["python-requests/2.32", "curl/8.5.0", "Go-http-client/1.1", "okhttp/4.12"]

# (method, path template, sensitivity as in config.json, typical response bytes)
ROUTES = {
    "list_orders": ("GET", "/orders", 3000),
    "read_order": ("GET", "/orders/{id}", 600),
    "create_order": ("POST", "/orders", 300),
    "update_order": ("PUT", "/orders/{id}", 300),
    "delete_order": ("DELETE", "/orders/{id}", 0),
    "search": ("GET", "/search", 2000),
    "account": ("GET", "/account", 800),
    "payment": ("GET", "/payments/{id}", 700),
    "transfer": ("POST", "/payments", 200),
    "export": ("GET", "/export/customers", 250_000),
    "admin": ("GET", "/admin/users/{id}", 900),
    "health": ("GET", "/health", 20),
    "customer": ("GET", "/customers/{id}", 1500),
}
HUMAN_MIX = [("list_orders", 20), ("read_order", 40), ("create_order", 8), ("update_order", 4),
             ("search", 12), ("account", 8), ("payment", 6), ("transfer", 1), ("delete_order", 1)]
SERVICE_MIX = [("read_order", 60), ("create_order", 30), ("update_order", 10)]
AGENT_MIX = [("search", 40), ("read_order", 40), ("list_orders", 15), ("create_order", 5), ("customer", 3)]
# A nightly job's agent pages through the customer list (many distinct objects, every night: its habit).
PAGING_MIX = [("customer", 1)]


def config(public_jwk: dict) -> dict:
    """The engine config the traces are replayed against."""
    return {
        "providers": [{"name": "model", "issuer": ISSUER, "audiences": [AUDIENCE],
                       "jwks": {"keys": [public_jwk]}, "algorithms": ["EdDSA"]}],
        "routes": [
            {"name": "health", "methods": ["GET"], "path": "/health", "anonymous": True},
            {"name": "orders", "methods": ["GET", "POST"], "path": "/orders", "scopes": ["orders"],
             "sensitivity": "medium"},
            {"name": "order", "methods": ["GET", "PUT"], "path": "/orders/{id}", "scopes": ["orders"],
             "sensitivity": "low"},
            {"name": "delete-order", "methods": ["DELETE"], "path": "/orders/{id}", "scopes": ["orders"],
             "sensitivity": "critical"},
            {"name": "search", "methods": ["GET"], "path": "/search", "scopes": ["orders"],
             "sensitivity": "low"},
            {"name": "account", "methods": ["GET"], "path": "/account", "scopes": ["account"],
             "sensitivity": "high"},
            {"name": "payments", "prefix": "/payments", "scopes": ["payments"], "sensitivity": "high"},
            {"name": "export", "prefix": "/export", "scopes": ["export"], "sensitivity": "critical"},
            {"name": "admin", "prefix": "/admin", "scopes": ["admin"], "sensitivity": "critical"},
            {"name": "customer", "methods": ["GET"], "path": "/customers/{id}", "scopes": ["orders"],
             "sensitivity": "high"},
        ],
        # The traces probe paths no route lists; they are scored as "any valid credential" (the
        # behaviour the model was trained on), an explicit choice since unmatched requests are denied
        # by default.
        "routing": {"unmatched": "authenticate"},
        # Agents act for users (RFC 8693 `act`) within the users' own scopes; service accounts are
        # recognised by their client, so the caller's kind (a risk feature) is what it is in production.
        "delegation": {"actors": [{"name": "agents", "sub": "*agent-*", "subjects": ["*"],
                                   "scopes": ["orders", "account", "payments"]}]},
        "kinds": {"rules": [{"kind": "service", "client_id": "service-app"}]},
        # The traces are what the edge saw: its country header is the edge's own.
        "risk": {"deny_cidrs": [f"{BAD_NET}.0/24"], "geo_header_from_edge": True},
        "audit": {"enabled": False},
    }


def signing_key() -> tuple[Ed25519PrivateKey, dict]:
    """The demo key: derived from a fixed string, so every run signs identical tokens (Ed25519 is
    deterministic). It signs simulated traffic only."""
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"warden-model-demo-key-v1").digest())
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return key, {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": KID, "alg": "EdDSA", "use": "sig"}


@dataclass
class Identity:
    """One caller and its habits."""
    name: str
    kind: str  # human | service | agent
    country: str
    ip: str
    agent: str
    scopes: str
    start_hour: float = 8.0  # local working day
    end_hour: float = 18.0
    principal: str | None = None  # the user an agent acts for
    tokens: dict = field(default_factory=dict)
    stepped_up: dict = field(default_factory=dict)  # the token after a step-up, per minute
    away: set = field(default_factory=set)  # days a human spends abroad (benign travel)


class Trace:
    """Requests of one run, with the signing key and a token cache (one token per identity-hour)."""

    def __init__(self, seed: int, prefix: str):
        self.rng = random.Random(seed)
        # The benign failures and the office population draw from their own generator, so that the rest
        # of the trace (benign habits, attack episodes) is what it was without them.
        self.frng = random.Random(seed * 7919 + 1)
        self.failed: dict[str, list[float]] = {}  # identity -> times of its benign failures
        self.prefix = prefix
        self.key, self.jwk = signing_key()
        self.lines: list[tuple[int, int, dict, str]] = []
        self.seq = 0
        self.episode = 0  # attack episode number, carried by attack lines as `episode`

    def sign(self, who: Identity, iat: int, ttl_s: int) -> str:
        """A token for `who` issued at `iat`, valid for `ttl_s` seconds and a minute of leeway."""
        claims = {"iss": ISSUER, "aud": AUDIENCE, "iat": iat, "exp": iat + ttl_s + 60,
                  "scope": who.scopes, "client_id": f"{who.kind}-app"}
        if who.kind == "agent":
            claims["sub"] = who.principal
            claims["act"] = {"sub": who.name}
        else:
            claims["sub"] = who.name
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": KID})

    def token(self, who: Identity, ts_s: int, *, ttl_s: int = 3600) -> str:
        """A token as the IdP would have issued it for `who` at the start of the current hour."""
        iat = ts_s - ts_s % ttl_s
        cached = who.tokens.get(iat)
        if cached:
            return cached
        tok = self.sign(who, iat, ttl_s)
        who.tokens = {iat: tok}
        return tok

    def stepped_up_token(self, who: Identity, ts_s: int) -> str:
        """The token `who`'s IdP issues when the person answers a step-up challenge (RFC 9470) at
        `ts_s`: a second factor (`acr` "mfa", the config's default `risk.acr_values`), `auth_time` now.
        One per identity-minute (the challenge's `max_age` is 5 minutes)."""
        at = ts_s - ts_s % 60
        cached = who.stepped_up.get(at)
        if cached:
            return cached
        claims = {"iss": ISSUER, "aud": AUDIENCE, "iat": at, "exp": at + 3600 + 60, "scope": who.scopes,
                  "client_id": f"{who.kind}-app", "sub": who.name, "acr": "mfa", "auth_time": at}
        tok = jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": KID})
        who.stepped_up = {at: tok}
        return tok

    def expired_token(self, who: Identity, ts_s: int) -> str:
        """The token `who`'s client still holds from an earlier session: issued two hours before the
        current one, expired an hour ago (a real signature; the filter refuses it for its `exp`)."""
        return self.sign(who, ts_s - ts_s % 3600 - 7200, 3600)

    def benign_failure(self, ts_s: float, who: Identity, route: str, scenario: str, *, expired: bool,
                       country: str | None = None, ip: str | None = None) -> None:
        """A benign refusal: an expired token (401) or a route outside the caller's scopes (403)."""
        abs_s = T0_MS // 1000 + int(ts_s)
        token = self.expired_token(who, abs_s) if expired else None
        self.request(ts_s, who, route, label=0, scenario=scenario, country=country, ip=ip, token=token,
                     status=401 if expired else 403, rng=self.frng)
        self.failed.setdefault(who.name, []).append(ts_s)

    def request(self, ts_s: float, who: Identity | None, route: str, *, label: int, scenario: str,
                country: str | None = None, ip: str | None = None, agent: str | None = None,
                token: str | None = None, status: int | None = None, bytes_scale: float = 1.0,
                rng: random.Random | None = None, object_id: int | None = None) -> None:
        rng = rng or self.rng
        method, template, size = ROUTES[route]
        oid = object_id if object_id is not None else rng.randint(1000, 99_999)
        path = template.replace("{id}", str(oid))
        if route == "search":
            path += f"?q={rng.choice(['late', 'refund', 'open', 'priority', 'eu'])}"
        ts_ms = T0_MS + int(ts_s * 1000)
        headers = {"user-agent": agent or (who.agent if who else "curl/8.5.0"),
                   "x-geo-country": country or (who.country if who else "US")}
        step_up = None
        if token is None and who is not None:
            token = self.token(who, T0_MS // 1000 + int(ts_s))
            if who.kind == "human" and not label:
                # A person answers a step-up challenge: signs in again with a second factor and
                # sends the request again with the new token (`warden features` does, when the
                # engine challenges this line). An attacker holding a stolen token cannot.
                step_up = {"authorization": f"Bearer {self.stepped_up_token(who, T0_MS // 1000 + int(ts_s))}"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        if status is None:
            status = 201 if method == "POST" else 204 if method == "DELETE" else 200
        body = 0 if status >= 300 or size == 0 else max(
            16, int(size * bytes_scale * rng.lognormvariate(0, 0.35)))
        line = {"ts_ms": ts_ms, "method": method, "path": path, "source_ip": ip or (who.ip if who else "192.0.2.1"),
                "headers": headers, "status": status, "response_bytes": body,
                "label": label, "scenario": scenario}
        if step_up:
            line["step_up_headers"] = step_up
        if label:
            line["episode"] = f"{self.prefix}{scenario}-{self.episode}"
        self.seq += 1
        self.lines.append((ts_ms, self.seq, line, who.name if who else ""))

    def relabel_after_failures(self) -> None:
        """Benign requests of an identity in the 15 minutes (the engine's failure time constant) after
        its own benign failure become `benign_after_failure`: the population a failure-counting
        feature could wrongly challenge. Travellers and office humans keep their population."""
        for ts_ms, _, line, name in self.lines:
            if line["label"] or line["scenario"] not in ("benign_human", "benign_service", "benign_agent"):
                continue
            ts = (ts_ms - T0_MS) / 1000
            if any(-0.001 <= ts - f <= AFTER_FAILURE_S for f in self.failed.get(name, ())):
                line["scenario"] = "benign_after_failure"

    def write(self, path: Path) -> None:
        self.lines.sort(key=lambda t: (t[0], t[1]))
        with path.open("w") as f:
            for _, _, line, _ in self.lines:
                f.write(json.dumps(line, separators=(",", ":"), sort_keys=True) + "\n")


def pick(rng: random.Random, mix: list[tuple[str, int]]) -> str:
    return rng.choices([r for r, _ in mix], weights=[w for _, w in mix])[0]


def address(rng: random.Random, country: str) -> str:
    first = COUNTRIES[country][1]
    return f"{first}.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"


def population(t: Trace, humans: int, services: int, agents: int) -> dict[str, list[Identity]]:
    rng, p = t.rng, t.prefix
    hs = []
    for i in range(humans):
        c = rng.choice(HOME_COUNTRIES)
        start = rng.uniform(6.5, 10.5)
        hs.append(Identity(f"{p}user{i}@corp.example", "human", c, address(rng, c), rng.choice(BROWSERS),
                           "orders account payments", start, start + rng.uniform(7, 10)))
    ss = [Identity(f"{p}svc-{i}", "service", "US", address(rng, "US"), f"svc-{p}{i}/1.{i}", "orders")
          for i in range(services)]
    ags = []
    for i in range(agents):
        owner = rng.choice(hs)
        ags.append(Identity(f"{p}agent-{i}", "agent", owner.country, address(rng, "US"),
                            "agent-runtime/0.9", "orders account payments", principal=owner.name))
    return {"human": hs, "service": ss, "agent": ags}


def human_session(t: Trace, h: Identity, ts: float, rng: random.Random, scenario: str, country: str,
                  ip: str) -> None:
    """One working session of a human: a few to a couple of dozen requests ~20 s apart. Sometimes it
    starts with the token the browser kept from an earlier session (401, refresh, the same request
    again), sometimes a page outside the user's scopes is opened (403). Those draw from `t.frng`."""
    f = t.frng
    if f.random() < EXPIRED_HUMAN:
        r = pick(f, HUMAN_MIX)
        t.benign_failure(ts, h, r, scenario, expired=True, country=country, ip=ip)
        ts += f.uniform(1, 4)
        t.request(ts, h, r, label=0, scenario=scenario, country=country, ip=ip, rng=f)
        ts += f.expovariate(1 / 20)
    off_scope = f.randint(0, 12) if f.random() < OUT_OF_SCOPE else -1
    for i in range(rng.randint(3, 25)):
        if i == off_scope:
            t.benign_failure(ts, h, f.choice(["export", "admin"]), scenario, expired=False, country=country,
                             ip=ip)
            ts += f.expovariate(1 / 20)
        t.request(ts, h, pick(rng, HUMAN_MIX), label=0, scenario=scenario, country=country, ip=ip, rng=rng)
        ts += rng.expovariate(1 / 20)


def benign(t: Trace, pop: dict[str, list[Identity]], days: int) -> None:
    rng, f = t.rng, t.frng
    for h in pop["human"]:
        traveller = rng.random() < 0.25
        trip = (rng.randint(2, days - 2), rng.randint(1, 3)) if traveller else None
        trip_country = rng.choice([c for c in COUNTRIES if c != h.country])
        trip_ip = address(rng, trip_country)
        if trip is not None:
            # The day after counts too: the way home.
            h.away.update(range(trip[0], trip[0] + trip[1] + 1))
        for d in range(days):
            weekend = d % 7 in (5, 6)
            if weekend and rng.random() < 0.7:
                continue
            away = trip is not None and trip[0] <= d < trip[0] + trip[1]
            country, ip = (trip_country, trip_ip) if away else (h.country, h.ip)
            offset = COUNTRIES[h.country][0]
            for _ in range(rng.randint(2, 6)):
                local = rng.uniform(h.start_hour, h.end_hour)
                ts = d * DAY_S + (local - offset) * 3600
                human_session(t, h, ts, rng, "benign_travel" if away else "benign_human", country, ip)
    for s in pop["service"]:
        period = rng.uniform(120, 400)
        ts = rng.uniform(0, period)
        while ts < days * DAY_S:
            if f.random() < EXPIRED_SERVICE:
                # The service's cached token had expired: refused, fetched anew, and this call sent again.
                t.benign_failure(ts - f.uniform(0.2, 2), s, pick(f, SERVICE_MIX), "benign_service",
                                 expired=True)
            t.request(ts, s, pick(rng, SERVICE_MIX), label=0, scenario="benign_service")
            ts += period * rng.uniform(0.8, 1.2)
    for a in pop["agent"]:
        for d in range(days):
            for _ in range(rng.randint(4, 12)):
                ts = d * DAY_S + rng.uniform(0, DAY_S)
                if f.random() < EXPIRED_AGENT:
                    r = pick(f, AGENT_MIX)
                    t.benign_failure(ts, a, r, "benign_agent", expired=True)
                    ts += f.uniform(0.5, 3)
                    t.request(ts, a, r, label=0, scenario="benign_agent", rng=f)
                    ts += f.expovariate(1 / 1.5)
                for _ in range(rng.randint(10, 40)):
                    t.request(ts, a, pick(rng, AGENT_MIX), label=0, scenario="benign_agent")
                    ts += rng.expovariate(1 / 1.5)


def twins(t: Trace, pop: dict[str, list[Identity]], days: int) -> None:
    """Benign twins of the new attacks, drawn from their own generator: an agent that pages through the
    customer list every night (`benign_paging_agent`: many distinct objects at a steady pace, its habit),
    humans who open a part of the app they never used (`benign_new_area`: a few customer pages), humans
    who start using the phone app (`benign_new_device`: a new client at home, then a known one) and agents
    whose tools are also called through an MCP client (`benign_agent_new_client`: a second program)."""
    g = random.Random(t.rng.random())
    p = t.prefix
    owner = pop["human"][0]
    for i in range(max(1, len(pop["agent"]) // 4)):
        a = Identity(f"{p}agent-pager-{i}", "agent", owner.country, address(g, "US"), "agent-runtime/0.9",
                     "orders account payments", principal=owner.name)
        start = g.uniform(1, 3) * 3600
        for d in range(days):
            ts = d * DAY_S + start + g.uniform(0, 600)
            first = g.randint(1, 5000)
            for k in range(g.randint(60, 150)):
                t.request(ts, a, "customer", label=0, scenario="benign_paging_agent", rng=g,
                          object_id=first + k)
                ts += g.uniform(0.8, 1.6)
    for h in g.sample(pop["human"], max(1, len(pop["human"]) // 4)):
        # A day at home: a new part of the app opened from abroad would also be (benign) travel.
        d = g.choice([x for x in range(3, days) if x not in h.away] or [3])
        ts = d * DAY_S + (g.uniform(h.start_hour, h.end_hour) - COUNTRIES[h.country][0]) * 3600
        for _ in range(g.randint(3, 12)):
            t.request(ts, h, g.choice(["customer", "customer", "search", "read_order"]), label=0,
                      scenario="benign_new_area", rng=g)
            ts += g.expovariate(1 / 20)
    for h in g.sample(pop["human"], max(1, len(pop["human"]) // 2)):
        # A person who starts using the phone app next to the browser, at home: a new client, then a
        # known one.
        first = g.randint(2, days - 1)
        for d in [x for x in range(first, days) if x not in h.away and (x == first or g.random() < 0.5)]:
            ts = d * DAY_S + (g.uniform(h.start_hour, h.end_hour) - COUNTRIES[h.country][0]) * 3600
            for _ in range(g.randint(5, 20)):
                t.request(ts, h, pick(g, HUMAN_MIX), label=0, scenario="benign_new_device", rng=g,
                          agent=PHONE_APP)
                ts += g.expovariate(1 / 20)
    for a in g.sample(pop["agent"], max(1, len(pop["agent"]) // 2)):
        # An agent whose tools are now also called through its MCP client: a second program with the
        # same token, from its usual network, at its usual pace (the runtime's own version updates are
        # the same client: `new_client` leaves the digits out).
        first = g.randint(2, days - 1)
        for d in [x for x in range(first, days) if x == first or g.random() < 0.5]:
            ts = d * DAY_S + g.uniform(9, 17) * 3600
            for _ in range(g.randint(10, 40)):
                t.request(ts, a, pick(g, AGENT_MIX), label=0, scenario="benign_agent_new_client", rng=g,
                          agent=MCP_CLIENT)
                ts += g.expovariate(1 / 1.5)


def office(t: Trace, days: int, n: int) -> None:
    """Humans behind one office NAT address: many identities, one source, many successes, and the
    same occasional benign failures as everyone (`benign_office`). Drawn from `t.frng` alone."""
    f, p = t.frng, t.prefix
    c = f.choice(HOME_COUNTRIES)
    ip = address(f, c)
    staff = []
    for i in range(n):
        start = f.uniform(7.0, 10.0)
        staff.append(Identity(f"{p}staff{i}@corp.example", "human", c, ip, f.choice(BROWSERS),
                              "orders account payments", start, start + f.uniform(7, 9)))
    offset = COUNTRIES[c][0]
    for h in staff:
        for d in range(days):
            if d % 7 in (5, 6):
                continue
            for _ in range(f.randint(2, 6)):
                ts = d * DAY_S + (f.uniform(h.start_hour, h.end_hour) - offset) * 3600
                human_session(t, h, ts, f, "benign_office", c, ip)


def attacks(t: Trace, pop: dict[str, list[Identity]], days: int, episodes: int) -> None:
    """`episodes` of each attack, after two days of warm-up, each on its own victim where it can."""
    rng = t.rng
    humans, agents = pop["human"], pop["agent"]
    bad = lambda: f"{BAD_NET}.{rng.randint(2, 254)}"  # noqa: E731
    victims = rng.sample(humans, min(len(humans), 4 * episodes))
    when = lambda: rng.uniform(2 * DAY_S, days * DAY_S - 3600)  # noqa: E731

    def working_time(h: Identity) -> float:
        d = rng.randint(2, days - 1)
        return d * DAY_S + (rng.uniform(h.start_hour, h.end_hour) - COUNTRIES[h.country][0]) * 3600

    for e in range(episodes):
        t.episode += 1
        # Stolen token: the victim's live token replayed from another country and client.
        h = victims[e % len(victims)]
        ts = working_time(h)
        c = rng.choice([x for x in COUNTRIES if x != h.country])
        ip = bad() if rng.random() < 0.3 else address(rng, c)
        client = rng.choice(ATTACK_CLIENTS)
        tok = t.token(h, T0_MS // 1000 + int(ts))
        for _ in range(rng.randint(5, 40)):
            t.request(ts, h, rng.choice(["account", "payment", "export", "list_orders", "transfer"]), label=1,
                      scenario="stolen_token", country=c, ip=ip, agent=client, token=tok)
            ts += rng.expovariate(1 / 4)

        t.episode += 1
        # Rogue agent, volume: about 100x its usual daily rate (2-3 requests a second) for 5 to 8 minutes.
        a = agents[e % len(agents)]
        ts = when()
        end = ts + rng.uniform(300, 480)
        while ts < end:
            t.request(ts, a, pick(rng, AGENT_MIX), label=1, scenario="rogue_agent_volume", bytes_scale=3.0)
            ts += rng.expovariate(1 / 0.4)

        t.episode += 1
        # Rogue agent, sweep: walks sensitive endpoints it never used.
        a = agents[(e + 1) % len(agents)]
        ts = when()
        for _ in range(rng.randint(20, 80)):
            r = rng.choice(["payment", "account", "export", "admin", "delete_order"])
            status = 403 if r in ("admin", "export", "account", "payment") else None
            t.request(ts, a, r, label=1, scenario="rogue_agent_sweep", status=status)
            ts += rng.expovariate(1 / 2)

        # Enumeration: a caller that cannot step up walks distinct objects, on a route it uses (an agent
        # reading customers) or on one it never used (a service account reading customers), slow
        # (a request every 5-15 s) or fast (3 a second).
        for where, pace in (("used", "slow"), ("used", "fast"), ("new", "slow"), ("new", "fast")):
            t.episode += 1
            who = agents[(e + 2) % len(agents)] if where == "used" else pop["service"][e % len(pop["service"])]
            route = "customer"
            ts = when()
            first = rng.randint(1, 50_000)
            for k in range(rng.randint(30, 80)):
                t.request(ts, who, route, label=1, scenario=f"enumeration_{where}_route_{pace}",
                          object_id=first + k)
                ts += rng.uniform(5, 15) if pace == "slow" else rng.expovariate(1 / 0.33)

        t.episode += 1
        # Exfiltration by volume: an agent at its usual pace, every answer 20-50x its usual size.
        a = agents[(e + 3) % len(agents)]
        ts = when()
        for _ in range(rng.randint(20, 60)):
            t.request(ts, a, rng.choice(["list_orders", "search"]), label=1, scenario="exfiltration_volume",
                      bytes_scale=rng.uniform(20, 50))
            ts += rng.expovariate(1 / 1.5)

        t.episode += 1
        # An agent drifting to a tool it never used: money transfers, at its usual pace.
        a = agents[(e + 4) % len(agents)]
        ts = when()
        for _ in range(rng.randint(5, 25)):
            t.request(ts, a, "transfer", label=1, scenario="agent_new_tool")
            ts += rng.expovariate(1 / 3)

        t.episode += 1
        # Credential stuffing: one source, many accounts, mostly refused, a few valid logins.
        ts = when()
        ip = bad() if rng.random() < 0.5 else address(rng, rng.choice(list(COUNTRIES)))
        c = rng.choice(list(COUNTRIES))
        client = rng.choice(ATTACK_CLIENTS)
        for _ in range(rng.randint(30, 120)):
            if rng.random() < 0.85:
                t.request(ts, None, "account", label=1, scenario="credential_stuffing", country=c, ip=ip,
                          agent=client, token=f"stuffed.{rng.getrandbits(64):x}.x", status=401)
            else:
                v = rng.choice(humans)
                t.request(ts, v, rng.choice(["account", "payment", "list_orders"]), label=1,
                          scenario="credential_stuffing", country=c, ip=ip, agent=client)
            ts += rng.expovariate(1 / 1.0)

        t.episode += 1
        # Privilege probing: a valid user walks endpoints outside its scopes (403s).
        h = victims[(e + episodes) % len(victims)]
        ts = working_time(h)
        for _ in range(rng.randint(10, 40)):
            r = rng.choice(["admin", "admin", "export", "delete_order", "account"])
            status = 403 if r in ("admin", "export") else None
            t.request(ts, h, r, label=1, scenario="privilege_probing", status=status)
            ts += rng.expovariate(1 / 3)

        t.episode += 1
        # Off-hours destructive writes: the victim's token deleting orders at night, local time.
        h = victims[(e + 2 * episodes) % len(victims)]
        d = rng.randint(2, days - 1)
        ts = d * DAY_S + (rng.uniform(1, 4.5) - COUNTRIES[h.country][0]) * 3600
        for _ in range(rng.randint(5, 30)):
            t.request(ts, h, rng.choice(["delete_order", "delete_order", "update_order", "transfer"]),
                      label=1, scenario="offhours_destructive")
            ts += rng.expovariate(1 / 6)

        t.episode += 1
        # Impossible travel: minutes after a request from home, the same user from far away.
        h = victims[(e + 3 * episodes) % len(victims)]
        ts = working_time(h)
        t.request(ts, h, "read_order", label=0, scenario="benign_human")
        ts += rng.uniform(120, 900)
        c = FAR[h.country]
        ip = address(rng, c)
        for _ in range(rng.randint(3, 15)):
            t.request(ts, h, rng.choice(["account", "payment", "read_order", "transfer"]), label=1,
                      scenario="impossible_travel", country=c, ip=ip)
            ts += rng.expovariate(1 / 10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--prefix", default="", help="prefix of identity names (keeps splits disjoint)")
    ap.add_argument("--days", type=int, default=8)
    ap.add_argument("--humans", type=int, default=40)
    ap.add_argument("--services", type=int, default=6)
    ap.add_argument("--agents", type=int, default=8)
    ap.add_argument("--episodes", type=int, default=8, help="episodes of each attack")
    ap.add_argument("--office", type=int, help="humans behind one office NAT address (default: humans / 5)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--config", type=Path, help="also write the engine config here")
    args = ap.parse_args()

    t = Trace(args.seed, args.prefix)
    pop = population(t, args.humans, args.services, args.agents)
    benign(t, pop, args.days)
    twins(t, pop, args.days)
    office(t, args.days, args.office if args.office is not None else max(4, args.humans // 5))
    attacks(t, pop, args.days, args.episodes)
    t.relabel_after_failures()
    t.write(args.out)
    if args.config:
        args.config.write_text(json.dumps(config(t.jwk), indent=2) + "\n")
    counts: dict[str, int] = {}
    for _, _, line, _ in t.lines:
        counts[line["scenario"]] = counts.get(line["scenario"], 0) + 1
    params = {k: v for k, v in vars(args).items() if k not in ("out", "config")}
    print(json.dumps({"out": str(args.out), "params": params, "lines": len(t.lines),
                      "scenarios": dict(sorted(counts.items()))}))


if __name__ == "__main__":
    main()
