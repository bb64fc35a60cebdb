//! `xcat3-sim`: a fleet of simulated BMCs for tests, demos and benchmarks
//! (the cluster-simulator idea: impersonate thousands of machines so the
//! manager can be developed and measured without hardware).
//!
//! `xcat3-sim ipmi --count 10000 --first-ip 127.1.0.1 --password PASS
//! --export-nodes nodes.json` serves 10,000 IPMI v2.0 lanplus BMCs, one per
//! loopback address, and writes the xcat3 import file for them.

mod bmc;
mod board;
mod fleet;
mod redfish;
mod serial;
mod ssh;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::bmc::Credentials;
use crate::fleet::FleetConfig;

#[derive(Parser)]
#[command(
    name = "xcat3-sim",
    version,
    about = "Simulated BMC fleets on loopback"
)]
struct Args {
    #[command(subcommand)]
    kind: Kind,
}

#[derive(Subcommand)]
enum Kind {
    /// IPMI v2.0 lanplus BMCs (RMCP+, cipher suites 1, 2, 3, 17).
    Ipmi(IpmiArgs),
    /// Redfish BMCs over HTTP (one ComputerSystem each).
    Redfish(RedfishArgs),
    /// Nodes' SSH servers (for `xcat3 exec` and `copy`): a few commands
    /// with deterministic output, `scp -t`, latency and hangs to order.
    Ssh(SshArgs),
}

#[derive(clap::Args)]
struct SshArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// Address of the first node; the others follow it (127.0.0.0/8 only).
    #[arg(long, default_value = "127.4.0.1")]
    first_ip: Ipv4Addr,
    /// TCP port every node listens on.
    #[arg(long, default_value_t = 2222)]
    port: u16,
    /// The user that may log in.
    #[arg(long, default_value = "root")]
    user: String,
    /// A file of OpenSSH public keys that may log in (`xcat3 ssh-key`).
    #[arg(long)]
    authorized_keys: Option<PathBuf>,
    /// A password that may log in too (also from XCAT3_SIM_PASSWORD).
    #[arg(long, env = "XCAT3_SIM_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// The host key (an OpenSSH private key file); else one derived from
    /// --seed, the same every run.
    #[arg(long)]
    host_key: Option<PathBuf>,
    /// Delay before every command's answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share (0-1) of nodes whose commands never end.
    #[arg(long, default_value_t = 0.0)]
    hang_rate: f64,
    /// Seed choosing the hanging nodes (and the derived host key).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write an xcat3 import file for the fleet (sim00001 ..., mgt=fake,
    /// control_info.os_address/os_ssh_port/os_ssh_host_keys) and go on.
    #[arg(long)]
    export_nodes: Option<PathBuf>,
}

#[derive(clap::Args)]
struct RedfishArgs {
    /// Number of BMCs.
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// Address of the first BMC; the others follow it (127.0.0.0/8 only).
    #[arg(long, default_value = "127.3.0.1")]
    first_ip: Ipv4Addr,
    /// TCP port every BMC listens on.
    #[arg(long, default_value_t = 8000)]
    port: u16,
    #[arg(long, default_value = "admin")]
    user: String,
    /// The BMC password (also read from XCAT3_SIM_PASSWORD).
    #[arg(long, env = "XCAT3_SIM_PASSWORD", hide_env_values = true)]
    password: String,
    /// Delay before every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Write an xcat3 import file for the fleet (sim00001 ...) and go on.
    #[arg(long)]
    export_nodes: Option<PathBuf>,
    /// Keep a JSON file of every BMC's state, rewritten every 200 ms.
    #[arg(long)]
    state_file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct IpmiArgs {
    /// Number of BMCs.
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// Address of the first BMC; the others follow it (127.0.0.0/8 only).
    #[arg(long, default_value = "127.1.0.1")]
    first_ip: Ipv4Addr,
    /// UDP port every BMC listens on.
    #[arg(long, default_value_t = 623)]
    port: u16,
    #[arg(long, default_value = "admin")]
    user: String,
    /// The BMC password (also read from XCAT3_SIM_PASSWORD).
    #[arg(long, env = "XCAT3_SIM_PASSWORD", hide_env_values = true)]
    password: String,
    /// Delay before every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share (0-1) of chassis commands answered with an error.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Share (0-1) of datagrams dropped, each way.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Share (0-1) of BMCs that never answer.
    #[arg(long, default_value_t = 0.0)]
    unreachable_rate: f64,
    /// Share (0-1) of BMCs whose CPU1 runs above its critical
    /// temperature, with the event in their SEL.
    #[arg(long, default_value_t = 0.0)]
    hot_rate: f64,
    /// Seed choosing the unreachable and hot BMCs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// While on, each node prints a numbered console line this often (in
    /// milliseconds; 0: only its boot log and echo).
    #[arg(long, default_value_t = 0)]
    sol_line_ms: u64,
    /// Write an xcat3 import file for the fleet (sim00001 ...) and go on.
    #[arg(long)]
    export_nodes: Option<PathBuf>,
    /// Keep a JSON file of every BMC's chassis state and counters,
    /// rewritten every 200 ms.
    #[arg(long)]
    state_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    xcat3_common::process::service_main("xcat3-sim", run(args))
}

fn rate(name: &str, v: f64) -> anyhow::Result<f64> {
    if !(0.0..=1.0).contains(&v) {
        bail!("--{name}: {v} is not between 0 and 1");
    }
    Ok(v)
}

async fn run(args: Args) -> anyhow::Result<()> {
    match args.kind {
        Kind::Ipmi(a) => run_ipmi(a).await,
        Kind::Redfish(a) => run_redfish(a).await,
        Kind::Ssh(a) => run_ssh(a).await,
    }
}

async fn run_ssh(a: SshArgs) -> anyhow::Result<()> {
    // A listener per node, and the sessions open at once.
    raise_fd_limit(u64::from(a.count) + 4096)?;
    let authorized = match &a.authorized_keys {
        Some(p) => ssh::read_authorized(p)?,
        None => Vec::new(),
    };
    if authorized.is_empty() && a.password.is_none() {
        bail!("give --authorized-keys or --password: nobody could log in");
    }
    let host_key = ssh::host_key(a.host_key.as_deref(), a.seed)?;
    let host_public = host_key
        .public_key()
        .to_openssh()
        .context("encoding the host key")?;
    if let Some(path) = &a.export_nodes {
        fleet::export_nodes(path, a.count, "fake", |i| {
            Ok(serde_json::json!({
                "os_address": fleet::nth_loopback(a.first_ip, i)?.to_string(),
                "os_ssh_port": a.port,
                "os_ssh_host_keys": host_public,
            }))
        })?;
    }
    let nodes = ssh::start(ssh::SshConfig {
        count: a.count,
        first_ip: a.first_ip,
        port: a.port,
        user: a.user,
        password: a.password,
        authorized,
        host_key,
        latency: Duration::from_millis(a.latency_ms),
        hang_rate: rate("hang-rate", a.hang_rate)?,
        seed: a.seed,
    })
    .await?;
    let hanging = nodes.iter().filter(|n| n.hangs).count();
    let last = fleet::nth_loopback(a.first_ip, a.count.saturating_sub(1))?;
    println!(
        "xcat3-sim: {} SSH nodes on {}-{last} port {} ({hanging} hang)",
        a.count, a.first_ip, a.port
    );
    xcat3_common::shutdown_signal().await;
    Ok(())
}

async fn run_redfish(a: RedfishArgs) -> anyhow::Result<()> {
    raise_fd_limit(u64::from(a.count) * 4 + 256)?;
    if let Some(path) = &a.export_nodes {
        fleet::export_nodes(path, a.count, "redfish", |i| {
            let ip = fleet::nth_loopback(a.first_ip, i)?;
            Ok(serde_json::json!({
                "bmc_address": format!("http://{ip}:{}", a.port),
                "bmc_username": a.user,
                "bmc_password": a.password,
            }))
        })?;
    }
    let members = redfish::start(
        a.count,
        a.first_ip,
        a.port,
        &a.user,
        &a.password,
        Duration::from_millis(a.latency_ms),
    )
    .await?;
    let last = fleet::nth_loopback(a.first_ip, a.count.saturating_sub(1))?;
    println!(
        "xcat3-sim: {} Redfish BMCs on http://{}-{last}:{}",
        a.count, a.first_ip, a.port
    );
    serve_until_stopped(a.state_file.as_deref(), |p| {
        redfish::write_state(&members, p)
    })
    .await
}

/// Rewrites the state file (if any) every 200 ms and once more at the end,
/// until SIGTERM or Ctrl-C.
async fn serve_until_stopped(
    state: Option<&std::path::Path>,
    write: impl Fn(&std::path::Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let Some(path) = state else {
        xcat3_common::shutdown_signal().await;
        return Ok(());
    };
    let dump = async {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            write(path)?;
        }
    };
    tokio::select! {
        r = dump => r,
        _ = xcat3_common::shutdown_signal() => write(path),
    }
}

async fn run_ipmi(a: IpmiArgs) -> anyhow::Result<()> {
    if a.user.len() > 16 || a.password.len() > 20 {
        bail!("IPMI v2.0 allows user names of 16 bytes and passwords of 20 at most");
    }
    let cfg = FleetConfig {
        count: a.count,
        first_ip: a.first_ip,
        port: a.port,
        creds: Credentials {
            user: a.user.into_bytes(),
            password: a.password.into_bytes(),
        },
        latency: Duration::from_millis(a.latency_ms),
        fail_rate: rate("fail-rate", a.fail_rate)?,
        drop_rate: rate("drop-rate", a.drop_rate)?,
        unreachable_rate: rate("unreachable-rate", a.unreachable_rate)?,
        hot_rate: rate("hot-rate", a.hot_rate)?,
        seed: a.seed,
        sol_line: (a.sol_line_ms > 0).then(|| Duration::from_millis(a.sol_line_ms)),
    };
    let last = cfg.address(cfg.count.saturating_sub(1))?;
    raise_fd_limit(u64::from(cfg.count) + 256)?;
    if let Some(path) = &a.export_nodes {
        fleet::export_ipmi_nodes(&cfg, path)?;
    }
    let members = fleet::start(&cfg).await?;
    let down = members.iter().filter(|m| m.bmc.is_none()).count();
    println!(
        "xcat3-sim: {} IPMI BMCs on {}-{last} port {} ({down} unreachable)",
        cfg.count, cfg.first_ip, cfg.port
    );
    serve_until_stopped(a.state_file.as_deref(), |p| fleet::write_state(&members, p)).await
}

/// One socket per BMC: raise the soft open-files limit to what is needed
/// (up to the hard limit).
fn raise_fd_limit(need: u64) -> anyhow::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error()).context("getrlimit");
        }
        if lim.rlim_cur >= need {
            return Ok(());
        }
        if lim.rlim_max < need {
            bail!(
                "{need} open files are needed but the hard limit is {}; lower --count or raise `ulimit -Hn`",
                lim.rlim_max
            );
        }
        lim.rlim_cur = need;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            return Err(std::io::Error::last_os_error()).context("setrlimit");
        }
    }
    Ok(())
}
