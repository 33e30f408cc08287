//! The one place where errors become HTTP answers.
//!
//! Handlers return `Result<_, ApiError>`. Whatever went wrong inside is
//! logged with its cause here; the client gets a status and a sentence that
//! leaks nothing about the internals.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use issuebridge::store::{NotReady, StoreError};
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
