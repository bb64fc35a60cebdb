//! `/v1/groups`: node groups. A node lists its groups; it inherits each
//! attribute its groups set and it does not (the first group wins), and
//! noderanges take group names (`compute,-rack3`, `gpu@rack1`).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use xcat3_common::model::{FieldError, GroupSpec, apply_patches, parse_patches, tokens};
use xcat3_common::noderange;
use xcat3_db::entity::nodegroup;
use xcat3_db::groups as db;

use super::{Fields, parse_fields};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params, Path};
use crate::view;
#[allow(unused_imports)]
use crate::wire::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/groups", get(list).post(create))
        .route("/groups/{name}", get(show).patch(update).delete(remove))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show, create, update, remove))]
pub struct Doc;

/// `GET /groups[?fields=]` → `{"groups": [{"name"}..]}` (default: names).
#[utoipa::path(get, path = "/v1/groups", tag = "groups", operation_id = "list_groups", params(("fields" = Option<GroupFields>, Query, style = Form, explode = false)), responses((status = 200, description = "groups", body = GroupListOut)))]
async fn list(State(st): State<AppState>, Params(q): Params<Fields>) -> ApiResult<Json<Value>> {
    let fields = parse_fields(q.fields.as_deref(), view::GROUP_FIELDS)?
        .unwrap_or_else(|| vec!["name".to_string()]);
    let want_members = fields.iter().any(|f| f == "members");
    let groups = db::list(&st.db).await?;
    let members = if want_members {
        let names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
        db::members(&st.db, &names).await?
    } else {
        Default::default()
    };
    let out: Vec<Value> = groups
        .iter()
        .map(|g| view::group(g, members.get(&g.name).map(|m| folded(m)), Some(&fields)))
        .collect();
    Ok(Json(json!({ "groups": out })))
}

/// Members as one noderange (`n[001-100]`), the way xCAT admins read them.
fn folded(members: &[String]) -> String {
    noderange::fold(members)
}

/// `GET /groups/{name}` → the group with its `members` as a noderange.
#[utoipa::path(get, path = "/v1/groups/{name}", tag = "groups", operation_id = "show_group", params(("name" = String, Path), ("fields" = Option<GroupFields>, Query, style = Form, explode = false)), responses((status = 200, description = "the group", body = GroupOut)))]
async fn show(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Params(q): Params<Fields>,
) -> ApiResult<Json<Value>> {
    let fields = parse_fields(q.fields.as_deref(), view::GROUP_FIELDS)?;
    let g = db::get(&st.db, &name).await?;
    let members = db::members(&st.db, std::slice::from_ref(&name)).await?;
    let members = members.get(&name).map(|m| folded(m));
    Ok(Json(view::group(&g, members, fields.as_deref())))
}

/// `POST /groups` → 201 `{"group": {"<name>": "ok"}}`.
#[utoipa::path(post, path = "/v1/groups", tag = "groups", operation_id = "create_group", request_body = GroupIn, responses((status = 201, description = "created: {\"group\": {name: \"ok\"}}", body = Created)))]
async fn create(
    State(st): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let spec = GroupSpec::from_json(&body).map_err(|e| named(body.get("name"), e))?;
    db::create(&st.db, &spec).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "group": { spec.name: tokens::OK } })),
    ))
}

fn named(name: Option<&Value>, e: FieldError) -> ApiError {
    match name.and_then(Value::as_str) {
        Some(n) => ApiError::bad_request(format!("group {n}: {e}")),
        None => ApiError::bad_request(format!("group: {e}")),
    }
}

/// The stored group as the document a PATCH edits and an export holds
/// (secrets in clear: only the admin-only export sends it).
pub fn document(g: &nodegroup::Model) -> Value {
    json!({
        "name": g.name, "mgt": g.mgt, "netboot": g.netboot, "arch": g.arch,
        "type": g.node_type,
        "control_info": Value::Object(xcat3_db::nodes::parse_map(&g.control_info)),
        "console_info": Value::Object(xcat3_db::nodes::parse_map(&g.console_info)),
    })
}

/// `PATCH /groups/{name}` with a JSON-patch list → the updated group.
/// Its members act with the new values from their next request on.
#[utoipa::path(patch, path = "/v1/groups/{name}", tag = "groups", operation_id = "update_group", params(("name" = String, Path)), request_body = Vec<Patch>, responses((status = 200, description = "the group as updated", body = GroupOut)))]
async fn update(
    State(st): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let writable: Vec<&str> = GroupSpec::WRITABLE
        .iter()
        .copied()
        .filter(|f| *f != "name")
        .collect();
    let ops = parse_patches(&body, &writable)
        .map_err(|e| ApiError::bad_request(format!("group {name}: {e}")))?;
    let old = db::get(&st.db, &name).await?;
    let mut doc = document(&old);
    apply_patches(&mut doc, &ops)
        .map_err(|e| ApiError::bad_request(format!("group {name}: {e}")))?;
    let spec = GroupSpec::from_json(&doc).map_err(|e| named(Some(&name.clone().into()), e))?;
    let saved = db::update(&st.db, old, &spec).await?;
    Ok(Json(view::group(&saved, None, None)))
}

/// `DELETE /groups/{name}` → 202; 409 while nodes still list it.
#[utoipa::path(delete, path = "/v1/groups/{name}", tag = "groups", operation_id = "delete_group", params(("name" = String, Path)), responses((status = 202, description = "deleted")))]
async fn remove(State(st): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    db::delete(&st.db, &name).await?;
    Ok(StatusCode::ACCEPTED)
}
