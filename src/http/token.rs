//! The bearer token of mutating API calls: `<state>/token`, 32 random bytes as hex,
//! created with mode 0600 at first start, compared in constant time.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rand::RngCore;
use subtle::ConstantTimeEq;

use super::error::HttpError;

/// The token, held in memory for comparison.
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// Reads the token at `path`, creating it (mode 0600) when absent or empty.
    pub fn load_or_create(path: &Path) -> Result<Token, HttpError> {
        let err = |source| HttpError::Token {
            path: path.to_path_buf(),
            source,
        };
        match fs::read_to_string(path) {
            Ok(s) if !s.trim().is_empty() => {
                if let Ok(meta) = fs::metadata(path) {
                    let mode = meta.permissions().mode() & 0o777;
                    if mode & 0o077 != 0 {
                        tracing::warn!(
                            path = %path.display(),
                            mode = format!("{mode:o}"),
                            "token file is readable by others; chmod 600 it"
                        );
                    }
                }
                Ok(Token(s.trim().to_owned()))
            }
            Ok(_) => create(path).map_err(err),
            Err(e) if e.kind() == io::ErrorKind::NotFound => create(path).map_err(err),
            Err(e) => Err(err(e)),
        }
    }

    /// Whether `candidate` is the token, in time independent of where they differ.
    pub fn matches(&self, candidate: &str) -> bool {
        let a = self.0.as_bytes();
        let b = candidate.as_bytes();
        // Lengths are not secret (always 64 hex digits); contents are.
        a.len() == b.len() && bool::from(a.ct_eq(b))
    }

    /// Whether an `Authorization` header value carries the token.
    pub fn authorizes(&self, header: Option<&str>) -> bool {
        header
            .and_then(|h| h.strip_prefix("Bearer "))
            .is_some_and(|t| self.matches(t.trim()))
    }
}

/// Writes a fresh token atomically: a 0600 temporary file, fsynced, renamed into place.
fn create(path: &Path) -> io::Result<Token> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".token.tmp.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(token.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()?;
    tracing::info!(path = %path.display(), "created API token");
    Ok(Token(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_with_mode_0600_and_reused() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("token");
        let t = Token::load_or_create(&p).expect("create");
        let mode = fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(&p).expect("read");
        assert_eq!(text.trim().len(), 64);
        assert!(t.matches(text.trim()));
        let again = Token::load_or_create(&p).expect("load");
        assert!(again.matches(text.trim()));
        assert!(t.authorizes(Some(&format!("Bearer {}", text.trim()))));
        assert!(!t.authorizes(Some(text.trim())));
        assert!(!t.authorizes(None));
        assert!(!t.matches(""));
        assert!(!t.matches(&"0".repeat(64)));
    }
}
