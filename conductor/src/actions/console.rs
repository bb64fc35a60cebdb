//! `console-list` and `console --log`: what this conductor's console
//! server knows of the nodes it owns. No lock, no driver call: the state is
//! in memory and the log on this host's disk.

use std::sync::Arc;

use async_trait::async_trait;
use xcat3_common::console::Logging;
use xcat3_common::rpc::{NodeError, NodeResult};
use xcat3_db::nodes::parse_map;

use super::{ActionModule, Batch, Results};
use crate::runner::Runner;

/// Most log lines one request returns per node.
pub const MAX_LOG_LINES: u32 = 10_000;

pub enum Console {
    List,
    Log { lines: u32 },
}

#[async_trait]
impl ActionModule for Console {
    fn locks(&self) -> bool {
        false
    }

    fn needs_nics(&self) -> bool {
        false
    }

    async fn run(&self, runner: &Arc<Runner>, batch: Batch<'_>, out: &Results) {
        let server = runner.actors().consoles.as_ref();
        for rec in &batch.records {
            let name = rec.node.name.clone();
            let result = match server {
                None => NodeResult::Error(NodeError::unsupported(format!(
                    "conductor {}: consoles are disabled here ([console] listen is empty)",
                    runner.host
                ))),
                Some(server) => match self {
                    Console::List => {
                        let logging =
                            Logging::of(&parse_map(&rec.node.console_info)).unwrap_or(Logging::Off);
                        let state = server.state(&name, logging);
                        NodeResult::Ok(serde_json::to_string(&state).unwrap_or_default())
                    }
                    Console::Log { lines } => {
                        match server.log_tail(&name, (*lines).min(MAX_LOG_LINES) as usize) {
                            Ok(text) => NodeResult::Ok(String::from_utf8_lossy(&text).into_owned()),
                            Err(e) => NodeResult::Error(NodeError::internal(format!(
                                "reading the console log on conductor {}: {e}",
                                runner.host
                            ))),
                        }
                    }
                },
            };
            let _ = out.send((name, result, None));
        }
    }
}
