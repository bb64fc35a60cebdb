//! One error type for every handler. The body is the v1 (WSME) fault shape,
//! `{"faultcode", "faultstring", "debuginfo"}`, so the prototype's client
//! prints it unchanged. Client mistakes are 4xx and name what was wrong;
//! internal causes are logged with the request id and never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use xcat3_common::model::FieldError;
use xcat3_db::DbError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// A server-side failure (500) the client cannot fix.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }

    pub fn with_status(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound(m) => ApiError::not_found(m),
            DbError::Conflict(m) => ApiError {
                status: StatusCode::CONFLICT,
                message: m,
            },
            DbError::Invalid(m) => ApiError::bad_request(m),
            DbError::Db(e) => {
                // Logged here (inside the request's span, so with its id);
                // the client learns only that the database failed.
                tracing::error!(error = %e, "database error");
                xcat3_common::metrics::count(
                    "xcat3_api_db_errors_total",
                    "Requests that failed on a database error.",
                    &[],
                    1,
                );
                ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: "database unavailable or failing; see the API log".into(),
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let faultcode = if self.status.is_client_error() {
            "Client"
        } else {
            "Server"
        };
        let body = json!({
            "faultcode": faultcode,
            "faultstring": self.message,
            "debuginfo": null,
        });
        (self.status, axum::Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
