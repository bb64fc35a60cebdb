//! A few UDP sockets shared by every IPMI session of this conductor.
//!
//! Replies are routed to the session that waits on their source address;
//! a BMC address has at most one session at a time (a second caller waits
//! its turn), which is also what keeps routing by address unambiguous.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{OwnedMutexGuard, mpsc};

/// Receive buffer asked for per socket: thousands of BMCs answering at
/// once must not overflow it (the kernel caps it at net.core.rmem_max).
const RECV_BUFFER: usize = 8 << 20;
/// Sockets per address family; replies are spread over them by BMC address.
const SOCKETS: usize = 2;

type Routes = Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>>;

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

    /// A channel to `bmc`, once no other session of ours uses it.
    pub async fn channel(self: &Arc<Self>, bmc: SocketAddr) -> io::Result<Channel> {
        let gate = {
            let mut gates = self.gates.lock().expect("gates lock");
            gates.entry(bmc).or_default().clone()
        };
        let guard = gate.lock_owned().await;
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
        self.routes.lock().expect("routes lock").insert(bmc, tx);
        Ok(Channel {
            transport: self.clone(),
            bmc,
            socket,
            rx,
            guard: Some(guard),
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
                if let Some(tx) = routes.lock().expect("routes lock").get(&from) {
                    let _ = tx.send(buf[..n].to_vec());
                }
            }
            // ICMP errors surface here on some kernels; the session's own
            // timeout reports the BMC.
            Err(e) => tracing::debug!(error = %e, "IPMI receive"),
        }
    }
}

/// Exclusive use of one BMC address: send to it, receive what it sends.
pub struct Channel {
    transport: Arc<Transport>,
    bmc: SocketAddr,
    socket: Arc<UdpSocket>,
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Channel {
    pub fn bmc(&self) -> SocketAddr {
        self.bmc
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
        self.transport
            .routes
            .lock()
            .expect("routes lock")
            .remove(&self.bmc);
        let mut gates = self.transport.gates.lock().expect("gates lock");
        // The map and our guard hold the gate; more holders are waiters,
        // who keep it alive.
        if let Some(g) = gates.get(&self.bmc)
            && Arc::strong_count(g) <= 2
        {
            gates.remove(&self.bmc);
        }
        self.guard.take();
    }
}
