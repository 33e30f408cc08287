//! Demo mode: no Sentry credentials are configured, so a simulated Sentry
//! stands in (the server embeds one). A demo organization is installed
//! through the real install path, and sample tickets fill its board.

use crate::domain::ids::{InstallationUuid, SentryIssueId};
use crate::domain::ticket::TicketStatus;
use crate::store::{NewIssueLink, NewTicket, Store, StoreError};

pub const DEMO_ORG: &str = "demo-org";

/// What the console needs from the simulated Sentry: a person installing
/// the app into an organization there.
pub trait DemoSentry: Send + Sync + std::fmt::Debug {
    /// Creates an installation in `org_slug`, with the person whose email
    /// is `owner` (if the simulated Sentry knows them) among its owners;
    /// returns its uuid and the grant code Sentry would hand to the app.
    fn create_installation(&self, org_slug: &str, owner: &str) -> (String, String);

    /// The OAuth application people log into the console with: its client
    /// id and secret.
    fn login_app(&self) -> (String, crate::config::Secret);

    /// Sends a sample of signed webhooks (an issue, a comment, an error,
    /// an issue alert, a metric alert) for `installation` in `org_slug` to
    /// `webhook_url`, as Sentry would; returns how many were acknowledged.
    fn send_sample_events(
        &self,
        webhook_url: url::Url,
        installation: String,
        org_slug: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<usize, String>> + Send + '_>>;
}

/// Sample tickets linked to made-up Sentry issues, so a first run shows a
/// board with something on it.
pub async fn seed_tickets(store: &Store, installation: &InstallationUuid) -> Result<(), StoreError> {
    let samples: [(&str, TicketStatus, Option<&str>, &str, &str); 4] = [
        ("TypeError: Cannot read properties of undefined (reading 'id')", TicketStatus::Todo, None, "4501", "WEB-3F"),
        (
            "ConnectionResetError in payment webhook",
            TicketStatus::InProgress,
            Some("ada@example.com"),
            "4502",
            "API-12",
        ),
        ("Slow query on /api/orders", TicketStatus::Todo, Some("grace@example.com"), "4503", "API-13"),
        ("ZeroDivisionError in invoice totals", TicketStatus::Done, Some("ada@example.com"), "4504", "BILLING-7"),
    ];
    // A team with members, so Sentry's forms have assignees to offer, and a
    // code mapping, so stacktrace links open GitHub.
    let key = crate::domain::team::TeamKey::parse("ENG").expect("a valid key");
    if let Ok(team) = store.create_team(installation.as_str(), &key, "Engineering").await {
        for member in ["ada@example.com", "grace@example.com", "jane@example.com"] {
            store.add_team_member(installation.as_str(), team, member).await.map_err(|e| match e {
                crate::store::TeamError::Store(e) => e,
                other => StoreError::Corrupt(other.to_string()),
            })?;
        }
    }
    let mapping = crate::components::stacktrace::MappingForm {
        project_slug: "web".into(),
        stack_root: "src".into(),
        source_root: "web/src".into(),
        provider: "github".into(),
        repo_url: "https://github.com/getsentry/sentry".into(),
        branch: "master".into(),
    };
    if let Ok(mapping) = mapping.parse() {
        store.save_code_mapping(installation.as_str(), &mapping).await?;
    }
    // The Sentry issues the samples stand for, and one without a ticket,
    // for the Components page to link or create from.
    let issues = samples.iter().map(|(title, _, _, id, short)| (*title, *id, *short)).chain([(
        "KeyError: 'currency' in price formatting",
        "4505",
        "API-14",
    )]);
    let mut tx = store.begin_apply().await?;
    for (title, issue_id, short_id) in issues {
        let project = short_id.split('-').next().map(str::to_lowercase);
        tx.record_issue(
            &crate::store::sentry_issues::IssueFacts {
                installation: installation.as_str(),
                issue_id,
                short_id: Some(short_id),
                title: Some(title),
                project_slug: project.as_deref(),
                web_url: None,
            },
            None,
            None,
        )
        .await?;
    }
    tx.commit().await?;
    for (title, status, assignee, issue_id, short_id) in samples {
        let ticket = store
            .create_ticket(&NewTicket {
                installation: installation.clone(),
                title: title.into(),
                description: String::new(),
                status,
                assignee_email: assignee.map(Into::into),
            })
            .await?;
        store
            .link_issue(
                ticket.id,
                &NewIssueLink {
                    installation: installation.clone(),
                    issue_id: SentryIssueId::parse(issue_id).expect("digits"),
                    short_id: Some(short_id.into()),
                    title: Some(title.into()),
                    web_url: None,
                    project_slug: short_id.split('-').next().map(str::to_lowercase),
                },
            )
            .await?;
    }
    Ok(())
}
