//! Reading inputs (`-` is standard input) and writing key files.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

/// Largest input read, config or token, in bytes: well above anything the engine accepts, so that
/// the engine, not this limit, is what refuses an oversized document.
const MAX_INPUT_BYTES: u64 = 8 << 20;

/// The bytes of `path`, or of standard input when `path` is `-`.
pub fn read_input(path: &str) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let result = if path == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_INPUT_BYTES)
            .read_to_end(&mut buf)
    } else {
        fs::File::open(path).and_then(|f| f.take(MAX_INPUT_BYTES).read_to_end(&mut buf))
    };
    let name = if path == "-" { "standard input" } else { path };
    result.map_err(|e| format!("cannot read {name}: {e}"))?;
    Ok(buf)
}

/// Writes a secret: created (or truncated) with mode 0600 before any byte is written.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path).map_err(fail)?;
        // `mode` applies only to a file being created: tighten an existing one too.
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(fail)?;
        write_all(file, contents).map_err(fail)
    }
    #[cfg(not(unix))]
    {
        let file = options.open(path).map_err(fail)?;
        write_all(file, contents).map_err(fail)
    }
}

/// Writes a public file.
pub fn write_public(path: &Path, contents: &[u8]) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn write_all(mut file: fs::File, contents: &[u8]) -> std::io::Result<()> {
    file.write_all(contents)?;
    file.sync_all()
}
