//! What every xcat3 service binary does around its `run`: logs to stderr
//! (`RUST_LOG`, colours only on a terminal), a multi-threaded runtime, and
//! `name: error: cause: cause` on failure.

use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;

/// Default log filter: our info, the database and AMQP crates' warnings.
const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,lapin=warn";

/// Sets up logging, runs `main` to completion, maps its result to an exit code.
pub fn service_main<F>(name: &str, main: F) -> ExitCode
where
    F: Future<Output = anyhow::Result<()>>,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| DEFAULT_FILTER.into());
    // XCAT3_LOG_FORMAT=json: one JSON object per line, with the span
    // fields (request_id, ...) of every event, for log collectors.
    if std::env::var("XCAT3_LOG_FORMAT").is_ok_and(|f| f == "json") {
        tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init();
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(main) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
