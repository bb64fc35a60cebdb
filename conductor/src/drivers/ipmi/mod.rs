//! `mgt=ipmi`: power, boot device, inspection (`inspect.rs`) and the
//! serial console (`sol.rs`) over IPMI v2.0 lanplus (RMCP+), with our own
//! async client: thousands of sessions in flight on a few UDP sockets, one
//! command session per BMC at a time (a console session beside it),
//! retransmits on a schedule, and a per-node error that names the BMC and
//! the step that failed.
//!
//! `control_info`: `bmc_address` (IP or host name), `bmc_username`,
//! `bmc_password`, optional `bmc_port` (623), `cipher_suite` (3; also 1, 2,
//! 17) and `boot_mode` (`bios` or `uefi`: the EFI flag of boot overrides).

mod inspect;
mod session;
mod sol;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::OnceCell;
use xcat3_common::config::IpmiConfig;
use xcat3_common::rpc::{BootDevice, PowerTarget};
use xcat3_ipmi::cmd::{self, BootFlags, ChassisControl, Privilege};
use xcat3_ipmi::crypto::CipherSuite;

use self::session::{Retry, Session, SessionError, Target};
use self::transport::Transport;
use super::{
    Console, ConsoleLink, DriverError, Management, NodeInfo, Power, PowerState, Properties,
    control_str, uefi_boot,
};
use xcat3_common::hardware;

pub struct Ipmi {
    transport: OnceCell<Arc<Transport>>,
    retry: Retry,
    /// SOL's keepalive period.
    sol_keepalive: Duration,
    sdr_cache: inspect::SdrCache,
}

/// What a node's `control_info` says, checked.
struct Bmc<'a> {
    host: &'a str,
    port: u16,
    username: &'a str,
    password: &'a str,
    suite: CipherSuite,
    efi: bool,
}

fn integer(node: &NodeInfo, key: &str) -> Result<Option<i64>, DriverError> {
    match node.control_info.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| {
            DriverError::invalid(format!("control_info.{key}: `{s}` is not a number"))
        }),
        Some(_) => Err(DriverError::invalid(format!(
            "control_info.{key}: must be a number"
        ))),
    }
}

impl<'a> Bmc<'a> {
    fn of(node: &'a NodeInfo) -> Result<Bmc<'a>, DriverError> {
        let missing =
            |k: &str| DriverError::invalid(format!("control_info.{k}: required for mgt=ipmi"));
        let host = control_str(node, "bmc_address")?.ok_or_else(|| missing("bmc_address"))?;
        let username = control_str(node, "bmc_username")?.unwrap_or("");
        let password = control_str(node, "bmc_password")?.ok_or_else(|| missing("bmc_password"))?;
        if username.len() > 16 {
            return Err(DriverError::invalid(
                "control_info.bmc_username: IPMI allows at most 16 bytes".into(),
            ));
        }
        if password.len() > 20 {
            return Err(DriverError::invalid(
                "control_info.bmc_password: IPMI v2.0 allows at most 20 bytes".into(),
            ));
        }
        let port = match integer(node, "bmc_port")? {
            None => 623,
            Some(p) => u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                DriverError::invalid("control_info.bmc_port: must be 1-65535".into())
            })?,
        };
        let suite = match integer(node, "cipher_suite")? {
            None => CipherSuite::from_id(3).expect("suite 3"),
            Some(id) => u8::try_from(id)
                .ok()
                .and_then(CipherSuite::from_id)
                .ok_or_else(|| {
                    DriverError::invalid(format!(
                        "control_info.cipher_suite: {id} is not supported (use 3, 17, 2 or 1)"
                    ))
                })?,
        };
        let efi = uefi_boot(node)?;
        Ok(Bmc {
            host,
            port,
            username,
            password,
            suite,
            efi,
        })
    }
}

impl Ipmi {
    pub fn new(config: &IpmiConfig) -> Ipmi {
        Ipmi {
            transport: OnceCell::new(),
            retry: Retry {
                interval: Duration::from_millis(config.retry_interval_ms.max(1)),
                retries: config.retries,
            },
            sol_keepalive: Duration::from_secs(config.sol_keepalive.max(1)),
            sdr_cache: inspect::SdrCache::default(),
        }
    }

    async fn address(bmc: &Bmc<'_>) -> Result<SocketAddr, DriverError> {
        if let Ok(ip) = bmc.host.parse::<std::net::IpAddr>() {
            return Ok(SocketAddr::new(ip, bmc.port));
        }
        tokio::net::lookup_host((bmc.host, bmc.port))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                DriverError::unreachable(format!(
                    "control_info.bmc_address: cannot resolve `{}`",
                    bmc.host
                ))
            })
    }

    /// Opens a session at `privilege`: a command session (taking its turn
    /// on the BMC) or, with `console`, one that does not wait for others.
    async fn open_session(
        &self,
        node: &NodeInfo,
        privilege: Privilege,
        console: bool,
    ) -> Result<Session, DriverError> {
        let bmc = Bmc::of(node)?;
        let addr = Ipmi::address(&bmc).await?;
        let transport = self
            .transport
            .get_or_try_init(|| async { Transport::start() })
            .await
            .map_err(|e| DriverError::internal(format!("ipmi: cannot open a UDP socket: {e}")))?;
        let ch = if console {
            transport.console_channel(addr)
        } else {
            transport.channel(addr).await
        }
        .map_err(|e| DriverError::unreachable(format!("BMC {addr}: {e}")))?;
        let target = Target {
            username: bmc.username.as_bytes(),
            password: bmc.password.as_bytes(),
            suite: bmc.suite,
        };
        Session::open(ch, &target, privilege, self.retry)
            .await
            .map_err(failed)
    }

    /// Opens a session at `privilege`, runs `f` in it, closes it.
    async fn with_session<T>(
        &self,
        node: &NodeInfo,
        privilege: Privilege,
        f: impl AsyncFnOnce(&mut Session) -> Result<T, SessionError>,
    ) -> Result<T, DriverError> {
        let mut s = self.open_session(node, privilege, false).await?;
        let out = f(&mut s).await;
        s.close().await;
        out.map_err(failed)
    }
}

fn failed(e: SessionError) -> DriverError {
    DriverError::new(e.kind(), e.to_string())
}

async fn chassis_on(s: &mut Session) -> Result<bool, SessionError> {
    let status = s
        .command(
            "Get Chassis Status",
            cmd::NETFN_CHASSIS,
            cmd::GET_CHASSIS_STATUS,
            &[],
        )
        .await?;
    Ok(cmd::power_is_on(&status).unwrap_or(false))
}

async fn control(s: &mut Session, c: ChassisControl) -> Result<(), SessionError> {
    s.command(
        "Chassis Control",
        cmd::NETFN_CHASSIS,
        cmd::CHASSIS_CONTROL,
        &[c as u8],
    )
    .await
    .map(drop)
}

#[async_trait]
impl Power for Ipmi {
    fn properties(&self) -> Properties {
        &[hardware::IPMI]
    }

    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError> {
        Bmc::of(node).map(drop)
    }

    async fn get_power(&self, node: &NodeInfo) -> Result<PowerState, DriverError> {
        let on = self
            .with_session(node, Privilege::User, async |s| chassis_on(s).await)
            .await?;
        Ok(if on { PowerState::On } else { PowerState::Off })
    }

    async fn set_power(
        &self,
        node: &NodeInfo,
        target: PowerTarget,
    ) -> Result<PowerState, DriverError> {
        self.with_session(node, Privilege::Administrator, async |s| {
            Ok(match target {
                PowerTarget::On => {
                    control(s, ChassisControl::PowerUp).await?;
                    PowerState::On
                }
                PowerTarget::Off => {
                    control(s, ChassisControl::PowerDown).await?;
                    PowerState::Off
                }
                PowerTarget::Soft => {
                    control(s, ChassisControl::SoftShutdown).await?;
                    PowerState::Off
                }
                PowerTarget::Reset => {
                    control(s, ChassisControl::HardReset).await?;
                    PowerState::On
                }
                // Many BMCs refuse a cycle or reset of a node that is off;
                // both mean "be on, freshly booted", so an off node is
                // powered up instead.
                PowerTarget::Cycle | PowerTarget::Boot => {
                    let c = match (chassis_on(s).await?, target) {
                        (false, _) => ChassisControl::PowerUp,
                        (true, PowerTarget::Cycle) => ChassisControl::PowerCycle,
                        (true, _) => ChassisControl::HardReset,
                    };
                    control(s, c).await?;
                    PowerState::On
                }
            })
        })
        .await
    }
}

#[async_trait]
impl Management for Ipmi {
    fn properties(&self) -> Properties {
        &[hardware::IPMI]
    }

    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError> {
        Bmc::of(node).map(drop)
    }

    /// The override in force; without one the firmware boots its own
    /// order, reported as `disk`.
    async fn get_boot_device(&self, node: &NodeInfo) -> Result<BootDevice, DriverError> {
        let data = self
            .with_session(node, Privilege::Operator, async |s| {
                s.command(
                    "Get System Boot Options",
                    cmd::NETFN_CHASSIS,
                    cmd::GET_BOOT_OPTIONS,
                    &[cmd::BOOT_PARAM_FLAGS, 0, 0],
                )
                .await
            })
            .await?;
        // Parameter version, parameter number, then the five flag bytes.
        let flags = data
            .get(2..)
            .ok_or_else(|| DriverError::bmc("Get System Boot Options: short answer".into()))
            .and_then(|d| BootFlags::decode(d).map_err(DriverError::bmc))?;
        Ok(flags.device.unwrap_or(BootDevice::Disk))
    }

    async fn set_boot_device(
        &self,
        node: &NodeInfo,
        device: BootDevice,
        persistent: bool,
    ) -> Result<(), DriverError> {
        let efi = Bmc::of(node)?.efi;
        let flags = BootFlags {
            device: Some(device),
            persistent,
            efi,
            valid: true,
        };
        self.with_session(node, Privilege::Administrator, async |s| {
            // Keep the override past the BMC's 60 s flag timeout (as
            // Ironic does); not every BMC knows parameter 3.
            let _ = s
                .command(
                    "Set System Boot Options (flag clearing)",
                    cmd::NETFN_CHASSIS,
                    cmd::SET_BOOT_OPTIONS,
                    &[cmd::BOOT_PARAM_FLAG_CLEARING, 0x08],
                )
                .await;
            let mut data = vec![cmd::BOOT_PARAM_FLAGS];
            data.extend_from_slice(&flags.encode());
            s.command(
                "Set System Boot Options",
                cmd::NETFN_CHASSIS,
                cmd::SET_BOOT_OPTIONS,
                &data,
            )
            .await
            .map(drop)
        })
        .await
    }
}

#[async_trait]
impl Console for Ipmi {
    fn properties(&self) -> Properties {
        &[hardware::IPMI]
    }

    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError> {
        Bmc::of(node).map(drop)
    }

    async fn connect(&self, node: &NodeInfo, force: bool) -> Result<ConsoleLink, DriverError> {
        let mut s = self.open_session(node, sol::PRIVILEGE, true).await?;
        let (act, took_over) = match sol::activate(&mut s, force).await {
            Ok(a) => a,
            Err(e) => {
                s.close().await;
                return Err(failed(e));
            }
        };
        let (in_tx, in_rx) = tokio::sync::mpsc::channel(64);
        let (out_tx, out_rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(sol::run(
            s,
            act,
            self.retry,
            self.sol_keepalive,
            in_rx,
            out_tx,
        ));
        Ok(ConsoleLink {
            output: out_rx,
            input: in_tx,
            took_over,
        })
    }
}
