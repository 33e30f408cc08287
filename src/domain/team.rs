//! Teams and the identifiers of their tickets (`ENG-12`).
//!
//! A ticket's identifier is its team's key and its number within the team,
//! as Jira and Linear write them. Sentry shows it beside the issue
//! (`project#identifier`, docs/sentry-protocol.md §3.4) and the console's
//! ticket page is found by it, so it is parsed once here.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The key every installation's first team has: tickets numbered before
/// teams existed kept their `IB-N` under it.
pub const DEFAULT_TEAM_KEY: &str = "IB";
pub const DEFAULT_TEAM_NAME: &str = "Issues";

/// Why a key, name or identifier was refused; safe to show to a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidTeam(pub String);

/// A team's key: 2 to 10 upper-case ASCII letters and digits, starting with
/// a letter. Typed in lower case, it is kept in upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TeamKey(String);

impl TeamKey {
    pub fn parse(raw: &str) -> Result<Self, InvalidTeam> {
        let key = raw.trim().to_ascii_uppercase();
        let starts_with_letter = key.bytes().next().is_some_and(|b| b.is_ascii_uppercase());
        let alphanumeric = key.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if (2..=10).contains(&key.len()) && starts_with_letter && alphanumeric {
            Ok(Self(key))
        } else {
            Err(InvalidTeam(format!(
                "team key {raw:?} must be 2 to 10 letters and digits, starting with a letter (like ENG)"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TeamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TeamKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A team's name as people read it: 1 to 80 characters, trimmed.
pub fn team_name(raw: &str) -> Result<String, InvalidTeam> {
    let name = raw.trim();
    match name.chars().count() {
        1..=80 => Ok(name.to_owned()),
        _ => Err(InvalidTeam("a team name must be 1 to 80 characters".into())),
    }
}

/// A member's email as the board stores assignees: trimmed, lower-case, and
/// at least shaped like an address.
pub fn member_email(raw: &str) -> Result<String, InvalidTeam> {
    let email = raw.trim().to_lowercase();
    let shaped = email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if shaped && email.len() <= 254 && !email.contains(char::is_whitespace) {
        Ok(email)
    } else {
        Err(InvalidTeam(format!("{raw:?} is not an email address")))
    }
}

/// A ticket's identifier: its team's key and its number in the team.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TicketKey {
    pub team: TeamKey,
    pub number: i64,
}

impl fmt::Display for TicketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.team, self.number)
    }
}

impl FromStr for TicketKey {
    type Err = InvalidTeam;

    /// `ENG-12`, in any case; nothing else.
    fn from_str(raw: &str) -> Result<Self, InvalidTeam> {
        let refuse = || InvalidTeam(format!("{raw:?} is not a ticket identifier like ENG-12"));
        let (key, number) = raw.trim().rsplit_once('-').ok_or_else(refuse)?;
        let team = TeamKey::parse(key).map_err(|_| refuse())?;
        let digits_only = !number.is_empty() && number.len() <= 15 && number.bytes().all(|b| b.is_ascii_digit());
        let number: i64 = if digits_only { number.parse().map_err(|_| refuse())? } else { return Err(refuse()) };
        if number == 0 {
            return Err(refuse());
        }
        Ok(Self { team, number })
    }
}

/// A team as the console and the selects show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: i64,
    pub key: TeamKey,
    pub name: String,
    pub is_default: bool,
    pub members: Vec<String>,
}

/// A change to an installation's teams, as the console and the CLI ask
/// for it (keys and emails as typed; checked when applied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TeamChange {
    Add { key: String, name: String },
    Rename { key: String, name: String },
    AddMember { key: String, email: String },
    RemoveMember { key: String, email: String },
}

impl Team {
    /// Whether someone may be assigned this team's tickets: a member, or
    /// anyone while the team lists no members. The refusal says what to do.
    pub fn check_assignee(&self, email: &str) -> Result<(), InvalidTeam> {
        if self.members.is_empty() || self.members.iter().any(|m| m == email) {
            Ok(())
        } else {
            Err(InvalidTeam(format!(
                "{email} is not a member of {} ({}); choose one of its members",
                self.name, self.key
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_upper_case_and_start_with_a_letter() {
        assert_eq!(TeamKey::parse(" eng ").unwrap().as_str(), "ENG");
        assert_eq!(TeamKey::parse("WEB2").unwrap().as_str(), "WEB2");
        for bad in ["", "E", "2FA", "EN-G", "ÉNG", "ABCDEFGHIJK", "E NG"] {
            assert!(TeamKey::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn identifiers_round_trip_and_refuse_other_shapes() {
        let key: TicketKey = "eng-12".parse().unwrap();
        assert_eq!(key.to_string(), "ENG-12");
        assert_eq!(key.to_string().parse::<TicketKey>().unwrap(), key);
        for bad in ["ENG", "ENG-", "ENG-0", "ENG-1a", "-12", "ENG-+1", "E-1", "ENG-9999999999999999", "ENG--1"] {
            assert!(bad.parse::<TicketKey>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn names_and_emails_are_checked() {
        assert_eq!(team_name("  Platform ").unwrap(), "Platform");
        assert!(team_name("   ").is_err());
        assert!(team_name(&"x".repeat(81)).is_err());
        assert_eq!(member_email(" Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in ["ada", "@example.com", "ada@localhost", "a da@example.com"] {
            assert!(member_email(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
