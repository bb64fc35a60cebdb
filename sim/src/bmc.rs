//! One simulated BMC: the BMC side of RMCP+ (sessions, RAKP, privilege)
//! and a chassis with a power state and boot flags that outlive sessions.
//!
//! `handle` is pure apart from the random numbers: one datagram in, at most
//! one datagram out. Sockets, latency and packet loss are the fleet's job.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::board::{Board, Identify};
use crate::serial::{Serial, SolStats};
use xcat3_ipmi::cmd::{self, BootFlags, ChassisControl, Privilege, cc};
use xcat3_ipmi::crypto::{CipherSuite, SessionKeys, codes_equal};
use xcat3_ipmi::rakp::{
    Exchange, OpenSessionRequest, OpenSessionResponse, Rakp1, Rakp2, Rakp3, Rakp4, status,
};
use xcat3_ipmi::sol::{self, Activated, Packet};
use xcat3_ipmi::wire::{self, Frame, PayloadType, Request, Response};
use xcat3_ipmi::{random_bytes, random_session_id};

/// Sessions one BMC holds at once (real BMCs allow a handful).
const MAX_SESSIONS: usize = 4;
/// A session idle this long is closed by the BMC.
const SESSION_IDLE: Duration = Duration::from_secs(60);

/// What the fleet's user configured for every BMC.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: Vec<u8>,
    pub password: Vec<u8>,
}

/// The chassis: what survives sessions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Chassis {
    pub power_on: bool,
    /// Boot device override in force (`net`, `disk`, ...), if any.
    pub boot_device: Option<&'static str>,
    pub boot_persistent: bool,
    pub boot_efi: bool,
    /// Chassis Control commands executed, by name, in order (last 16).
    pub history: Vec<&'static str>,
    /// The identify LED (`off`, `blink`, `on`).
    pub identify: &'static str,
    /// Entries in the System Event Log.
    pub sel_entries: usize,
}

/// Counters a test or benchmark can read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub sessions_opened: u64,
    pub sessions_now: usize,
    /// Most sessions open at one time.
    pub sessions_max: usize,
    pub auth_failures: u64,
    pub commands: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub chassis: Chassis,
    pub stats: Stats,
    pub sol: SolStats,
}

enum Phase {
    /// Open Session answered; waiting for RAKP 1.
    Opened,
    /// RAKP 2 sent; waiting for RAKP 3.
    Challenged { exchange: Exchange, rakp2: Vec<u8> },
    Active {
        /// Boxed: the AES key schedule dwarfs the other phases.
        keys: Box<SessionKeys>,
        privilege: Privilege,
        /// The RAKP 4 we sent, for a retransmitted RAKP 3.
        rakp4: Vec<u8>,
    },
}

struct Session {
    peer: SocketAddr,
    console_sid: u32,
    suite: CipherSuite,
    /// Highest privilege this session may raise itself to.
    max_privilege: Privilege,
    phase: Phase,
    out_seq: u32,
    /// Highest inbound session sequence number, and which of the 32 below
    /// it were seen: duplicates and stale packets are dropped (§6.12.13).
    in_seq_high: u32,
    in_seq_seen: u32,
    last_seen: Instant,
    /// The last (rqSeq, cmd) answered and its encoded response: a
    /// retransmitted request is answered again, not executed twice.
    last_reply: Option<((u8, u8), Response)>,
    open_reply: Vec<u8>,
}

impl Session {
    /// `payload` sealed for this active session with our next sequence
    /// number; None before the session is active.
    fn seal(&mut self, payload_type: PayloadType, payload: &[u8]) -> Option<Vec<u8>> {
        let Phase::Active { keys, .. } = &self.phase else {
            return None;
        };
        self.out_seq = self.out_seq.wrapping_add(1).max(1);
        Some(wire::seal_v20(
            payload_type,
            self.console_sid,
            self.out_seq,
            payload,
            Some(keys),
        ))
    }

    /// Whether an authenticated packet's sequence number is fresh: not 0,
    /// not seen before, not more than 32 behind the highest.
    fn accept_seq(&mut self, seq: u32) -> bool {
        if seq == 0 {
            return false;
        }
        if seq > self.in_seq_high {
            let shift = seq - self.in_seq_high;
            self.in_seq_seen = if shift >= 32 {
                0
            } else {
                self.in_seq_seen << shift
            } | 1;
            self.in_seq_high = seq;
            return true;
        }
        let behind = self.in_seq_high - seq;
        if behind >= 32 || self.in_seq_seen & (1 << behind) != 0 {
            return false;
        }
        self.in_seq_seen |= 1 << behind;
        true
    }
}

pub struct Bmc {
    creds: Credentials,
    guid: [u8; 16],
    sessions: HashMap<u32, Session>,
    pub chassis: Chassis,
    pub stats: Stats,
    /// Share of commands answered with "unspecified error" (0xff).
    fail_rate: f64,
    /// FRU, sensors, event log, identify LED.
    board: Board,
    /// The serial port SOL carries.
    serial: Serial,
    /// The UDP port we serve (Activate Payload names it).
    port: u16,
}

/// Who this BMC is within its fleet.
pub struct Identity {
    pub index: u32,
    /// The node name the fleet's import file gives it (`sim00001`).
    pub name: String,
    pub port: u16,
    pub hot: bool,
    /// Print a numbered console line this often while on.
    pub sol_line: Option<Duration>,
}

impl Bmc {
    /// A BMC of its fleet; a `hot` one has an overheating CPU.
    pub fn new(creds: Credentials, fail_rate: f64, id: Identity) -> Bmc {
        let mut guid = [0u8; 16];
        random_bytes(&mut guid);
        Bmc {
            creds,
            guid,
            sessions: HashMap::new(),
            chassis: Chassis::default(),
            stats: Stats::default(),
            fail_rate,
            board: Board::new(id.index, id.hot),
            serial: Serial::new(id.name, id.sol_line),
            port: id.port,
        }
    }

    /// The SOL datagram to send now (console output or a retransmit), and
    /// to whom.
    pub fn poll(&mut self, now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        let (sid, p) = self.serial.poll(now, self.chassis.power_on)?;
        let Some(s) = self.sessions.get_mut(&sid) else {
            self.serial.deactivate();
            return None;
        };
        let d = s.seal(PayloadType::Sol, &p.encode())?;
        Some((s.peer, d))
    }

    /// When [`poll`](Self::poll) next has something to send.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.serial.next_wakeup(self.chassis.power_on)
    }

    pub fn snapshot(&mut self) -> Snapshot {
        let mut chassis = self.chassis.clone();
        chassis.identify = self.board.identify().as_str();
        chassis.sel_entries = self.board.sel_len();
        Snapshot {
            chassis,
            stats: self.stats.clone(),
            sol: self.serial.stats.clone(),
        }
    }

    /// Answers one datagram from `peer`, or ignores it (None), as a BMC
    /// does with what it cannot authenticate.
    pub fn handle(&mut self, peer: SocketAddr, pkt: &[u8], now: Instant) -> Option<Vec<u8>> {
        self.expire(now);
        match wire::parse(pkt).ok()? {
            Frame::AsfPing { tag } => Some(wire::asf_pong(tag)),
            Frame::AsfPong { .. } => None,
            Frame::V15 {
                session_id: 0,
                message,
            } => {
                // Only Get Channel Authentication Capabilities is valid
                // outside a session.
                let req = Request::decode(message).ok()?;
                let resp = if (req.netfn, req.cmd)
                    == (cmd::NETFN_APP, cmd::GET_CHANNEL_AUTH_CAPABILITIES)
                {
                    self.auth_capabilities(&req)
                } else {
                    Response::to(&req, cc::INVALID_COMMAND, vec![])
                };
                Some(wire::seal_v15(0, &resp.encode()))
            }
            Frame::V15 { .. } => None,
            Frame::V20(f) if f.session_id == 0 => {
                let payload = f.open(None).ok()?;
                match f.payload_type {
                    PayloadType::OpenSessionRequest => self.open_session(peer, &payload, now),
                    PayloadType::Rakp1 => self.rakp1(peer, &payload),
                    PayloadType::Rakp3 => self.rakp3(peer, &payload),
                    _ => None,
                }
            }
            Frame::V20(f) => {
                let s = self.sessions.get_mut(&f.session_id)?;
                if s.peer != peer {
                    return None;
                }
                let Phase::Active { keys, .. } = &s.phase else {
                    return None;
                };
                let payload = f.open(Some(keys)).ok()?;
                if !s.accept_seq(f.seq) {
                    return None;
                }
                s.last_seen = now;
                if f.payload_type == PayloadType::Sol {
                    return self.sol_packet(f.session_id, &payload);
                }
                if f.payload_type != PayloadType::Ipmi {
                    return None;
                }
                let req = Request::decode(&payload).ok()?;
                let bmc_sid = f.session_id;
                let resp = self.command(bmc_sid, &req);
                let s = self.sessions.get_mut(&bmc_sid)?;
                let out = s.seal(PayloadType::Ipmi, &resp.encode())?;
                if (req.netfn, req.cmd) == (cmd::NETFN_APP, cmd::CLOSE_SESSION) && resp.cc == cc::OK
                {
                    self.sessions.remove(&bmc_sid);
                    self.stats.sessions_now = self.sessions.len();
                    if self.serial.holder() == Some(bmc_sid) {
                        self.serial.deactivate();
                    }
                } else {
                    s.last_reply = Some(((req.rq_seq, req.cmd), resp));
                }
                Some(out)
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        self.sessions
            .retain(|_, s| now.duration_since(s.last_seen) < SESSION_IDLE);
        self.stats.sessions_now = self.sessions.len();
        if let Some(sid) = self.serial.holder()
            && !self.sessions.contains_key(&sid)
        {
            self.serial.deactivate();
        }
    }

    /// A SOL packet from session `bmc_sid`; the acknowledgement to send.
    fn sol_packet(&mut self, bmc_sid: u32, payload: &[u8]) -> Option<Vec<u8>> {
        if self.serial.holder() != Some(bmc_sid) {
            return None;
        }
        let p = Packet::decode(payload).ok()?;
        let ack = self.serial.receive(&p)?;
        self.sessions
            .get_mut(&bmc_sid)?
            .seal(PayloadType::Sol, &ack.encode())
    }

    /// Activate Payload, Deactivate Payload, Get Payload Instance Info and
    /// Get Payload Activation Status, for SOL instance 1.
    fn payload_command(&mut self, bmc_sid: u32, req: &Request) -> Response {
        let (Some(&kind), Some(&instance)) = (req.data.first(), req.data.get(1)) else {
            return Response::to(req, cc::REQUEST_DATA_LENGTH, vec![]);
        };
        if req.cmd == sol::GET_PAYLOAD_ACTIVATION_STATUS {
            let active = u8::from(kind == sol::PAYLOAD_SOL && self.serial.holder().is_some());
            return Response::to(req, cc::OK, vec![1, active, 0]);
        }
        if kind != sol::PAYLOAD_SOL || instance != sol::INSTANCE {
            return Response::to(req, cc::INVALID_DATA_FIELD, vec![]);
        }
        match req.cmd {
            sol::ACTIVATE_PAYLOAD => {
                if self.serial.holder().is_some() {
                    return Response::to(req, sol::activate_cc::ALREADY_ACTIVE, vec![]);
                }
                self.serial.activate(bmc_sid);
                let a = Activated {
                    inbound_max: 204,
                    outbound_max: 204,
                    port: self.port,
                };
                Response::to(req, cc::OK, a.encode())
            }
            sol::DEACTIVATE_PAYLOAD => {
                if self.serial.holder().is_none() {
                    // "Payload already deactivated".
                    return Response::to(req, 0x80, vec![]);
                }
                self.serial.deactivate();
                Response::to(req, cc::OK, vec![])
            }
            _ => {
                let mut d = self.serial.holder().unwrap_or(0).to_le_bytes().to_vec();
                d.extend_from_slice(&[0; 8]);
                Response::to(req, cc::OK, d)
            }
        }
    }

    fn auth_capabilities(&self, req: &Request) -> Response {
        // Channel 1; RMCP+ (bit 7) plus none/MD5/straight; non-null user
        // names; IPMI v2.0 supported.
        Response::to(req, cc::OK, vec![0x01, 0x80 | 0x15, 0x04, 0x02, 0, 0, 0, 0])
    }

    fn open_session(&mut self, peer: SocketAddr, payload: &[u8], now: Instant) -> Option<Vec<u8>> {
        let req = OpenSessionRequest::decode(payload).ok()?;
        // A retransmitted request gets the same session, not a new one.
        if let Some(s) = self
            .sessions
            .values()
            .find(|s| s.peer == peer && s.console_sid == req.console_sid)
        {
            return Some(s.open_reply.clone());
        }
        let (a, i, c) = req.algorithms;
        let reply = |status: u8, bmc_sid: u32, suite: Option<CipherSuite>| {
            OpenSessionResponse {
                tag: req.tag,
                status,
                max_privilege: Privilege::Administrator as u8,
                console_sid: req.console_sid,
                bmc_sid,
                suite,
            }
            .encode()
        };
        let seal = |p: Vec<u8>| wire::seal_v20(PayloadType::OpenSessionResponse, 0, 0, &p, None);
        let Some(suite) = CipherSuite::from_algorithms(a, i, c) else {
            return Some(seal(reply(status::NO_CIPHER_SUITE_MATCH, 0, None)));
        };
        if self.sessions.len() >= MAX_SESSIONS {
            return Some(seal(reply(status::NO_RESOURCES, 0, None)));
        }
        let max_privilege = match req.max_privilege {
            0 => Privilege::Administrator,
            p => match Privilege::from_u8(p) {
                Some(p) => p,
                None => return Some(seal(reply(status::INVALID_ROLE, 0, None))),
            },
        };
        let bmc_sid = random_session_id();
        let out = seal(reply(status::OK, bmc_sid, Some(suite)));
        self.sessions.insert(
            bmc_sid,
            Session {
                peer,
                console_sid: req.console_sid,
                suite,
                max_privilege,
                phase: Phase::Opened,
                out_seq: 0,
                in_seq_high: 0,
                in_seq_seen: 0,
                last_seen: now,
                last_reply: None,
                open_reply: out.clone(),
            },
        );
        self.stats.sessions_now = self.sessions.len();
        Some(out)
    }

    fn rakp1(&mut self, peer: SocketAddr, payload: &[u8]) -> Option<Vec<u8>> {
        let r1 = Rakp1::decode(payload).ok()?;
        let s = self.sessions.get_mut(&r1.bmc_sid)?;
        if s.peer != peer {
            return None;
        }
        let seal = |p: Vec<u8>| wire::seal_v20(PayloadType::Rakp2, 0, 0, &p, None);
        if let Phase::Challenged { exchange, rakp2 } = &s.phase
            && exchange.rm == r1.rm
        {
            return Some(rakp2.clone());
        }
        let refuse = |code| {
            seal(
                Rakp2 {
                    tag: r1.tag,
                    status: code,
                    console_sid: s.console_sid,
                    rc: [0; 16],
                    guid: [0; 16],
                    auth_code: vec![],
                }
                .encode(),
            )
        };
        if r1.username != self.creds.user {
            let out = refuse(status::UNAUTHORIZED_NAME);
            self.sessions.remove(&r1.bmc_sid);
            self.stats.auth_failures += 1;
            self.stats.sessions_now = self.sessions.len();
            return Some(out);
        }
        match Privilege::from_u8(r1.role) {
            Some(p) if p <= s.max_privilege => {}
            _ => {
                let out = refuse(status::UNAUTHORIZED_ROLE);
                self.sessions.remove(&r1.bmc_sid);
                self.stats.sessions_now = self.sessions.len();
                return Some(out);
            }
        }
        let mut rc = [0u8; 16];
        random_bytes(&mut rc);
        let exchange = Exchange {
            suite: s.suite,
            console_sid: s.console_sid,
            bmc_sid: r1.bmc_sid,
            rm: r1.rm,
            rc,
            guid: self.guid,
            role: r1.role,
            username: r1.username.clone(),
        };
        let out = seal(
            Rakp2 {
                tag: r1.tag,
                status: status::OK,
                console_sid: s.console_sid,
                rc,
                guid: self.guid,
                auth_code: exchange.rakp2_code(&self.creds.password),
            }
            .encode(),
        );
        s.phase = Phase::Challenged {
            exchange,
            rakp2: out.clone(),
        };
        Some(out)
    }

    fn rakp3(&mut self, peer: SocketAddr, payload: &[u8]) -> Option<Vec<u8>> {
        let r3 = Rakp3::decode(payload).ok()?;
        let s = self.sessions.get_mut(&r3.bmc_sid)?;
        if s.peer != peer {
            return None;
        }
        let seal = |p: Vec<u8>| wire::seal_v20(PayloadType::Rakp4, 0, 0, &p, None);
        let exchange = match &s.phase {
            Phase::Active { rakp4, .. } => return Some(rakp4.clone()),
            Phase::Opened => return None,
            Phase::Challenged { exchange, .. } => exchange.clone(),
        };
        let reply = |status: u8, icv: Vec<u8>| {
            seal(
                Rakp4 {
                    tag: r3.tag,
                    status,
                    console_sid: exchange.console_sid,
                    icv,
                }
                .encode(),
            )
        };
        if r3.status != status::OK
            || !codes_equal(&r3.auth_code, &exchange.rakp3_code(&self.creds.password))
        {
            let out = reply(status::INVALID_INTEGRITY_VALUE, vec![]);
            self.sessions.remove(&r3.bmc_sid);
            self.stats.auth_failures += 1;
            self.stats.sessions_now = self.sessions.len();
            return Some(out);
        }
        let sik = exchange.sik(&self.creds.password);
        let out = reply(status::OK, exchange.rakp4_icv(&sik));
        // RMCP+ sessions start at User; Set Session Privilege raises them.
        s.max_privilege = s
            .max_privilege
            .min(Privilege::from_u8(exchange.role).unwrap_or(Privilege::User));
        s.phase = Phase::Active {
            keys: Box::new(SessionKeys::from_sik(s.suite, sik)),
            privilege: Privilege::User.min(s.max_privilege),
            rakp4: out.clone(),
        };
        self.stats.sessions_opened += 1;
        self.stats.sessions_max = self.stats.sessions_max.max(self.active_sessions());
        Some(out)
    }

    fn active_sessions(&self) -> usize {
        self.sessions
            .values()
            .filter(|s| matches!(s.phase, Phase::Active { .. }))
            .count()
    }

    /// Runs one command of an active session.
    fn command(&mut self, bmc_sid: u32, req: &Request) -> Response {
        let s = self.sessions.get_mut(&bmc_sid).expect("caller checked");
        if let Some((key, resp)) = &s.last_reply
            && *key == (req.rq_seq, req.cmd)
        {
            return resp.clone();
        }
        let Phase::Active { privilege, .. } = &mut s.phase else {
            unreachable!("caller checked");
        };
        self.stats.commands += 1;
        if *privilege < Privilege::required(req.netfn, req.cmd) {
            return Response::to(req, cc::INSUFFICIENT_PRIVILEGE, vec![]);
        }
        let ok = |data| Response::to(req, cc::OK, data);
        match (req.netfn, req.cmd) {
            (cmd::NETFN_APP, cmd::SET_SESSION_PRIVILEGE) => {
                let Some(&level) = req.data.first() else {
                    return Response::to(req, cc::REQUEST_DATA_LENGTH, vec![]);
                };
                if level == 0 {
                    return ok(vec![*privilege as u8]);
                }
                match Privilege::from_u8(level) {
                    Some(p) if p <= s.max_privilege => {
                        *privilege = p;
                        ok(vec![p as u8])
                    }
                    // "Requested level exceeds channel and/or user limit".
                    Some(_) => Response::to(req, 0x82, vec![]),
                    None => Response::to(req, cc::INVALID_DATA_FIELD, vec![]),
                }
            }
            (cmd::NETFN_APP, cmd::CLOSE_SESSION) => ok(vec![]),
            (cmd::NETFN_APP, cmd::GET_CHANNEL_AUTH_CAPABILITIES) => self.auth_capabilities(req),
            (cmd::NETFN_APP, cmd::GET_DEVICE_ID) => ok(vec![
                0x20, 0x81, 0x01, 0x00, 0x02, 0xbf, 0x3e, 0x1c, 0x00, 0x01, 0x00,
            ]),
            _ if self.fail_rate > 0.0 && fastrand::f64() < self.fail_rate => {
                Response::to(req, cc::UNSPECIFIED, vec![])
            }
            (cmd::NETFN_CHASSIS, cmd::GET_CHASSIS_STATUS) => {
                // Misc. chassis state: identify state reported (bit 6) in
                // bits 5:4 (0 off, 1 temporary, 2 indefinite).
                let identify = match self.board.identify() {
                    Identify::Off => 0,
                    Identify::Temporary(_) => 1,
                    Identify::On => 2,
                };
                ok(vec![
                    u8::from(self.chassis.power_on),
                    0,
                    0x40 | identify << 4,
                    0,
                ])
            }
            (cmd::NETFN_CHASSIS, cmd::CHASSIS_IDENTIFY) => {
                let interval = req.data.first().copied().unwrap_or(15);
                let force = req.data.get(1).is_some_and(|f| f & 1 != 0);
                self.board.set_identify(interval, force);
                ok(vec![])
            }
            (cmd::NETFN_APP, cmd::GET_SYSTEM_GUID) => ok(self.guid.to_vec()),
            (
                cmd::NETFN_APP,
                sol::ACTIVATE_PAYLOAD
                | sol::DEACTIVATE_PAYLOAD
                | sol::GET_PAYLOAD_ACTIVATION_STATUS
                | sol::GET_PAYLOAD_INSTANCE_INFO,
            ) => self.payload_command(bmc_sid, req),
            (cmd::NETFN_STORAGE, c) => self.storage(req, c),
            (cmd::NETFN_SENSOR, cmd::GET_SENSOR_READING) => {
                answer(req, self.board.reading(&req.data, self.chassis.power_on))
            }
            (cmd::NETFN_SENSOR, cmd::GET_SENSOR_THRESHOLDS) => {
                answer(req, self.board.thresholds(&req.data))
            }
            (cmd::NETFN_CHASSIS, cmd::CHASSIS_CONTROL) => {
                match req.data.first().and_then(|&b| ChassisControl::from_u8(b)) {
                    Some(c) => {
                        self.chassis_control(c);
                        ok(vec![])
                    }
                    None => Response::to(req, cc::INVALID_DATA_FIELD, vec![]),
                }
            }
            (cmd::NETFN_CHASSIS, cmd::SET_BOOT_OPTIONS) => self.set_boot_option(req),
            (cmd::NETFN_CHASSIS, cmd::GET_BOOT_OPTIONS) => self.get_boot_option(req),
            _ => Response::to(req, cc::INVALID_COMMAND, vec![]),
        }
    }

    /// FRU, SDR repository and SEL commands.
    fn storage(&mut self, req: &Request, c: u8) -> Response {
        let b = &mut self.board;
        answer(
            req,
            match c {
                cmd::GET_FRU_AREA_INFO => b.fru_info(&req.data),
                cmd::READ_FRU_DATA => b.read_fru(&req.data),
                cmd::GET_SDR_REPOSITORY_INFO => Ok(b.sdr_info()),
                cmd::RESERVE_SDR_REPOSITORY => Ok(b.reserve_sdr()),
                cmd::GET_SDR => b.get_sdr(&req.data),
                cmd::GET_SEL_INFO => Ok(b.sel_info()),
                cmd::RESERVE_SEL => Ok(b.reserve_sel()),
                cmd::GET_SEL_ENTRY => b.sel_entry(&req.data),
                cmd::CLEAR_SEL => b.clear_sel(&req.data),
                cmd::GET_SEL_TIME => Ok(b.sel_time()),
                _ => Err(cc::INVALID_COMMAND),
            },
        )
    }

    fn chassis_control(&mut self, c: ChassisControl) {
        let (name, boots) = match c {
            ChassisControl::PowerDown => ("off", false),
            ChassisControl::SoftShutdown => ("soft", false),
            ChassisControl::PowerUp => ("on", !self.chassis.power_on),
            ChassisControl::PowerCycle => ("cycle", true),
            ChassisControl::HardReset => ("reset", true),
            ChassisControl::Diagnostic => ("diag", false),
        };
        match c {
            ChassisControl::PowerDown | ChassisControl::SoftShutdown => {
                self.chassis.power_on = false
            }
            ChassisControl::PowerUp | ChassisControl::PowerCycle | ChassisControl::HardReset => {
                self.chassis.power_on = true
            }
            ChassisControl::Diagnostic => {}
        }
        // A one-time boot override is used up by the boot it applied to.
        if boots && !self.chassis.boot_persistent {
            self.chassis.boot_device = None;
            self.chassis.boot_efi = false;
        }
        if self.chassis.history.len() == 16 {
            self.chassis.history.remove(0);
        }
        self.chassis.history.push(name);
        self.board.power_event(name);
        if boots || !self.chassis.power_on {
            self.serial.power(self.chassis.power_on, Instant::now());
        }
    }

    fn set_boot_option(&mut self, req: &Request) -> Response {
        let Some((&param, data)) = req.data.split_first() else {
            return Response::to(req, cc::REQUEST_DATA_LENGTH, vec![]);
        };
        match param & 0x7f {
            cmd::BOOT_PARAM_SET_IN_PROGRESS
            | cmd::BOOT_PARAM_FLAG_CLEARING
            | cmd::BOOT_PARAM_INFO_ACK => Response::to(req, cc::OK, vec![]),
            cmd::BOOT_PARAM_FLAGS => match BootFlags::decode(data) {
                Ok(f) => {
                    let c = &mut self.chassis;
                    c.boot_device = if f.valid {
                        f.device.map(|d| d.as_str())
                    } else {
                        None
                    };
                    c.boot_persistent = f.valid && f.persistent;
                    c.boot_efi = f.valid && f.efi;
                    Response::to(req, cc::OK, vec![])
                }
                Err(_) => Response::to(req, cc::INVALID_DATA_FIELD, vec![]),
            },
            _ => Response::to(req, cc::PARAMETER_NOT_SUPPORTED, vec![]),
        }
    }

    fn get_boot_option(&self, req: &Request) -> Response {
        let param = req.data.first().copied().unwrap_or(0xff) & 0x7f;
        if param != cmd::BOOT_PARAM_FLAGS {
            return Response::to(req, cc::PARAMETER_NOT_SUPPORTED, vec![]);
        }
        let c = &self.chassis;
        let flags = BootFlags {
            device: c.boot_device.and_then(xcat3_common::rpc::BootDevice::parse),
            persistent: c.boot_persistent,
            efi: c.boot_efi,
            valid: c.boot_device.is_some(),
        };
        let mut data = vec![0x01, cmd::BOOT_PARAM_FLAGS];
        data.extend_from_slice(&flags.encode());
        Response::to(req, cc::OK, data)
    }
}

/// A command's data, or its completion code.
fn answer(req: &Request, r: Result<Vec<u8>, u8>) -> Response {
    match r {
        Ok(data) => Response::to(req, cc::OK, data),
        Err(code) => Response::to(req, code, vec![]),
    }
}
