//! Values that must never reach a log, and the master key: where it comes
//! from (the environment, the data folder, or freshly generated) and how a
//! generated one is kept on disk.

use std::fmt;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// A value that must never reach a log: `Debug` prints a placeholder and
/// there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Secrets arrive in API answers too (a service hook's signing secret).
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The 32-byte master key. Tokens are encrypted with a key derived from it;
/// anything else that needs a key (cookies, once the console has a login)
/// derives its own.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    pub fn parse_hex(raw: &str) -> Result<Self, String> {
        let bytes = hex::decode(raw.trim())
            .map_err(|_| "must be 64 hex digits (for example from `openssl rand -hex 32`)".to_owned())?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("must be 32 bytes (64 hex digits), got {} bytes", b.len()))?;
        Ok(Self(array))
    }

    pub fn generate() -> Self {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self(key)
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// Where the secret key came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretKeySource {
    Environment,
    File(PathBuf),
    Generated(PathBuf),
}

/// The development default: a key kept in the data folder, created on first
/// run with owner-only permissions.
pub(super) fn load_or_generate_key(data_dir: &Path) -> Result<(SecretKey, SecretKeySource), ConfigError> {
    const VAR: &str = "ISSUEBRIDGE_SECRET_KEY";
    let path = data_dir.join("secret.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = SecretKey::parse_hex(&text)
                .map_err(|p| ConfigError::new(VAR, format!("the key file {} is damaged: it {p}", path.display())))?;
            return Ok((key, SecretKeySource::File(path)));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ConfigError::new(VAR, format!("unset, and {} cannot be read: {e}", path.display()))),
    }
    crate::store::private_files::create_dir_all(data_dir)
        .map_err(|e| ConfigError::new("ISSUEBRIDGE_DATA_DIR", format!("cannot create {}: {e}", data_dir.display())))?;
    let key = SecretKey::generate();
    write_private_file(&path, &key.to_hex())
        .map_err(|e| ConfigError::new(VAR, format!("unset, and {} cannot be written: {e}", path.display())))?;
    Ok((key, SecretKeySource::Generated(path)))
}

fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = crate::store::private_files::create_new(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (first, first_source) = load_or_generate_key(dir.path()).unwrap();
        let (second, second_source) = load_or_generate_key(dir.path()).unwrap();
        assert!(matches!(first_source, SecretKeySource::Generated(_)));
        assert_eq!(first, second);
        assert!(matches!(second_source, SecretKeySource::File(_)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secret.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_damaged_key_file_stops_start_up_instead_of_being_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.key"), "not hex").unwrap();
        let err = load_or_generate_key(dir.path()).unwrap_err();
        assert_eq!(err.var, "ISSUEBRIDGE_SECRET_KEY");
        assert!(err.problem.contains("is damaged"), "{err}");
        assert_eq!(std::fs::read_to_string(dir.path().join("secret.key")).unwrap(), "not hex");
    }

    #[test]
    fn secrets_print_as_placeholders() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret([redacted])");
        assert_eq!(format!("{:?}", SecretKey::parse_hex(&"ab".repeat(32)).unwrap()), "SecretKey([redacted])");
    }
}
