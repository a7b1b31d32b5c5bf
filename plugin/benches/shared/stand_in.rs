//! A host whose `verify_signature` answers at once, without arithmetic, for timing Warden's own
//! work on a first-seen token the host verifies (benches/signatures.rs, examples/engine_timing.rs).

use prost::Message as _;
use warden::credential::native::{VerifySignatureArguments, VerifySignatureResult};
use warden::gateway::{ForeignError, ForeignFunctions};

/// Every signature is good but over the configure-time self-test's altered text (so that
/// `Signatures::detect` takes this host). For timing only.
pub struct StandIn;

impl ForeignFunctions for StandIn {
    fn call(&self, _: &str, args: &[u8]) -> Result<Vec<u8>, ForeignError> {
        let args = VerifySignatureArguments::decode(args).map_err(|_| ForeignError::BadArgument)?;
        let result = !args.text.ends_with(b"self-tesT");
        Ok(VerifySignatureResult {
            result,
            error: String::new(),
        }
        .encode_to_vec())
    }
}
