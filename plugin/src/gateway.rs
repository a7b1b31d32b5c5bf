//! What differs between the gateways the filter runs in (Envoy; Kong 3.4 to 3.10 through
//! ngx_wasm_module), as small pure functions over what the host answered. Each is tested natively
//! against a mock host that answers like ngx_wasm_module; the proxy-wasm calls are in `host::gateway`.
//!
//! Sources: ngx_wasm_module `docs/PROXY_WASM.md` (supported properties and host functions),
//! `src/common/proxy_wasm/ngx_proxy_wasm_properties.c`, `ngx_proxy_wasm_host.c`, `ngx_wasm_shm_kv.c`,
//! and Kong/ngx_wasm_module#625 (`:dispatch_status`). See kong/README.md.

use crate::shared::{SharedData, SharedError};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

pub use crate::outbound::HostKind;

/// Host properties (proxy-wasm `get_property`), read-only: `None` when the host has no value.
pub trait Properties {
    /// The value at `path` (e.g. `["source", "address"]`).
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
}

/// Which gateway this is, from properties both hosts answer with a plain status in the root
/// context (a read that could trap, such as an `ngx.*` variable outside a request, is not used).
/// Envoy answers `plugin_vm_id` (the VM id) and `xds.node` (its bootstrap node); ngx_wasm_module
/// answers NotFound to both (`plugin_vm_id` is "NYI", `xds.*` unknown). Envoy 1.40 answers NotFound
/// to a bare `node` in the root context (measured), so that one is not used.
pub fn detect(host: &dyn Properties) -> HostKind {
    let envoy = [&["plugin_vm_id"][..], &["xds", "node"][..]]
        .into_iter()
        .any(|path| host.property(path).is_some_and(|v| !v.is_empty()));
    if envoy {
        HostKind::Envoy
    } else {
        HostKind::Kong
    }
}

/// The shared-memory zone Warden's shared data lives in on Kong: `shm_kv warden <size>`, declared
/// with `KONG_NGINX_WASM_SHM_KV_WARDEN=<size>`. ngx_wasm_module stores a key `zone/rest` in the zone
/// named `zone` (else in the default `*` zone), and traps a get or set whose zone does not exist.
pub const SHM_ZONE: &str = "warden";

/// The host key for one of Warden's shared-data keys: namespaced into [`SHM_ZONE`]. The same key
/// on Envoy, where it is only a name.
pub fn shared_key(key: &str) -> String {
    format!("{SHM_ZONE}/{key}")
}

/// Shared data with every key in Warden's zone ([`shared_key`]): what the adapter's `HostShared` is,
/// over the raw host calls.
pub struct InZone<S>(pub S);

impl<S: SharedData> SharedData for InZone<S> {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), SharedError> {
        self.0.get(&shared_key(key))
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SharedError> {
        self.0.set(&shared_key(key), value, cas)
    }
}

/// The client's address, as the gateway saw the connection (never a client-set header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress {
    /// The IP address.
    pub ip: IpAddr,
    /// The source port, when the host gave one (Envoy does; Kong's `ngx.remote_addr` does not).
    pub port: Option<u16>,
}

impl fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.ip)
    }
}

/// Parses what a gateway reports as the source address: `203.0.113.7:5000` and `[2001:db8::1]:5000`
/// (Envoy's `source.address`), `203.0.113.7` and `2001:db8::1` (nginx `$remote_addr`, which Kong
/// maps `source.address` to), or `[2001:db8::1]`. IPv4-mapped IPv6 becomes IPv4. Anything else: `None`.
pub fn parse_address(s: &str) -> Option<ClientAddress> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ClientAddress {
            ip: canonical(ip),
            port: None,
        });
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let ip = host.parse::<Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse::<u16>().ok()?),
        };
        return Some(ClientAddress {
            ip: canonical(IpAddr::V6(ip)),
            port,
        });
    }
    let (host, port) = s.rsplit_once(':')?;
    // A bare IPv6 address has several colons and parsed above; here only `v4:port` is left.
    let ip = host.parse::<std::net::Ipv4Addr>().ok()?;
    Some(ClientAddress {
        ip: IpAddr::V4(ip),
        port: Some(port.parse::<u16>().ok()?),
    })
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The client address: `source.address` (Envoy and Kong), else Kong's `ngx.remote_addr`.
pub fn client_address(host: &dyn Properties) -> Option<ClientAddress> {
    [&["source", "address"][..], &["ngx", "remote_addr"][..]]
        .into_iter()
        .filter_map(|path| host.property(path))
        .find_map(|v| std::str::from_utf8(&v).ok().and_then(parse_address))
}

/// Why the client certificate's digest cannot be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerCertError {
    /// The gateway does not expose it (Kong: `connection.sha256_peer_certificate_digest` is not
    /// implemented in ngx_wasm_module). A certificate-bound token must then be refused, not let through
    /// unchecked.
    UnavailableOnThisGateway(HostKind),
    /// The host answered something that is not 64 hex digits.
    Malformed,
}

impl fmt::Display for PeerCertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerCertError::UnavailableOnThisGateway(HostKind::Kong) => f.write_str(
                "the client certificate digest is unavailable on Kong (ngx_wasm_module does not \
                 expose connection.sha256_peer_certificate_digest)",
            ),
            PeerCertError::UnavailableOnThisGateway(HostKind::Envoy) => {
                f.write_str("the client certificate digest is unavailable on this gateway")
            }
            PeerCertError::Malformed => f.write_str("the host's certificate digest is malformed"),
        }
    }
}

impl std::error::Error for PeerCertError {}

/// SHA-256 of the client's certificate (DER), for certificate-bound tokens (RFC 8705 `x5t#S256`).
/// `Ok(None)`: the connection carries no client certificate. On Kong: always
/// [`PeerCertError::UnavailableOnThisGateway`], never `Ok(None)`, so callers cannot mistake "cannot
/// know" for "no certificate".
pub fn peer_certificate_sha256(
    kind: HostKind,
    host: &dyn Properties,
) -> Result<Option<[u8; 32]>, PeerCertError> {
    if kind == HostKind::Kong {
        return Err(PeerCertError::UnavailableOnThisGateway(kind));
    }
    let Some(hex_digest) = host.property(&["connection", "sha256_peer_certificate_digest"]) else {
        return Ok(None);
    };
    if hex_digest.is_empty() {
        return Ok(None);
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(&hex_digest, &mut out).map_err(|_| PeerCertError::Malformed)?;
    Ok(Some(out))
}

/// Why an outbound call (`dispatch_http_call`) brought no HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchError {
    /// Kong reported a connection failure in the `:dispatch_status` pseudo-header (`timeout`,
    /// `broken connection`, `tls handshake failure`, `resolver failure`, `reader failure`, ...).
    Failed(String),
    /// No `:status` and no reason (Envoy's answer to a failed call: no headers at all).
    NoResponse,
    /// A `:status` that is not a 3-digit HTTP status.
    BadStatus(String),
}

impl fmt::Display for DispatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DispatchError::Failed(why) => write!(f, "outbound call failed: {why}"),
            DispatchError::NoResponse => f.write_str("outbound call failed: no response"),
            DispatchError::BadStatus(s) => write!(f, "outbound call: bad :status {s:?}"),
        }
    }
}

impl std::error::Error for DispatchError {}

/// The outcome of an outbound call from its response headers (`on_http_call_response`): the HTTP
/// status, or why there is none. A `:status` wins; without one, Kong's `:dispatch_status` names the
/// failure.
pub fn dispatch_outcome(headers: &[(String, Vec<u8>)]) -> Result<u16, DispatchError> {
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).trim().to_owned())
    };
    if let Some(status) = find(":status") {
        return match status.parse::<u16>() {
            Ok(code) if (100..=599).contains(&code) => Ok(code),
            _ => Err(DispatchError::BadStatus(status)),
        };
    }
    match find(":dispatch_status") {
        Some(why) if !why.is_empty() => Err(DispatchError::Failed(why)),
        _ => Err(DispatchError::NoResponse),
    }
}

#[cfg(test)]
pub(crate) mod mock {
    //! Test doubles of the two hosts' property tables, from their documentation and source.
    use super::*;
    use std::collections::HashMap;

    /// ngx_wasm_module (Kong): `node` not supported, `connection.sha256_peer_certificate_digest`
    /// NYI, `source.address` = `$remote_addr` (no port), `ngx.*` only inside a request.
    pub struct NgxWasm {
        pub in_request: bool,
        pub remote_addr: &'static str,
    }

    impl Properties for NgxWasm {
        fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
            let joined = path.join(".");
            let answer = match joined.as_str() {
                "plugin_name" => Some("warden"),
                "plugin_root_id" => Some("1"),
                "source.address" | "ngx.remote_addr" if self.in_request => Some(self.remote_addr),
                _ => None, // NotFound: not supported, NYI, unknown, or no request
            };
            answer.map(|s| s.as_bytes().to_vec())
        }
    }

    /// ngx_wasm_module's shared key/value memory (`shm_kv` zones, Kong's cas rule): a key
    /// `zone/rest` lives in zone `zone` if declared, else in the default zone `*`; with neither, the
    /// get or set traps (here: a host error naming the trap).
    pub struct NgxShm {
        zones: HashMap<String, crate::shared::MemoryStore>,
    }

    impl NgxShm {
        pub fn new(zones: &[&str]) -> NgxShm {
            NgxShm {
                zones: zones
                    .iter()
                    .map(|z| {
                        let store = crate::shared::MemoryStore::new(crate::shared::CasRule::Kong);
                        ((*z).to_owned(), store)
                    })
                    .collect(),
            }
        }

        fn zone(&self, key: &str) -> Result<&crate::shared::MemoryStore, SharedError> {
            let named = key.split_once('/').and_then(|(z, _)| self.zones.get(z));
            named.or_else(|| self.zones.get("*")).ok_or_else(|| {
                SharedError::Host(
                    "trap: failed setting value to shm (could not resolve namespace)".into(),
                )
            })
        }
    }

    impl SharedData for NgxShm {
        fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), SharedError> {
            self.zone(key)?.get(key)
        }

        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SharedError> {
            self.zone(key)?.set(key, value, cas)
        }
    }

    /// What ngx_wasm_module's `ngx_http_proxy_wasm_dispatch` makes of a call: it connects to the
    /// `host[:port]` given as upstream (`[v6]:port` bracketed), needs non-empty `:method`, `:path` and
    /// `:authority` ("no :method" / "no :path" / "no :authority" otherwise), turns TLS on for
    /// `:scheme: https`, and sends `Host:` from `:authority`. Returns (host, port, tls, request line).
    pub fn ngx_dispatch(
        upstream: &str,
        headers: &[(String, String)],
    ) -> Result<(String, Option<u16>, bool, String), &'static str> {
        if upstream.is_empty() {
            return Err("no host");
        }
        let port_from = match upstream.find(']') {
            Some(i) if upstream.starts_with('[') => i,
            _ => 0,
        };
        let (host, port) = match upstream[port_from..].find(':') {
            Some(i) => {
                let at = port_from + i;
                (
                    upstream[..at].to_owned(),
                    upstream[at + 1..].parse::<u16>().ok(),
                )
            }
            None => (upstream.to_owned(), None),
        };
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        let method = get(":method")
            .filter(|v| !v.is_empty())
            .ok_or("no :method")?;
        let path = get(":path").filter(|v| !v.is_empty()).ok_or("no :path")?;
        let authority = get(":authority")
            .filter(|v| !v.is_empty())
            .ok_or("no :authority")?;
        let tls = get(":scheme") == Some("https");
        Ok((
            host,
            port,
            tls,
            format!("{method} {path} HTTP/1.1\r\nHost: {authority}"),
        ))
    }

    /// Envoy (1.40, measured in a root context): `plugin_vm_id` and `xds.node` answered, bare `node`
    /// NotFound; in a request `source.address` is `ip:port`, the digest lower-case hex.
    pub struct Envoy {
        pub props: HashMap<&'static str, Vec<u8>>,
    }

    impl Envoy {
        pub fn new(source: &str, digest: Option<&str>) -> Envoy {
            let mut props = HashMap::new();
            props.insert("plugin_vm_id", b"warden".to_vec());
            props.insert("xds.node", b"\x32\x05envoy".to_vec());
            props.insert("plugin_root_id", b"warden".to_vec());
            props.insert("source.address", source.as_bytes().to_vec());
            if let Some(d) = digest {
                props.insert(
                    "connection.sha256_peer_certificate_digest",
                    d.as_bytes().to_vec(),
                );
            }
            Envoy { props }
        }
    }

    impl Properties for Envoy {
        fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
            self.props.get(path.join(".").as_str()).cloned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mock::{Envoy, NgxWasm};
    use super::*;
    use std::net::Ipv4Addr;

    const KONG_ROOT: NgxWasm = NgxWasm {
        in_request: false,
        remote_addr: "",
    };

    #[test]
    fn detects_envoy_and_kong_from_the_root_context() {
        assert_eq!(detect(&KONG_ROOT), HostKind::Kong);
        assert_eq!(detect(&Envoy::new("127.0.0.1:1", None)), HostKind::Envoy);
        // An Envoy whose vm_id is empty is still found by its node.
        let mut no_vm_id = Envoy::new("127.0.0.1:1", None);
        no_vm_id.props.insert("plugin_vm_id", Vec::new());
        assert_eq!(detect(&no_vm_id), HostKind::Envoy);
        no_vm_id.props.remove("xds.node");
        assert_eq!(detect(&no_vm_id), HostKind::Kong);
        let kong_request = NgxWasm {
            in_request: true,
            remote_addr: "10.0.0.1",
        };
        assert_eq!(detect(&kong_request), HostKind::Kong);
    }

    #[test]
    fn shared_keys_land_in_the_warden_zone() {
        assert_eq!(shared_key("risk/7"), "warden/risk/7");
        // ngx_wasm_module splits at the first '/': the zone is everything before it.
        let key = shared_key("a/b");
        assert_eq!(key.split_once('/').map(|(z, _)| z), Some(SHM_ZONE));
        assert_eq!(SHM_ZONE, SHM_ZONE.to_ascii_lowercase());
    }

    #[test]
    fn parses_every_address_form_the_gateways_report() {
        let v4 = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let cases = [
            ("203.0.113.7:5000", Some((v4, Some(5000)))),
            ("203.0.113.7", Some((v4, None))),
            ("[2001:db8::1]:443", Some((v6, Some(443)))),
            ("[2001:db8::1]", Some((v6, None))),
            ("2001:db8::1", Some((v6, None))),
            ("::ffff:203.0.113.7", Some((v4, None))),
            ("[::ffff:203.0.113.7]:80", Some((v4, Some(80)))),
            (" 203.0.113.7 ", Some((v4, None))),
            ("", None),
            ("203.0.113.7:", None),
            ("203.0.113.7:70000", None),
            ("[2001:db8::1]443", None),
            ("[2001:db8::1", None),
            ("example.com:80", None),
            ("unix:/tmp/sock", None),
            ("1.2.3:4", None),
        ];
        for (input, want) in cases {
            let got = parse_address(input).map(|a| (a.ip, a.port));
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn client_address_on_kong_and_envoy() {
        let kong = NgxWasm {
            in_request: true,
            remote_addr: "198.51.100.4",
        };
        let a = client_address(&kong).unwrap();
        assert_eq!(a.ip.to_string(), "198.51.100.4");
        assert_eq!(a.port, None);
        let envoy = Envoy::new("[2001:db8::5]:61000", None);
        let a = client_address(&envoy).unwrap();
        assert_eq!(a.to_string(), "2001:db8::5");
        assert_eq!(a.port, Some(61000));
        assert_eq!(client_address(&KONG_ROOT), None);
    }

    #[test]
    fn peer_certificate_is_unavailable_on_kong_not_absent() {
        let kong = NgxWasm {
            in_request: true,
            remote_addr: "10.0.0.1",
        };
        assert_eq!(
            peer_certificate_sha256(HostKind::Kong, &kong),
            Err(PeerCertError::UnavailableOnThisGateway(HostKind::Kong))
        );
        let hex_digest = "ab".repeat(32);
        let envoy = Envoy::new("10.0.0.1:1", Some(&hex_digest));
        assert_eq!(
            peer_certificate_sha256(HostKind::Envoy, &envoy),
            Ok(Some([0xab; 32]))
        );
        let no_cert = Envoy::new("10.0.0.1:1", None);
        assert_eq!(peer_certificate_sha256(HostKind::Envoy, &no_cert), Ok(None));
        let bad = Envoy::new("10.0.0.1:1", Some("xyz"));
        assert_eq!(
            peer_certificate_sha256(HostKind::Envoy, &bad),
            Err(PeerCertError::Malformed)
        );
    }

    fn hs(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn dispatch_outcome_reads_status_or_kongs_dispatch_status() {
        assert_eq!(
            dispatch_outcome(&hs(&[(":status", "200"), ("content-type", "x")])),
            Ok(200)
        );
        assert_eq!(dispatch_outcome(&hs(&[(":status", "503")])), Ok(503));
        for why in [
            "timeout",
            "broken connection",
            "tls handshake failure",
            "resolver failure",
            "reader failure",
        ] {
            assert_eq!(
                dispatch_outcome(&hs(&[(":dispatch_status", why)])),
                Err(DispatchError::Failed(why.into()))
            );
        }
        assert_eq!(dispatch_outcome(&[]), Err(DispatchError::NoResponse));
        assert_eq!(
            dispatch_outcome(&hs(&[(":dispatch_status", "")])),
            Err(DispatchError::NoResponse)
        );
        for bad in ["20", "abc", "600", ""] {
            assert_eq!(
                dispatch_outcome(&hs(&[(":status", bad)])),
                Err(DispatchError::BadStatus(bad.into())),
                "{bad:?}"
            );
        }
    }

    /// A Kong-rule store that records every write: the cas passed and the key's cas at that moment.
    struct Recording {
        inner: crate::shared::MemoryStore,
        writes: std::cell::RefCell<Vec<(u32, u32, bool)>>,
    }

    impl crate::shared::SharedData for Recording {
        fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), crate::shared::SharedError> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), crate::shared::SharedError> {
            let (_, current) = self.inner.get(key)?;
            let res = self.inner.set(key, value, cas);
            self.writes.borrow_mut().push((cas, current, res.is_ok()));
            res
        }
    }

    /// Two workers increment one counter, interleaved so that every other write races: under
    /// Kong's rule (exact cas, 0 for a new key) no increment is lost and every write that landed
    /// carried the key's exact current cas; the losing writes carried a stale one and were retried.
    #[test]
    fn kong_cas_rule_multi_writer_updates_lose_nothing() {
        use crate::shared::{update, CasRule, MemoryStore, SharedData};
        let store = Recording {
            inner: MemoryStore::new(CasRule::Kong),
            writes: Default::default(),
        };
        let key = shared_key("counter");
        let incr = |cur: Option<&[u8]>| {
            let n = cur
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_le_bytes)
                + 1;
            (Some(n.to_le_bytes().to_vec()), n)
        };
        let mut done = 0u64;
        for round in 0..50u32 {
            // Worker A reads, then worker B completes a whole update, then A writes (stale) and retries.
            let (value, cas) = store.get(&key).unwrap();
            update(&store, &key, 4, incr).unwrap();
            done += 1;
            let (next, _) = incr(value.as_deref());
            let stale = store.set(&key, &next.unwrap(), cas);
            if round > 0 || cas != 0 {
                assert_eq!(stale, Err(crate::shared::SharedError::CasMismatch));
            }
            update(&store, &key, 4, incr).unwrap();
            done += 1;
        }
        let (value, _) = store.get(&key).unwrap();
        let total = u64::from_le_bytes(<[u8; 8]>::try_from(value.unwrap().as_slice()).unwrap());
        assert_eq!(total, done);
        let writes = store.writes.borrow();
        assert!(writes.iter().any(|(_, _, ok)| !ok), "no race happened");
        for (cas, current, ok) in writes.iter() {
            assert_eq!(*ok, cas == current, "cas {cas} vs current {current}");
        }
        // The very first write created the key with cas 0, as Kong requires.
        assert_eq!(writes.first().map(|w| (w.0, w.2)), Some((0, true)));
    }

    /// Every shared-data write in the filter goes through `SharedData` (whose one wasm implementation
    /// passes the cas it read), and nothing asks the host for its log level (a trap on Kong: NYI).
    #[test]
    fn host_calls_kong_refuses_are_not_made() {
        fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    rust_files(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        assert!(files.len() > 10);
        let log_level = concat!("get_", "log_level");
        let set_shared = concat!("set_shared", "_data(");
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            assert!(
                !text.contains(log_level),
                "{} calls {log_level}",
                file.display()
            );
            let rel = file.strip_prefix(&src).unwrap();
            if rel != std::path::Path::new("host/shared.rs") {
                assert!(
                    !text.contains(set_shared),
                    "{} writes shared data directly",
                    rel.display()
                );
            }
        }
        let host_shared = std::fs::read_to_string(src.join("host/shared.rs")).unwrap();
        assert!(
            host_shared.contains("Some(cas)"),
            "HostShared must pass the cas it read"
        );
    }

    /// Kong appends a newline to local response bodies; every reply body still parses as JSON.
    #[test]
    fn local_reply_bodies_survive_kongs_trailing_newline() {
        use crate::credential::TokenError;
        use crate::reply::Denial;
        for denial in [
            Denial::NoCredential,
            Denial::InvalidToken(TokenError::Expired),
            Denial::InsufficientScope("orders:read".into()),
        ] {
            let mut body = denial.reply("req-1").body.into_bytes();
            body.push(b'\n');
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["request_id"], "req-1");
        }
    }

    #[test]
    fn outbound_calls_are_what_ngx_wasm_module_dispatches() {
        use super::mock::ngx_dispatch;
        use crate::outbound::{Service, ServiceConfig};
        let compile = |json: &str| {
            let cfg: ServiceConfig = serde_json::from_str(json).unwrap();
            Service::compile(&cfg, "providers[0].jwks_uri").unwrap()
        };
        let https = compile(r#"{"url": "https://idp.example.com/oauth2/keys?v=2"}"#);
        let call = https
            .call(
                HostKind::Kong,
                "GET",
                &[("accept", "application/json")],
                None,
            )
            .unwrap();
        let (host, port, tls, line) = ngx_dispatch(&call.upstream, &call.headers).unwrap();
        assert_eq!(
            (host.as_str(), port, tls),
            ("idp.example.com", Some(443), true)
        );
        assert_eq!(
            line,
            "GET /oauth2/keys?v=2 HTTP/1.1\r\nHost: idp.example.com"
        );
        let plain = compile(r#"{"url": "http://idp:9000/jwks", "kong_address": "10.0.0.9:9001"}"#);
        let call = plain
            .call(HostKind::Kong, "POST", &[], Some(b"x".to_vec()))
            .unwrap();
        let (host, port, tls, line) = ngx_dispatch(&call.upstream, &call.headers).unwrap();
        assert_eq!((host.as_str(), port, tls), ("10.0.0.9", Some(9001), false));
        assert_eq!(line, "POST /jwks HTTP/1.1\r\nHost: idp:9000");
        let v6 = compile(r#"{"url": "http://[::1]/jwks"}"#);
        let call = v6.call(HostKind::Kong, "GET", &[], None).unwrap();
        let (host, port, _, _) = ngx_dispatch(&call.upstream, &call.headers).unwrap();
        assert_eq!((host.as_str(), port), ("[::1]", Some(80)));
        // The double is not vacuous: a call without `:authority` is what Kong refuses.
        let mut headers = call.headers.clone();
        headers.retain(|(n, _)| n != ":authority");
        assert_eq!(ngx_dispatch(&call.upstream, &headers), Err("no :authority"));
    }

    #[test]
    fn shared_data_lands_in_the_zone_kong_declares() {
        use super::mock::NgxShm;
        use crate::shared::update;
        let bump = |cur: Option<&[u8]>| {
            let n = cur.and_then(|b| b.first().copied()).unwrap_or(0) + 1;
            (Some(vec![n]), n)
        };
        // As docker-compose.yml declares it (KONG_NGINX_WASM_SHM_KV_WARDEN): works, Kong's cas rule.
        let kong = InZone(NgxShm::new(&[SHM_ZONE]));
        for want in 1..=3u8 {
            assert_eq!(update(&kong, "jwks/corp", 4, bump), Ok(want));
        }
        assert_eq!(kong.0.get("warden/jwks/corp").unwrap().0, Some(vec![3]));
        // Without the zone, ngx_wasm_module traps: the zone is required, not optional.
        let undeclared = InZone(NgxShm::new(&["other"]));
        assert!(
            matches!(update(&undeclared, "k", 1, bump), Err(SharedError::Host(m)) if m.contains("trap"))
        );
        // And a bare key would need the default zone `*`, which Kong's environment cannot declare.
        assert!(NgxShm::new(&[SHM_ZONE]).get("k").is_err());
        assert!(NgxShm::new(&["*"]).get("k").is_ok());
    }
}
