//! Reaching nodes' operating systems: `POST /nodes/exec` (a command on
//! every node, `xcat3 exec`), `POST /nodes/copy` (files to every node,
//! `xcat3 copy`) and `GET /ssh-key` (the cluster's public key, for nodes
//! xcat3 does not boot itself).
//!
//! Both actions go to each node's ring owner like power does; each
//! conductor opens its nodes' SSH sessions (`xcat3_conductor::shell`). A
//! node's value is an `exec::Outcome` document; one whose command exited
//! non-zero is that same document with `command_failed` in
//! `error_kinds`. Admin only: they run anything as root on the nodes.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use xcat3_common::exec::{self, CopyFile};
use xcat3_common::rpc::Action;

use super::actions::{Shape, run};
use super::requested_names;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Origin, Params};
#[allow(unused_imports)]
use crate::wire::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/nodes/exec", post(exec_cmd))
        .route("/nodes/copy", post(copy))
        .route("/ssh-key", get(ssh_key))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(exec_cmd, copy, ssh_key))]
pub struct Doc;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RangeQuery {
    noderange: Option<String>,
}

/// How the sessions of one request run (`exec`, `copy` and `postscripts
/// --rerun` take `user`, `timeout` and `fanout`): checked, with their
/// defaults.
pub(super) fn session_options(
    user: Option<String>,
    timeout: Option<u32>,
    fanout: Option<u32>,
) -> ApiResult<(String, u32, u32)> {
    let user = user.unwrap_or_else(|| exec::DEFAULT_USER.into());
    exec::check_user(&user).map_err(ApiError::bad_request)?;
    let timeout = timeout.unwrap_or(exec::DEFAULT_TIMEOUT_S);
    if !(1..=exec::MAX_TIMEOUT_S).contains(&timeout) {
        return Err(ApiError::bad_request(format!(
            "timeout: {timeout} is not 1-{} seconds",
            exec::MAX_TIMEOUT_S
        )));
    }
    let fanout = fanout.unwrap_or(exec::DEFAULT_FANOUT);
    if !(1..=exec::MAX_FANOUT).contains(&fanout) {
        return Err(ApiError::bad_request(format!(
            "fanout: {fanout} is not 1-{}",
            exec::MAX_FANOUT
        )));
    }
    Ok((user, timeout, fanout))
}

/// `POST /nodes/exec`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecBody {
    /// The command line, run by the user's login shell on each node.
    command: String,
    /// The user to log in as (default root).
    user: Option<String>,
    /// Seconds each node's command may run (default 60).
    #[schema(minimum = 1, maximum = 86400)]
    timeout: Option<u32>,
    /// Sessions at once per conductor (default 128).
    #[schema(minimum = 1, maximum = 2048)]
    fanout: Option<u32>,
}

/// `POST /nodes/copy`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyBody {
    /// Where the files go: a directory, or for one file its new path.
    dest: String,
    /// The files, at most 32 MiB together.
    #[schema(value_type = Vec<CopyFileWire>)]
    files: Vec<CopyFile>,
    /// As for exec.
    user: Option<String>,
    #[schema(minimum = 1, maximum = 86400)]
    timeout: Option<u32>,
    #[schema(minimum = 1, maximum = 2048)]
    fanout: Option<u32>,
}

/// One file `copy` sends.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CopyFileWire {
    /// Its name in the destination directory (no `/`).
    name: String,
    /// Permission bits, as a number (420 is 0644).
    mode: u32,
    /// Its bytes, base64.
    data: String,
}

fn body_of<T: serde::de::DeserializeOwned>(body: Value, shape: &str) -> ApiResult<T> {
    if body.is_null() {
        return Err(ApiError::bad_request(format!(
            "request body: missing (expected {shape})"
        )));
    }
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!("{path}: ")
        };
        ApiError::bad_request(format!(
            "request body: {at}{} (expected {shape})",
            e.inner()
        ))
    })
}

/// `POST /nodes/exec?noderange=` with `{"command": "...", "user",
/// "timeout", "fanout"}`: the command on every node, over SSH from each
/// node's conductor; per node its output and exit status.
#[utoipa::path(post, path = "/v1/nodes/exec", tag = "remote", operation_id = "exec", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange")), request_body = ExecBody, responses((status = 200, description = "per node: its outcome (exit status and output), or its error; a non-zero exit is the outcome with command_failed in error_kinds; with Accept: application/x-ndjson, one such object per line as nodes finish", content((PerNodeOutcome = "application/json"), (PerNodeOutcome = "application/x-ndjson")))))]
async fn exec_cmd(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<RangeQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let b: ExecBody = body_of(body, "{\"command\": \"...\"}")?;
    if b.command.trim().is_empty() {
        return Err(ApiError::bad_request("command: must not be empty"));
    }
    if b.command.len() > exec::MAX_COMMAND || b.command.contains('\0') {
        return Err(ApiError::bad_request(format!(
            "command: at most {} bytes, no NUL",
            exec::MAX_COMMAND
        )));
    }
    let (user, timeout_s, fanout) = session_options(b.user, b.timeout, b.fanout)?;
    let names = requested_names(&st, q.noderange.as_deref(), &Value::Null).await?;
    let action = Action::Exec {
        command: b.command,
        user,
        timeout_s,
        fanout,
    };
    run(&st, &origin, names, action, StatusCode::OK, Shape::Json).await
}

/// `POST /nodes/copy?noderange=` with `{"dest": "/etc/", "files": [{"name",
/// "mode", "data"}]}`: the files into `dest` on every node (SCP over SSH
/// from each node's conductor; each conductor gets them once).
#[utoipa::path(post, path = "/v1/nodes/copy", tag = "remote", operation_id = "copy", params(("noderange" = NodeRange, Query, description = "the nodes: an xCAT noderange")), request_body = CopyBody, responses((status = 200, description = "per node: its outcome, or its error (as for exec)", content((PerNodeOutcome = "application/json"), (PerNodeOutcome = "application/x-ndjson")))))]
async fn copy(
    State(st): State<AppState>,
    origin: Origin,
    Params(q): Params<RangeQuery>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let b: CopyBody = body_of(body, "{\"dest\": \"/path\", \"files\": [...]}")?;
    exec::check_dest(&b.dest).map_err(ApiError::bad_request)?;
    if b.files.is_empty() {
        return Err(ApiError::bad_request("files: at least one"));
    }
    let mut total = 0;
    let mut seen = std::collections::HashSet::new();
    for f in &b.files {
        f.check().map_err(ApiError::bad_request)?;
        if !seen.insert(f.name.as_str()) {
            return Err(ApiError::bad_request(format!(
                "files: `{}` is given twice",
                f.name
            )));
        }
        total += f.data.len();
    }
    if total > exec::MAX_COPY_BYTES {
        return Err(ApiError::bad_request(format!(
            "files: {total} bytes together; at most {} (copy bigger trees with exec and a URL the nodes can fetch)",
            exec::MAX_COPY_BYTES
        )));
    }
    let (user, timeout_s, fanout) = session_options(b.user, b.timeout, b.fanout)?;
    let names = requested_names(&st, q.noderange.as_deref(), &Value::Null).await?;
    let action = Action::Copy {
        files: b.files,
        dest: b.dest,
        user,
        timeout_s,
        fanout,
    };
    run(&st, &origin, names, action, StatusCode::OK, Shape::Json).await
}

/// `GET /ssh-key`: the public key conductors log in to nodes with (made
/// on first use), for the `authorized_keys` of nodes xcat3 does not boot.
#[utoipa::path(get, path = "/v1/ssh-key", tag = "remote", operation_id = "ssh_key", responses((status = 200, description = "the cluster's SSH public key", body = SshKey)))]
async fn ssh_key(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    let key = xcat3_conductor::shell::cluster_key(&st.db)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({ "public_key": key.public })))
}
