//! Sentry's identifiers, parsed once at the edge.
//!
//! Sentry is loose about id types (the same issue id is a JSON string in one
//! payload and a number in another, see docs/sentry-protocol.md §1.8). Each newtype
//! accepts every form Sentry really sends and nothing else, so code past the
//! parser never has to wonder.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// Why an identifier was refused; the message is safe to show to a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {problem}")]
pub struct InvalidId {
    kind: &'static str,
    problem: String,
}

impl InvalidId {
    fn new(kind: &'static str, problem: impl Into<String>) -> Self {
        Self { kind, problem: problem.into() }
    }
}

/// `as_str` and `Display` for a newtype over a parsed `String`.
macro_rules! string_id {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Deserializes from a JSON string through `parse`, so a payload can never
/// hold an id the parser would refuse.
macro_rules! deserialize_by_parsing {
    ($name:ident) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// The uuid of one installation of the app in one Sentry organization.
/// Stored lower-case so that lookups never miss on case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct InstallationUuid(String);

impl InstallationUuid {
    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        let lower = raw.trim().to_ascii_lowercase();
        let groups: Vec<&str> = lower.split('-').collect();
        let lengths_ok = groups.len() == 5 && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]);
        let hex_ok = groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
        if lengths_ok && hex_ok {
            Ok(Self(lower))
        } else {
            Err(InvalidId::new("installation uuid", format!("{raw:?} is not a uuid")))
        }
    }
}

string_id!(InstallationUuid);
deserialize_by_parsing!(InstallationUuid);

/// An organization's slug as Sentry validates it: lower-case letters, digits,
/// `-` and `_`, at most 50 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OrgSlug(String);

impl OrgSlug {
    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        if raw.is_empty() || raw.len() > 50 || !raw.chars().all(valid_char) {
            return Err(InvalidId::new("organization slug", format!("{raw:?} is not a Sentry slug")));
        }
        Ok(Self(raw.to_owned()))
    }
}

string_id!(OrgSlug);
deserialize_by_parsing!(OrgSlug);

/// A Sentry issue (group) id. Sentry sends it as a string in issue and event
/// payloads and as a number in comment payloads; both land here as digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SentryIssueId(String);

impl SentryIssueId {
    pub fn parse(raw: &str) -> Result<Self, InvalidId> {
        let digits = raw.trim();
        if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidId::new("Sentry issue id", format!("{raw:?} is not a number")));
        }
        Ok(Self(digits.to_owned()))
    }
}

string_id!(SentryIssueId);

impl<'de> Deserialize<'de> for SentryIssueId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum StrOrInt {
            Str(String),
            Int(u64),
        }
        match StrOrInt::deserialize(d)? {
            StrOrInt::Str(s) => Self::parse(&s).map_err(serde::de::Error::custom),
            StrOrInt::Int(n) => Ok(Self(n.to_string())),
        }
    }
}

/// A ticket's row id, unique across the store. People never see it: they
/// see the ticket's identifier (`domain::team::TicketKey`, `ENG-12`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TicketId(pub i64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installation_uuid_is_normalised_to_lower_case() {
        let id = InstallationUuid::parse("A8E5D37A-1234-4abc-9def-0123456789AB").unwrap();
        assert_eq!(id.as_str(), "a8e5d37a-1234-4abc-9def-0123456789ab");
    }

    #[test]
    fn installation_uuid_rejects_other_shapes() {
        for bad in ["", "a8e5d37a", "a8e5d37a-1234-4abc-9def-0123456789ag", "a8e5d37a12344abc9def0123456789ab"] {
            assert!(InstallationUuid::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn org_slug_follows_sentry_rules() {
        assert!(OrgSlug::parse("test-org_2").is_ok());
        for bad in ["", "Test", "a b", "ö", &"x".repeat(51)] {
            assert!(OrgSlug::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn issue_id_accepts_string_and_number() {
        let from_str: SentryIssueId = serde_json::from_str("\"1117540176\"").unwrap();
        let from_int: SentryIssueId = serde_json::from_str("1117540176").unwrap();
        assert_eq!(from_str, from_int);
        assert!(serde_json::from_str::<SentryIssueId>("\"12a\"").is_err());
        assert!(serde_json::from_str::<SentryIssueId>("-1").is_err());
    }

    #[test]
    fn invalid_id_message_names_the_kind() {
        let err = OrgSlug::parse("Bad Slug").unwrap_err();
        assert_eq!(err.to_string(), "organization slug \"Bad Slug\" is not a Sentry slug");
    }
}
