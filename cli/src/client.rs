//! A thin HTTP client for the xcat3 API: JSON in, JSON out, faults turned
//! into errors that carry the server's message.

use std::time::Duration;

use anyhow::{Context, anyhow};
use reqwest::Method;
use serde_json::Value;

pub struct Client {
    http: reqwest::Client,
    base: String,
    retries: u32,
    /// Bearer token for APIs with `auth = "token"`.
    token: Option<String>,
}

/// A reply's JSON body (`Null` when empty).
pub struct Reply {
    pub body: Value,
}

impl Client {
    pub fn new(base: &str, retries: u32, token: Option<String>) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3600))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        let base = base.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base).to_string();
        Ok(Client {
            http,
            base,
            retries,
            token: token.filter(|t| !t.is_empty()),
        })
    }

    /// `method` on `/v1{path}`, with the token if there is one; and the URL.
    fn request(&self, method: Method, path: &str) -> (String, reqwest::RequestBuilder) {
        let url = format!("{}/v1{}", self.base, path);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        (url, req)
    }

    /// Sends `method path` (with an optional JSON body) asking for
    /// `accept`. Only connection failures are retried: the request never
    /// reached the server. 4xx/5xx replies become errors holding the
    /// server's `faultstring`.
    async fn send(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        accept: &str,
    ) -> anyhow::Result<(String, reqwest::Response)> {
        let mut attempt = 0;
        let (url, resp) = loop {
            let (url, req) = self.request(method.clone(), path);
            let mut req = req.header("accept", accept);
            if let Some(b) = body {
                req = req.json(b);
            }
            match req.send().await {
                Ok(r) => break (url, r),
                Err(e) if e.is_connect() && attempt < self.retries => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(500 * attempt as u64)).await;
                }
                Err(e) => return Err(anyhow!(e).context(format!("{method} {url}"))),
            }
        };
        let status = resp.status();
        if status.is_client_error() || status.is_server_error() {
            let bytes = resp.bytes().await.unwrap_or_default();
            return Err(fault(status, &bytes));
        }
        Ok((url, resp))
    }

    /// One request, one JSON reply (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Reply> {
        let (url, resp) = self.send(&method, path, body, "application/json").await?;
        let bytes = resp
            .bytes()
            .await
            .with_context(|| format!("reading reply of {method} {url}"))?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(Reply { body })
    }

    /// Asks for `application/x-ndjson` and calls `each` with every JSON
    /// line as it arrives. Returns the request's id (for `history`).
    pub async fn stream(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        mut each: impl FnMut(Value),
    ) -> anyhow::Result<Option<String>> {
        let (url, mut resp) = self
            .send(&method, path, body, "application/x-ndjson")
            .await?;
        let id = resp
            .headers()
            .get("xcat3-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .with_context(|| format!("reading {url}"))?
        {
            buf.extend_from_slice(&chunk);
            while let Some(i) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                each(
                    serde_json::from_slice(&line)
                        .with_context(|| format!("bad line from {url}"))?,
                );
            }
        }
        Ok(id)
    }

    /// POSTs the file at `file` as the body (streamed, not read into
    /// memory) and returns the JSON reply.
    pub async fn upload(&self, path: &str, file: &std::path::Path) -> anyhow::Result<Value> {
        let f = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("opening {}", file.display()))?;
        let len = f.metadata().await?.len();
        let (url, req) = self.request(Method::POST, path);
        let resp = req
            .header("content-type", "application/octet-stream")
            .header("content-length", len)
            .body(reqwest::Body::from(f))
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap_or_default();
        if !status.is_success() {
            return Err(fault(status, &bytes));
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.call(Method::GET, path, None).await?.body)
    }

    /// A websocket to `/v1{path}` (`ws://` or `wss://` as the API's URL
    /// says), with the token if there is one; a refusal is an error
    /// holding the server's message.
    pub async fn websocket(
        &self,
        path: &str,
    ) -> anyhow::Result<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    > {
        use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest as _};
        let url = format!("{}/v1{}", self.base, path);
        let ws_url = if let Some(rest) = url.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = url.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            url.clone()
        };
        let mut req = ws_url
            .as_str()
            .into_client_request()
            .with_context(|| format!("GET {url}"))?;
        if let Some(t) = &self.token {
            req.headers_mut().insert(
                "authorization",
                format!("Bearer {t}")
                    .parse()
                    .context("the token is not a header value")?,
            );
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => Ok(ws),
            Err(tungstenite::Error::Http(resp)) => {
                let status = reqwest::StatusCode::from_u16(resp.status().as_u16())
                    .unwrap_or(reqwest::StatusCode::BAD_GATEWAY);
                Err(fault(status, resp.body().as_deref().unwrap_or_default()))
            }
            Err(e) => Err(anyhow!(e).context(format!("GET {url}"))),
        }
    }
}

/// An error reply as an error holding the server's `faultstring`.
fn fault(status: reqwest::StatusCode, bytes: &[u8]) -> anyhow::Error {
    let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let msg = body
        .get("faultstring")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned());
    anyhow!("{msg} (HTTP {})", status.as_u16())
}

/// Percent-encodes a query value (noderanges hold `[`, `,`, `@`, `/`).
pub fn encode(v: &str) -> String {
    xcat3_common::percent_encode(v, b"")
}
