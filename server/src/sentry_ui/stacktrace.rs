//! Stacktrace links (docs/sentry-protocol.md §3.6): Sentry's issue page
//! links each frame to `/sentry/stacktrace-link?installationId=…&
//! projectSlug=…&lineNo=…&filename=…`, opened in the person's browser.
//! The answer is a redirect to the file at its line, by the installation's
//! code mappings, or a page that shows the frame and, to someone who may
//! manage the installation's organization, offers to add a mapping.
//!
//! The filename is untrusted. The redirect's scheme and host come from the
//! mapping alone (`components::stacktrace`), and the address is checked
//! once more here before it is sent.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use issuebridge::components::stacktrace::{best_mapping, line_number, normalize_path};
use issuebridge::domain::access::OrgRef;
use issuebridge::domain::ids::InstallationUuid;
use issuebridge_app::document::PageLink;
use serde::Deserialize;
use tower_sessions::Session;

use super::{installed, record, Served};
use crate::auth::guard::current_viewer;
use crate::page::message_page;
use crate::state::ServerState;

const COMPONENT: &str = "stacktrace-link";

#[derive(Debug, Default, Deserialize)]
pub(super) struct FrameQuery {
    #[serde(rename = "installationId")]
    installation_id: Option<String>,
    #[serde(rename = "projectSlug")]
    project_slug: Option<String>,
    #[serde(rename = "lineNo")]
    line_no: Option<String>,
    filename: Option<String>,
}

pub(super) async fn open(
    State(state): State<ServerState>,
    session: Session,
    query: Result<Query<FrameQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(frame) = query.unwrap_or_default();
    let mut served = Served::new(COMPONENT);
    let filename = frame.filename.clone().unwrap_or_default();
    let line = line_number(frame.line_no.as_deref());
    served.request = format!("{filename}{}", line.map(|l| format!(":{l}")).unwrap_or_default());
    let Some(uuid) = frame.installation_id.as_deref().and_then(|raw| InstallationUuid::parse(raw).ok()) else {
        record(&state, served, StatusCode::BAD_REQUEST, "no installation".into());
        return crate::page::error_page(
            StatusCode::BAD_REQUEST,
            "Not a stacktrace link",
            "This address lacks the installation Sentry adds to stacktrace links.",
        );
    };
    served.installation = Some(uuid.to_string());
    let installation = match installed(&state, &uuid).await {
        Ok(installation) => installation,
        Err(error) => {
            let status = error.status();
            record(&state, served, status, error.to_string());
            let message = "issuebridge is not installed for this link's organization any more.";
            return crate::page::error_page(status, "Unknown installation", message);
        }
    };
    let project = frame.project_slug.as_deref().map(str::trim).filter(|p| !p.is_empty());
    // No project's slug holds control characters (nor can a database
    // query carry NUL): such a frame has no mapping.
    let impossible = project.is_some_and(|p| p.chars().any(char::is_control));
    let mappings =
        match if impossible { Ok(Vec::new()) } else { state.app.store.code_mappings(uuid.as_str(), project).await } {
            Ok(mappings) => mappings,
            Err(error) => {
                tracing::error!(%error, "reading code mappings");
                record(&state, served, StatusCode::SERVICE_UNAVAILABLE, "store unavailable".into());
                return crate::page::error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again",
                    "The code mappings cannot be read now.",
                );
            }
        };
    if let Some((mapping, path)) = best_mapping(&mappings, project, &filename) {
        let target = mapping.file_url(&path, line);
        // Belt and braces: the address must parse and stay on the
        // mapping's own scheme and host.
        let stays_home = url::Url::parse(&target).is_ok_and(|url| {
            let origin = url.origin().ascii_serialization();
            origin.eq_ignore_ascii_case(mapping.origin()) && url.username().is_empty() && url.password().is_none()
        });
        if stays_home {
            record(&state, served, StatusCode::FOUND, target.clone());
            return (StatusCode::FOUND, [(header::LOCATION, target), (header::CACHE_CONTROL, "no-store".into())])
                .into_response();
        }
        tracing::warn!(%target, "a code mapping produced an address off its host; not redirecting");
    }
    record(&state, served, StatusCode::NOT_FOUND, "no code mapping".into());

    let where_ = match (project, line) {
        (Some(p), Some(l)) => format!(" (line {l}, project {p})"),
        (Some(p), None) => format!(" (project {p})"),
        (None, Some(l)) => format!(" (line {l})"),
        (None, None) => String::new(),
    };
    let shown = if filename.trim().is_empty() { "(no file name)".to_owned() } else { filename.clone() };
    let mut message = format!("issuebridge has no code mapping for {shown}{where_}.");
    let org = OrgRef::new(installation.org_id, &installation.org_slug);
    let may_manage = current_viewer(&state, &session).await.is_some_and(|viewer| viewer.can_manage(org));
    let link = if may_manage {
        message.push_str(" Add one, and this link will open the file in its repository.");
        let folder = normalize_path(&filename)
            .ok()
            .and_then(|path| path.rsplit_once('/').map(|(dir, _)| dir.to_owned()))
            .unwrap_or_default();
        let mut href = url::Url::parse("http://site/code-mappings").expect("a fixed address");
        href.query_pairs_mut()
            .append_pair("installation", uuid.as_str())
            .append_pair("project", project.unwrap_or_default())
            .append_pair("stack_root", &folder);
        let relative = format!("{}?{}", href.path(), href.query().unwrap_or_default());
        Some(PageLink { href: relative, label: "Add a code mapping".into() })
    } else {
        message.push_str(" Someone who manages the organization's installation can add one in issuebridge.");
        None
    };
    message_page(StatusCode::NOT_FOUND, "No code mapping for this frame", &message, link)
}
