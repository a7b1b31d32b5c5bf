"""Certificate-bound tokens (RFC 8705) through a real Envoy (--concurrency 2) with a TLS listener that
requires a client certificate: certificates made here with `cryptography`, tokens bound with
`cnf.x5t#S256`, checked against Envoy's `connection.sha256_peer_certificate_digest`."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from conftest import TIMEOUT, b64url, bearer, warden_config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_signatures import signatures


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_x5t: str  # base64url SHA-256 of the client certificate's DER
    other_x5t: str


def _cert(subject: str, key, issuer_name, issuer_key, *, ca: bool = False, server: bool = False):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "warden test CA")])
    ca = _cert("warden test CA", ca_key, ca_name, ca_key, ca=True)
    pem = serialization.Encoding.PEM
    key_pem = lambda k: k.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())  # noqa: E731
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _cert("127.0.0.1", server_key, ca_name, ca_key, server=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _cert("agent:billing", client_key, ca_name, ca_key)
    other = _cert("someone else", ec.generate_private_key(ec.SECP256R1()), ca_name, ca_key)
    x5t = lambda c: b64url(hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).digest())  # noqa: E731
    return Pki(
        ca=_write(d / "ca.pem", ca.public_bytes(pem)),
        server_cert=_write(d / "server.pem", server.public_bytes(pem)),
        server_key=_write(d / "server.key", key_pem(server_key)),
        client_cert=_write(d / "client.pem", client.public_bytes(pem)),
        client_key=_write(d / "client.key", key_pem(client_key)),
        client_x5t=x5t(client),
        other_x5t=x5t(other),
    )


def tls_listener(pki: Pki):
    block = f"""    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
            tls_certificates:
            - certificate_chain: {{ filename: "{pki.server_cert}" }}
              private_key: {{ filename: "{pki.server_key}" }}
            validation_context:
              trusted_ca: {{ filename: "{pki.ca}" }}
      filters:"""

    def transform(text: str) -> str:
        marker = "    filter_chains:\n    - filters:"
        assert marker in text, "the bootstrap template changed"
        return text.replace(marker, block, 1)

    return transform


@pytest.fixture(scope="module")
def tls_gateway(envoys, keys, api_key, pki):
    return envoys.gateway(warden_config(keys, api_key), "mtls", transform=tls_listener(pki))


def tls_get(gw, path: str, token: str, cert: Path | None = None, key: Path | None = None, ca: Path | None = None):
    return requests.get(
        f"https://127.0.0.1:{gw.port}{path}",
        headers=bearer(token),
        cert=(str(cert), str(key)),
        verify=str(ca),
        timeout=TIMEOUT,
    )


def test_certificate_bound_token_with_its_certificate_is_accepted(tls_gateway, keys, pki):
    token = keys.mint(cnf={"x5t#S256": pki.client_x5t})
    for _ in range(4):  # new TLS connections; either worker
        r = tls_get(tls_gateway, "/orders/1", token, pki.client_cert, pki.client_key, pki.ca)
        assert r.status_code == 200, r.text
        assert r.json()["headers"]["x-auth-subject"] == "alice"


def test_a_certificate_bound_tokens_signature_is_counted(tls_gateway, keys, pki):
    # The engine verifies the token, asks for the certificate, then resumes from its token cache: the
    # signature it checked is still published (on the next metrics tick).
    before = signatures(tls_gateway)
    token = keys.mint(cnf={"x5t#S256": pki.client_x5t})
    r = tls_get(tls_gateway, "/orders/1", token, pki.client_cert, pki.client_key, pki.ca)
    assert r.status_code == 200, r.text
    after = signatures(tls_gateway)
    assert after.get("host", 0) - before.get("host", 0) == 1, (before, after)


def test_token_bound_to_another_certificate_is_refused(tls_gateway, keys, pki):
    token = keys.mint(cnf={"x5t#S256": pki.other_x5t})
    r = tls_get(tls_gateway, "/orders/1", token, pki.client_cert, pki.client_key, pki.ca)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    tls_gateway.wait_audit(lambda rec: rec.get("reason") == "binding")


def test_unbound_token_over_mtls_is_accepted(tls_gateway, keys, pki):
    r = tls_get(tls_gateway, "/orders/1", keys.mint(), pki.client_cert, pki.client_key, pki.ca)
    assert r.status_code == 200


def test_certificate_bound_token_without_tls_is_refused(gateway, keys, pki):
    # The plain listener has no client certificate: the binding cannot hold, so the token is refused.
    token = keys.mint(cnf={"x5t#S256": pki.client_x5t})
    r = gateway.get("/orders/1", headers=bearer(token))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
