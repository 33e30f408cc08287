//! Who may see and do what in the console, as pure functions over the
//! person's Sentry memberships (docs/architecture.md, "login and access").
//!
//! The rules, in one place:
//! - a person sees the installations of the organizations they belong to
//!   in Sentry, and only what those installations own (tickets,
//!   deliveries, settings);
//! - changes that affect a whole installation (settings, uninstall,
//!   replays, anything that talks to Sentry on its behalf) need the
//!   organization rights Sentry reports for them there: the role owner or
//!   manager, or `org:write`/`org:admin` in the organization's `access`
//!   list;
//! - working on tickets needs membership only;
//! - instance administrators (`ISSUEBRIDGE_ADMINS`) may do everything,
//!   including deliveries that belong to no known installation.
//!
//! Wasm-safe: the console's header and buttons use the same rules the
//! server enforces, so a button is shown only where its action is allowed.

use serde::{Deserialize, Serialize};

/// The Sentry scopes that let a person change an organization's
/// installation (docs/sentry-protocol.md §2.5: the detailed organization's
/// `access` list).
pub const MANAGE_SCOPES: [&str; 2] = ["org:write", "org:admin"];

/// The organization roles that hold those scopes in Sentry's default roles.
/// Asked with a token of the console's own narrow scopes, Sentry narrows
/// `access` to them, so the role (`orgRole`) is what says a person is an
/// owner or manager there.
pub const MANAGE_ROLES: [&str; 2] = ["owner", "manager"];

/// One organization a person belongs to, as Sentry reported it at login or
/// at the last refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub org_slug: String,
    pub org_name: String,
    /// What Sentry says the person may do there (`org:read`, `org:write`, …).
    pub access: Vec<String>,
    /// Their organization role (`orgRole`: member, admin, manager, owner),
    /// when Sentry reports it.
    #[serde(default)]
    pub role: Option<String>,
}

impl Membership {
    pub fn can_manage(&self) -> bool {
        self.access.iter().any(|scope| MANAGE_SCOPES.contains(&scope.as_str()))
            || self.role.as_deref().is_some_and(|role| MANAGE_ROLES.contains(&role))
    }
}

/// How the person proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginMethod {
    /// Sentry's OAuth: memberships come from Sentry and are refreshed.
    Sentry,
    /// A single-use link printed by `issuebridge login-link`, for an
    /// instance administrator; there are no memberships to refresh.
    LoginLink,
}

/// The person behind a console request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    /// Sentry's user id (`sub`), or the email for a login link.
    pub user_id: String,
    pub name: String,
    pub email: String,
    /// An instance administrator: named by `ISSUEBRIDGE_ADMINS`, checked
    /// again on every request so that removing a name takes effect.
    pub admin: bool,
    pub memberships: Vec<Membership>,
    pub method: LoginMethod,
}

/// Which organizations' data a query may return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrgScope {
    /// An instance administrator: everything, including deliveries of no
    /// known installation.
    Everything,
    /// These organizations' installations only (possibly none).
    Orgs(Vec<String>),
}

/// Nobody's data: a scope must be asked for to see anything.
impl Default for OrgScope {
    fn default() -> Self {
        Self::Orgs(Vec::new())
    }
}

impl OrgScope {
    pub fn includes(&self, org_slug: &str) -> bool {
        match self {
            Self::Everything => true,
            Self::Orgs(orgs) => orgs.iter().any(|org| org == org_slug),
        }
    }
}

impl Viewer {
    pub fn membership(&self, org_slug: &str) -> Option<&Membership> {
        self.memberships.iter().find(|m| m.org_slug == org_slug)
    }

    /// May see the organization's installations and what they own, and
    /// work on its tickets.
    pub fn can_see(&self, org_slug: &str) -> bool {
        self.admin || self.membership(org_slug).is_some()
    }

    /// May change the organization's installation as a whole.
    pub fn can_manage(&self, org_slug: &str) -> bool {
        self.admin || self.membership(org_slug).is_some_and(Membership::can_manage)
    }

    /// What the person may read.
    pub fn read_scope(&self) -> OrgScope {
        if self.admin {
            OrgScope::Everything
        } else {
            OrgScope::Orgs(self.memberships.iter().map(|m| m.org_slug.clone()).collect())
        }
    }

    /// Where the person may change installations (replays, settings).
    pub fn manage_scope(&self) -> OrgScope {
        if self.admin {
            OrgScope::Everything
        } else {
            OrgScope::Orgs(self.memberships.iter().filter(|m| m.can_manage()).map(|m| m.org_slug.clone()).collect())
        }
    }
}

/// Where to send a person after login: only a path of this site. Anything
/// else (another host, `//host`, a backslash trick, a scheme) becomes `/`,
/// so `next=` can never redirect off-site.
pub fn safe_next(next: Option<&str>) -> String {
    let Some(next) = next.map(str::trim) else { return "/".to_owned() };
    let on_this_site = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c == '\\' || c.is_control());
    if on_this_site {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(org: &str, access: &[&str]) -> Membership {
        Membership {
            org_slug: org.into(),
            org_name: org.into(),
            access: access.iter().map(|s| (*s).to_owned()).collect(),
            role: None,
        }
    }

    fn viewer(admin: bool, memberships: Vec<Membership>) -> Viewer {
        Viewer {
            user_id: "1".into(),
            name: "Jane".into(),
            email: "jane@example.com".into(),
            admin,
            memberships,
            method: LoginMethod::Sentry,
        }
    }

    #[test]
    fn members_see_their_organizations_and_only_writers_manage() {
        let person = viewer(false, vec![member("acme", &["org:read", "org:write"]), member("beta", &["org:read"])]);
        assert!(person.can_see("acme") && person.can_see("beta"));
        assert!(!person.can_see("gamma"));
        assert!(person.can_manage("acme"));
        assert!(!person.can_manage("beta"), "org:read alone does not manage");
        assert!(!person.can_manage("gamma"));
        assert_eq!(person.read_scope(), OrgScope::Orgs(vec!["acme".into(), "beta".into()]));
        assert_eq!(person.manage_scope(), OrgScope::Orgs(vec!["acme".into()]));
        assert!(viewer(false, vec![member("acme", &["org:admin"])]).can_manage("acme"));
        // Sentry narrows `access` to the token's scopes; the role still says.
        let owner = Membership { role: Some("owner".into()), ..member("acme", &["org:read"]) };
        assert!(viewer(false, vec![owner]).can_manage("acme"));
        let plain = Membership { role: Some("member".into()), ..member("acme", &["org:read"]) };
        assert!(!viewer(false, vec![plain]).can_manage("acme"));
    }

    #[test]
    fn administrators_may_do_everything() {
        let admin = viewer(true, Vec::new());
        assert!(admin.can_see("anything") && admin.can_manage("anything"));
        assert_eq!(admin.read_scope(), OrgScope::Everything);
        assert!(OrgScope::Everything.includes("x"));
        assert!(!OrgScope::Orgs(Vec::new()).includes("x"));
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/deliveries?state=dead")), "/deliveries?state=dead");
        assert_eq!(safe_next(None), "/");
        for off_site in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "evil.example",
            "/ok\r\nSet-Cookie: x=1",
        ] {
            assert_eq!(safe_next(Some(off_site)), "/", "{off_site:?}");
        }
    }
}
