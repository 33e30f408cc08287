//! The short-lived HS256 JWT that Sentry's manual token refresh accepts
//! (docs/sentry-protocol.md §2.3): signed with the client secret, `iss` and `sub` the client
//! id, one minute of life, and a `jti` that works once.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

impl Claims {
    pub fn for_client(client_id: &str, now_secs: i64, jti: String) -> Self {
        Self { iss: client_id.to_owned(), sub: client_id.to_owned(), iat: now_secs, exp: now_secs + 60, jti }
    }
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

pub fn encode(claims: &Claims, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(HEADER);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(mac(secret, signing_input.as_bytes()).finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// Checks the signature (constant time) and returns the claims; the caller
/// judges `exp`, `jti` and the issuer.
pub fn decode(token: &str, secret: &[u8]) -> Option<Claims> {
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "HS256" {
        return None;
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    mac(secret, format!("{}.{payload}", token.split('.').next()?).as_bytes()).verify_slice(&signature).ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

fn mac(secret: &[u8], message: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(message);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_tampering() {
        let claims = Claims::for_client("client", 1_700_000_000, "jti-1".into());
        let token = encode(&claims, b"secret");
        assert_eq!(decode(&token, b"secret"), Some(claims.clone()));
        assert_eq!(decode(&token, b"other"), None);
        let forged = encode(&Claims { iss: "evil".into(), ..claims }, b"other");
        let (head, rest) = token.split_once('.').unwrap();
        let forged_payload = forged.split('.').nth(1).unwrap();
        let signature = rest.split('.').nth(1).unwrap();
        assert_eq!(decode(&format!("{head}.{forged_payload}.{signature}"), b"secret"), None);
        assert_eq!(decode("a.b", b"secret"), None);
        assert_eq!(claims_exp(&token), 1_700_000_060);
    }

    fn claims_exp(token: &str) -> i64 {
        decode(token, b"secret").unwrap().exp
    }
}
