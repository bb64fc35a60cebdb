//! One libvirt connection per hypervisor, shared by all its guests.
//!
//! The prototype ran `ssh hv virsh …` per node and action. Here a
//! hypervisor (a libvirt URI plus credentials) gets one connection,
//! opened on first use, reused by every later request, re-opened when it
//! dies; calls on it run on blocking threads, at most
//! `[kvm] max_per_hypervisor` at once per hypervisor. Guests found by MAC
//! are remembered per hypervisor.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::libvirt::{Connection, Credentials, Domain, LibvirtError, XML_INACTIVE};
use crate::drivers::DriverError;
use xcat3_common::rpc::ErrorKind;

/// How one hypervisor is reached. The password is part of the identity so
/// a node with wrong credentials never rides on another node's connection.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub uri: String,
    pub password: Option<(String, String)>,
}

/// The open connections, by endpoint.
pub struct Hypervisors {
    by_endpoint: Mutex<HashMap<Endpoint, Arc<Hypervisor>>>,
    max_per_hypervisor: usize,
}

impl Hypervisors {
    pub fn new(max_per_hypervisor: usize) -> Hypervisors {
        Hypervisors {
            by_endpoint: Mutex::new(HashMap::new()),
            max_per_hypervisor: max_per_hypervisor.max(1),
        }
    }

    pub fn get(&self, endpoint: &Endpoint) -> Arc<Hypervisor> {
        let mut map = self.by_endpoint.lock().unwrap();
        map.entry(endpoint.clone())
            .or_insert_with(|| {
                Arc::new(Hypervisor {
                    endpoint: endpoint.clone(),
                    slot: Mutex::new(Slot::default()),
                    gate: Semaphore::new(self.max_per_hypervisor),
                    by_mac: Mutex::new(MacIndex::default()),
                    batch: tokio::sync::Mutex::new(()),
                })
            })
            .clone()
    }
}

pub struct Hypervisor {
    endpoint: Endpoint,
    slot: Mutex<Slot>,
    gate: Semaphore,
    by_mac: Mutex<MacIndex>,
    /// Held by an `mkvm`/`rmvm` batch, so batches on one hypervisor do not
    /// race on names and capacity.
    batch: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Slot {
    conn: Option<Arc<Connection>>,
    /// The last failed open: callers that were already waiting when it
    /// failed get its error rather than each trying again (50 guests on an
    /// unreachable hypervisor cost one timeout, not fifty).
    failed: Option<(Instant, DriverError)>,
}

/// MAC → domain name, rebuilt from every domain's XML on a miss, at most
/// once per `MAC_INDEX_TTL`.
#[derive(Default)]
struct MacIndex {
    built: Option<Instant>,
    names: HashMap<String, String>,
}

const MAC_INDEX_TTL: Duration = Duration::from_secs(10);

impl Hypervisor {
    pub async fn batch_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.batch.lock().await
    }

    /// Where errors say the problem was: the URI, which never holds a
    /// password (those go through libvirt's credential callback).
    pub fn label(&self) -> &str {
        &self.endpoint.uri
    }

    /// Runs `f` with the connection on a blocking thread, at most
    /// `max_per_hypervisor` at once. When `f` fails because the connection
    /// died (libvirtd restarted, network cut), it runs once more on a new
    /// connection; our operations check state before acting, so a second
    /// run does not act twice.
    pub async fn call<T, F>(self: &Arc<Self>, f: F) -> Result<T, DriverError>
    where
        T: Send + 'static,
        F: Fn(&Hypervisor, &Connection) -> Result<T, DriverError> + Send + 'static,
    {
        let _permit = self
            .gate
            .acquire()
            .await
            .map_err(|_| DriverError::internal("kvm driver is shutting down".into()))?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let entered = Instant::now();
            let conn = this.connection(entered)?;
            match f(&this, &conn) {
                Err(_) if !conn.is_alive() => {
                    this.forget(&conn);
                    let conn = this.connection(Instant::now())?;
                    f(&this, &conn)
                }
                result => result,
            }
        })
        .await
        .map_err(|e| DriverError::internal(format!("kvm driver task failed: {e}")))?
    }

    /// The live connection, opened if needed.
    fn connection(&self, entered: Instant) -> Result<Arc<Connection>, DriverError> {
        let mut slot = self.slot.lock().unwrap();
        if let Some(conn) = &slot.conn {
            if conn.is_alive() {
                return Ok(conn.clone());
            }
            slot.conn = None;
        }
        if let Some((at, why)) = &slot.failed
            && *at >= entered
        {
            return Err(why.clone());
        }
        let creds = self.credentials()?;
        let started = Instant::now();
        match Connection::open(&self.endpoint.uri, creds.as_ref()) {
            Ok(conn) => {
                tracing::info!(hypervisor = %self.label(), ms = started.elapsed().as_millis() as u64, "libvirt connection opened");
                let conn = Arc::new(conn);
                slot.conn = Some(conn.clone());
                slot.failed = None;
                Ok(conn)
            }
            Err(e) => {
                let why = self.error("cannot connect", &e);
                slot.failed = Some((Instant::now(), why.clone()));
                Err(why)
            }
        }
    }

    /// What libvirt's password prompts are answered with, if anything.
    fn credentials(&self) -> Result<Option<Credentials>, DriverError> {
        self.endpoint
            .password
            .as_ref()
            .map(|(user, pass)| -> Result<Credentials, DriverError> {
                let bad = |f: &str| {
                    DriverError::invalid(format!("control_info.{f}: contains a NUL byte"))
                };
                Ok(Credentials {
                    username: CString::new(user.as_str()).map_err(|_| bad("ssh_username"))?,
                    password: CString::new(pass.as_str()).map_err(|_| bad("ssh_password"))?,
                })
            })
            .transpose()
    }

    /// A connection of its own, outside the cache and the call gate: a
    /// console holds it (and a blocked read on it) as long as it lives.
    /// Blocking: call on a blocking thread.
    pub fn dedicated(&self) -> Result<Connection, DriverError> {
        let creds = self.credentials()?;
        Connection::open(&self.endpoint.uri, creds.as_ref())
            .map_err(|e| self.error("cannot connect", &e))
    }

    /// Drops `conn` from the slot if it is still the cached one.
    fn forget(&self, conn: &Arc<Connection>) {
        let mut slot = self.slot.lock().unwrap();
        if slot.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            slot.conn = None;
        }
    }

    /// A per-node error naming the hypervisor and the step.
    pub fn error(&self, step: &str, e: &LibvirtError) -> DriverError {
        DriverError::new(
            error_kind(step, e),
            format!("hypervisor {}: {step}: {}", self.label(), e.message),
        )
    }

    /// The guest: by `name`, else (when given) by one of its MACs.
    pub fn find(
        &self,
        conn: &Connection,
        name: &str,
        mac: Option<&str>,
    ) -> Result<Domain, DriverError> {
        let lookup = |n: &str| conn.lookup(n).map_err(|e| self.error("domain lookup", &e));
        if let Some(d) = lookup(name)? {
            return Ok(d);
        }
        let not_found = || {
            DriverError::invalid(format!(
                "hypervisor {}: no domain named `{name}`{}",
                self.label(),
                match mac {
                    Some(m) => format!(" or with MAC {m}"),
                    None => String::new(),
                }
            ))
        };
        let Some(mac) = mac else {
            return Err(not_found());
        };
        let mac = mac.to_ascii_lowercase();
        let cached = self.by_mac.lock().unwrap().names.get(&mac).cloned();
        if let Some(n) = cached
            && let Some(d) = lookup(&n)?
        {
            return Ok(d);
        }
        let fresh = {
            let index = self.by_mac.lock().unwrap();
            index.built.is_none_or(|t| t.elapsed() >= MAC_INDEX_TTL)
        };
        if fresh {
            self.index_macs(conn)?;
        }
        let found = self.by_mac.lock().unwrap().names.get(&mac).cloned();
        match found {
            Some(n) => lookup(&n)?.ok_or_else(not_found),
            None => Err(not_found()),
        }
    }

    /// Reads every domain's MACs (one XML fetch per domain).
    fn index_macs(&self, conn: &Connection) -> Result<(), DriverError> {
        let mut names = HashMap::new();
        for d in conn
            .all_domains()
            .map_err(|e| self.error("listing domains", &e))?
        {
            // A guest undefined meanwhile is simply not indexed.
            let Ok(xml) = d.xml(XML_INACTIVE) else {
                continue;
            };
            let name = d.name();
            for mac in super::domxml::macs(&xml).unwrap_or_default() {
                names.insert(mac, name.clone());
            }
        }
        *self.by_mac.lock().unwrap() = MacIndex {
            built: Some(Instant::now()),
            names,
        };
        Ok(())
    }
}

/// What kind of failure a libvirt error is: a refused login, a daemon that
/// cannot be reached (or whose connection dropped), something it cannot
/// do, or its own error.
fn error_kind(step: &str, e: &LibvirtError) -> ErrorKind {
    const NO_SUPPORT: i32 = 3;
    const UNKNOWN_HOST: i32 = 4;
    const SYSTEM_ERROR: i32 = 38;
    const RPC: i32 = 39;
    const AUTH_FAILED: i32 = 45;
    const OPERATION_UNSUPPORTED: i32 = 84;
    // Over SSH a refused key or password arrives as the ssh client's text.
    let denied = e.message.contains("Permission denied") || e.message.contains("authentication");
    match e.code {
        // Ours: the library is missing on this conductor.
        -1 => ErrorKind::Internal,
        AUTH_FAILED => ErrorKind::Authentication,
        NO_SUPPORT | OPERATION_UNSUPPORTED => ErrorKind::Unsupported,
        _ if denied && step == "cannot connect" => ErrorKind::Authentication,
        UNKNOWN_HOST | SYSTEM_ERROR | RPC => ErrorKind::Unreachable,
        _ if step == "cannot connect" => ErrorKind::Unreachable,
        _ => ErrorKind::BmcError,
    }
}
