//! A probe filter for `make bench` (see Cargo.toml): empty, one `verify_signature` per request, or a
//! list of host calls made on every request (`ops:` configuration), to price each kind of host call.

use base64::Engine as _;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// One kind of host call, made `n` times per request by the `ops:` configuration.
#[derive(Clone, Copy)]
enum Op {
    /// The risk stage's state: a read and a compare-and-set write of two records the size of
    /// Warden's (an identity's, 443 bytes; an address's, 41): four shared-data calls.
    State,
    /// The response's `:status` read (in the response-header callback).
    Status,
    /// One line of this many bytes logged at info (written when Envoy logs `wasm` at info): a
    /// decision record's size.
    Record(usize),
    /// The whole request header map read (the SDK's `Vec<(String, String)>`).
    Headers,
    /// One request header read by name.
    Header,
    /// A request header added (`proxy_add_header_map_value`).
    Add,
    /// A request header replaced (`proxy_replace_header_map_value`).
    Set,
    /// An absent request header removed (`proxy_remove_header_map_value`).
    Remove,
    /// The wall clock (`proxy_get_current_time_nanoseconds`).
    Time,
    /// WASI's monotonic clock (`clock_time_get`).
    Mono,
    /// A property read (`source.address`).
    Prop,
    /// A shared-data read.
    SharedGet,
    /// A shared-data write (no compare-and-set).
    SharedSet,
    /// A histogram observed.
    Metric,
    /// A log line at info (dropped at Envoy's default warn).
    Log,
    /// A response header added (in the response-header callback).
    RespAdd,
    /// The request header map read, four headers appended, and the whole map written back in one
    /// call (`proxy_set_header_map_pairs`).
    Pairs,
}

impl Op {
    fn parse(name: &str) -> Option<Op> {
        Some(match name {
            "headers" => Op::Headers,
            "header" => Op::Header,
            "add" => Op::Add,
            "set" => Op::Set,
            "remove" => Op::Remove,
            "time" => Op::Time,
            "mono" => Op::Mono,
            "prop" => Op::Prop,
            "sget" => Op::SharedGet,
            "sset" => Op::SharedSet,
            "metric" => Op::Metric,
            "log" => Op::Log,
            "resp_add" => Op::RespAdd,
            "pairs" => Op::Pairs,
            "state" => Op::State,
            "status" => Op::Status,
            _ => Op::Record(name.strip_prefix("record")?.parse().ok()?),
        })
    }
}

#[derive(Default)]
struct Root {
    /// Serialized `envoy.source.extensions.common.wasm.VerifySignatureArguments`, if configured.
    verify: Option<Rc<Vec<u8>>>,
    ops: Rc<Vec<(Op, u32)>>,
    metric: u32,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        if config.is_empty() {
            return true;
        }
        if let Some(list) = config.strip_prefix(b"ops:") {
            let Ok(list) = std::str::from_utf8(list) else {
                return false;
            };
            let mut ops = Vec::new();
            for item in list.trim().split(',') {
                let Some((name, n)) = item.split_once('=') else {
                    return false;
                };
                let (Some(op), Ok(n)) = (Op::parse(name), n.parse()) else {
                    return false;
                };
                ops.push((op, n));
            }
            self.metric = hostcalls::define_metric(MetricType::Histogram, "probe_us").unwrap_or(0);
            let _ = hostcalls::set_shared_data("probe", Some(&[7u8; 64]), None);
            for (key, size) in STATE {
                let _ = hostcalls::set_shared_data(key, Some(&vec![7u8; size]), None);
            }
            self.ops = Rc::new(ops);
            return true;
        }
        match base64::engine::general_purpose::STANDARD.decode(config.trim_ascii()) {
            Ok(args) => {
                self.verify = Some(Rc::new(args));
                true
            }
            Err(_) => false,
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Probe {
            verify: self.verify.clone(),
            ops: Rc::clone(&self.ops),
            metric: self.metric,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Probe {
    verify: Option<Rc<Vec<u8>>>,
    ops: Rc<Vec<(Op, u32)>>,
    metric: u32,
}

impl Context for Probe {}

const NAMES: [&str; 8] = [
    "x-probe-0",
    "x-probe-1",
    "x-probe-2",
    "x-probe-3",
    "x-probe-4",
    "x-probe-5",
    "x-probe-6",
    "x-probe-7",
];

/// The state op's records: key and size.
const STATE: [(&str, usize); 2] = [("probe-identity", 443), ("probe-source", 41)];

/// Ops made in the response-header callback; the others in the request-header callback.
fn in_response(op: Op) -> bool {
    matches!(op, Op::RespAdd | Op::Status)
}

impl Probe {
    fn run(&self, op: Op, i: usize) {
        let name = NAMES.get(i % NAMES.len()).copied().unwrap_or("x-probe");
        match op {
            Op::Headers => drop(self.get_http_request_headers()),
            Op::Header => drop(self.get_http_request_header("authorization")),
            Op::Add => self.add_http_request_header(name, "probe"),
            Op::Set => self.set_http_request_header(name, Some("probe")),
            Op::Remove => self.set_http_request_header(name, None),
            Op::Time => drop(self.get_current_time()),
            Op::Mono => drop(std::time::Instant::now()),
            Op::Prop => drop(self.get_property(vec!["source", "address"])),
            Op::SharedGet => drop(self.get_shared_data("probe")),
            Op::SharedSet => drop(hostcalls::set_shared_data("probe", Some(&[7u8; 64]), None)),
            Op::Metric => drop(hostcalls::record_metric(self.metric, 7)),
            Op::Log => drop(hostcalls::log(LogLevel::Info, "probe")),
            Op::RespAdd => self.add_http_response_header(name, "probe"),
            Op::Status => drop(self.get_http_response_header(":status")),
            Op::Record(n) => drop(hostcalls::log(LogLevel::Info, &"r".repeat(n))),
            Op::State => {
                for (key, _) in STATE {
                    let (value, cas) = self.get_shared_data(key);
                    let value = value.unwrap_or_default();
                    let _ = hostcalls::set_shared_data(key, Some(&value), cas);
                }
            }
            Op::Pairs => {
                let mut all = self.get_http_request_headers();
                all.extend(
                    NAMES
                        .iter()
                        .take(4)
                        .map(|n| ((*n).to_owned(), "probe".to_owned())),
                );
                self.set_http_request_headers(
                    all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
                );
            }
        }
    }
}

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for &(op, n) in self.ops.iter() {
            if !in_response(op) {
                (0..n as usize).for_each(|i| self.run(op, i));
            }
        }
        let Some(args) = &self.verify else {
            return Action::Continue;
        };
        // `VerifySignatureResult { result: true }` serializes as field 1, varint 1.
        match proxy_wasm::hostcalls::call_foreign_function("verify_signature", Some(args)) {
            Ok(Some(result)) if result.starts_with(&[0x08, 0x01]) => Action::Continue,
            _ => {
                self.send_http_response(500, vec![], Some(b"verify_signature failed\n"));
                Action::Pause
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for &(op, n) in self.ops.iter() {
            if in_response(op) {
                (0..n as usize).for_each(|i| self.run(op, i));
            }
        }
        Action::Continue
    }
}
