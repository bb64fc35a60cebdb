//! The conductor service: register, clear own stale locks, consume this
//! host's queue, run requests, heartbeat, sweep dead conductors' locks, and
//! on shutdown stop consuming, drain, release and deregister.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use xcat3_bus::Bus;
use xcat3_common::config::{ConductorConfig, Config};
use xcat3_db::{Db, locks, services};

use crate::actions::PowerGate;
use crate::boot;
use crate::console::ConsoleServer;
use crate::drivers::Drivers;
use crate::membership::Membership;
use crate::provision::Provisioner;
use crate::runner::{Actors, Runner};

/// How long shutdown waits for in-flight requests before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The URL the API reaches our console endpoint at: `[console] advertise`,
/// else the bound address with a wildcard replaced by our host name.
fn console_url(
    config: &xcat3_common::config::ConsoleConfig,
    bound: std::net::SocketAddr,
    host: &str,
) -> String {
    if !config.advertise.is_empty() {
        return format!("ws://{}", config.advertise);
    }
    if bound.ip().is_unspecified() {
        return format!("ws://{host}:{}", bound.port());
    }
    format!("ws://{bound}")
}

/// This conductor's name: `[conductor] host`, else the machine's hostname.
pub fn host_name(config: &ConductorConfig) -> String {
    if !config.host.is_empty() {
        return config.host.clone();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Runs the conductor until `shutdown` flips to true.
pub async fn run(
    config: Config,
    db: Db,
    bus: Arc<dyn Bus>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    run_until(config, db, bus, shutdown, None).await
}

/// [`run`], telling `ready` once the conductor is registered and consumes
/// its queue (standalone mode serves only then; the sender is dropped
/// unsent when the conductor fails to start).
pub async fn run_until(
    config: Config,
    db: Db,
    bus: Arc<dyn Bus>,
    mut shutdown: watch::Receiver<bool>,
    ready: Option<oneshot::Sender<()>>,
) -> anyhow::Result<()> {
    let mut config = config;
    // The boot HTTP listener is bound first: with port 0 the port it got
    // is the one boot files and iPXE scripts name.
    let http = match config.boot.http_listen.as_str() {
        "" => None,
        listen => {
            let addr: std::net::SocketAddr = listen
                .parse()
                .with_context(|| format!("[boot] http_listen: `{listen}` is not ADDRESS:PORT"))?;
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("[boot] http_listen: binding {addr}"))?;
            config.boot.http_listen = l.local_addr()?.to_string();
            Some(l)
        }
    };
    let drivers = Drivers::builtin(&config);
    // The console endpoint is bound before registering: the API finds it
    // (and its token) in our services row.
    let console_listener = match config.console.listen.as_str() {
        "" => None,
        listen => {
            let addr: std::net::SocketAddr = listen
                .parse()
                .with_context(|| format!("[console] listen: `{listen}` is not ADDRESS:PORT"))?;
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("[console] listen: binding {addr}"))?;
            Some(l)
        }
    };
    let console_config = config.console.clone();
    let power_gate = PowerGate::new(&config.power);
    let provisioner = Arc::new(
        Provisioner::new(
            db.clone(),
            &host_name(&config.conductor),
            &config.dhcp,
            &config.boot,
        )
        .context("preparing DHCP and boot files")?,
    );
    let mut servers = JoinSet::new();
    if !config.boot.tftp_listen.is_empty() {
        let listen = &config.boot.tftp_listen;
        let addr: std::net::SocketAddr = listen
            .parse()
            .with_context(|| format!("[boot] tftp_listen: `{listen}` is not ADDRESS:PORT"))?;
        let files = provisioner.files().clone();
        servers.spawn(async move {
            if let Err(e) = boot::serve_tftp(addr, files).await {
                tracing::error!(error = %format!("{e:#}"), %addr, "tftp boot server stopped");
            }
        });
    }
    if let Some(listener) = http {
        let files = provisioner.files().clone();
        let fetched = boot::FetchedImages::record_into(db.clone());
        servers.spawn(async move {
            if let Err(e) = boot::serve_http(listener, files, fetched).await {
                tracing::error!(error = %format!("{e:#}"), "http boot server stopped");
            }
        });
    }
    if let Err(e) = provisioner.sync_subnets().await {
        tracing::error!(error = %e, "DHCP server not brought up to date at start");
    }
    let power = config.power.clone();
    let config = config.conductor;
    let host = host_name(&config);
    let cleared = locks::release_all(&db, &host)
        .await
        .context("clearing this host's stale locks")?;
    if cleared > 0 {
        tracing::warn!(
            host,
            cleared,
            "released locks left by an earlier run of this conductor"
        );
    }
    let console_endpoint = match &console_listener {
        Some(l) => Some(services::ConsoleEndpoint {
            url: console_url(&console_config, l.local_addr()?, &host),
            token: xcat3_common::random_hex(32),
        }),
        None => None,
    };
    services::register(&db, &host, config.workers as i32, console_endpoint.as_ref())
        .await
        .context("registering in services")?;
    let membership = Arc::new(Membership::new(
        db.clone(),
        config.heartbeat_timeout,
        host.clone(),
    ));
    let consoles = console_endpoint.as_ref().map(|_| {
        ConsoleServer::new(
            host.clone(),
            db.clone(),
            membership.clone(),
            drivers.clone(),
            console_config.clone(),
        )
    });
    let (console_stop, console_stopped) = watch::channel(false);
    if let (Some(l), Some(ep), Some(server)) = (console_listener, &console_endpoint, &consoles) {
        tracing::info!(url = %ep.url, "console endpoint listening");
        let (server, token) = (server.clone(), ep.token.clone());
        let mut stopped = console_stopped.clone();
        servers.spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = crate::console::serve(l, server, token, shutdown).await {
                tracing::error!(error = %e, "console endpoint stopped");
            }
        });
    }
    let runner = Arc::new(Runner::new(
        host.clone(),
        db.clone(),
        membership.clone(),
        Actors {
            drivers,
            power_gate,
            provisioner,
            consoles: consoles.clone(),
        },
        config.workers,
        Duration::from_secs(config.call_timeout),
    ));
    let mut deliveries = bus
        .consume(&host, config.prefetch)
        .await
        .with_context(|| format!("consuming the queue of {host}"))?;
    tracing::info!(host, workers = config.workers, "conductor started");
    if let Some(ready) = ready {
        let _ = ready.send(());
    }

    let mut periodic = JoinSet::new();
    periodic.spawn(heartbeat_loop(
        db.clone(),
        host.clone(),
        runner.clone(),
        config.heartbeat_interval,
    ));
    periodic.spawn(crate::power_sync::run(
        runner.clone(),
        Duration::from_secs(power.sync_interval),
        power.sync_workers,
    ));
    let console_run = consoles
        .clone()
        .map(|c| tokio::spawn(c.run(console_stopped.clone())));
    periodic.spawn(crate::expiry::run(
        runner.clone(),
        Duration::from_secs(config.expiry_interval.max(1)),
    ));
    periodic.spawn(sweep_loop(
        db.clone(),
        host.clone(),
        config.heartbeat_timeout,
    ));

    let mut requests = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            d = deliveries.recv() => match d {
                Some(d) => {
                    let runner = runner.clone();
                    requests.spawn(async move {
                        runner.run(d.request, d.responder.as_ref()).await;
                        if let Err(e) = d.responder.ack().await {
                            tracing::warn!(error = %e, "ack failed");
                        }
                    });
                }
                None => {
                    tracing::error!("the bus closed this conductor's queue");
                    break;
                }
            },
            Some(_) = requests.join_next(), if !requests.is_empty() => {}
        }
    }

    tracing::info!(
        host,
        in_flight = requests.len(),
        "stopping: no new requests; draining"
    );
    let _ = bus.stop_consuming(&host).await;
    drop(deliveries);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while requests.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("drain timed out; abandoning the rest (their callers time out)");
        requests.abort_all();
    }
    periodic.abort_all();
    // Consoles let go of their BMCs (SOL deactivated, sessions closed).
    let _ = console_stop.send(true);
    if let Some(run) = console_run {
        let _ = run.await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    servers.abort_all();
    locks::release_all(&db, &host).await.ok();
    services::deregister(&db, &host).await.ok();
    tracing::info!(host, "conductor stopped");
    Ok(())
}

async fn heartbeat_loop(db: Db, host: String, runner: Arc<Runner>, interval_s: u64) {
    let mut tick = tokio::time::interval(Duration::from_secs(interval_s.max(1)));
    // One deploy sweep at a time; heartbeats never wait for one.
    let sweeping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    loop {
        tick.tick().await;
        if let Err(e) = services::heartbeat(&db, &host, runner.in_flight() as i64).await {
            tracing::error!(error = %e, "heartbeat failed");
            xcat3_common::metrics::db_error("heartbeat");
            continue;
        }
        // Deploy timeouts, takeover and local boot after installs, right
        // after our heartbeat: the ring it reads (and caches) then counts
        // us alive, also after a pause longer than the liveness timeout.
        if !sweeping.swap(true, std::sync::atomic::Ordering::AcqRel) {
            let (runner, sweeping) = (runner.clone(), sweeping.clone());
            tokio::spawn(async move {
                runner.sweep_deploys().await;
                sweeping.store(false, std::sync::atomic::Ordering::Release);
            });
        }
    }
}

/// Releases locks of dead conductors. What they left mid-way is not failed:
/// their deploying nodes are taken over by the new ring owner's deploy
/// sweep (`Runner::sweep_deploys`), the deploy timeout being the backstop.
/// Every live conductor runs it; the statement is idempotent.
async fn sweep_loop(db: Db, host: String, timeout_s: u64) {
    let mut tick = tokio::time::interval(Duration::from_secs((timeout_s / 3).max(1)));
    loop {
        tick.tick().await;
        let live = match services::live_conductors(&db, timeout_s).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "reading live conductors failed");
                continue;
            }
        };
        if !live.contains(&host) {
            // We are not (yet, or no longer) counted alive: sweeping now
            // could free our own locks.
            continue;
        }
        match locks::release_dead(&db, &live).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(released = n, "released locks held by dead conductors"),
            Err(e) => tracing::error!(error = %e, "releasing dead conductors' locks failed"),
        }
    }
}
