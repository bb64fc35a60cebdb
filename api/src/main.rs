//! `xcat3-api`: parse flags, load config, migrate if asked, serve.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use xcat3_api::AppState;
use xcat3_common::config::{Config, redact_url as redact};
use xcat3_db::Db;

#[derive(Parser)]
#[command(name = "xcat3-api", version, about = "xcat3 REST API service")]
struct Args {
    /// Configuration file (TOML; see etc/xcat3/xcat3.toml.sample).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Run everything on this machine: SQLite in --data-dir, in-process bus.
    #[arg(long)]
    standalone: bool,
    /// Where standalone mode keeps its database.
    #[arg(long, default_value = "/var/lib/xcat3")]
    data_dir: PathBuf,
    /// Address to listen on (overrides [api] listen).
    #[arg(long)]
    listen: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Database maintenance.
    Db {
        #[command(subcommand)]
        action: DbAction,
    },
    /// API tokens (for `[api] auth = "token"`).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Secrets at rest (`[secrets] key_file`).
    Secrets {
        #[command(subcommand)]
        action: SecretsAction,
    },
}

#[derive(Subcommand)]
enum SecretsAction {
    /// Write a new random key file (mode 0600; never overwrites one).
    NewKey { file: PathBuf },
    /// Re-encrypt every stored secret under the key in NEW_KEY_FILE (the
    /// configured key must open them). Stop the API and conductors first,
    /// then point `[secrets] key_file` at the new file.
    Rotate {
        #[arg(long)]
        new_key_file: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Make a token and print it (only this once; it is stored hashed).
    Create {
        /// Who or what holds it, e.g. `alice` or `prometheus` (unique).
        name: String,
        /// admin (everything), operator (read, power, boot device,
        /// deploy) or reader (read only).
        #[arg(long, default_value = "reader")]
        role: String,
        /// Days until it stops working; never by default.
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// List tokens (never their secrets).
    List,
    /// Delete a token: refused from the next request on.
    Revoke { name: String },
}

#[derive(Subcommand)]
enum DbAction {
    /// Apply pending migrations.
    Upgrade,
    /// List pending migrations.
    Status,
}

/// `xcat3-api token ...`: works on the database directly, so it needs
/// no running API and no token.
async fn token_command(db: &Db, action: TokenAction) -> anyhow::Result<()> {
    use xcat3_api::auth::{Role, new_token};
    use xcat3_db::tokens;
    match action {
        TokenAction::Create {
            name,
            role,
            expires_days,
        } => {
            let role = Role::parse(&role).with_context(|| {
                format!("--role: `{role}` is not one of {}", Role::ALL.join(", "))
            })?;
            if name.is_empty() || name.len() > 64 || name.chars().any(char::is_whitespace) {
                bail!("name: `{name}` must be 1-64 characters without spaces");
            }
            let expires =
                expires_days.map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d)));
            let (row, text) = new_token(&name, role, expires)?;
            tokens::insert(db, &row).await?;
            eprintln!("token {name:?} ({role}) created; it is shown only now:");
            println!("{text}");
        }
        TokenAction::List => {
            for t in tokens::list(db).await? {
                let expires = t
                    .expires_at
                    .map(|e| format!("expires {}", e.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_else(|| "never expires".into());
                println!(
                    "{}: {} (id {}, created {}, {expires})",
                    t.name,
                    t.role,
                    t.id,
                    t.created_at.format("%Y-%m-%d %H:%M UTC")
                );
            }
        }
        TokenAction::Revoke { name } => {
            if !tokens::revoke(db, &name).await? {
                bail!("no token is named {name:?}");
            }
            println!("token {name:?} revoked");
        }
    }
    Ok(())
}

/// Migrates the schema when `auto_migrate`, else refuses an old one.
async fn ensure_schema(db: &Db, auto_migrate: bool) -> anyhow::Result<()> {
    if auto_migrate {
        db.migrate().await.context("running migrations")?;
    } else if !db.pending_migrations().await?.is_empty() {
        bail!("the database schema is out of date; run `xcat3-api db upgrade`");
    }
    Ok(())
}

/// Deletes request history older than `days` now and every hour.
fn spawn_history_pruning(db: Db, days: u64) {
    if days == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let before = chrono::Utc::now() - chrono::Duration::days(days as i64);
            match xcat3_db::history::prune(&db, before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(requests = n, days, "old request history deleted"),
                Err(e) => tracing::warn!(error = %e, "pruning request history failed"),
            }
        }
    });
}

fn main() -> ExitCode {
    // Large blocks (argon2's 19 MiB, big request bodies) always from mmap
    // and back to the OS when freed: glibc's adaptive threshold would keep
    // each blocking thread's arena at its largest allocation (a burst of
    // token checks left hundreds of MB resident).
    // SAFETY: mallopt only adjusts allocator parameters, before any thread
    // is started.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
    let args = Args::parse();
    xcat3_common::process::service_main("xcat3-api", run(args))
}

/// Where standalone mode serves boot files unless `[boot] http_listen`
/// says otherwise.
const STANDALONE_BOOT_HTTP: &str = "0.0.0.0:3080";

async fn run(args: Args) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    if args.standalone {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
        let dir = args
            .data_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", args.data_dir.display()))?;
        config.database.url = format!("sqlite://{}?mode=rwc", dir.join("xcat3.db").display());
        config.database.auto_migrate = true;
        config.bus.url = "memory".into();
        // Boot and DHCP trees live in the data dir too, unless configured.
        let defaults = Config::default();
        let inside = |p: &str| dir.join(p).display().to_string();
        if config.boot.tftp_root == defaults.boot.tftp_root {
            config.boot.tftp_root = inside("tftpboot");
        }
        if config.boot.http_root == defaults.boot.http_root {
            config.boot.http_root = inside("httpboot");
        }
        if config.dhcp.dir == defaults.dhcp.dir {
            config.dhcp.dir = inside("dhcp");
        }
        if config.api.install_dir == defaults.api.install_dir {
            config.api.install_dir = inside("install");
        }
        if config.console.log_dir == defaults.console.log_dir {
            config.console.log_dir = inside("consoles");
        }
        if config.genimage.cache_dir == defaults.genimage.cache_dir {
            config.genimage.cache_dir = inside("genimage-cache");
        }
        // Standalone is one host: it serves boot files itself, so a deploy
        // works without setting anything (nodes' answer files are served
        // to their own reserved address only).
        if config.boot.http_listen.is_empty() {
            config.boot.http_listen = STANDALONE_BOOT_HTTP.to_string();
        }
        // Secrets are encrypted at rest with a key of the data dir's own.
        if config.secrets.key_file.is_empty() {
            let key = dir.join("secrets.key");
            if !key.exists() {
                xcat3_db::secrets::Cipher::create_file(&key)?;
            }
            config.secrets.key_file = key.display().to_string();
        }
    }
    if let Some(listen) = args.listen {
        config.api.listen = listen;
    }
    for p in &config.api.trusted_proxies {
        p.parse::<std::net::IpAddr>()
            .map_err(|_| anyhow::anyhow!("[api] trusted_proxies: `{p}` is not an IP address"))?;
    }
    if let Some(Command::Secrets {
        action: SecretsAction::NewKey { file },
    }) = &args.command
    {
        xcat3_db::secrets::Cipher::create_file(file)?;
        println!(
            "wrote {} (keep it safe: it opens every stored secret)",
            file.display()
        );
        return Ok(());
    }
    let cipher = xcat3_db::secrets::from_config(&config.secrets.key_file)?;
    if cipher.is_none() {
        tracing::warn!("[secrets] key_file is not set: secrets are stored unencrypted");
    }
    let db = Db::connect(&config.database.url)
        .await
        .with_context(|| {
            format!(
                "connecting to the database ({})",
                redact(&config.database.url)
            )
        })?
        .with_cipher(cipher);

    if let Some(Command::Db { action }) = args.command {
        return match action {
            DbAction::Upgrade => {
                db.migrate().await.context("running migrations")?;
                println!("database is up to date");
                Ok(())
            }
            DbAction::Status => {
                let pending = db.pending_migrations().await?;
                if pending.is_empty() {
                    println!("database is up to date");
                } else {
                    for m in pending {
                        println!("pending: {m}");
                    }
                }
                Ok(())
            }
        };
    }

    ensure_schema(&db, config.database.auto_migrate).await?;
    if let Some(Command::Token { action }) = args.command {
        return token_command(&db, action).await;
    }
    if let Some(Command::Secrets {
        action: SecretsAction::Rotate { new_key_file },
    }) = &args.command
    {
        let new = xcat3_db::secrets::Cipher::from_file(new_key_file)?;
        let done = xcat3_db::secrets::seal_stored(&db, Some(&new)).await?;
        println!(
            "re-encrypted the secrets of {} node(s) and {} group(s) under {}; now set [secrets] key_file = {:?} everywhere and start the services",
            done.nodes,
            done.groups,
            new_key_file.display(),
            new_key_file.display().to_string()
        );
        return Ok(());
    }
    // A wrong key is an error here, not a failure of each later request;
    // secrets written before the key was set are encrypted now.
    let sealed = xcat3_db::secrets::seal_stored(&db, None)
        .await
        .context("opening the stored secrets with [secrets] key_file")?;
    if sealed.nodes + sealed.groups > 0 {
        tracing::info!(
            nodes = sealed.nodes,
            groups = sealed.groups,
            "encrypted secrets stored in clear"
        );
    }
    let addr: SocketAddr =
        config.api.listen.parse().with_context(|| {
            format!("[api] listen = {:?} is not ADDRESS:PORT", config.api.listen)
        })?;
    match config.api.auth.as_str() {
        "none" if !addr.ip().is_loopback() => {
            bail!("[api] auth = \"none\" is allowed only on a loopback address, not {addr}")
        }
        "none" => {}
        "token" => {
            if xcat3_db::tokens::list(&db).await?.is_empty() {
                tracing::warn!(
                    "[api] auth = \"token\" and no token exists: every request will be refused; \
                     make one with `xcat3-api token create NAME --role admin`"
                );
            }
        }
        other => bail!("[api] auth = {other:?} is not one of \"none\" (loopback only), \"token\""),
    }
    spawn_history_pruning(db.clone(), config.api.history_days);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    let bus = xcat3_bus::connect(&config.bus.url)
        .await
        .context("connecting to the bus")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // With the in-process bus the conductor lives here too: same code,
    // only the bus differs (ARCHITECTURE.md, standalone mode). It fetches images
    // from, and its nodes call back to, this API.
    if config.bus.url == "memory" && config.boot.api_url.is_empty() {
        let host = match local.ip() {
            ip if ip.is_unspecified() && !config.boot.server_address.is_empty() => {
                config.boot.server_address.clone()
            }
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            ip => ip.to_string(),
        };
        config.boot.api_url = format!("http://{host}:{}", local.port());
    }
    // Standalone: serve once the in-process conductor has registered and
    // consumes its queue, so the first request finds it alive (and
    // `listening on` means ready). It says so itself; nothing polls.
    let conductor = if config.bus.url == "memory" {
        let (cfg, db, bus, rx) = (config.clone(), db.clone(), bus.clone(), stop_rx.clone());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            xcat3_conductor::service::run_until(cfg, db, bus, rx, Some(ready_tx)).await
        });
        if ready_rx.await.is_err() {
            // The conductor failed before registering: its error is the
            // reason to stop.
            task.await.context("in-process conductor")??;
            bail!("the in-process conductor stopped before it was ready");
        }
        Some(task)
    } else {
        None
    };
    tracing::info!(%local, db = %redact(&config.database.url), standalone = args.standalone, "xcat3-api listening");
    // Tests start us on port 0 and read the real address from this line.
    println!("listening on http://{local}");
    // Uploads and unpack directories of imports this host's earlier
    // process was killed in the middle of (untouched for 6 hours).
    let install_dir = std::path::PathBuf::from(&config.api.install_dir);
    tokio::task::spawn_blocking(move || {
        xcat3_api::copycds::sweep_leftovers(&install_dir, std::time::Duration::from_secs(6 * 3600))
    });
    let state = AppState::new(db, config, bus);
    let mut api_stop = stop_rx.clone();
    tokio::spawn(async move {
        xcat3_common::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    xcat3_api::serve(listener, state, async move {
        let _ = api_stop.changed().await;
    })
    .await?;
    if let Some(c) = conductor {
        c.await.context("in-process conductor")??;
    }
    tracing::info!("xcat3-api stopped");
    Ok(())
}
