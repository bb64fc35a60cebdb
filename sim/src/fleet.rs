//! The IPMI fleet: N BMCs, each on its own loopback address and UDP socket,
//! with injected latency, packet loss and unreachable members.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::net::UdpSocket;

use crate::bmc::{Bmc, Credentials, Identity};

/// How the fleet behaves (from the command line).
#[derive(Debug, Clone)]
pub struct FleetConfig {
    pub count: u32,
    pub first_ip: Ipv4Addr,
    pub port: u16,
    pub creds: Credentials,
    /// Delay before each answer.
    pub latency: Duration,
    /// Share of commands answered with an error completion code.
    pub fail_rate: f64,
    /// Share of datagrams (either way) silently dropped.
    pub drop_rate: f64,
    /// Share of BMCs that never answer (chosen by index, reproducibly).
    pub unreachable_rate: f64,
    /// Share of BMCs whose CPU1 runs above its critical temperature and
    /// logged it (chosen by index, reproducibly).
    pub hot_rate: f64,
    pub seed: u64,
    /// While on, each node prints a numbered console line this often.
    pub sol_line: Option<Duration>,
}

impl FleetConfig {
    /// The address of BMC `i` (0-based).
    pub fn address(&self, i: u32) -> anyhow::Result<Ipv4Addr> {
        nth_loopback(self.first_ip, i)
    }

    /// Whether BMC `i` is one of the unreachable ones. A hash of the seed
    /// and index, so the same flags give the same members every run.
    pub fn unreachable(&self, i: u32) -> bool {
        if self.unreachable_rate <= 0.0 {
            return false;
        }
        let mut rng = fastrand::Rng::with_seed(self.seed ^ (u64::from(i) << 20 | 0x5151));
        rng.f64() < self.unreachable_rate
    }

    /// Whether BMC `i` is one of the overheating ones (as [`unreachable`](Self::unreachable)).
    pub fn hot(&self, i: u32) -> bool {
        if self.hot_rate <= 0.0 {
            return false;
        }
        // splitmix64's finalizer: nearby seeds give unrelated draws.
        let mut z = self.seed ^ (u64::from(i) << 32 | 0x4040).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 11) as f64 / (1u64 << 53) as f64) < self.hot_rate
    }
}

/// The `i`-th address after `first` (0-based), which must stay on loopback.
pub fn nth_loopback(first: Ipv4Addr, i: u32) -> anyhow::Result<Ipv4Addr> {
    let a = u32::from(first)
        .checked_add(i)
        .context("address range overflows")?;
    let ip = Ipv4Addr::from(a);
    if !ip.is_loopback() {
        bail!("{ip} is not a loopback address; the simulator stays on 127.0.0.0/8");
    }
    Ok(ip)
}

/// One member: its address and the BMC behind it (None: unreachable).
pub struct Member {
    pub addr: SocketAddr,
    pub bmc: Option<Arc<Mutex<Bmc>>>,
}

/// Binds every reachable member's socket and starts serving it.
pub async fn start(cfg: &FleetConfig) -> anyhow::Result<Vec<Member>> {
    let mut members = Vec::with_capacity(cfg.count as usize);
    for i in 0..cfg.count {
        let addr = SocketAddr::new(cfg.address(i)?.into(), cfg.port);
        if cfg.unreachable(i) {
            members.push(Member { addr, bmc: None });
            continue;
        }
        let sock = UdpSocket::bind(addr)
            .await
            .with_context(|| format!("binding {addr} (port < 1024 needs root; try --port)"))?;
        let bmc = Arc::new(Mutex::new(Bmc::new(
            cfg.creds.clone(),
            cfg.fail_rate,
            Identity {
                index: i,
                name: node_name(i, cfg.count),
                port: cfg.port,
                hot: cfg.hot(i),
                sol_line: cfg.sol_line,
            },
        )));
        tokio::spawn(serve(
            Arc::new(sock),
            bmc.clone(),
            cfg.latency,
            cfg.drop_rate,
        ));
        members.push(Member {
            addr,
            bmc: Some(bmc),
        });
    }
    Ok(members)
}

/// The name the import file gives BMC `i` (0-based) of `count`.
pub fn node_name(i: u32, count: u32) -> String {
    let width = count.to_string().len().max(5);
    format!("sim{:0width$}", i + 1)
}

async fn serve(sock: Arc<UdpSocket>, bmc: Arc<Mutex<Bmc>>, latency: Duration, drop_rate: f64) {
    let mut buf = vec![0u8; 1500];
    loop {
        // Console output is the one thing a BMC sends unasked: wake for it.
        let wake = match bmc.lock() {
            Ok(b) => b.next_wakeup(),
            Err(_) => return,
        };
        let received = match wake {
            None => Some(sock.recv_from(&mut buf).await),
            Some(at) => tokio::select! {
                r = sock.recv_from(&mut buf) => Some(r),
                _ = tokio::time::sleep_until(at.into()) => None,
            },
        };
        let Some(received) = received else {
            let out = match bmc.lock() {
                Ok(mut b) => b.poll(Instant::now()),
                Err(_) => return,
            };
            if let Some((peer, d)) = out
                && !(drop_rate > 0.0 && fastrand::f64() < drop_rate)
            {
                let _ = sock.send_to(&d, peer).await;
            }
            continue;
        };
        let Ok((n, peer)) = received else {
            continue;
        };
        if drop_rate > 0.0 && fastrand::f64() < drop_rate {
            continue;
        }
        let (reply, output) = match bmc.lock() {
            Ok(mut b) => {
                let now = Instant::now();
                (b.handle(peer, &buf[..n], now), b.poll(now))
            }
            Err(_) => return,
        };
        if let Some((to, d)) = output {
            let _ = sock.send_to(&d, to).await;
        }
        let Some(reply) = reply else { continue };
        if drop_rate > 0.0 && fastrand::f64() < drop_rate {
            continue;
        }
        if latency.is_zero() {
            let _ = sock.send_to(&reply, peer).await;
        } else {
            let sock = sock.clone();
            tokio::spawn(async move {
                tokio::time::sleep(latency).await;
                let _ = sock.send_to(&reply, peer).await;
            });
        }
    }
}

/// Writes `{"ADDR": {"reachable", "chassis", "stats"}}` for every member.
pub fn write_state(members: &[Member], path: &Path) -> anyhow::Result<()> {
    let mut all = serde_json::Map::new();
    for m in members {
        let v = match &m.bmc {
            None => json!({"reachable": false}),
            Some(b) => {
                let snap = b
                    .lock()
                    .map_err(|_| anyhow::anyhow!("BMC state poisoned"))?
                    .snapshot();
                json!({"reachable": true, "chassis": snap.chassis, "stats": snap.stats, "sol": snap.sol})
            }
        };
        all.insert(m.addr.ip().to_string(), v);
    }
    write_json(path, &Value::Object(all))
}

/// Writes `value` to `path` through a temporary file and a rename, so a
/// reader never sees half of it.
pub fn write_json(path: &Path, value: &Value) -> anyhow::Result<()> {
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    std::fs::write(&tmp, value.to_string())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// An xcat3 import file for a fleet of `count` BMCs: `sim00001`… with
/// `mgt`, the `control_info` `control(i)` gives for BMC `i` (0-based), and a
/// unique MAC and IP per node (locally administered MACs, addresses from
/// 198.18.0.0/15, the benchmarking range of RFC 2544).
pub fn export_nodes(
    path: &Path,
    count: u32,
    mgt: &str,
    control: impl Fn(u32) -> anyhow::Result<Value>,
) -> anyhow::Result<()> {
    let mut nodes = Vec::with_capacity(count as usize);
    for i in 0..count {
        let n = i + 1;
        let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + n);
        nodes.push(json!({
            "name": node_name(i, count),
            "mgt": mgt,
            "netboot": "pxe",
            "arch": "x86_64",
            "type": "compute",
            "control_info": control(i)?,
            "nics_info": {"nics": [{
                "name": "eth0",
                "mac": format!("02:00:5e:{:02x}:{:02x}:{:02x}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff),
                "ip": ip.to_string(),
                "primary": true,
            }]},
        }));
    }
    std::fs::write(path, json!({ "nodes": nodes }).to_string())
        .with_context(|| format!("writing {}", path.display()))
}

/// The import file of an IPMI fleet.
pub fn export_ipmi_nodes(cfg: &FleetConfig, path: &Path) -> anyhow::Result<()> {
    let user = String::from_utf8_lossy(&cfg.creds.user).into_owned();
    let password = String::from_utf8_lossy(&cfg.creds.password).into_owned();
    export_nodes(path, cfg.count, "ipmi", |i| {
        let mut control = json!({
            "bmc_address": cfg.address(i)?.to_string(),
            "bmc_username": user,
            "bmc_password": password,
        });
        if cfg.port != 623 {
            control["bmc_port"] = json!(cfg.port);
        }
        Ok(control)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_and_unreachable_members_follow_their_rates() {
        let cfg = FleetConfig {
            count: 2000,
            first_ip: Ipv4Addr::new(127, 1, 0, 1),
            port: 623,
            creds: Credentials {
                user: vec![],
                password: vec![],
            },
            latency: Duration::ZERO,
            fail_rate: 0.0,
            drop_rate: 0.0,
            unreachable_rate: 0.1,
            hot_rate: 0.05,
            seed: 3,
            sol_line: None,
        };
        let hot = (0..cfg.count).filter(|&i| cfg.hot(i)).count();
        let down = (0..cfg.count).filter(|&i| cfg.unreachable(i)).count();
        assert!((50..150).contains(&hot), "{hot} hot of 2000 at 5%");
        assert!(
            (120..280).contains(&down),
            "{down} unreachable of 2000 at 10%"
        );
        // Any seed gives some: the draws do not follow the index.
        for seed in [1u64, 3, 7] {
            let c = FleetConfig {
                seed,
                hot_rate: 0.2,
                ..cfg.clone()
            };
            let hot = (0..40).filter(|&i| c.hot(i)).count();
            assert!(
                (2..20).contains(&hot),
                "seed {seed}: {hot} hot of 40 at 20%"
            );
        }
    }
}
