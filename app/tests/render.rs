//! Server-side rendering of the console's components, without a server.

use issuebridge::domain::ids::TicketId;
use issuebridge::domain::ticket::{TicketStatus, TicketSummary};
use issuebridge_app::pages::TicketBoard;
use leptos::prelude::*;

fn ticket(id: i64, title: &str, status: TicketStatus, assignee: Option<&str>) -> TicketSummary {
    TicketSummary {
        id: TicketId(id),
        key: format!("IB-{id}").parse().unwrap(),
        title: title.into(),
        status,
        assignee: assignee.map(Into::into),
        installation_uuid: "a8e5d37a-1b2c-4d5e-8f90-123456789abc".into(),
        org_slug: "acme".into(),
        sentry_short_id: Some(format!("WEB-{id}")),
        linked_issues: if id == 2 { 3 } else { 1 },
        updated_at_ms: 1_709_251_199_000,
        occurrences: if id == 2 { 12 } else { 0 },
        severity: (id == 3).then(|| "critical".to_owned()),
    }
}

fn sample() -> Vec<TicketSummary> {
    vec![
        ticket(1, "TypeError in checkout", TicketStatus::Todo, None),
        ticket(2, "Payment webhook resets", TicketStatus::InProgress, Some("ada@example.com")),
        ticket(3, "Invoice totals divide by zero", TicketStatus::Done, Some("grace@example.com")),
    ]
}

fn render(tickets: Vec<TicketSummary>, query: &str) -> String {
    let query = query.to_owned();
    Owner::new().with(move || {
        let query = RwSignal::new(query);
        view! { <TicketBoard tickets query/> }.to_html()
    })
}

#[test]
fn board_puts_each_ticket_in_its_status_column() {
    let html = render(sample(), "");
    assert!(html.contains("3 tickets"), "{html}");
    for status in TicketStatus::ALL {
        assert!(html.contains(&format!(r#"data-status="{}""#, status.as_str())), "no column for {status}");
    }
    let in_progress = html.split(r#"data-status="in_progress""#).nth(1).unwrap();
    let in_progress = in_progress.split(r#"data-status="done""#).next().unwrap();
    assert!(in_progress.contains("Payment webhook resets"));
    assert!(!in_progress.contains("TypeError in checkout"));
}

#[test]
fn cards_show_ids_issues_assignee_and_time() {
    let html = render(sample(), "");
    assert!(html.contains("IB-2"));
    assert!(html.contains("WEB-2"));
    assert!(html.contains("+2"), "more linked issues are counted: {html}");
    assert!(html.contains("ada@example.com"));
    assert!(html.contains("unassigned"));
    assert!(html.contains("2024-02-29 23:59 UTC"));
    assert!(html.contains("12 events"), "events counted on the ticket: {html}");
    assert!(!html.contains("0 events"), "none shown when there are none");
    assert!(html.contains(r#"class="severity critical""#), "a metric alert's severity");
}

#[test]
fn the_filter_narrows_the_rendered_board() {
    let html = render(sample(), "payment");
    assert!(html.contains("1 of 3 tickets"), "{html}");
    assert!(html.contains("Payment webhook resets"));
    assert!(!html.contains("TypeError in checkout"));
}

#[test]
fn titles_are_escaped() {
    let html = render(vec![ticket(9, "<script>alert(1)</script>", TicketStatus::Todo, None)], "");
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(html.contains("&lt;script&gt;"));
}

#[test]
fn an_empty_board_says_how_tickets_arrive() {
    let html = render(Vec::new(), "");
    assert!(html.contains("No tickets yet."));
    assert!(!html.contains("data-status"));
}

/// What a server render of the board meets when the client leaves
/// mid-stream: Leptos' <Transition> walks the board again (`dry_resolve`) from
/// an effect task on another worker while the request's owner tree is being
/// cleaned up. The walk must draw nothing rather than panic with "Tried to
/// access a reactive value that has already been disposed".
#[test]
fn a_board_walked_after_its_owner_is_cleaned_up_does_not_panic() {
    let owner = Owner::new();
    let mut board = owner.with(|| {
        let query = RwSignal::new(String::new());
        view! { <TicketBoard tickets=sample() query/> }
    });
    owner.cleanup();
    // Before the fix: panics in `visible.with` (reactive_graph traits.rs:328).
    board.dry_resolve();
}
