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
///
/// A body must say it is JSON (`Content-Type: application/json`): a page
/// in an admin's browser can send `text/plain` across sites without a
/// CORS preflight, but not JSON. And a parsed `Value` costs up to 20 times
/// its text (`[0,0,...]`), so a body holding more than [`MAX_JSON_VALUES`]
/// values is refused before parsing, and large bodies are parsed a few at
/// a time on blocking threads.
pub struct JsonBody(pub Value);

/// Most values (and object keys) one JSON body may hold: a 100,000-node
/// import with nics and control_info is about 2.5 million.
pub const MAX_JSON_VALUES: usize = 4_000_000;

/// Bodies above this size are parsed under [`BIG_PARSES`].
const BIG_BODY: usize = 1024 * 1024;

/// Large bodies parsed at once (each at most [`MAX_JSON_VALUES`] values).
static BIG_PARSES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// True if the request declares a JSON body (`application/json`, or a
/// `+json` type, with any parameters).
pub fn declares_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}

/// How many values and keys `text` holds at most, counted without
/// parsing: separators and openers outside strings, plus one.
fn value_count(text: &[u8]) -> usize {
    let (mut n, mut in_str, mut escaped) = (1usize, false, false);
    for &b in text {
        if in_str {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_str = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_str = true,
                b',' | b':' | b'[' | b'{' => n += 1,
                _ => {}
            }
        }
    }
    n
}

/// MiB of JSON bodies held in memory at once, across all requests: a big
/// body waits for room instead of adding to the total (eight 60 MB bodies
/// at once would otherwise hold 480 MB before any check could refuse them).
static BODY_MIB: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(128);

/// Reads a request's JSON body with the checks above; `None` when empty.
pub async fn read_json(req: Request) -> Result<Option<Value>, ApiError> {
    let declared = declares_json(req.headers());
    // Room for the body: its declared length, or the most it may be.
    let length = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mib = match length {
        Some(n) if n <= BIG_BODY as u64 => 0,
        Some(n) => n.div_ceil(1 << 20).min(128) as u32,
        None => 64,
    };
    let _room = if mib > 0 {
        Some(
            BODY_MIB
                .acquire_many(mib)
                .await
                .map_err(|_| ApiError::internal("body reading is shut down"))?,
        )
    } else {
        None
    };
    let bytes = Bytes::from_request(req, &()).await.map_err(|e| ApiError {
        status: e.status(),
        message: format!("request body: {}", e.body_text()),
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !declared {
        return Err(ApiError::with_status(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request body: Content-Type must be application/json",
        ));
    }
    if value_count(&bytes) > MAX_JSON_VALUES {
        return Err(ApiError::with_status(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body: more than {MAX_JSON_VALUES} JSON values; split the request"),
        ));
    }
    let parse = |bytes: &[u8]| {
        serde_json::from_slice(bytes)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))
    };
    if bytes.len() <= BIG_BODY {
        return parse(&bytes);
    }
    let _turn = BIG_PARSES
        .acquire()
        .await
        .map_err(|_| ApiError::internal("body parsing is shut down"))?;
    tokio::task::spawn_blocking(move || parse(&bytes))
        .await
        .map_err(|e| ApiError::internal(format!("parsing the body failed: {e}")))?
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        Ok(JsonBody(read_json(req).await?.unwrap_or(Value::Null)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_outside_strings() {
        assert_eq!(value_count(b"[0,0,0]"), 4);
        assert_eq!(value_count(br#"{"a,b:[{": "x\",y", "c": [1, 2]}"#), 7);
        assert_eq!(value_count(b"7"), 1);
        let big = format!("[{}0]", "0,".repeat(MAX_JSON_VALUES));
        assert!(value_count(big.as_bytes()) > MAX_JSON_VALUES);
    }

    #[test]
    fn json_content_types() {
        let h = |v: &str| {
            let mut m = axum::http::HeaderMap::new();
            m.insert(axum::http::header::CONTENT_TYPE, v.parse().unwrap());
            m
        };
        assert!(declares_json(&h("application/json")));
        assert!(declares_json(&h("Application/JSON; charset=utf-8")));
        assert!(declares_json(&h("application/merge-patch+json")));
        assert!(!declares_json(&h("text/plain")));
        assert!(!declares_json(&h("application/x-www-form-urlencoded")));
        assert!(!declares_json(&axum::http::HeaderMap::new()));
    }
}
