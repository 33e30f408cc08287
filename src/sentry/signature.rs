//! HMAC-SHA256 signatures as Sentry computes them: keyed with a secret (the
//! app's client secret, or a service hook's own), over the exact body bytes,
//! encoded as 64 lower-case hex digits.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A signature header's value, parsed: exactly 32 bytes from 64 hex digits.
/// Parsing never compares anything, so it leaks no timing about the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature([u8; 32]);

impl Signature {
    pub fn parse(header: &str) -> Result<Self, InvalidSignature> {
        let header = header.trim();
        if header.len() != 64 {
            return Err(InvalidSignature::Malformed);
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in header.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).map_err(|_| InvalidSignature::Malformed)?;
            bytes[i] = u8::from_str_radix(hex, 16).map_err(|_| InvalidSignature::Malformed)?;
        }
        Ok(Self(bytes))
    }

    /// Whether this signature is `secret`'s over `body`, compared in
    /// constant time.
    pub fn verifies(&self, secret: &[u8], body: &[u8]) -> bool {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(body);
        mac.verify_slice(&self.0).is_ok()
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signature(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSignature {
    #[error("the signature is not 64 hex digits")]
    Malformed,
}

/// Signs `body` with `secret`: what Sentry puts in `Sentry-Hook-Signature`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentry::wire::to_sentry_json;

    const SECRET: &[u8] = b"test-client-secret";

    /// The §1.3 test vectors of docs/sentry-protocol.md, computed with Python's hmac.
    const VECTORS: &[(&str, &str)] = &[
        (
            r#"{"action":"created","installation":{"uuid":"7a485448-a9e2-4c85-8a3c-4f44175783c9"},"data":{"installation":{"app":{"uuid":"64bf2cf4-37ca-4365-8dd3-6b6e56d741b8","slug":"my-app","sentryAppId":1},"organization":{"slug":"example","id":2},"uuid":"7a485448-a9e2-4c85-8a3c-4f44175783c9","status":"pending","code":"abc123"}},"actor":{"type":"user","id":1,"name":"Jane"}}"#,
            "d7f446f8d67f9042266bf676b604715b574646bfff564ee19bf0896a1b9fe81a",
        ),
        ("", "cff7ccd625537ce1a726fd29f7fc4beca8a15c96b6c9ee9b9461e149f57d4e88"),
        (
            r#"{"fields":[{"name":"title","value":"An Alert"}],"installationId":"7a485448-a9e2-4c85-8a3c-4f44175783c9"}"#,
            "1be335e9946f0917c755f5ffb88b8767881ba12d9d9685241ae7c733213444da",
        ),
        (r#"{"comment":"h\u00e9llo"}"#, "06f6284d484c8c24d8c1809f5cbbd2953f0f53c76fc6ed605487d919468a899f"),
    ];

    #[test]
    fn signs_the_contract_vectors() {
        for (body, expected) in VECTORS {
            assert_eq!(sign(SECRET, body.as_bytes()), *expected, "body {body}");
            assert!(Signature::parse(expected).unwrap().verifies(SECRET, body.as_bytes()));
        }
    }

    #[test]
    fn the_encoder_reproduces_the_vectors_byte_for_byte() {
        let value: serde_json::Value = serde_json::from_str(VECTORS[0].0).unwrap();
        assert_eq!(to_sentry_json(&value), VECTORS[0].0.as_bytes());
        let comment = serde_json::json!({"comment": "héllo"});
        assert_eq!(sign(SECRET, &to_sentry_json(&comment)), VECTORS[3].1);
    }

    #[test]
    fn tampering_or_another_secret_fails() {
        let (body, signature) = VECTORS[0];
        let signature = Signature::parse(signature).unwrap();
        assert!(!signature.verifies(SECRET, body.replace("Jane", "John").as_bytes()));
        assert!(!signature.verifies(b"another-secret", body.as_bytes()));
        // Re-serializing with spaces, as the docs' snippets do, breaks it.
        let spaced = body.replace(',', ", ");
        assert!(!signature.verifies(SECRET, spaced.as_bytes()));
    }

    #[test]
    fn malformed_headers_are_refused_before_any_comparison() {
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(63), &"a".repeat(65), "é".repeat(32).as_str()] {
            assert_eq!(Signature::parse(bad), Err(InvalidSignature::Malformed), "{bad:?}");
        }
        assert!(Signature::parse(&VECTORS[1].1.to_uppercase()).is_ok());
    }
}
