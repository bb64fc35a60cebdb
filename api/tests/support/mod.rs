//! What the in-process property tests share: one runtime and one app
//! state per test binary, on an in-memory SQLite with no conductor.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;
use xcat3_api::{AppState, app};
use xcat3_common::config::Config;
use xcat3_db::Db;

/// A two-worker runtime and an app state holding `nodes` (a v1
/// `{"nodes": [...]}` create body), created through the router.
pub fn runtime_with_nodes(nodes: serde_json::Value) -> (tokio::runtime::Runtime, AppState) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let st = rt.block_on(async {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        db.migrate().await.unwrap();
        let bus = xcat3_bus::connect("memory").await.unwrap();
        let st = AppState::new(db, Config::default(), bus);
        let req = Request::post("/v1/nodes")
            .header("content-type", "application/json")
            .body(Body::from(nodes.to_string()))
            .unwrap();
        let resp = app(st.clone()).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        st
    });
    (rt, st)
}
