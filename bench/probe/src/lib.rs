//! A probe filter for `make bench` (see Cargo.toml): empty, or one `verify_signature` per request.

use base64::Engine as _;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Root {
    /// Serialized `envoy.source.extensions.common.wasm.VerifySignatureArguments`, if configured.
    verify: Option<Rc<Vec<u8>>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        if config.is_empty() {
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
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Probe {
    verify: Option<Rc<Vec<u8>>>,
}

impl Context for Probe {}

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
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
}
