//! Request extractors that answer bad input with our fault body.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// A JSON body as an untyped value, so validation can name the bad node and
/// field. An empty body reads as `null` (the v1 client sends GETs without
/// one when it has nothing to say).
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError {
                status: e.status(),
                message: format!("request body: {}", e.body_text()),
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Value::Null));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))
    }
}

/// Query parameters; a bad or unknown parameter is a 400 naming it.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Params(v))
            .map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text())))
    }
}

/// Where an action request comes from: its id (the `xcat3-request-id`
/// header the API set), who sent it (the token's name) and whether it
/// asked for streamed results (`Accept: application/x-ndjson`).
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub request_id: String,
    pub caller: Option<String>,
    pub stream: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        Ok(Origin {
            request_id: match header(crate::REQUEST_ID_HEADER) {
                "" => "-".to_string(),
                id => id.to_string(),
            },
            caller: parts
                .extensions
                .get::<crate::auth::Caller>()
                .and_then(|c| c.name.clone()),
            stream: header("accept").contains("application/x-ndjson"),
        })
    }
}

/// A path parameter; one that cannot be decoded (bad percent-encoding,
/// not UTF-8) is a 400 with the fault body.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|e| ApiError::bad_request(format!("path: {}", e.body_text())))
    }
}
