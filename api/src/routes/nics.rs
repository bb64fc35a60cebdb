//! `/v1/nics`: one nic at a time (bulk nic changes go through node PATCH).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use xcat3_common::model::{NicSpec, apply_patches, normalize_mac, parse_patches, tokens};
use xcat3_db::resources as db;

use super::{Fields, parse_fields};
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, Params, Path};
use crate::view;
#[allow(unused_imports)]
use crate::wire::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/nics", get(list).post(create))
        .route("/nics/address", get(by_address))
        .route("/nics/node", get(by_node))
        .route("/nics/{uuid}", get(show).patch(update).delete(remove))
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show, by_address, by_node, create, update, remove))]
pub struct Doc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ByMac {
    mac: String,
    fields: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ByNode {
    node_name: String,
    fields: Option<String>,
}

#[utoipa::path(get, path = "/v1/nics", tag = "nics", operation_id = "list_nics", responses((status = 200, description = "uuid and mac of every nic", body = NicListOut)))]
async fn list(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    let nics: Vec<Value> = db::nics(&st.db)
        .await?
        .iter()
        .map(|n| json!({"uuid": n.uuid, "mac": n.mac}))
        .collect();
    Ok(Json(json!({ "nics": nics })))
}

#[utoipa::path(get, path = "/v1/nics/{uuid}", tag = "nics", operation_id = "show_nic", params(("uuid" = String, Path), ("fields" = Option<NicFields>, Query, style = Form, explode = false)), responses((status = 200, description = "the nic", body = NicOut)))]
async fn show(
    State(st): State<AppState>,
    Path(uuid): Path<String>,
    Params(q): Params<Fields>,
) -> ApiResult<Json<Value>> {
    let fields = parse_fields(q.fields.as_deref(), view::NIC_FIELDS)?;
    let nic = db::nic_by_uuid(&st.db, &uuid).await?;
    let node = db::node_by_id(&st.db, nic.node_id).await?;
    Ok(Json(view::nic(&nic, &node.name, fields.as_deref())))
}

#[utoipa::path(get, path = "/v1/nics/address", tag = "nics", operation_id = "show_nic_by_mac", params(("mac" = Mac, Query), ("fields" = Option<NicFields>, Query, style = Form, explode = false)), responses((status = 200, description = "the nic", body = NicOut)))]
async fn by_address(
    State(st): State<AppState>,
    Params(q): Params<ByMac>,
) -> ApiResult<Json<Value>> {
    let fields = parse_fields(q.fields.as_deref(), view::NIC_FIELDS)?;
    let mac = normalize_mac("mac", &q.mac)?;
    let nic = db::nic_by_mac(&st.db, &mac).await?;
    let node = db::node_by_id(&st.db, nic.node_id).await?;
    Ok(Json(view::nic(&nic, &node.name, fields.as_deref())))
}

#[utoipa::path(get, path = "/v1/nics/node", tag = "nics", operation_id = "list_nics_of_node", params(("node_name" = String, Query), ("fields" = Option<NicFields>, Query, style = Form, explode = false)), responses((status = 200, description = "the node's nics", body = NicsOut)))]
async fn by_node(State(st): State<AppState>, Params(q): Params<ByNode>) -> ApiResult<Json<Value>> {
    let fields = parse_fields(q.fields.as_deref(), view::NIC_FIELDS)?;
    let node = db::node_by_name(&st.db, &q.node_name).await?;
    let nics: Vec<Value> = db::nics_of_node(&st.db, node.id)
        .await?
        .iter()
        .map(|n| view::nic(n, &node.name, fields.as_deref()))
        .collect();
    Ok(Json(json!({ "nics": nics })))
}

/// Splits a nic body into its owner (`node` name or `node_id`) and the nic.
fn split_owner(body: &Value) -> ApiResult<(Option<String>, Option<i64>, Value)> {
    let mut obj = body
        .as_object()
        .cloned()
        .ok_or_else(|| ApiError::bad_request("body must be a nic object"))?;
    let node = match obj.remove("node") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(ApiError::bad_request("node: must be a node name")),
    };
    let node_id = match obj.remove("node_id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| ApiError::bad_request("node_id: must be an integer"))?,
        ),
    };
    Ok((node, node_id, Value::Object(obj)))
}

/// `POST /nics {mac, node, ...}` → 201 `{"<mac>": "ok"}`.
#[utoipa::path(post, path = "/v1/nics", tag = "nics", operation_id = "create_nic", request_body = NicCreate, responses((status = 201, description = "created: {mac: \"ok\"}", body = MacCreated)))]
async fn create(
    State(st): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (node, node_id, nic) = split_owner(&body)?;
    let mut spec =
        NicSpec::from_json("nic", &nic).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let owner = match (node, node_id) {
        (Some(name), _) => db::node_by_name(&st.db, &name).await?,
        (None, Some(id)) => db::node_by_id(&st.db, id).await?,
        (None, None) => {
            return Err(ApiError::bad_request(format!(
                "nic {}: node: is required",
                spec.mac
            )));
        }
    };
    let siblings = db::nics_of_node(&st.db, owner.id).await?;
    if siblings.is_empty() {
        spec.primary = true;
    } else if spec.primary
        && let Some(p) = siblings.iter().find(|n| n.primary)
    {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            message: format!(
                "nic {}: primary: node {} already has primary nic {}",
                spec.mac, owner.name, p.mac
            ),
        });
    }
    db::save_nic(&st.db, None, owner.id, &spec).await?;
    Ok((StatusCode::CREATED, Json(json!({ spec.mac: tokens::OK }))))
}

/// `PATCH /nics/{uuid}` with a JSON-patch list → the updated nic.
#[utoipa::path(patch, path = "/v1/nics/{uuid}", tag = "nics", operation_id = "update_nic", params(("uuid" = String, Path)), request_body = Vec<Patch>, responses((status = 200, description = "the nic as updated", body = NicOut)))]
async fn update(
    State(st): State<AppState>,
    Path(uuid): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let ops = parse_patches(
        &body,
        &["name", "mac", "ip", "netmask", "extra", "primary", "node"],
    )?;
    let old = db::nic_by_uuid(&st.db, &uuid).await?;
    let owner = db::node_by_id(&st.db, old.node_id).await?;
    let mut doc = view::nic(&old, &owner.name, None);
    // Secrets in `extra` come back masked from the view; patch the stored form.
    doc["extra"] = Value::Object(xcat3_db::nodes::parse_map(&old.extra));
    apply_patches(&mut doc, &ops)?;
    let (node, _, nic) = split_owner(&doc)?;
    let spec = NicSpec::from_json("nic", &nic).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let new_owner = match node {
        Some(name) if name != owner.name => db::node_by_name(&st.db, &name).await?,
        _ => owner,
    };
    let saved = db::save_nic(&st.db, Some(old), new_owner.id, &spec).await?;
    Ok(Json(view::nic(&saved, &new_owner.name, None)))
}

#[utoipa::path(delete, path = "/v1/nics/{uuid}", tag = "nics", operation_id = "delete_nic", params(("uuid" = String, Path)), responses((status = 202, description = "deleted")))]
async fn remove(State(st): State<AppState>, Path(uuid): Path<String>) -> ApiResult<StatusCode> {
    db::delete_nic(&st.db, &uuid).await?;
    Ok(StatusCode::ACCEPTED)
}
