//! A few UDP sockets shared by every IPMI session of this conductor.
//!
//! Datagrams are routed by source address and then by our session id (in
//! the header of session packets, in the payload of the session-setup
//! answers), so several sessions with one BMC coexist, as real BMCs allow:
//! a serial console stays open while power actions come and go. Command
//! sessions still take turns per BMC (a second caller waits), which keeps
//! the number of sessions a BMC must hold small; a console does not wait.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{OwnedMutexGuard, mpsc};
use xcat3_ipmi::random_session_id;
use xcat3_ipmi::wire::{self, Frame, PayloadType};

/// Receive buffer asked for per socket: thousands of BMCs answering at
/// once must not overflow it (the kernel caps it at net.core.rmem_max).
const RECV_BUFFER: usize = 8 << 20;
/// Sockets per address family; replies are spread over them by BMC address.
const SOCKETS: usize = 2;

/// Per BMC address, per session id of ours: where its datagrams go.
type Routes = Mutex<HashMap<SocketAddr, HashMap<u32, mpsc::UnboundedSender<Vec<u8>>>>>;

pub struct Transport {
    v4: Vec<Arc<UdpSocket>>,
    v6: Vec<Arc<UdpSocket>>,
    routes: Arc<Routes>,
    /// One gate per BMC address with a session open or waiting.
    gates: Mutex<HashMap<SocketAddr, Arc<tokio::sync::Mutex<()>>>>,
}

fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    // Best effort: the kernel may grant less.
    let _ = s.set_recv_buffer_size(RECV_BUFFER);
    let _ = s.set_send_buffer_size(RECV_BUFFER / 4);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

impl Transport {
    /// Binds the sockets and starts their receive loops (needs a runtime).
    pub fn start() -> io::Result<Arc<Transport>> {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for _ in 0..SOCKETS {
            v4.push(Arc::new(bind(SocketAddr::from((
                Ipv4Addr::UNSPECIFIED,
                0,
            )))?));
            // Hosts without IPv6 still manage IPv4 BMCs.
            if let Ok(s) = bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))) {
                v6.push(Arc::new(s));
            }
        }
        let routes: Arc<Routes> = Arc::default();
        for sock in v4.iter().chain(&v6) {
            tokio::spawn(receive(sock.clone(), routes.clone()));
        }
        Ok(Arc::new(Transport {
            v4,
            v6,
            routes,
            gates: Mutex::default(),
        }))
    }

    /// A channel to `bmc` for a command session, once no other command
    /// session of ours uses it.
    pub async fn channel(self: &Arc<Self>, bmc: SocketAddr) -> io::Result<Channel> {
        let gate = {
            let mut gates = self.gates.lock().expect("gates lock");
            gates.entry(bmc).or_default().clone()
        };
        let guard = gate.lock_owned().await;
        self.open(bmc, Some(guard))
    }

    /// A channel to `bmc` for a long-lived session (a serial console): it
    /// does not wait for, nor hold up, command sessions.
    pub fn console_channel(self: &Arc<Self>, bmc: SocketAddr) -> io::Result<Channel> {
        self.open(bmc, None)
    }

    fn open(
        self: &Arc<Self>,
        bmc: SocketAddr,
        guard: Option<OwnedMutexGuard<()>>,
    ) -> io::Result<Channel> {
        let family = if bmc.is_ipv4() { &self.v4 } else { &self.v6 };
        if family.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this host has no IPv6 socket",
            ));
        }
        let pick = match bmc.ip() {
            std::net::IpAddr::V4(ip) => u32::from(ip) as usize,
            std::net::IpAddr::V6(ip) => u128::from(ip) as usize,
        };
        let socket = family[pick % family.len()].clone();
        let (tx, rx) = mpsc::unbounded_channel();
        let sid = {
            let mut routes = self.routes.lock().expect("routes lock");
            let of_bmc = routes.entry(bmc).or_default();
            let sid = loop {
                let sid = random_session_id();
                if !of_bmc.contains_key(&sid) {
                    break sid;
                }
            };
            of_bmc.insert(sid, tx);
            sid
        };
        Ok(Channel {
            transport: self.clone(),
            bmc,
            sid,
            socket,
            rx,
            guard,
        })
    }
}

async fn receive(sock: Arc<UdpSocket>, routes: Arc<Routes>) {
    let mut buf = vec![0u8; 2048];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let from = match from {
                    SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
                        Some(v4) => SocketAddr::from((v4, a.port())),
                        None => from,
                    },
                    v4 => v4,
                };
                let routes = routes.lock().expect("routes lock");
                let Some(of_bmc) = routes.get(&from) else {
                    continue;
                };
                match session_of(&buf[..n]).and_then(|sid| of_bmc.get(&sid)) {
                    Some(tx) => {
                        let _ = tx.send(buf[..n].to_vec());
                    }
                    // Not ours to route (a v1.5 answer, a pong, a refusal
                    // without our id): each session's filter judges it.
                    None => {
                        for tx in of_bmc.values() {
                            let _ = tx.send(buf[..n].to_vec());
                        }
                    }
                }
            }
            // ICMP errors surface here on some kernels; the session's own
            // timeout reports the BMC.
            Err(e) => tracing::debug!(error = %e, "IPMI receive"),
        }
    }
}

/// Our session id a datagram is for: the header's for session packets,
/// the payload's for the answers that set a session up (Open Session
/// Response, RAKP 2 and 4 carry it in bytes 4–7).
fn session_of(d: &[u8]) -> Option<u32> {
    let Frame::V20(f) = wire::parse(d).ok()? else {
        return None;
    };
    if f.session_id != 0 {
        return Some(f.session_id);
    }
    match f.payload_type {
        PayloadType::OpenSessionResponse | PayloadType::Rakp2 | PayloadType::Rakp4 => {
            let p = f.open(None).ok()?;
            let sid = u32::from_le_bytes(p.get(4..8)?.try_into().ok()?);
            (sid != 0).then_some(sid)
        }
        _ => None,
    }
}

/// One session's line to a BMC address: send to it, receive what the BMC
/// sends to this session.
pub struct Channel {
    transport: Arc<Transport>,
    bmc: SocketAddr,
    /// Our session id (the console's, in RMCP+ terms), chosen here so
    /// replies can be routed before the session exists.
    sid: u32,
    socket: Arc<UdpSocket>,
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Channel {
    pub fn bmc(&self) -> SocketAddr {
        self.bmc
    }

    /// The session id the BMC addresses us by.
    pub fn sid(&self) -> u32 {
        self.sid
    }

    pub async fn send(&self, datagram: &[u8]) -> io::Result<()> {
        self.socket.send_to(datagram, self.bmc).await.map(|_| ())
    }

    /// The next datagram from the BMC, or None after `wait`.
    pub async fn recv(&mut self, wait: Duration) -> Option<Vec<u8>> {
        tokio::time::timeout(wait, self.rx.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        {
            let mut routes = self.transport.routes.lock().expect("routes lock");
            if let Some(of_bmc) = routes.get_mut(&self.bmc) {
                of_bmc.remove(&self.sid);
                if of_bmc.is_empty() {
                    routes.remove(&self.bmc);
                }
            }
        }
        let Some(guard) = self.guard.take() else {
            return;
        };
        let mut gates = self.transport.gates.lock().expect("gates lock");
        // The map and our guard hold the gate; more holders are waiters,
        // who keep it alive.
        if let Some(g) = gates.get(&self.bmc)
            && Arc::strong_count(g) <= 2
        {
            gates.remove(&self.bmc);
        }
        drop(guard);
    }
}
