//! `xcat3-conductor --config FILE [--host NAME]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use xcat3_common::config::Config;
use xcat3_db::Db;

#[derive(Parser)]
#[command(
    name = "xcat3-conductor",
    version,
    about = "xcat3 conductor: acts on the nodes it owns"
)]
struct Args {
    /// Configuration file (TOML; see etc/xcat3/xcat3.toml.sample).
    #[arg(long)]
    config: Option<PathBuf>,
    /// This conductor's name in the ring (overrides [conductor] host).
    #[arg(long)]
    host: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    xcat3_common::process::service_main("xcat3-conductor", run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(h) = args.host {
        config.conductor.host = h;
    }
    if config.bus.url == "memory" {
        anyhow::bail!(
            "[bus] url = \"memory\" only works inside `xcat3-api --standalone`; give an amqp:// URL"
        );
    }
    let cipher = xcat3_db::secrets::from_config(&config.secrets.key_file)?;
    let db = Db::connect(&config.database.url)
        .await
        .context("connecting to the database")?
        .with_cipher(cipher);
    if config.database.auto_migrate {
        db.migrate().await.context("running migrations")?;
    }
    xcat3_db::secrets::verify(&db)
        .await
        .context("opening the stored secrets with [secrets] key_file")?;
    let bus = xcat3_bus::connect(&config.bus.url)
        .await
        .context("connecting to the bus")?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        xcat3_common::shutdown_signal().await;
        let _ = tx.send(true);
    });
    xcat3_conductor::service::run(config, db, bus, rx).await
}
