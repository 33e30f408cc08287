//! Where errors become HTTP answers: one error type per surface.
//!
//! - [`SentryEndpointError`]: what Sentry calls (`/sentry/*`), answered as
//!   JSON `{"message": …}`, the shape Sentry reads from an app.
//! - [`ApiError`]: the operations endpoints (`/readyz`), JSON `{"error": …}`.
//! - [`PageError`]: browser-facing routes (`/sentry/setup`), answered as a
//!   page that looks like the console's.
//!
//! Whatever went wrong inside is logged with its cause here; the client gets
//! a status and a sentence that leaks nothing about the internals.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use issuebridge::store::{NotReady, StoreError};

impl From<StoreError> for SentryEndpointError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable { public: "the store cannot answer now; try again", cause: e.to_string() }
    }
}
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not ready: {0}")]
    NotReady(#[from] NotReady),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            // 503 tells load balancers (and Sentry's retries) to come back later.
            Self::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::NotReady(reason) => format!("not ready: {reason}"),
            Self::Store(_) | Self::Internal(_) => "internal error; the server log has the details".to_owned(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        (status, Json(json!({ "error": self.public_message() }))).into_response()
    }
}

pub type ApiResult<T, E = ApiError> = Result<T, E>;

/// An answer to Sentry that is not a success.
#[derive(Debug, thiserror::Error)]
pub enum SentryEndpointError {
    /// Missing, malformed or wrong signature: not stored, not retried.
    #[error("invalid or missing signature")]
    Unauthorized,
    /// Well signed but unusable as sent; kept if it was a delivery.
    #[error("{0}")]
    BadRequest(&'static str),
    /// A component request Sentry should show the person as said (400).
    #[error("{0}")]
    Invalid(String),
    /// What the request names does not exist for its installation (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what exists (409).
    #[error("{0}")]
    Conflict(String),
    /// The store cannot take it now: Sentry retries.
    #[error("{public}")]
    Unavailable { public: &'static str, cause: String },
}

impl SentryEndpointError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) | Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for SentryEndpointError {
    fn into_response(self) -> Response {
        if let Self::Unavailable { cause, .. } = &self {
            tracing::error!(%cause, "a request from Sentry could not be served");
        }
        (self.status(), Json(json!({ "message": self.to_string() }))).into_response()
    }
}

/// A failure a person sees in the browser: a page with a title and a plain
/// sentence, never internals (the cause is logged where it happened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageError {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self { status, title, message: message.into() }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        crate::page::error_page(self.status, self.title, &self.message)
    }
}
