//! Encryption of secrets at rest (installation tokens).
//!
//! ChaCha20-Poly1305 with a key derived from `ISSUEBRIDGE_SECRET_KEY`. Each
//! ciphertext names the key that sealed it by a short fingerprint, so the
//! master key can be rotated: the new key seals, and the previous one
//! (`ISSUEBRIDGE_SECRET_KEY_PREVIOUS`) still opens what it sealed until those
//! rows are rewritten. The associated data binds a ciphertext to its row and
//! field, so a token copied into another installation's row does not open.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::SecretKey;

/// Compares two secrets (a bearer token, an OAuth `state`) in time that
/// depends only on their lengths' hashes, not on where they first differ:
/// both are hashed to 32 bytes, then compared by `subtle`.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::Digest;
    use subtle::ConstantTimeEq;
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.as_slice().ct_eq(b.as_slice()).into()
}

/// The format byte: bump it if the layout ever changes.
const FORMAT_V1: u8 = 1;
const FINGERPRINT_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + FINGERPRINT_LEN + NONCE_LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the ciphertext is damaged or was sealed for another row")]
    Corrupt,
    #[error("the ciphertext was sealed with a key that is no longer configured")]
    UnknownKey,
}

struct SealingKey {
    fingerprint: [u8; FINGERPRINT_LEN],
    cipher: ChaCha20Poly1305,
}

impl SealingKey {
    fn derive(master: &SecretKey) -> Self {
        // Separate keys per purpose: the cookie key derived from the same
        // master never equals the token key.
        let key = hmac_sha256(master.bytes(), b"issuebridge/token-encryption/v1");
        let id = hmac_sha256(master.bytes(), b"issuebridge/key-fingerprint/v1");
        let mut fingerprint = [0u8; FINGERPRINT_LEN];
        fingerprint.copy_from_slice(&id[..FINGERPRINT_LEN]);
        Self { fingerprint, cipher: ChaCha20Poly1305::new(Key::from_slice(&key)) }
    }
}

/// Seals with the current key; opens with the current or a previous one.
pub struct TokenCipher {
    current: SealingKey,
    previous: Vec<SealingKey>,
}

impl TokenCipher {
    pub fn new(current: &SecretKey, previous: &[SecretKey]) -> Self {
        Self { current: SealingKey::derive(current), previous: previous.iter().map(SealingKey::derive).collect() }
    }

    /// `context` names the row and field, e.g. `installation/<uuid>/access_token`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = self.aad(&self.current.fingerprint, context);
        let sealed = self
            .current
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext, aad: &aad })
            .expect("ChaCha20-Poly1305 encrypts any message that fits in memory");
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&self.current.fingerprint);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < HEADER_LEN || sealed[0] != FORMAT_V1 {
            return Err(CryptoError::Corrupt);
        }
        let fingerprint = &sealed[1..1 + FINGERPRINT_LEN];
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.fingerprint == fingerprint)
            .ok_or(CryptoError::UnknownKey)?;
        let nonce = Nonce::from_slice(&sealed[1 + FINGERPRINT_LEN..HEADER_LEN]);
        let aad = self.aad(&key.fingerprint, context);
        key.cipher.decrypt(nonce, Payload { msg: &sealed[HEADER_LEN..], aad: &aad }).map_err(|_| CryptoError::Corrupt)
    }

    /// Whether `sealed` was sealed with an older key and should be rewritten.
    pub fn needs_reseal(&self, sealed: &[u8]) -> bool {
        sealed.get(1..1 + FINGERPRINT_LEN) != Some(&self.current.fingerprint[..])
    }

    fn aad(&self, fingerprint: &[u8], context: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(1 + fingerprint.len() + context.len());
        aad.push(FORMAT_V1);
        aad.extend_from_slice(fingerprint);
        aad.extend_from_slice(context.as_bytes());
        aad
    }
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCipher").field("previous_keys", &self.previous.len()).finish_non_exhaustive()
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey::parse_hex(&format!("{byte:02x}").repeat(32)).unwrap()
    }

    #[test]
    fn round_trips_and_never_repeats_a_ciphertext() {
        let cipher = TokenCipher::new(&key(1), &[]);
        let a = cipher.seal(b"sntrys_token", "installation/x/access_token");
        let b = cipher.seal(b"sntrys_token", "installation/x/access_token");
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.windows(12).any(|w| w == b"sntrys_token"), "no plaintext in the ciphertext");
        assert_eq!(cipher.open(&a, "installation/x/access_token").unwrap(), b"sntrys_token");
    }

    #[test]
    fn a_ciphertext_opens_only_for_its_own_row_and_field() {
        let cipher = TokenCipher::new(&key(1), &[]);
        let sealed = cipher.seal(b"t", "installation/x/access_token");
        assert_eq!(cipher.open(&sealed, "installation/y/access_token"), Err(CryptoError::Corrupt));
        assert_eq!(cipher.open(&sealed, "installation/x/refresh_token"), Err(CryptoError::Corrupt));
    }

    #[test]
    fn tampering_is_detected() {
        let cipher = TokenCipher::new(&key(1), &[]);
        let mut sealed = cipher.seal(b"token", "c");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(cipher.open(&sealed, "c"), Err(CryptoError::Corrupt));
        assert_eq!(cipher.open(&[], "c"), Err(CryptoError::Corrupt));
        assert_eq!(cipher.open(&[9; 40], "c"), Err(CryptoError::Corrupt));
    }

    #[test]
    fn rotation_keeps_old_ciphertexts_readable() {
        let old = TokenCipher::new(&key(1), &[]);
        let sealed = old.seal(b"token", "c");
        let rotated = TokenCipher::new(&key(2), &[key(1)]);
        assert_eq!(rotated.open(&sealed, "c").unwrap(), b"token");
        assert!(rotated.needs_reseal(&sealed));
        assert!(!rotated.needs_reseal(&rotated.seal(b"token", "c")));
        let forgotten = TokenCipher::new(&key(2), &[]);
        assert_eq!(forgotten.open(&sealed, "c"), Err(CryptoError::UnknownKey));
    }
}
