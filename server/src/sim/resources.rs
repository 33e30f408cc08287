//! The simulated Sentry's resource API (docs/sentry-protocol.md §4): issues, comments and
//! external issues, with Sentry's rate-limit headers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use issuebridge::domain::time::now_ms;
use issuebridge::sentry::api::format_datetime_ms;
use serde_json::{json, Value};

use super::api::{authenticate_org, detail, sentry_json, Refusal};
use super::model::{Echo, SimComment, SimExternalIssue, SimIssue, SimServiceHook};
use super::Shared;

pub(super) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/0/organizations/{org}/issues/{issue}/", get(get_issue).put(update_issue))
        .route("/api/0/organizations/{org}/issues/{issue}/comments/", get(list_comments).post(add_comment))
        .route(
            "/api/0/organizations/{org}/issues/{issue}/comments/{comment}/",
            put(edit_comment).delete(delete_comment),
        )
        .route("/api/0/organizations/{org}/members/", get(list_members))
        .route("/api/0/sentry-app-installations/{uuid}/external-issues/", axum::routing::post(link_external))
        .route("/api/0/sentry-app-installations/{uuid}/external-issues/{id}/", axum::routing::delete(unlink_external))
        .route("/api/0/projects/{org}/{project}/hooks/", get(list_hooks).post(create_hook))
        .route("/api/0/projects/{org}/{project}/hooks/{id}/", axum::routing::delete(delete_hook))
        .route_layer(middleware::from_fn_with_state(shared, rate_limit))
        // The issue's page in Sentry's UI (its permalink), for people and
        // browser tests to see what the app changed: no token, read only.
        .route("/organizations/{org}/issues/{issue}/", get(issue_page))
}

/// A plain page of the issue as Sentry shows it: status, assignee,
/// comments, and the external issues in its sidebar.
async fn issue_page(State(shared): State<Arc<Shared>>, Path((org, id)): Path<(String, String)>) -> Response {
    use leptos::prelude::*;
    let model = shared.model();
    let Some(issue) = model.issues.get(&id).filter(|i| i.org_slug == org).cloned() else {
        return (StatusCode::NOT_FOUND, "There is no such issue in this simulated Sentry.").into_response();
    };
    let assignee = issue
        .assigned_to
        .as_deref()
        .and_then(|a| a.strip_prefix("user:"))
        .and_then(|uid| model.users.iter().find(|u| u.id.to_string() == uid))
        .map_or_else(|| "unassigned".to_owned(), |u| format!("{} ({})", u.name, u.email));
    let comments: Vec<String> = model.comments.iter().filter(|c| c.issue == id).map(|c| c.text.clone()).collect();
    let links: Vec<(String, String)> = model
        .external_issues
        .iter()
        .filter(|e| e.issue_id == id)
        .map(|e| (format!("{}#{}", e.project, e.identifier), e.web_url.clone()))
        .collect();
    drop(model);
    let title = format!("{} {}", issue.short_id, issue.title);
    let page = view! {
        <!DOCTYPE html>
        <html>
            <head>
                <title>{format!("{title} · Sentry (simulated)")}</title>
                <link rel="icon" href="data:,"/>
            </head>
            <body>
                <h1>{title}</h1>
                <dl>
                    <dt>"Status"</dt><dd data-testid="sim-status">{issue.status}</dd>
                    <dt>"Assignee"</dt><dd data-testid="sim-assignee">{assignee}</dd>
                </dl>
                <h2>"Linked issues"</h2>
                <ul data-testid="sim-links">
                    {links.into_iter().map(|(name, url)| view! { <li><a href=url>{name}</a></li> }).collect_view()}
                </ul>
                <h2>"Activity"</h2>
                <ul data-testid="sim-comments">
                    {comments.into_iter().map(|text| view! { <li>{text}</li> }).collect_view()}
                </ul>
            </body>
        </html>
    };
    axum::response::Html(page.to_html()).into_response()
}

/// Sentry's per-caller rate limit: `X-Sentry-Rate-Limit-*` headers on every
/// answer, and 429 while the window's calls are used up.
async fn rate_limit(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let Some(answer) = shared.model().spend_rate_limit() else { return next.run(request).await };
    let mut response = if answer.allowed {
        next.run(request).await
    } else {
        detail(StatusCode::TOO_MANY_REQUESTS, "You are attempting to use this endpoint too frequently.")
    };
    let headers = response.headers_mut();
    if !answer.allowed {
        let wait = (answer.reset_secs * 1000 - now_ms()).max(0) / 1000 + 1;
        headers.insert("retry-after", HeaderValue::from_str(&wait.to_string()).expect("digits"));
    }
    for (name, value) in [
        ("x-sentry-rate-limit-limit", answer.limit.to_string()),
        ("x-sentry-rate-limit-remaining", answer.remaining.to_string()),
        ("x-sentry-rate-limit-reset", answer.reset_secs.to_string()),
    ] {
        headers.insert(name, HeaderValue::from_str(&value).expect("digits"));
    }
    response
}

fn issue_body(base: &str, issue: &SimIssue) -> Value {
    json!({
        "id": issue.id,
        "shortId": issue.short_id,
        "title": issue.title,
        "culprit": "",
        "permalink": format!("{base}/organizations/{}/issues/{}/", issue.org_slug, issue.id),
        "level": "error",
        "status": issue.status,
        "count": "1",
        "userCount": 0,
        "project": { "id": "1", "name": issue.project_slug, "slug": issue.project_slug, "platform": "python" },
        "assignedTo": issue.assigned_to.as_ref().map(|a| json!({ "type": "user", "id": a, "name": a })),
    })
}

fn comment_body(comment: &SimComment) -> Value {
    json!({
        "id": comment.id.to_string(),
        "user": null,
        "type": "note",
        "data": { "text": comment.text },
        "dateCreated": format_datetime_ms(comment.created_at_ms),
    })
}

fn comment_echo(installation: &str, comment: &SimComment, action: &str) -> Echo {
    Echo::Comment {
        installation: installation.to_owned(),
        issue: comment.issue.clone(),
        comment_id: comment.id,
        text: comment.text.clone(),
        action: action.to_owned(),
    }
}

/// The user an `assignedTo` names, if they are a member of `org`:
/// `user:<id>`, an id alone, or an email or username.
fn assignee_user(model: &super::model::Model, org: &str, actor: &str) -> Option<i64> {
    let wanted = actor.strip_prefix("user:").unwrap_or(actor);
    let user = model.users.iter().find(|u| u.id.to_string() == wanted || u.email.eq_ignore_ascii_case(wanted))?;
    model.members.iter().any(|m| m.org_slug == org && m.user_id == user.id).then_some(user.id)
}

/// `GET /api/0/organizations/{org}/members/`: the organization's members,
/// as Sentry's member serializer shows them (one page).
async fn list_members(State(shared): State<Arc<Shared>>, Path(org): Path<String>, headers: HeaderMap) -> Response {
    if let Err((status, text)) = authenticate_org(&shared, &headers, &org) {
        return detail(status, text);
    }
    let model = shared.model();
    let members: Vec<Value> = model
        .members
        .iter()
        .filter(|m| m.org_slug == org)
        .filter_map(|m| {
            let user = model.users.iter().find(|u| u.id == m.user_id)?;
            Some(json!({
                "id": format!("{}{}", m.user_id, 100),
                "email": user.email,
                "name": user.name,
                "role": m.role,
                "pending": false,
                "user": { "id": user.id.to_string(), "email": user.email, "name": user.name, "username": user.email },
            }))
        })
        .collect();
    sentry_json(StatusCode::OK, Value::Array(members))
}

/// The org's issue, if the token may see it; else Sentry's refusal.
fn issue_in_org(shared: &Shared, headers: &HeaderMap, org: &str, issue: &str) -> Result<SimIssue, Refusal> {
    authenticate_org(shared, headers, org)?;
    shared
        .model()
        .issues
        .get(issue)
        .filter(|i| i.org_slug == org)
        .cloned()
        .ok_or((StatusCode::NOT_FOUND, "The requested resource does not exist"))
}

fn base(shared: &Shared) -> String {
    shared.base_url.trim_end_matches('/').to_owned()
}

async fn get_issue(
    State(shared): State<Arc<Shared>>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match issue_in_org(&shared, &headers, &org, &id) {
        Ok(issue) => sentry_json(StatusCode::OK, issue_body(&base(&shared), &issue)),
        Err((status, text)) => detail(status, text),
    }
}

async fn update_issue(
    State(shared): State<Arc<Shared>>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err((status, text)) = issue_in_org(&shared, &headers, &org, &id) {
        return detail(status, text);
    }
    let Ok(Value::Object(update)) = serde_json::from_slice::<Value>(&body) else {
        return detail(StatusCode::BAD_REQUEST, "Invalid request");
    };
    let status = match update.get("status").and_then(Value::as_str) {
        None => None,
        Some("resolved" | "resolvedInNextRelease") => Some("resolved"),
        Some("unresolved") => Some("unresolved"),
        Some("ignored") => Some("ignored"),
        Some(other) => {
            return sentry_json(
                StatusCode::BAD_REQUEST,
                json!({ "status": [format!("\"{other}\" is not a valid choice.")] }),
            )
        }
    };
    let installation = super::api::token_installation(&shared, &headers).unwrap_or_default();
    let mut model = shared.model();
    let assigned_to = match update.get("assignedTo").map(|a| a.as_str().unwrap_or_default()) {
        None => None,
        Some("") => Some(None),
        Some(actor) => match assignee_user(&model, &org, actor) {
            Some(user) => Some(Some(format!("user:{user}"))),
            None => return sentry_json(StatusCode::BAD_REQUEST, json!({ "assignedTo": ["Unknown actor input"] })),
        },
    };
    let issue = model.issues.get_mut(&id).expect("checked above");
    let mut echoes = Vec::new();
    if let Some(status) = status {
        if issue.status != status {
            issue.status = status.to_owned();
            echoes.push(status.to_owned());
        }
    }
    if let Some(assigned_to) = assigned_to {
        if issue.assigned_to != assigned_to {
            issue.assigned_to = assigned_to;
            // Sentry announces assignments; unassigning sends no webhook.
            if issue.assigned_to.is_some() {
                echoes.push("assigned".to_owned());
            }
        }
    }
    let issue = issue.clone();
    // Sentry announces what the app changed, with the app as the actor.
    for action in echoes {
        model.echoes.push(Echo::Issue { installation: installation.clone(), issue: id.clone(), action });
    }
    drop(model);
    sentry_json(StatusCode::OK, issue_body(&base(&shared), &issue))
}

async fn list_comments(
    State(shared): State<Arc<Shared>>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, text)) = issue_in_org(&shared, &headers, &org, &id) {
        return detail(status, text);
    }
    let comments: Vec<Value> = shared.model().comments.iter().filter(|c| c.issue == id).map(comment_body).collect();
    sentry_json(StatusCode::OK, Value::Array(comments))
}

/// The comment's text; `None` gets Sentry's field error from the caller.
fn comment_text(body: &Bytes) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("text")?.as_str().map(str::to_owned))
        .filter(|text| !text.trim().is_empty())
}

fn text_required() -> Response {
    sentry_json(StatusCode::BAD_REQUEST, json!({ "text": ["This field is required."] }))
}

async fn add_comment(
    State(shared): State<Arc<Shared>>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err((status, text)) = issue_in_org(&shared, &headers, &org, &id) {
        return detail(status, text);
    }
    let Some(text) = comment_text(&body) else { return text_required() };
    let installation = super::api::token_installation(&shared, &headers).unwrap_or_default();
    let mut model = shared.model();
    if model.comments.iter().any(|c| c.issue == id && c.text == text) {
        return detail(StatusCode::BAD_REQUEST, "You have already posted that comment.");
    }
    let comment = SimComment { id: model.next_id(), issue: id, text, created_at_ms: now_ms() };
    model.comments.push(comment.clone());
    model.echoes.push(comment_echo(&installation, &comment, "created"));
    sentry_json(StatusCode::CREATED, comment_body(&comment))
}

async fn edit_comment(
    State(shared): State<Arc<Shared>>,
    Path((org, id, comment_id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err((status, text)) = issue_in_org(&shared, &headers, &org, &id) {
        return detail(status, text);
    }
    let Some(text) = comment_text(&body) else { return text_required() };
    let installation = super::api::token_installation(&shared, &headers).unwrap_or_default();
    let mut model = shared.model();
    match model.comments.iter_mut().find(|c| c.issue == id && c.id.to_string() == comment_id) {
        Some(comment) => {
            comment.text = text;
            let (answer, echo) = (comment_body(comment), comment_echo(&installation, comment, "updated"));
            model.echoes.push(echo);
            sentry_json(StatusCode::OK, answer)
        }
        None => detail(StatusCode::NOT_FOUND, "The requested resource does not exist"),
    }
}

async fn delete_comment(
    State(shared): State<Arc<Shared>>,
    Path((org, id, comment_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, text)) = issue_in_org(&shared, &headers, &org, &id) {
        return detail(status, text);
    }
    let installation = super::api::token_installation(&shared, &headers).unwrap_or_default();
    let mut model = shared.model();
    let Some(gone) = model.comments.iter().find(|c| c.issue == id && c.id.to_string() == comment_id).cloned() else {
        return detail(StatusCode::NOT_FOUND, "The requested resource does not exist");
    };
    model.comments.retain(|c| c.id != gone.id);
    model.echoes.push(comment_echo(&installation, &gone, "deleted"));
    StatusCode::NO_CONTENT.into_response()
}

async fn link_external(
    State(shared): State<Arc<Shared>>,
    Path(uuid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err((status, text)) = super::api::authenticate(&shared, &headers, &uuid) {
        return detail(status, text);
    }
    let Ok(Value::Object(link)) = serde_json::from_slice::<Value>(&body) else {
        return detail(StatusCode::BAD_REQUEST, "Invalid request");
    };
    let text = |name: &str| link.get(name).and_then(|v| v.as_str().map(str::to_owned).or_else(|| Some(v.to_string())));
    let issue_id = link.get("issueId").map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()));
    let mut errors = serde_json::Map::new();
    let web_url = text("webUrl").unwrap_or_default();
    if !web_url.starts_with("http") {
        errors.insert("webUrl".into(), json!(["Enter a valid URL."]));
    }
    for field in ["project", "identifier"] {
        if text(field).is_none_or(|v| v.is_empty()) {
            errors.insert(field.into(), json!(["This field is required."]));
        }
    }
    if !errors.is_empty() {
        return sentry_json(StatusCode::BAD_REQUEST, Value::Object(errors));
    }
    let mut model = shared.model();
    let org = model.installations.get(&uuid).map(|i| i.org_slug.clone());
    let Some(issue_id) = issue_id.filter(|id| model.issues.get(id).is_some_and(|i| Some(&i.org_slug) == org.as_ref()))
    else {
        return detail(StatusCode::NOT_FOUND, "Could not find the corresponding issue for the given issueId");
    };
    let external = SimExternalIssue {
        id: model.next_id().to_string(),
        installation: uuid,
        issue_id,
        web_url,
        project: text("project").unwrap_or_default(),
        identifier: text("identifier").unwrap_or_default(),
    };
    model.external_issues.push(external.clone());
    sentry_json(
        StatusCode::OK,
        json!({
            "id": external.id,
            "issueId": external.issue_id,
            "serviceType": shared.app.slug,
            "displayName": format!("{}#{}", external.project, external.identifier),
            "webUrl": external.web_url,
        }),
    )
}

async fn unlink_external(
    State(shared): State<Arc<Shared>>,
    Path((uuid, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, text)) = super::api::authenticate(&shared, &headers, &uuid) {
        return detail(status, text);
    }
    let mut model = shared.model();
    let before = model.external_issues.len();
    model.external_issues.retain(|e| !(e.id == id && e.installation == uuid));
    if model.external_issues.len() == before {
        return detail(StatusCode::NOT_FOUND, "The requested resource does not exist");
    }
    StatusCode::NO_CONTENT.into_response()
}

const SERVICE_HOOK_EVENTS: [&str; 2] = ["event.alert", "event.created"];

fn hook_body(hook: &SimServiceHook) -> Value {
    json!({
        "id": hook.id,
        "url": hook.url,
        "events": hook.events,
        "status": "active",
        "secret": hook.secret,
        "dateCreated": format_datetime_ms(hook.created_at_ms),
    })
}

/// `POST /api/0/projects/{org}/{project}/hooks/` (docs/sentry-protocol.md §7).
async fn create_hook(
    State(shared): State<Arc<Shared>>,
    Path((org, project)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err((status, text)) = authenticate_org(&shared, &headers, &org) {
        return detail(status, text);
    }
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&body) else {
        return detail(StatusCode::BAD_REQUEST, "Invalid request");
    };
    let url = request.get("url").and_then(Value::as_str).unwrap_or_default().to_owned();
    if !url.starts_with("http") {
        return sentry_json(StatusCode::BAD_REQUEST, json!({ "url": ["Enter a valid URL."] }));
    }
    let events: Vec<String> = request
        .get("events")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    if let Some(bad) = events.iter().find(|e| !SERVICE_HOOK_EVENTS.contains(&e.as_str())) {
        return sentry_json(StatusCode::BAD_REQUEST, json!({ "events": [format!("Invalid event name: {bad}")] }));
    }
    let mut model = shared.model();
    let hook = SimServiceHook {
        id: model.next_id().to_string(),
        guid: super::random_hex(16),
        org_slug: org,
        project,
        url,
        events,
        secret: super::random_hex(32),
        created_at_ms: now_ms(),
    };
    model.service_hooks.push(hook.clone());
    sentry_json(StatusCode::CREATED, hook_body(&hook))
}

async fn list_hooks(
    State(shared): State<Arc<Shared>>,
    Path((org, project)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, text)) = authenticate_org(&shared, &headers, &org) {
        return detail(status, text);
    }
    let hooks: Vec<Value> = shared
        .model()
        .service_hooks
        .iter()
        .filter(|h| h.org_slug == org && h.project == project)
        .map(hook_body)
        .collect();
    sentry_json(StatusCode::OK, Value::Array(hooks))
}

async fn delete_hook(
    State(shared): State<Arc<Shared>>,
    Path((org, project, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err((status, text)) = authenticate_org(&shared, &headers, &org) {
        return detail(status, text);
    }
    let mut model = shared.model();
    let before = model.service_hooks.len();
    model.service_hooks.retain(|h| !(h.id == id && h.org_slug == org && h.project == project));
    if model.service_hooks.len() == before {
        return detail(StatusCode::NOT_FOUND, "The requested resource does not exist");
    }
    StatusCode::NO_CONTENT.into_response()
}
