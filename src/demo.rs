//! Sample data for demo mode, so a first run shows a board with something on
//! it. Seeded once, only into an empty store, only when no Sentry
//! credentials are configured.

use crate::domain::{InstallationUuid, OrgSlug, SentryIssueId};
use crate::store::{NewInstallation, NewIssueLink, NewTicket, Store, StoreError};
use crate::ticket::TicketStatus;

pub const DEMO_INSTALLATION: &str = "de305d54-75b4-431b-adb2-eb6b9e546014";
pub const DEMO_ORG: &str = "demo-org";

/// Returns whether it seeded anything.
pub async fn seed_if_empty(store: &Store) -> Result<bool, StoreError> {
    if store.count_installations().await? > 0 {
        return Ok(false);
    }
    let installation = InstallationUuid::parse(DEMO_INSTALLATION).expect("a valid uuid");
    store
        .upsert_installation(&NewInstallation {
            uuid: installation.clone(),
            org_slug: OrgSlug::parse(DEMO_ORG).expect("a valid slug"),
            org_id: Some(1),
            app_slug: Some("issuebridge-demo".into()),
            status: "installed".into(),
        })
        .await?;

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
                ticket,
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
    Ok(true)
}
