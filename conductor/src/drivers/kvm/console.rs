//! A KVM guest's serial console: `virDomainOpenConsole` on a libvirt
//! connection of its own, read by one thread (a blocking stream read) and
//! written by another. When the guest stops or restarts, the stream ends
//! and the console server reconnects (at once after our own power action,
//! which nudges it), so the log goes on across reboots.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::hypervisor::Endpoint;
use super::libvirt::{CONSOLE_FORCE, Connection, Stream};
use super::{Kvm, Target};
use crate::drivers::{ConsoleLink, DriverError, LinkEvent, LinkInput, NodeInfo};

/// The open console; fields drop in order (the stream before the
/// connection it runs on).
struct Open {
    stream: Stream,
    _conn: Connection,
}

pub(super) async fn connect(
    kvm: &Kvm,
    node: &NodeInfo,
    force: bool,
) -> Result<ConsoleLink, DriverError> {
    let t = Target::of(node)?;
    let hv = kvm.hypervisors.get(&Endpoint {
        uri: t.uri.clone(),
        password: t.password.clone(),
    });
    let open = tokio::task::spawn_blocking(move || -> Result<Open, DriverError> {
        let conn = hv.dedicated()?;
        let d = hv.find(&conn, &t.domain, t.mac.as_deref())?;
        let name = d.name();
        let active = d
            .is_active()
            .map_err(|e| hv.error(&format!("state of domain {name}"), &e))?;
        if !active {
            return Err(DriverError::unsupported(format!(
                "hypervisor {}: domain {name} is not running (its console opens when it is)",
                hv.label()
            )));
        }
        let stream = d
            .open_console(&conn, if force { CONSOLE_FORCE } else { 0 })
            .map_err(|e| hv.error(&format!("console of domain {name}"), &e))?;
        drop(d);
        Ok(Open {
            stream,
            _conn: conn,
        })
    })
    .await
    .map_err(|e| DriverError::internal(format!("kvm console task failed: {e}")))??;
    let open = Arc::new(open);
    let (out_tx, out_rx) = mpsc::channel(256);
    let (in_tx, mut in_rx) = mpsc::channel::<LinkInput>(64);
    let reader = open.clone();
    std::thread::Builder::new()
        .name("kvm-console-read".into())
        .spawn(move || {
            let mut buf = vec![0u8; 8192];
            loop {
                let event = match reader.stream.recv(&mut buf) {
                    Ok(0) => LinkEvent::Closed(
                        "the guest's console ended (the guest stopped or restarted)".into(),
                    ),
                    Ok(n) => LinkEvent::Data(buf[..n].to_vec()),
                    Err(e) => LinkEvent::Closed(format!("the guest's console failed: {e}")),
                };
                let last = matches!(event, LinkEvent::Closed(_));
                if out_tx.blocking_send(event).is_err() || last {
                    return;
                }
            }
        })
        .map_err(|e| DriverError::internal(format!("kvm console thread: {e}")))?;
    std::thread::Builder::new()
        .name("kvm-console-write".into())
        .spawn(move || {
            // A serial break has no libvirt stream equivalent: ignored.
            while let Some(input) = in_rx.blocking_recv() {
                if let LinkInput::Data(b) = input
                    && open.stream.send_all(&b).is_err()
                {
                    break;
                }
            }
            // Closed by the console server (or the stream failed): end
            // the reader's blocked read too.
            open.stream.abort();
        })
        .map_err(|e| DriverError::internal(format!("kvm console thread: {e}")))?;
    Ok(ConsoleLink {
        output: out_rx,
        input: in_tx,
        took_over: false,
    })
}
