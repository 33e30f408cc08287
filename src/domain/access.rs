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
    /// Sentry's organization id: what access goes by. A slug can be
    /// renamed, and the old one then taken by another organization.
    #[serde(default)]
    pub org_id: Option<i64>,
    pub org_slug: String,
    pub org_name: String,
    /// What Sentry says the person may do there (`org:read`, `org:write`, …).
    pub access: Vec<String>,
    /// Their organization role (`orgRole`: member, admin, manager, owner),
    /// when Sentry reports it.
    #[serde(default)]
    pub role: Option<String>,
}

/// An organization as the store knows an installation's: its id when
/// Sentry told it, and its slug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrgRef<'a> {
    pub id: Option<i64>,
    pub slug: &'a str,
}

impl<'a> OrgRef<'a> {
    pub fn new(id: Option<i64>, slug: &'a str) -> Self {
        Self { id, slug }
    }
}

impl Membership {
    /// Whether this membership is of `org`: by id when the installation's
    /// organization id is known (then a membership without one does not
    /// count), by slug only when it is not.
    pub fn is_of(&self, org: OrgRef<'_>) -> bool {
        match org.id {
            Some(id) => self.org_id == Some(id),
            None => self.org_slug == org.slug,
        }
    }

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
    Orgs(Vec<ScopedOrg>),
}

/// One organization of a scope: installations with a known organization
/// id match by `id`; those without one, by `slug`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopedOrg {
    pub id: Option<i64>,
    pub slug: String,
}

impl From<&Membership> for ScopedOrg {
    fn from(membership: &Membership) -> Self {
        Self { id: membership.org_id, slug: membership.org_slug.clone() }
    }
}

/// Nobody's data: a scope must be asked for to see anything.
impl Default for OrgScope {
    fn default() -> Self {
        Self::Orgs(Vec::new())
    }
}

impl Viewer {
    pub fn membership(&self, org: OrgRef<'_>) -> Option<&Membership> {
        self.memberships.iter().find(|m| m.is_of(org))
    }

    /// May see the organization's installations and what they own, and
    /// work on its tickets.
    pub fn can_see(&self, org: OrgRef<'_>) -> bool {
        self.admin || self.membership(org).is_some()
    }

    /// May change the organization's installation as a whole.
    pub fn can_manage(&self, org: OrgRef<'_>) -> bool {
        self.admin || self.membership(org).is_some_and(Membership::can_manage)
    }

    /// What the person may read.
    pub fn read_scope(&self) -> OrgScope {
        if self.admin {
            OrgScope::Everything
        } else {
            OrgScope::Orgs(self.memberships.iter().map(ScopedOrg::from).collect())
        }
    }

    /// Where the person may change installations (replays, settings).
    pub fn manage_scope(&self) -> OrgScope {
        if self.admin {
            OrgScope::Everything
        } else {
            OrgScope::Orgs(self.memberships.iter().filter(|m| m.can_manage()).map(ScopedOrg::from).collect())
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
            org_id: None,
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

    fn slug(slug: &str) -> OrgRef<'_> {
        OrgRef::new(None, slug)
    }

    #[test]
    fn members_see_their_organizations_and_only_writers_manage() {
        let person = viewer(false, vec![member("acme", &["org:read", "org:write"]), member("beta", &["org:read"])]);
        assert!(person.can_see(slug("acme")) && person.can_see(slug("beta")));
        assert!(!person.can_see(slug("gamma")));
        assert!(person.can_manage(slug("acme")));
        assert!(!person.can_manage(slug("beta")), "org:read alone does not manage");
        assert!(!person.can_manage(slug("gamma")));
        let scoped = |orgs: &[&str]| {
            OrgScope::Orgs(orgs.iter().map(|org| ScopedOrg { id: None, slug: (*org).to_owned() }).collect())
        };
        assert_eq!(person.read_scope(), scoped(&["acme", "beta"]));
        assert_eq!(person.manage_scope(), scoped(&["acme"]));
        assert!(viewer(false, vec![member("acme", &["org:admin"])]).can_manage(slug("acme")));
        // Sentry narrows `access` to the token's scopes; the role still says.
        let owner = Membership { role: Some("owner".into()), ..member("acme", &["org:read"]) };
        assert!(viewer(false, vec![owner]).can_manage(slug("acme")));
        let plain = Membership { role: Some("member".into()), ..member("acme", &["org:read"]) };
        assert!(!viewer(false, vec![plain]).can_manage(slug("acme")));
    }

    #[test]
    fn an_organization_known_by_id_is_matched_by_id_not_by_a_reused_slug() {
        let renamed = Membership { org_id: Some(7), ..member("acme-new", &["org:read"]) };
        let squatter = Membership { org_id: Some(99), ..member("acme", &["org:read"]) };
        let installation = OrgRef::new(Some(7), "acme");
        assert!(viewer(false, vec![renamed]).can_see(installation), "the same organization, renamed");
        assert!(!viewer(false, vec![squatter]).can_see(installation), "another organization under the old slug");
        let unknown_id = member("acme", &["org:read"]);
        assert!(!viewer(false, vec![unknown_id.clone()]).can_see(installation));
        assert!(viewer(false, vec![unknown_id]).can_see(slug("acme")), "no id on either side: by slug");
    }

    #[test]
    fn administrators_may_do_everything() {
        let admin = viewer(true, Vec::new());
        assert!(admin.can_see(slug("anything")) && admin.can_manage(slug("anything")));
        assert_eq!(admin.read_scope(), OrgScope::Everything);
        assert_eq!(viewer(false, Vec::new()).read_scope(), OrgScope::Orgs(Vec::new()));
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
