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

    /// Whether the host knows `path` at all: any answer but NotFound (a value, or a value it
    /// cannot serialize).
    fn answers(&self, path: &[&str]) -> bool {
        self.property(path).is_some()
    }
}

/// Which gateway this is, from the one property read in the root context that neither host logs
/// about: `xds`. Envoy (1.29 and later) knows it (its xDS attributes: a map it cannot serialize
/// whole, so the status is SerializationFailure). ngx_wasm_module answers NotFound, silently: an
/// undotted name outside its property table. Every other candidate logs on ngx_wasm_module in the
/// root context (`ngx_proxy_wasm_properties.c` at both of Kong's pins): `plugin_vm_id` at `[alert]`
/// ("NYI"), `node` and the other Envoy names at `[error]` ("not supported"), and any dotted path
/// such as `xds.node` at `[error]` on 3.10 ("cannot get scoped properties outside of a request").
pub fn detect(host: &dyn Properties) -> HostKind {
    if host.answers(&["xds"]) {
        HostKind::Envoy
    } else {
        HostKind::Kong
    }
}

/// What the engine must know of the gateway, as a value: the adapter hands it to
/// [`crate::decision::Engine::with_host`] at configure time. The default is Envoy's (what the CLI
/// and native tests assume).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostRules {
    /// Which gateway.
    pub kind: HostKind,
    /// Whether removing a request header keeps it from the upstream. Not on ngx_wasm_module: a
    /// removal only zeroes the entry's hash, and nginx's `proxy_pass` forwards the entry anyway; a
    /// replace overwrites the first copy in place, but a second copy still reaches the upstream.
    pub removes_request_headers: bool,
    /// The step of the host's clocks, in microseconds: 1 on Envoy (nanoseconds), 1000 on
    /// ngx_wasm_module, whose wall clock and WASI monotonic clock both count whole milliseconds.
    pub clock_step_us: u64,
    /// Whether `set_property` on a name of our own keeps a value for the host's access log
    /// (Envoy: filter state `wasm.<name>`, `%FILTER_STATE(...)%`). Not on ngx_wasm_module: a
    /// property outside `ngx.*` and `wasmx.*` answers NotFound (`ngx_proxy_wasm_properties_set`),
    /// and the Rust SDK's `set_property` panics on any status but Ok.
    pub filter_state: bool,
    /// Whether `on_http_request_headers` says when a request has no body (`end_of_stream`).
    /// Not on ngx_wasm_module: `end_of_stream` is always false there, and `on_http_request_body`
    /// is never called for a request without a body (nginx reads the whole body first, then calls it
    /// once, `end_of_stream` true): a filter waiting for a body that does not come waits forever.
    pub headers_tell_end_of_stream: bool,
    /// How a request waits for its body: `Pause` from `on_http_request_headers` (Envoy, with
    /// `allow_on_headers_stop_iteration`), or `Continue` (ngx_wasm_module: a `Pause` there waits for
    /// a dispatch's answer and nothing else, so the request would hang; nginx reads the body in the
    /// content phase and calls `on_http_request_body` before `proxy_pass` runs).
    pub pauses_for_body: bool,
    /// Whether `Pause` from `on_http_response_body` may be returned again and again, each call
    /// seeing the whole body buffered so far (Envoy). ngx_wasm_module honours the first `Pause`
    /// only (it turns buffering on, into `wasm_response_body_buffers`); a later call with
    /// `end_of_stream` false means those buffers are full.
    pub buffers_response_repeatedly: bool,
    /// Whether `proxy_call_foreign_function` may be called at all. Envoy answers NotFound for a
    /// name it does not register (the SDK's `call_foreign_function` returns `Err(NotFound)`, no
    /// trap), so a function can be probed there. ngx_wasm_module traps on every call: at Kong 3.9's
    /// pin (9136e46) the host function is not implemented (`ngx_proxy_wasm_hfuncs_nop`, NYI), at
    /// 3.10's (a376e67) every name but `resolve_lua` is "unknown foreign function", a trap.
    pub foreign_functions: bool,
}

impl HostRules {
    /// The rules of `kind`.
    pub const fn of(kind: HostKind) -> HostRules {
        match kind {
            HostKind::Envoy => HostRules {
                kind,
                removes_request_headers: true,
                clock_step_us: 1,
                filter_state: true,
                headers_tell_end_of_stream: true,
                pauses_for_body: true,
                buffers_response_repeatedly: true,
                foreign_functions: true,
            },
            HostKind::Kong => HostRules {
                kind,
                removes_request_headers: false,
                clock_step_us: 1_000,
                filter_state: false,
                headers_tell_end_of_stream: false,
                pauses_for_body: false,
                buffers_response_repeatedly: false,
                foreign_functions: false,
            },
        }
    }
}

impl Default for HostRules {
    fn default() -> Self {
        HostRules::of(HostKind::Envoy)
    }
}

// Imports, not only calls, are host rules: ngx_wasm_module refuses to instantiate a module whose
// `env` import is missing from its table or has other types, and every nginx worker exits. The
// log-level getter is `(i32 i32)->i32` there and `(i32)->i32` in the SDK and Envoy (seen at 9136e46:
// "incompatible import type", then "failed initializing "warden" filter"). One `.wasm` serves both
// gateways, so no run-time rule can gate it: `tests/test_kong_host.py` checks every import of the
// built module against ngx_wasm_module's table at both pins, and a unit test below scans `plugin/src`.

/// The host's foreign functions (`proxy_call_foreign_function`): call one only where
/// [`HostRules::foreign_functions`] says a call cannot trap.
pub trait ForeignFunctions {
    /// Calls `name` with `args`; its answer (empty when it has none).
    fn call(&self, name: &str, args: &[u8]) -> Result<Vec<u8>, ForeignError>;
}

/// Why a foreign function gave no answer: the statuses the Rust SDK returns as errors (it panics on
/// any other, so a host answering another status must never be called).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignError {
    /// No function of that name (Envoy's answer for an unknown name).
    NotFound,
    /// The arguments were refused (Envoy's `verify_signature`: no key, or a key it cannot import).
    BadArgument,
    /// SerializationFailure or InternalFailure.
    Failed,
}

/// What the adapter does when the engine asks for a request body of at most `max` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPlan {
    /// The request has none: step on with an empty body.
    Empty,
    /// Its `content-length` already exceeds `max`: step on without reading it.
    TooLarge,
    /// Read it in `on_http_request_body` (until `end_of_stream`), waiting as
    /// [`HostRules::pauses_for_body`] says.
    Wait,
    /// Refuse it (411): chunked on ngx_wasm_module, where an empty chunked body never reaches
    /// `on_http_request_body` and the request would go upstream undecided.
    LengthRequired,
}

/// How to get a request's body on this gateway, from what `on_http_request_headers` saw. Envoy
/// says when there is none (`end_of_stream`); on ngx_wasm_module only the framing headers can
/// (`content-length`, `transfer-encoding`: nginx reads a body only when they announce one).
pub fn body_plan(
    rules: HostRules,
    end_of_stream: bool,
    headers: &[(String, String)],
    max: usize,
) -> BodyPlan {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    let length = header("content-length").map(|v| v.parse::<u64>());
    let chunked = header("transfer-encoding").is_some();
    if let Some(Ok(n)) = length {
        if usize::try_from(n).map_or(true, |n| n > max) {
            return BodyPlan::TooLarge;
        }
    }
    let announced = matches!(length, Some(Ok(n)) if n > 0) || matches!(length, Some(Err(_)));
    match (rules.headers_tell_end_of_stream, end_of_stream) {
        (true, true) => BodyPlan::Empty,
        (true, false) => BodyPlan::Wait,
        (false, _) if chunked => BodyPlan::LengthRequired,
        (false, _) if announced => BodyPlan::Wait,
        (false, _) => BodyPlan::Empty,
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

    /// The two ngx_wasm_module commits Kong pins (3.9: 9136e46, 3.10: a376e67).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum NgxPin {
        Kong39,
        Kong310,
    }

    /// The levels of ngx_wasm_module's log lines the double records (operators page on both).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum NgxLevel {
        /// `NGX_LOG_WASM_NYI` is `NGX_LOG_ALERT`.
        Alert,
        Error,
    }

    /// ngx_wasm_module's property table (`ngx_proxy_wasm_properties.c` at each pin), in the root
    /// context (`on_configure`, `on_tick`: no request) or in a request; every line it would log is
    /// recorded. `source.address` = `$remote_addr` (no port), `ngx.*` only inside a request.
    pub struct NgxWasm {
        pub pin: NgxPin,
        pub in_request: bool,
        pub remote_addr: &'static str,
        pub logs: std::cell::RefCell<Vec<(NgxLevel, String)>>,
    }

    impl NgxWasm {
        pub fn root(pin: NgxPin) -> NgxWasm {
            NgxWasm {
                pin,
                in_request: false,
                remote_addr: "",
                logs: Default::default(),
            }
        }

        pub fn request(pin: NgxPin, remote_addr: &'static str) -> NgxWasm {
            NgxWasm {
                in_request: true,
                remote_addr,
                ..NgxWasm::root(pin)
            }
        }

        fn log(&self, level: NgxLevel, msg: String) -> Option<Vec<u8>> {
            self.logs.borrow_mut().push((level, msg));
            None
        }
    }

    /// Envoy names ngx_wasm_module lists as "NYI" ([alert]) or "not supported" ([error]).
    const NGX_NYI: &[&str] = &[
        "plugin_vm_id",
        "connection.sha256_peer_certificate_digest",
        "connection.subject_peer_certificate",
        "response.grpc_status",
        "upstream.tls_version",
    ];
    const NGX_NOT_SUPPORTED: &[&str] = &[
        "node",
        "cluster_name",
        "cluster_metadata",
        "listener_direction",
        "listener_metadata",
        "route_name",
        "route_metadata",
        "upstream_host_metadata",
    ];
    /// Paths mapped to an nginx variable (read through `ngx.*`).
    const NGX_MAPPED: &[&str] = &[
        "source.address",
        "source.port",
        "request.path",
        "request.id",
    ];

    impl Properties for NgxWasm {
        fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
            let joined = path.join(".");
            let p = joined.as_str();
            let dotted = p.contains('.');
            if !self.in_request && dotted && self.pin == NgxPin::Kong310 {
                return self.log(
                    NgxLevel::Error,
                    "cannot get scoped properties outside of a request".into(),
                );
            }
            if NGX_NYI.contains(&p) {
                return self.log(NgxLevel::Alert, format!("NYI - \"{p}\" property"));
            }
            if NGX_NOT_SUPPORTED.contains(&p) {
                return self.log(NgxLevel::Error, format!("\"{p}\" property not supported"));
            }
            let ngx = NGX_MAPPED.contains(&p) || p.starts_with("ngx.");
            if !self.in_request && ngx {
                return self.log(
                    NgxLevel::Error,
                    "cannot get ngx properties outside of a request".into(),
                );
            }
            if !self.in_request && p.starts_with("wasmx.") {
                return self.log(
                    NgxLevel::Error,
                    "cannot get host properties outside of a request".into(),
                );
            }
            if !self.in_request && p == "plugin_name" {
                // Reads the request's filter chain, which the root context does not have.
                return self.log(
                    NgxLevel::Alert,
                    "plugin_name outside a request: NULL filter chain".into(),
                );
            }
            let answer = match p {
                "plugin_name" => Some("warden"),
                "plugin_root_id" => Some("1"),
                "source.address" | "ngx.remote_addr" => Some(self.remote_addr),
                _ => None, // NotFound, silently: not in the table, or no such variable
            };
            answer.map(|s| s.as_bytes().to_vec())
        }
    }

    /// What ngx_wasm_module's `proxy_set_property` answers (`ngx_proxy_wasm_properties_set`, both
    /// pins): a dotted path outside a request is an error (logged), `ngx.*` and names mapped to
    /// nginx variables set the variable, `wasmx.*` is a host property, anything else NotFound.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum NgxSetProperty {
        Ok,
        NotFound,
        Error,
    }

    impl NgxWasm {
        pub fn set_property(&self, path: &[&str]) -> NgxSetProperty {
            let p = path.join(".");
            if !self.in_request && p.contains('.') {
                self.log(
                    NgxLevel::Error,
                    "cannot set scoped properties outside of a request".into(),
                );
                return NgxSetProperty::Error;
            }
            if p.starts_with("ngx.") || p.starts_with("wasmx.") || NGX_MAPPED.contains(&p.as_str())
            {
                return NgxSetProperty::Ok;
            }
            NgxSetProperty::NotFound
        }
    }

    /// The steps of an ngx_wasm_module HTTP context a host call can be made in (a subset).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum NgxStep {
        RequestHeaders,
        Log,
        Done,
    }

    /// ngx_wasm_module's step rule for `dispatch_http_call` (`ngx_http_proxy_wasm_dispatch.c`, both
    /// pins): refused in `on_log` and `on_done` ("bad step": the request's pool is released), unless
    /// the call comes from a root context's `on_tick`.
    pub fn ngx_dispatch_allowed(step: NgxStep, in_tick: bool) -> bool {
        in_tick || !matches!(step, NgxStep::Log | NgxStep::Done)
    }

    /// ngx_wasm_module's `set_tick_period` (`ngx_proxy_wasm_host.c`, same at both pins): a second
    /// non-zero period traps ("tick_period already set"); each accepted one starts a new timer
    /// chain, and a 0 does not stop the running one.
    #[derive(Default)]
    pub struct NgxTimer {
        period_ms: u64,
        chains: usize,
        pub traps: Vec<String>,
    }

    impl NgxTimer {
        /// Timer chains firing.
        pub fn chains(&self) -> usize {
            self.chains
        }
    }

    impl crate::schedule::TickHost for NgxTimer {
        fn set_tick_period(&mut self, period: std::time::Duration) -> Result<(), String> {
            let ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
            if ms != 0 && self.period_ms != 0 {
                self.traps.push("tick_period already set".into());
                return Err("trap: tick_period already set".into());
            }
            self.period_ms = ms;
            if ms != 0 {
                self.chains += 1;
            }
            Ok(())
        }
    }

    /// What happens to a request after `on_http_request_headers` returned `Pause` or `Continue`,
    /// on each host, as measured (Envoy 1.40 with `allow_on_headers_stop_iteration`; nginx +
    /// ngx_wasm_module at both Kong pins, by hand).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum BodyDelivery {
        /// Nothing more happens: the request waits until the client gives up.
        Hangs,
        /// The request goes on to the upstream without another call into the filter.
        Upstream,
        /// `on_http_request_body` is called with the whole body (`end_of_stream` true); `readable`:
        /// `get_http_request_body` returns it (false: nginx buffered it to a file).
        Body { size: usize, readable: bool },
    }

    /// A request body as the client sends it.
    #[derive(Debug, Clone, Copy)]
    pub struct SentBody {
        /// Body bytes.
        pub len: usize,
        /// Sent chunked (no `content-length`).
        pub chunked: bool,
    }

    /// Envoy: `end_of_stream` in the headers is true without a body; a `Pause` stops the chain
    /// and the body is handed over (whole, once buffered); `Continue` sends the headers upstream
    /// at once (the body follows).
    pub fn envoy_body(sent: SentBody, paused: bool) -> BodyDelivery {
        match (paused, sent.len) {
            (false, _) => BodyDelivery::Upstream,
            (true, 0) if !sent.chunked => BodyDelivery::Hangs, // adapter must not pause: end_of_stream
            (true, size) => BodyDelivery::Body {
                size,
                readable: true,
            },
        }
    }

    /// ngx_wasm_module: a `Pause` in the request headers waits for a dispatch's answer only; with
    /// `Continue` nginx reads the body in the content phase and calls `on_http_request_body` once
    /// before `proxy_pass`, unless the body is empty; a body over `client_body_buffer_size` is
    /// written to a file that `get_http_request_body` cannot read.
    pub fn ngx_body(sent: SentBody, paused: bool, client_body_buffer_size: usize) -> BodyDelivery {
        match (paused, sent.len) {
            (true, _) => BodyDelivery::Hangs,
            (false, 0) => BodyDelivery::Upstream,
            (false, size) => BodyDelivery::Body {
                size,
                readable: size <= client_body_buffer_size,
            },
        }
    }

    /// A request's headers as nginx keeps them (`headers_in.headers`), changed the way
    /// ngx_wasm_module changes them (`ngx_http_wasm_headers.c`), forwarded the way `proxy_pass`
    /// forwards them: every entry, whatever its hash.
    pub struct NgxHeaders {
        /// (name, value, hash set).
        entries: Vec<(String, String, bool)>,
    }

    impl NgxHeaders {
        pub fn new(headers: &[(String, String)]) -> NgxHeaders {
            NgxHeaders {
                entries: headers
                    .iter()
                    .map(|(n, v)| (n.clone(), v.clone(), true))
                    .collect(),
            }
        }

        /// What the upstream receives.
        pub fn forwarded(&self) -> Vec<(String, String)> {
            self.entries
                .iter()
                .map(|(n, v, _)| (n.clone(), v.clone()))
                .collect()
        }

        fn matching(&self, name: &str) -> Option<usize> {
            self.entries
                .iter()
                .position(|(n, _, hashed)| *hashed && n.eq_ignore_ascii_case(name))
        }
    }

    impl crate::upstream::RequestHeaders for NgxHeaders {
        /// Every match gets hash 0; the entries stay.
        fn remove(&mut self, name: &str) {
            while let Some(i) = self.matching(name) {
                self.entries[i].2 = false;
            }
        }

        /// The first match is updated in place; a further match is zeroed and the scan restarts,
        /// which zeroes the updated one too (it still matches). No match: a new entry.
        fn set(&mut self, name: &str, value: &str) {
            let mut found = false;
            'again: loop {
                for i in 0..self.entries.len() {
                    let (n, _, hashed) = &self.entries[i];
                    if !(*hashed && n.eq_ignore_ascii_case(name)) {
                        continue;
                    }
                    if found {
                        self.entries[i].2 = false;
                        continue 'again;
                    }
                    self.entries[i] = (name.to_owned(), value.to_owned(), true);
                    found = true;
                }
                break;
            }
            if !found {
                self.entries.push((name.to_owned(), value.to_owned(), true));
            }
        }

        /// A new entry after the others, whatever entries of that name there are.
        fn add(&mut self, name: &str, value: &str) {
            self.entries.push((name.to_owned(), value.to_owned(), true));
        }
    }

    /// Envoy's request header map: a removal removes every copy, a replace leaves one.
    pub struct EnvoyHeaders(pub Vec<(String, String)>);

    impl EnvoyHeaders {
        /// The headers a client sent as Envoy's codec stores them and a filter reads them: a
        /// repeated inline header becomes one entry, values joined with `,` (`; ` for `cookie`;
        /// `header_map_impl.cc`, `DelimiterForInlineHeaders`). `authorization` is inline in every
        /// Envoy build (extensions register it as a custom inline header), so two `Authorization`
        /// headers reach the filter as one value `Basic ...,Bearer ...`. Other headers stay
        /// separate entries.
        pub fn received(sent: &[(String, String)]) -> EnvoyHeaders {
            const INLINE: [&str; 3] = ["authorization", "cookie", "user-agent"];
            let mut map: Vec<(String, String)> = Vec::new();
            for (name, value) in sent {
                let lower = name.to_ascii_lowercase();
                let joined = INLINE.contains(&lower.as_str());
                match map.iter_mut().find(|(n, _)| joined && *n == lower) {
                    Some((_, v)) => {
                        v.push_str(if lower == "cookie" { "; " } else { "," });
                        v.push_str(value);
                    }
                    None => map.push((lower, value.clone())),
                }
            }
            EnvoyHeaders(map)
        }
    }

    impl crate::upstream::RequestHeaders for EnvoyHeaders {
        fn remove(&mut self, name: &str) {
            self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        }

        fn set(&mut self, name: &str, value: &str) {
            self.remove(name);
            self.0.push((name.to_owned(), value.to_owned()));
        }

        /// `addCopy`: one more entry, any entry of that name kept.
        fn add(&mut self, name: &str, value: &str) {
            self.0.push((name.to_owned(), value.to_owned()));
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

    /// Envoy (1.40, measured in a root context): `plugin_vm_id`, `xds` (SerializationFailure: a map)
    /// and `xds.node` answered, bare `node` NotFound; in a request `source.address` is `ip:port`, the
    /// digest lower-case hex.
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

        /// A map such as `xds` is known (its fields are) though it cannot be serialized whole.
        fn answers(&self, path: &[&str]) -> bool {
            let prefix = format!("{}.", path.join("."));
            self.property(path).is_some() || self.props.keys().any(|k| k.starts_with(&prefix))
        }
    }

    /// Envoy's foreign functions (proxy-wasm-cpp-host `exports.cc`: an unregistered name answers
    /// NotFound). `verify_signature` is registered when `verify_signature` is true: it decodes
    /// the arguments, imports the DER SubjectPublicKeyInfo and checks a DER ECDSA signature (P-256)
    /// as `EVP_DigestVerify` does; a key it cannot import is BadArgument, like Envoy's.
    pub struct EnvoyForeign {
        pub verify_signature: bool,
        pub calls: std::sync::Mutex<Vec<String>>,
    }

    impl EnvoyForeign {
        pub fn new(verify_signature: bool) -> EnvoyForeign {
            EnvoyForeign {
                verify_signature,
                calls: std::sync::Mutex::new(Vec::new()),
            }
        }
    }

    impl ForeignFunctions for EnvoyForeign {
        fn call(&self, name: &str, args: &[u8]) -> Result<Vec<u8>, ForeignError> {
            use crate::credential::native::{VerifySignatureArguments, VerifySignatureResult};
            use p256::ecdsa::signature::Verifier as _;
            use p256::pkcs8::DecodePublicKey as _;
            use prost::Message as _;
            self.calls.lock().unwrap().push(name.to_owned());
            if name != "verify_signature" || !self.verify_signature {
                return Err(ForeignError::NotFound);
            }
            let a =
                VerifySignatureArguments::decode(args).map_err(|_| ForeignError::BadArgument)?;
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(&a.public_key)
                .map_err(|_| ForeignError::BadArgument)?;
            let ok = a.hash_function == "sha256"
                && p256::ecdsa::Signature::from_der(&a.signature)
                    .is_ok_and(|s| key.verify(&a.text, &s).is_ok());
            let result = VerifySignatureResult {
                result: ok,
                error: if ok {
                    String::new()
                } else {
                    "BAD_SIGNATURE".into()
                },
            };
            Ok(result.encode_to_vec())
        }
    }

    /// ngx_wasm_module's `proxy_call_foreign_function`: a trap at both of Kong's pins (NYI at
    /// 9136e46, "unknown foreign function" at a376e67 for anything but `resolve_lua`). The double
    /// panics, so a test fails if the adapter's rules let a call through.
    pub struct NgxForeign(pub NgxPin);

    impl ForeignFunctions for NgxForeign {
        fn call(&self, name: &str, _args: &[u8]) -> Result<Vec<u8>, ForeignError> {
            panic!(
                "ngx_wasm_module ({:?}) traps on proxy_call_foreign_function({name:?})",
                self.0
            )
        }
    }

    /// Host calls of one request, by kind, as the adapter (`host/mod.rs`) makes them on Envoy.
    #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
    pub struct HostCalls {
        /// The request header map read (`proxy_get_header_map_pairs`, once).
        pub header_map: u32,
        /// Properties read (`proxy_get_property`: client address, certificate digest).
        pub properties: u32,
        /// Clock reads (`proxy_get_current_time_nanoseconds`, WASI `clock_time_get`).
        pub clock: u32,
        /// Metric calls on the request path (`proxy_record_metric`: histograms; counters are
        /// summed in the worker and published per tick).
        pub metrics: u32,
        /// Request headers removed or set for the upstream (one map call each).
        pub request_headers: u32,
        /// Response headers added, and the response's `:status` read.
        pub response_headers: u32,
        /// Shared-data reads and writes (behavioural state).
        pub shared_data: u32,
        /// The decision record handed to the host (`proxy_log`), or a local reply sent.
        pub output: u32,
    }

    impl HostCalls {
        /// Every host call of the request.
        pub fn total(&self) -> u32 {
            self.header_map
                + self.properties
                + self.clock
                + self.metrics
                + self.request_headers
                + self.response_headers
                + self.shared_data
                + self.output
        }
    }

    /// Envoy counting the host calls a request makes, each in [`HostCalls`]: its properties
    /// ([`Envoy`]), shared data, the request (set by [`serve`]) and its clocks; the upstream answers
    /// `status`.
    pub struct Counting {
        pub envoy: Envoy,
        pub store: crate::shared::MemoryStore,
        pub calls: std::cell::Cell<HostCalls>,
        /// The request's headers.
        pub headers: std::cell::RefCell<Vec<(String, String)>>,
        /// The wall clock, seconds.
        pub now_s: std::cell::Cell<u64>,
        /// The upstream's status.
        pub status: std::cell::Cell<Option<u16>>,
        /// The last decision counted.
        pub decision: std::cell::RefCell<Option<crate::decision::Decision>>,
    }

    impl Counting {
        pub fn new(source: &str) -> Counting {
            Counting {
                envoy: Envoy::new(source, None),
                store: crate::shared::MemoryStore::default(),
                calls: Default::default(),
                headers: Default::default(),
                now_s: Default::default(),
                status: Default::default(),
                decision: Default::default(),
            }
        }

        fn count(&self, f: impl FnOnce(&mut HostCalls)) {
            let mut c = self.calls.get();
            f(&mut c);
            self.calls.set(c);
        }

        /// The calls counted so far, and the count started again.
        pub fn take(&self) -> HostCalls {
            self.calls.take()
        }
    }

    impl Properties for Counting {
        fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
            self.count(|c| c.properties += 1);
            self.envoy.property(path)
        }

        fn answers(&self, path: &[&str]) -> bool {
            self.count(|c| c.properties += 1);
            self.envoy.answers(path)
        }
    }

    impl crate::shared::SharedData for Counting {
        fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), crate::shared::SharedError> {
            self.count(|c| c.shared_data += 1);
            self.store.get(key)
        }

        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), crate::shared::SharedError> {
            self.count(|c| c.shared_data += 1);
            self.store.set(key, value, cas)
        }
    }

    impl crate::exchange::Host for Counting {
        fn kind(&self) -> HostKind {
            HostKind::Envoy
        }

        fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
            self.count(|c| c.header_map += 1);
            let headers = self.headers.borrow();
            headers
                .iter()
                .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
                .collect()
        }

        fn new_request_id(&self) -> String {
            self.count(|c| c.clock += 1);
            "generated".to_owned()
        }

        fn now_us(&self) -> u64 {
            self.count(|c| c.clock += 1);
            self.now_s.get() * 1_000_000
        }

        fn monotonic(&self) -> std::time::Instant {
            self.count(|c| c.clock += 1);
            std::time::Instant::now()
        }

        fn remove_request_header(&self, _name: &str) {
            self.count(|c| c.request_headers += 1);
        }

        fn set_request_header(&self, _name: &str, _value: &str) {
            self.count(|c| c.request_headers += 1);
        }

        fn add_request_header(&self, _name: &str, _value: &str) {
            self.count(|c| c.request_headers += 1);
        }

        fn set_response_header(&self, _name: &str, _value: &str) {
            self.count(|c| c.response_headers += 1);
        }

        fn response_status(&self) -> Option<u16> {
            self.count(|c| c.response_headers += 1);
            self.status.get()
        }

        fn send(&self, _reply: &crate::reply::LocalReply) {
            self.count(|c| c.output += 1);
        }

        /// One metric call per histogram observation of [`crate::metrics::updates`] (counters are
        /// summed in the worker and published per tick).
        fn count(&self, decision: &crate::decision::Decision, _engine_us: u64) {
            crate::metrics::updates(decision, |u| {
                self.count(|c| c.metrics += u32::from(u.is_observation()))
            });
            *self.decision.borrow_mut() = Some(decision.clone());
        }

        /// The log and filter state take the record in a host call; the `http` sink's worker
        /// buffer takes it in Wasm (its batches leave from the tick).
        fn write_record(
            &self,
            engine: &crate::decision::Engine,
            _record: &crate::audit::AuditRecord<'_>,
        ) {
            if engine.audit_sink() != crate::config::AuditSink::Http {
                self.count(|c| c.output += 1);
            }
        }

        fn raise(
            &self,
            engine: &crate::decision::Engine,
            event: crate::config::alerts::AlertEvent,
            ts_ms: u64,
            record: &crate::audit::AuditRecord<'_>,
        ) {
            if let Some(a) = engine.alerts() {
                let line = crate::alerts::AlertLine::of_record(event, record).to_json();
                let _ = a.enqueue(self, ts_ms, &line);
            }
        }

        /// No remote keys in the modelled requests.
        fn refetch_keys(
            &self,
            _engine: &crate::decision::Engine,
            _now_s: u64,
            _provider: usize,
        ) -> bool {
            false
        }

        fn keys_missed(&self, _provider: usize) {}

        /// No outbound calls in the modelled requests.
        fn dispatch(&self, _call: &crate::outbound::Call) -> Result<(), String> {
            Err("no outbound calls here".to_owned())
        }

        fn warn(&self, _msg: &str) {}
    }

    /// One request through the adapter's own request path ([`crate::exchange::Exchange`]) on
    /// Envoy, `on_http_request_headers` to `on_log`, the upstream answering `status` with `bytes`
    /// of body; the host calls land in `host.calls`. Pinned by the tests of
    /// `host_calls_per_request`. `last_of_replaced`: as [`crate::exchange::Exchange::end`]'s.
    #[allow(clippy::too_many_arguments)]
    pub fn serve(
        engine: &crate::decision::Engine,
        host: &Counting,
        cache: &std::cell::RefCell<crate::TokenCache>,
        headers: &[(String, String)],
        now_s: u64,
        status: u16,
        bytes: u64,
        last_of_replaced: bool,
    ) -> crate::decision::Decision {
        use crate::exchange::{Exchange, Facts};
        *host.headers.borrow_mut() = headers.to_vec();
        host.now_s.set(now_s);
        host.status.set(Some(status));
        let mut x = Exchange::new(HostKind::Envoy);
        let facts = std::rc::Rc::new(Facts::read(host));
        x.facts = Some(std::rc::Rc::clone(&facts));
        x.run(host, engine, cache, &facts);
        assert!(
            x.waiting.is_none(),
            "the modelled requests decide in one phase"
        );
        x.add_response_headers(host);
        x.read_status(host);
        x.response_body(usize::try_from(bytes).unwrap());
        x.end(host, engine, last_of_replaced);
        host.decision.take().expect("a decision")
    }
}

#[cfg(test)]
mod tests {
    use super::mock::{Envoy, NgxPin, NgxWasm};
    use super::*;
    use std::net::Ipv4Addr;

    const PINS: [NgxPin; 2] = [NgxPin::Kong39, NgxPin::Kong310];

    #[test]
    fn detects_envoy_and_kong_from_the_root_context() {
        for pin in PINS {
            assert_eq!(detect(&NgxWasm::root(pin)), HostKind::Kong);
            assert_eq!(detect(&NgxWasm::request(pin, "10.0.0.1")), HostKind::Kong);
        }
        assert_eq!(detect(&Envoy::new("127.0.0.1:1", None)), HostKind::Envoy);
        // Found by its xDS attributes, whatever its vm_id.
        let mut no_vm_id = Envoy::new("127.0.0.1:1", None);
        no_vm_id.props.remove("plugin_vm_id");
        assert_eq!(detect(&no_vm_id), HostKind::Envoy);
        no_vm_id.props.remove("xds.node");
        assert_eq!(detect(&no_vm_id), HostKind::Kong);
    }

    /// Operators page on `[alert]` and `[error]`: finding out the gateway must log neither, at
    /// either of Kong's pins, in the root context (every worker, every config load) or a request.
    #[test]
    fn detection_is_silent_on_ngx_wasm_module() {
        for pin in PINS {
            for host in [NgxWasm::root(pin), NgxWasm::request(pin, "10.0.0.1")] {
                detect(&host);
                assert_eq!(host.logs.borrow().as_slice(), &[], "{pin:?}");
            }
        }
        // The double is not vacuous: the probes detection used to make log at those levels.
        let root = NgxWasm::root(NgxPin::Kong310);
        for path in [&["plugin_vm_id"][..], &["xds", "node"], &["node"]] {
            assert_eq!(root.property(path), None);
        }
        let levels: Vec<_> = root.logs.borrow().iter().map(|(l, _)| *l).collect();
        use super::mock::NgxLevel::{Alert, Error};
        assert_eq!(levels, vec![Alert, Error, Error]);
    }

    /// The decision record's filter-state sink: Envoy keeps `wasm.warden_record` for its access
    /// log; ngx_wasm_module answers NotFound for that name (a panic in the Rust SDK), so on Kong
    /// the record goes to the log whatever the config says.
    #[test]
    fn the_record_goes_to_filter_state_only_where_the_host_keeps_it() {
        use super::mock::NgxSetProperty;
        use crate::audit::{sink, FILTER_STATE_PROPERTY};
        use crate::config::AuditSink;
        for pin in PINS {
            let kong = NgxWasm::request(pin, "10.0.0.1");
            assert_eq!(
                kong.set_property(&[FILTER_STATE_PROPERTY]),
                NgxSetProperty::NotFound
            );
            assert_eq!(kong.set_property(&["wasmx", "x"]), NgxSetProperty::Ok);
        }
        let kong = HostRules::of(HostKind::Kong);
        let envoy = HostRules::of(HostKind::Envoy);
        assert_eq!(sink(AuditSink::FilterState, kong), AuditSink::Log);
        assert_eq!(sink(AuditSink::FilterState, envoy), AuditSink::FilterState);
        assert_eq!(sink(AuditSink::Log, envoy), AuditSink::Log);
    }

    #[test]
    fn host_rules_per_gateway() {
        let envoy = HostRules::of(HostKind::Envoy);
        assert!(envoy.removes_request_headers);
        assert_eq!(envoy.clock_step_us, 1);
        assert_eq!(HostRules::default(), envoy);
        let kong = HostRules::of(HostKind::Kong);
        assert!(!kong.removes_request_headers);
        assert_eq!(kong.clock_step_us, 1_000);
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
        let kong = NgxWasm::request(NgxPin::Kong310, "198.51.100.4");
        let a = client_address(&kong).unwrap();
        assert_eq!(a.ip.to_string(), "198.51.100.4");
        assert_eq!(a.port, None);
        let envoy = Envoy::new("[2001:db8::5]:61000", None);
        let a = client_address(&envoy).unwrap();
        assert_eq!(a.to_string(), "2001:db8::5");
        assert_eq!(a.port, Some(61000));
        assert_eq!(client_address(&NgxWasm::root(NgxPin::Kong39)), None);
        assert!(kong.logs.borrow().is_empty());
    }

    #[test]
    fn peer_certificate_is_unavailable_on_kong_not_absent() {
        let kong = NgxWasm::request(NgxPin::Kong310, "10.0.0.1");
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
        // Neither called nor imported (the module would not load on Kong; see `HostRules`).
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

    /// ngx_wasm_module runs a root context's call on a fake request whose connection is freed once
    /// the answer is handled: a call dispatched from the root context's `on_http_call_response`
    /// (discovery, then the key set) crashed every worker at both pins (SIGSEGV in
    /// `ngx_alloc_chain_link`, pool NULL). The root context's callback hands its answers to the
    /// fetcher as `root` (the next call waits for the next tick) and dispatches nothing itself.
    #[test]
    fn root_context_never_dispatches_from_a_call_answer() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/host");
        let adapter = std::fs::read_to_string(src.join("mod.rs")).unwrap();
        let start = adapter.find("impl Context for WardenRoot").unwrap();
        let end = start
            + adapter[start..]
                .find("impl RootContext for WardenRoot")
                .unwrap();
        let callback = &adapter[start..end];
        assert!(
            callback.contains("on_response(&engine, true,"),
            "{callback}"
        );
        assert!(!callback.contains("dispatch"), "{callback}");
        let fetch = std::fs::read_to_string(src.join("fetch.rs")).unwrap();
        let arm = fetch.find("Ok(call) if root =>").unwrap();
        let next = arm + fetch[arm..].find("Ok(call) =>").unwrap();
        assert!(fetch[arm..next].contains("self.deferred.push"));
        assert!(!fetch[arm..next].contains("dispatch("));
    }

    /// The end of a request (`on_log`) writes the record and queues the alert; it never dispatches:
    /// ngx_wasm_module refuses a call from `on_log` (the request's pool is gone), so alerts leave
    /// from the root context's `on_tick` only, where a call is allowed.
    #[test]
    fn alerts_are_queued_at_the_end_of_a_request_and_sent_from_the_tick() {
        use super::mock::{ngx_dispatch_allowed, NgxStep};
        assert!(!ngx_dispatch_allowed(NgxStep::Log, false));
        assert!(!ngx_dispatch_allowed(NgxStep::Done, false));
        assert!(ngx_dispatch_allowed(NgxStep::RequestHeaders, false));
        assert!(ngx_dispatch_allowed(NgxStep::Log, true));
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/host");
        let adapter = std::fs::read_to_string(src.join("mod.rs")).unwrap();
        let start = adapter.find("fn on_log(&mut self)").unwrap();
        let end = start + adapter[start..].find("\n    }\n}").unwrap();
        let on_log = &adapter[start..end];
        assert!(on_log.contains("self.x.end("), "{on_log}");
        assert!(!on_log.contains("dispatch"), "{on_log}");
        // The request path's end (`Exchange::end` and its `finish`) raises through the host,
        // which queues it.
        let path = std::fs::read_to_string(src.join("../exchange.rs")).unwrap();
        let start = path.find("pub fn end(").unwrap();
        let finish = start + path[start..].find("fn finish(").unwrap();
        let end = finish + path[finish..].find("\n    }\n").unwrap();
        assert!(path[start..end].contains("host.raise("));
        assert!(!path[start..end].contains("dispatch"));
        let raise = adapter.find("fn raise(&self").unwrap();
        let next = raise + adapter[raise..].find("\n    }\n").unwrap();
        assert!(adapter[raise..next].contains("alerts::raise("));
        assert!(!adapter[raise..next].contains("dispatch"));
        let tick = adapter.find("fn on_tick(&mut self)").unwrap();
        assert!(adapter[tick..].contains("self.alerts.tick("));
        let sender = std::fs::read_to_string(src.join("alerts.rs")).unwrap();
        let answer = sender.find("pub fn on_response(").unwrap();
        let next = answer + sender[answer..].find("\n    fn failed(").unwrap();
        assert!(!sender[answer..next].contains("dispatch"));
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

    /// The adapter's body plan on each host's model: an MCP call never goes upstream undecided
    /// and never hangs; a body the host cannot hand over whole is refused.
    #[test]
    fn body_plans_never_forward_undecided_or_hang() {
        use super::mock::{envoy_body, ngx_body, BodyDelivery, SentBody};
        let max = 65_536;
        for len in [0, 10, 20_000, 70_000] {
            for chunked in [false, true] {
                let sent = SentBody { len, chunked };
                let mut headers = vec![(":method".to_owned(), "POST".to_owned())];
                if chunked {
                    headers.push(("transfer-encoding".into(), "chunked".into()));
                } else {
                    headers.push(("content-length".into(), len.to_string()));
                }
                for kind in [HostKind::Envoy, HostKind::Kong] {
                    let rules = HostRules::of(kind);
                    let eos = kind == HostKind::Envoy && len == 0 && !chunked;
                    let plan = body_plan(rules, eos, &headers, max);
                    let delivery = match (plan, kind) {
                        (BodyPlan::Wait, HostKind::Envoy) => {
                            envoy_body(sent, rules.pauses_for_body)
                        }
                        (BodyPlan::Wait, HostKind::Kong) => {
                            ngx_body(sent, rules.pauses_for_body, 16_384)
                        }
                        // Decided in the headers: the engine's reply or its edits.
                        _ => continue,
                    };
                    let case = format!("{kind:?} {len} chunked={chunked} {plan:?}");
                    match delivery {
                        BodyDelivery::Body { size, readable } => {
                            assert_eq!(size, len, "{case}");
                            // The adapter refuses (413) a body it cannot read whole.
                            if !readable {
                                assert_eq!(kind, HostKind::Kong, "{case}");
                            }
                        }
                        other => panic!("{case}: {other:?}"),
                    }
                }
            }
        }
    }

    /// The request body on each host: Envoy's `end_of_stream` says when there is none;
    /// ngx_wasm_module's is always false and it never calls `on_http_request_body` for a request
    /// without a body, so only the framing headers can tell (waiting for a body that never comes
    /// would hang the request). A `content-length` over the limit is refused unread on both.
    #[test]
    fn body_plan_on_each_host() {
        let envoy = HostRules::of(HostKind::Envoy);
        let kong = HostRules::of(HostKind::Kong);
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(n, v)| ((*n).into(), (*v).into()))
                .collect()
        };
        let len = |n: &str| h(&[("content-length", n)]);
        assert_eq!(body_plan(envoy, true, &[], 10), BodyPlan::Empty);
        assert_eq!(body_plan(envoy, false, &len("5"), 10), BodyPlan::Wait);
        assert_eq!(body_plan(envoy, false, &[], 10), BodyPlan::Wait);
        assert_eq!(body_plan(envoy, false, &len("11"), 10), BodyPlan::TooLarge);
        // Kong: end_of_stream is false even for a body-less POST.
        assert_eq!(body_plan(kong, false, &[], 10), BodyPlan::Empty);
        assert_eq!(body_plan(kong, false, &len("0"), 10), BodyPlan::Empty);
        assert_eq!(body_plan(kong, false, &len("5"), 10), BodyPlan::Wait);
        assert_eq!(
            body_plan(kong, false, &len("99999999999999999999"), 10),
            BodyPlan::Wait
        );
        assert_eq!(
            body_plan(kong, false, &h(&[("Transfer-Encoding", "chunked")]), 10),
            BodyPlan::LengthRequired
        );
        assert_eq!(
            body_plan(kong, false, &h(&[("Content-Length", "11")]), 10),
            BodyPlan::TooLarge
        );
    }
}

/// The host calls one request makes on the rows of `bench/bench.py` (one route, one cached ES256
/// token, a direct 200), pinned: a new host call on the request path fails here, and the numbers are
/// BENCHMARKS.md's. Counted by [`mock::serve`] over the real engine, header edits and metric updates.
#[cfg(test)]
mod host_calls_per_request {
    use super::mock::{serve, Counting, HostCalls};
    use crate::decision::{Decision, Engine};
    use jwt_simple::prelude::*;
    use serde_json::{json, Value};

    const PATH: &str = "/tenants/acme/orders/42";

    /// The bench's config with `extra` merged in, and a token it accepts.
    fn bench(extra: Value) -> (Engine, String) {
        let key = ES256KeyPair::generate().with_key_id("k1");
        let jwk: Value = serde_json::from_str(&key.public_key().to_jwk()).unwrap();
        let mut cfg = json!({
            "providers": [{"name": "bench", "issuer": "https://idp.example.com",
                           "audiences": ["orders-api"], "jwks": {"keys": [jwk]}}],
            "routes": [{"name": "read-order", "methods": ["GET", "POST"],
                        "path": "/tenants/{tenant}/orders/{id}", "scopes": ["orders:read"]}],
            "audit": {"enabled": false}
        });
        for (k, v) in extra.as_object().unwrap() {
            cfg[k] = v.clone();
        }
        let claims = Claims::with_custom_claims(
            json!({"scope": "orders:read", "tenant": "acme"}),
            Duration::from_secs(600),
        )
        .with_issuer("https://idp.example.com")
        .with_audience("orders-api")
        .with_subject("agent-1");
        let token = key.sign(claims).unwrap();
        (
            Engine::from_json(cfg.to_string().as_bytes()).unwrap(),
            token,
        )
    }

    /// The time now (`bench` signs its token now) and a GET of the bench's route with `token`.
    fn request(token: &str) -> (u64, Vec<(String, String)>) {
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let headers = [
            (":method", "GET"),
            (":path", PATH),
            (":authority", "bench"),
            ("x-request-id", "0f4e2a"),
            ("authorization", &format!("Bearer {token}")),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        (now_s, headers)
    }

    /// The calls of the `n`-th request with the same token (the first one verifies it).
    fn nth(engine: &Engine, token: &str, n: usize) -> (Decision, HostCalls) {
        let (now_s, headers) = request(token);
        let host = Counting::new("10.1.2.3:40000");
        let cache = std::cell::RefCell::new(crate::TokenCache::default());
        let mut last = None;
        for _ in 0..n {
            host.take();
            let d = serve(engine, &host, &cache, &headers, now_s, 200, 2, false);
            last = Some((d, host.take()));
        }
        last.unwrap()
    }

    /// The counter increments of `d`: summed in the worker, off the request path.
    fn counters(d: &Decision) -> u32 {
        let mut n = 0;
        crate::metrics::updates(d, |u| n += u32::from(!u.is_observation()));
        n
    }

    /// A cached token, no risk, no record: the header map, the clock when the phase starts and when
    /// the engine has decided, the engine time observed, the four `x-auth-*` headers set.
    const CACHED: HostCalls = HostCalls {
        header_map: 1,
        properties: 0,
        clock: 2,
        metrics: 1,
        request_headers: 4,
        response_headers: 0,
        shared_data: 0,
        output: 0,
    };

    #[test]
    fn cached_token_no_record() {
        let (engine, token) = bench(json!({}));
        let (d, calls) = nth(&engine, &token, 3);
        assert!(d.cache_hit && d.status == 200 && d.reply.is_none(), "{d:?}");
        assert_eq!(calls, CACHED);
        assert_eq!(calls.total(), 8);
        // The decision and the token cache's hit: summed in the worker, published per tick.
        assert_eq!(counters(&d), 2);
    }

    /// Risk in shadow: the address read (asked by the engine), the risk stage's time budget (two
    /// monotonic reads) and the end of the request (one), its score observed, its
    /// `x-auth-risk-score` header, the response's `:status`; its state: a read and a
    /// compare-and-set of each record (identity, address) on the request, none after the response
    /// (its facts wait in the worker for the identity's next write: risk/pending.rs).
    const RISK: HostCalls = HostCalls {
        header_map: 1,
        properties: 1,
        clock: 5,
        metrics: 2,
        request_headers: 5,
        response_headers: 1,
        shared_data: 4,
        output: 0,
    };

    #[test]
    fn cached_token_risk_in_shadow() {
        let (engine, token) = bench(json!({"risk": {"mode": "shadow"}}));
        let (d, calls) = nth(&engine, &token, 3);
        assert!(
            d.cache_hit && d.risk.is_some() && d.reply.is_none(),
            "{d:?}"
        );
        assert_eq!(calls, RISK);
        assert_eq!(calls.total(), 19);
        assert_eq!(counters(&d), 2);
    }

    /// A request still in flight when a new config replaced its engine, and the last one holding
    /// it, writes the response facts waiting there: no tick flushes a replaced engine. Any other
    /// request leaves them for the identity's next write or the tick.
    #[test]
    fn the_replaced_engines_last_request_writes_its_waiting_responses() {
        let (engine, token) = bench(json!({"risk": {"mode": "shadow"}}));
        let (now_s, headers) = request(&token);
        let host = Counting::new("10.1.2.3:40000");
        let cache = std::cell::RefCell::new(crate::TokenCache::default());
        // In use: the response's size waits in the worker; the tick would write it.
        let d = serve(&engine, &host, &cache, &headers, now_s, 200, 512, false);
        assert!(d.risk.is_some() && d.reply.is_none(), "{d:?}");
        host.take();
        engine.flush_responses(&host);
        let tick = host.take().shared_data;
        assert!(tick > 0, "a response waited");
        // Replaced: the request's end writes it; nothing is left for a tick that never comes.
        serve(&engine, &host, &cache, &headers, now_s + 1, 200, 512, true);
        assert_eq!(host.take().shared_data, RISK.shared_data + tick);
        engine.flush_responses(&host);
        assert_eq!(host.take().shared_data, 0, "nothing left waiting");
    }

    #[test]
    fn cached_token_full_pipeline() {
        let (engine, token) =
            bench(json!({"risk": {"mode": "shadow"}, "audit": {"enabled": true}}));
        let (d, calls) = nth(&engine, &token, 3);
        assert!(
            d.cache_hit && d.risk.is_some() && d.reply.is_none(),
            "{d:?}"
        );
        // The risk row's, and the record written.
        assert_eq!(calls, HostCalls { output: 1, ..RISK });
        assert_eq!(calls.total(), 20);
    }

    /// The record written: the cached row's, and the address (the record names it), the clock at
    /// the end of the request, the response's `:status`, the record handed to the host's log. The
    /// `http` sink's worker buffer takes it without a host call (its batches leave on the tick).
    #[test]
    fn cached_token_record_written_or_shipped() {
        let shipped = json!({"enabled": true, "sink": "http", "http": {
            "service": {"url": "http://collector:8088/records", "envoy_cluster": "records"}}});
        for (audit, output) in [(json!({"enabled": true}), 1), (shipped, 0)] {
            let (engine, token) = bench(json!({ "audit": audit }));
            let (d, calls) = nth(&engine, &token, 3);
            assert!(d.cache_hit && d.reply.is_none(), "{d:?}");
            let want = HostCalls {
                properties: 1,
                clock: 3,
                response_headers: 1,
                output,
                ..CACHED
            };
            assert_eq!(calls, want, "{audit}");
            assert_eq!(calls.total(), 11 + output);
        }
    }
}
