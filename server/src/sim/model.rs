//! The simulated Sentry's records, with Sentry's rules for them.

use std::collections::HashMap;

use issuebridge::domain::time::now_ms;
use rand::Rng;

/// Grant codes live 10 minutes, tokens 8 hours (docs/sentry-protocol.md §2.1, §2.2).
pub const GRANT_LIFETIME_MS: i64 = 10 * 60 * 1000;
pub const TOKEN_LIFETIME_MS: i64 = 8 * 60 * 60 * 1000;

#[derive(Debug, Clone)]
pub struct SimInstallation {
    pub uuid: String,
    pub org_slug: String,
    pub org_id: i64,
    pub status: String,
}

#[derive(Debug, Clone)]
pub struct Grant {
    pub installation: String,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub installation: String,
    pub refresh_token: String,
    pub expires_at_ms: i64,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub method: String,
    pub path_part: String,
    pub status: u16,
    pub remaining: usize,
}

#[derive(Debug, Clone)]
pub struct SimIssue {
    pub id: String,
    pub org_slug: String,
    pub project_slug: String,
    pub short_id: String,
    pub title: String,
    pub status: String,
    pub assigned_to: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SimComment {
    pub id: i64,
    pub issue: String,
    pub text: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct SimExternalIssue {
    pub id: String,
    pub installation: String,
    pub issue_id: String,
    pub web_url: String,
    pub project: String,
    pub identifier: String,
}

#[derive(Debug, Clone)]
pub struct RateLimit {
    pub limit: u32,
    pub remaining: u32,
    pub window_ms: i64,
    pub reset_at_ms: i64,
}

/// Whether a call may go ahead, and the `X-Sentry-Rate-Limit-*` values.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitAnswer {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: i64,
}

#[derive(Debug, Clone)]
pub struct Delay {
    pub method: String,
    pub path_end: String,
    pub millis: u64,
    pub remaining: usize,
}

#[derive(Debug, Clone)]
pub struct SimUser {
    pub id: i64,
    pub name: String,
    pub email: String,
    /// Sentry lets anyone type any address; `userinfo` says whether it
    /// was confirmed.
    pub email_verified: bool,
}

/// A person's place in an organization: Sentry's roles, whose scopes the
/// detailed organization reports as `access` (docs/sentry-protocol.md §2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMember {
    pub org_slug: String,
    pub user_id: i64,
    /// `owner`, `manager`, `admin` or `member`.
    pub role: String,
}

impl SimMember {
    /// The scopes Sentry's default roles grant (`sentry/conf/server.py`,
    /// `SENTRY_ROLES`), as the organization's `access` list shows them.
    pub fn access(&self) -> Vec<&'static str> {
        const MEMBER: [&str; 6] = ["org:read", "member:read", "project:read", "team:read", "event:read", "event:write"];
        let more: &[&'static str] = match self.role.as_str() {
            "owner" | "manager" => &[
                "org:write",
                "org:admin",
                "org:integrations",
                "member:write",
                "project:write",
                "project:admin",
                "event:admin",
            ],
            "admin" => &["org:integrations", "project:write", "project:admin", "event:admin"],
            _ => &[],
        };
        MEMBER.iter().chain(more).copied().collect()
    }
}

/// The people of a fresh simulated Sentry: an owner of every organization
/// the simulator creates (`demo-org` included), a plain member of
/// `demo-org`, and the owner of another organization, so the console's
/// access rules can be seen at work.
pub const OWNER: (i64, &str, &str) = (1, "Jane Doe", "jane@example.com");
pub const MEMBER: (i64, &str, &str) = (2, "Sam Member", "sam@example.com");
pub const OUTSIDER: (i64, &str, &str) = (3, "Olga Other", "olga@other.example");
pub const OTHER_ORG: &str = "other-org";

#[derive(Debug, Clone)]
pub struct OAuthCode {
    pub user_id: i64,
    pub redirect_uri: String,
    pub scope: String,
    pub challenge: Option<String>,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct UserToken {
    pub user_id: i64,
    pub refresh_token: String,
    pub scope: String,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct SimServiceHook {
    pub id: String,
    /// 32 hex digits, sent as `X-ServiceHook-GUID` on every delivery.
    pub guid: String,
    pub org_slug: String,
    pub project: String,
    pub url: String,
    pub events: Vec<String>,
    /// The hook's own signing secret (not the app's client secret).
    pub secret: String,
    pub created_at_ms: i64,
}

pub struct Model {
    pub installations: HashMap<String, SimInstallation>,
    pub orgs: HashMap<String, i64>,
    pub grants: HashMap<String, Grant>,
    /// token → record; the installation's current token is the only one
    /// kept, as Sentry deletes the old token on refresh.
    pub tokens: HashMap<String, Token>,
    pub failures: Vec<Failure>,
    /// Answered requests: method, path, status.
    pub log: Vec<(String, String, u16)>,
    /// Requests as they arrive, before any delay or answer: a request the
    /// client gave up on is here and not in `log`.
    pub arrivals: Vec<(String, String)>,
    pub refresh_count: usize,
    pub manual_refresh_count: usize,
    pub manual_refresh_enabled: bool,
    pub used_jtis: std::collections::HashSet<String>,
    pub issues: HashMap<String, SimIssue>,
    pub comments: Vec<SimComment>,
    pub external_issues: Vec<SimExternalIssue>,
    pub rate_limit: Option<RateLimit>,
    pub delays: Vec<Delay>,
    pub next_id: i64,
    pub users: Vec<SimUser>,
    pub members: Vec<SimMember>,
    pub oauth_redirect_uris: Vec<String>,
    pub oauth_codes: HashMap<String, OAuthCode>,
    pub user_tokens: HashMap<String, UserToken>,
    pub service_hooks: Vec<SimServiceHook>,
    /// Changes the app made through the API, whose webhooks Sentry sends
    /// back with the app as the actor; taken by [`crate::sim::Simulator::take_echoes`].
    pub echoes: Vec<Echo>,
    /// While set, every call answers 503: Sentry is down.
    pub down: bool,
}

/// A change the app made, as Sentry will announce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Echo {
    /// `issue.resolved`, `issue.ignored`, `issue.unresolved`, `issue.assigned`.
    Issue { installation: String, issue: String, action: String },
    /// `comment.created`, `comment.updated`, `comment.deleted`.
    Comment { installation: String, issue: String, comment_id: i64, text: String, action: String },
}

impl Default for Model {
    fn default() -> Self {
        Self {
            installations: HashMap::new(),
            orgs: HashMap::new(),
            grants: HashMap::new(),
            tokens: HashMap::new(),
            failures: Vec::new(),
            log: Vec::new(),
            arrivals: Vec::new(),
            refresh_count: 0,
            manual_refresh_count: 0,
            // The feature flag is on unless a test turns it off.
            manual_refresh_enabled: true,
            used_jtis: Default::default(),
            issues: HashMap::new(),
            comments: Vec::new(),
            external_issues: Vec::new(),
            rate_limit: None,
            delays: Vec::new(),
            // From the clock, so a restarted simulator (demo mode keeps
            // nothing) never hands out an id an earlier run gave away.
            next_id: now_ms(),
            users: [OWNER, MEMBER, OUTSIDER]
                .into_iter()
                .map(|(id, name, email)| SimUser {
                    id,
                    name: name.to_owned(),
                    email: email.to_owned(),
                    email_verified: true,
                })
                .collect(),
            members: vec![
                SimMember {
                    org_slug: crate::sim::DEMO_ORG_SLUG.to_owned(),
                    user_id: MEMBER.0,
                    role: "member".to_owned(),
                },
                SimMember { org_slug: OTHER_ORG.to_owned(), user_id: OUTSIDER.0, role: "owner".to_owned() },
            ],
            oauth_redirect_uris: Vec::new(),
            oauth_codes: HashMap::new(),
            user_tokens: HashMap::new(),
            service_hooks: Vec::new(),
            echoes: Vec::new(),
            down: false,
        }
    }
}

impl Model {
    /// The organization's id, creating it if new. A new organization's
    /// owner is the first person, unless it has one already.
    pub fn organization(&mut self, org_slug: &str) -> i64 {
        let org_id = self.org_id(org_slug);
        let has_owner = self.members.iter().any(|m| m.org_slug == org_slug && m.role == "owner");
        if !has_owner {
            self.members.push(SimMember { org_slug: org_slug.to_owned(), user_id: OWNER.0, role: "owner".to_owned() });
        }
        org_id
    }

    /// The organization's id, giving a new one the next free id. Ids are
    /// stable: an organization's slug may change, its id never does.
    pub fn org_id(&mut self, org_slug: &str) -> i64 {
        let next = self.orgs.values().max().copied().unwrap_or(0) + 1;
        *self.orgs.entry(org_slug.to_owned()).or_insert(next)
    }

    /// The organizations `user_id` belongs to, with their ids, in id order.
    pub fn memberships_of(&mut self, user_id: i64) -> Vec<(SimMember, i64)> {
        let members: Vec<SimMember> = self.members.iter().filter(|m| m.user_id == user_id).cloned().collect();
        let mut found: Vec<(SimMember, i64)> = members
            .into_iter()
            .map(|m| {
                let id = self.org_id(&m.org_slug);
                (m, id)
            })
            .collect();
        found.sort_by(|a, b| (a.1, &a.0.org_slug).cmp(&(b.1, &b.0.org_slug)));
        found
    }

    pub fn create_installation(&mut self, org_slug: &str, verify_install: bool) -> super::PendingInstall {
        let org_id = self.organization(org_slug);
        let uuid = random_uuid();
        let status = if verify_install { "pending" } else { "installed" };
        self.installations.insert(
            uuid.clone(),
            SimInstallation { uuid: uuid.clone(), org_slug: org_slug.to_owned(), org_id, status: status.to_owned() },
        );
        let code = random_hex(16);
        self.grants
            .insert(code.clone(), Grant { installation: uuid.clone(), expires_at_ms: now_ms() + GRANT_LIFETIME_MS });
        super::PendingInstall { installation: uuid, org_slug: org_slug.to_owned(), code }
    }

    /// A new token pair for `installation`, replacing any it had.
    pub fn issue_token(&mut self, installation: &str) -> (String, Token) {
        self.tokens.retain(|_, token| token.installation != installation);
        let now = now_ms();
        let token = Token {
            installation: installation.to_owned(),
            refresh_token: random_hex(32),
            expires_at_ms: now + TOKEN_LIFETIME_MS,
            created_at_ms: now,
        };
        let value = random_hex(32);
        self.tokens.insert(value.clone(), token.clone());
        (value, token)
    }

    pub fn expire_grants(&mut self) {
        let past = now_ms() - 1;
        self.grants.values_mut().for_each(|grant| grant.expires_at_ms = past);
    }

    pub fn expire_tokens(&mut self) {
        let past = now_ms() - 1;
        self.tokens.values_mut().for_each(|token| token.expires_at_ms = past);
    }

    pub fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn take_delay(&mut self, method: &str, path: &str) -> Option<u64> {
        let delay =
            self.delays.iter_mut().find(|d| d.remaining > 0 && d.method == method && path.ends_with(&d.path_end))?;
        delay.remaining -= 1;
        Some(delay.millis)
    }

    /// Counts one resource call against the rate limit, if one is set.
    pub fn spend_rate_limit(&mut self) -> Option<RateLimitAnswer> {
        let limit = self.rate_limit.as_mut()?;
        let now = now_ms();
        if now >= limit.reset_at_ms {
            limit.remaining = limit.limit;
            limit.reset_at_ms = now + limit.window_ms;
        }
        let reset_secs = (limit.reset_at_ms + 999) / 1000;
        if limit.remaining == 0 {
            return Some(RateLimitAnswer { allowed: false, limit: limit.limit, remaining: 0, reset_secs });
        }
        limit.remaining -= 1;
        Some(RateLimitAnswer { allowed: true, limit: limit.limit, remaining: limit.remaining, reset_secs })
    }

    /// The failure to inject for this path, if one is armed.
    pub fn take_failure(&mut self, method: &str, path: &str) -> Option<u16> {
        let failure =
            self.failures.iter_mut().find(|f| f.remaining > 0 && f.method == method && path.ends_with(&f.path_part))?;
        failure.remaining -= 1;
        Some(failure.status)
    }
}

pub fn random_hex(bytes: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..bytes).map(|_| format!("{:02x}", rng.gen::<u8>())).collect()
}

/// A version-4 uuid in its hyphenated form.
pub fn random_uuid() -> String {
    let hex = random_hex(16);
    let variant = ["8", "9", "a", "b"][rand::thread_rng().gen_range(0..4)];
    format!("{}-{}-4{}-{}{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], variant, &hex[17..20], &hex[20..32])
}
