//! The IPMI inspect interface: Get Device ID, System GUID and FRU for the
//! inventory; the SDR repository and Get Sensor Reading for vitals; the
//! SEL for the event log; Chassis Identify for the beacon.
//!
//! The SDR is cached per BMC model and firmware (Get Device ID's bytes and
//! the repository's record count), decoded, in memory: a fleet of one
//! model reads it once, and a later `vitals` costs one round trip per
//! sensor. While one node of a model reads it, the others of that model
//! wait for its result instead of reading it too.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::OnceCell;
use xcat3_common::hardware;
use xcat3_common::inspect::{
    Beacon, Event, EventLog, Fields, Health, HealthReport, Inventory, Reading, SensorFilter,
    SensorKind,
};
use xcat3_ipmi::cmd::{self, Privilege, cc};
use xcat3_ipmi::fru::{self, AreaKind};
use xcat3_ipmi::sdr::{self, SensorRecord, Severity};
use xcat3_ipmi::sel::{self, SelEntry};

use super::session::{Session, SessionError};
use super::{Bmc, Ipmi};
use crate::drivers::{DriverError, HEALTH_EVENTS, Inspect, NodeInfo, Properties};

/// Records one repository walk reads at most (a loop guard).
const MAX_RECORDS: usize = 2048;
/// Bytes asked for per partial SDR or FRU read at first; halved when the
/// BMC says it cannot return that many.
const FIRST_CHUNK: usize = 32;
const MIN_CHUNK: usize = 8;

/// The sensors of one BMC model and firmware.
type Sdr = Arc<[SensorRecord]>;

/// A BMC model and firmware: Get Device ID's answer (without the
/// "update in progress" bit) and the repository's record count.
type Model = (Vec<u8>, u16);

/// Decoded SDRs by model.
#[derive(Default)]
pub struct SdrCache {
    by_model: Mutex<HashMap<Model, Arc<OnceCell<Sdr>>>>,
}

impl SdrCache {
    fn slot(&self, key: Model) -> Arc<OnceCell<Sdr>> {
        self.by_model
            .lock()
            .expect("sdr cache")
            .entry(key)
            .or_default()
            .clone()
    }
}

/// Whether a completion code means "ask for fewer bytes".
fn too_many_bytes(e: &SessionError) -> bool {
    matches!(
        e,
        SessionError::Completion {
            code: cc::REQUEST_DATA_LENGTH | 0xc8 | cc::CANNOT_RETURN_BYTES | cc::UNSPECIFIED,
            ..
        }
    )
}

fn code_is(e: &SessionError, codes: &[u8]) -> bool {
    matches!(e, SessionError::Completion { code, .. } if codes.contains(code))
}

async fn device_id(s: &mut Session) -> Result<Vec<u8>, SessionError> {
    let d = s
        .command("Get Device ID", cmd::NETFN_APP, cmd::GET_DEVICE_ID, &[])
        .await?;
    if d.len() < 11 {
        return Err(s.bad_answer("Get Device ID", "short answer"));
    }
    Ok(d)
}

async fn reserve(
    s: &mut Session,
    what: &'static str,
    command: u8,
) -> Result<[u8; 2], SessionError> {
    let r = s.command(what, cmd::NETFN_STORAGE, command, &[]).await?;
    r.get(..2)
        .map(|b| [b[0], b[1]])
        .ok_or_else(|| s.bad_answer(what, "short answer"))
}

/// Walks the SDR repository: each record's header, then its body in
/// partial reads; a cancelled reservation is renewed and the read retried.
async fn read_sdr(s: &mut Session) -> Result<Vec<SensorRecord>, SessionError> {
    const RESERVE: &str = "Reserve SDR Repository";
    let mut reservation = reserve(s, RESERVE, cmd::RESERVE_SDR_REPOSITORY).await?;
    let mut chunk = FIRST_CHUNK;
    let mut id = 0u16;
    let mut out = Vec::new();
    for _ in 0..MAX_RECORDS {
        let mut record: Vec<u8> = Vec::with_capacity(64);
        let mut next = sdr::LAST_RECORD;
        let mut renewals = 0;
        loop {
            let want = if record.is_empty() {
                sdr::HEADER_LEN
            } else {
                let total = sdr::HEADER_LEN + usize::from(record[4]);
                if record.len() >= total {
                    break;
                }
                chunk.min(total - record.len())
            };
            let id_b = id.to_le_bytes();
            let req = [
                reservation[0],
                reservation[1],
                id_b[0],
                id_b[1],
                record.len() as u8,
                want as u8,
            ];
            match s
                .command("Get SDR", cmd::NETFN_STORAGE, cmd::GET_SDR, &req)
                .await
            {
                Ok(d) if d.len() > 2 => {
                    next = u16::from_le_bytes([d[0], d[1]]);
                    record.extend_from_slice(&d[2..]);
                }
                Ok(_) => return Err(s.bad_answer("Get SDR", "no record data")),
                Err(e) if code_is(&e, &[cc::RESERVATION_CANCELLED]) && renewals < 3 => {
                    renewals += 1;
                    reservation = reserve(s, RESERVE, cmd::RESERVE_SDR_REPOSITORY).await?;
                }
                Err(e) if too_many_bytes(&e) && chunk > MIN_CHUNK && !record.is_empty() => {
                    chunk /= 2;
                }
                Err(e) => return Err(e),
            }
        }
        // Records we cannot decode are skipped, as ipmitool does.
        if let Ok(Some(r)) = sdr::decode_record(&record) {
            out.push(r);
        }
        if next == sdr::LAST_RECORD || next == id {
            break;
        }
        id = next;
    }
    Ok(out)
}

/// What `vitals` groups a sensor under: its type, else its unit.
fn kind_of(r: &SensorRecord) -> SensorKind {
    if !r.is_threshold() {
        return SensorKind::Other;
    }
    match (r.sensor_type, r.base_unit) {
        (0x01, _) | (_, 1..=3) => SensorKind::Temp,
        (0x04, _) | (_, 18) => SensorKind::Fan,
        (0x02, _) | (_, 4) => SensorKind::Voltage,
        (0x03 | 0x08 | 0x09, _) | (_, 5 | 6 | 9) => SensorKind::Power,
        _ => SensorKind::Other,
    }
}

fn health_of(s: Severity) -> Health {
    match s {
        Severity::Ok => Health::Ok,
        Severity::NonCritical => Health::Warning,
        Severity::Critical | Severity::NonRecoverable => Health::Critical,
    }
}

/// Reads the sensors of `sdr` that `which` selects. A sensor the BMC does
/// not read now (absent, host off) is `na`; it does not fail the node.
async fn read_sensors(
    s: &mut Session,
    sdr: &[SensorRecord],
    which: SensorFilter,
) -> Result<Vec<Reading>, SessionError> {
    let mut out = Vec::new();
    for r in sdr {
        let kind = kind_of(r);
        if !which.wants(kind) {
            continue;
        }
        let mut reading = Reading {
            name: r.name.clone(),
            kind,
            value: None,
            unit: if r.full { r.unit() } else { String::new() },
            state: None,
            status: "na".into(),
        };
        // Sensors of other controllers need bridging, which is not done.
        if r.owner == 0x20 && r.lun == 0 {
            let answer = s
                .command(
                    "Get Sensor Reading",
                    cmd::NETFN_SENSOR,
                    cmd::GET_SENSOR_READING,
                    &[r.number],
                )
                .await;
            let data = match answer {
                Ok(d) => Some(d),
                Err(SessionError::Completion { .. }) => None,
                Err(e) => return Err(e),
            };
            if let Some(v) = data.and_then(|d| sdr::decode_reading(&d).ok())
                && !v.unavailable
            {
                if r.is_threshold() {
                    reading.value = r.convert(v.raw);
                    reading.status = health_of(sdr::threshold_severity(v.state)).as_str().into();
                } else {
                    let worst = (0..15)
                        .filter(|bit| v.state & (1 << bit) != 0)
                        .map(|bit| sel::offset_severity(r.sensor_type, r.event_type, bit))
                        .max()
                        .unwrap_or(Severity::Ok);
                    reading.state = Some(if v.state < 0x100 {
                        format!("{:#04x}", v.state)
                    } else {
                        format!("{:#06x}", v.state)
                    });
                    reading.status = health_of(worst).as_str().into();
                }
            }
        }
        out.push(reading);
    }
    Ok(out)
}

async fn sel_entry(s: &mut Session, id: u16) -> Result<(u16, SelEntry), SessionError> {
    let b = id.to_le_bytes();
    let d = s
        .command(
            "Get SEL Entry",
            cmd::NETFN_STORAGE,
            cmd::GET_SEL_ENTRY,
            &[0, 0, b[0], b[1], 0, 0xff],
        )
        .await?;
    let next = d
        .get(..2)
        .map(|n| u16::from_le_bytes([n[0], n[1]]))
        .ok_or_else(|| s.bad_answer("Get SEL Entry", "short answer"))?;
    let e = sel::decode_entry(&d[2..]).map_err(|e| s.bad_answer("Get SEL Entry", e))?;
    Ok((next, e))
}

/// Walks the SEL from `from` to its end, keeping the last `keep` entries.
async fn walk_sel(
    s: &mut Session,
    from: u16,
    keep: usize,
    limit: usize,
) -> Result<VecDeque<SelEntry>, SessionError> {
    let mut out = VecDeque::with_capacity(keep + 1);
    let mut id = from;
    for _ in 0..limit {
        let (next, e) = sel_entry(s, id).await?;
        out.push_back(e);
        if out.len() > keep {
            out.pop_front();
        }
        if next == sel::LAST_ENTRY || next == id {
            break;
        }
        id = next;
    }
    Ok(out)
}

/// The newest `count` SEL entries. Most BMCs number entries one after
/// another, so the walk starts `count - 1` ids before the last one; when
/// that id does not exist, it walks the whole log.
async fn read_sel(s: &mut Session, count: u32) -> Result<EventLog, SessionError> {
    let info = s
        .command("Get SEL Info", cmd::NETFN_STORAGE, cmd::GET_SEL_INFO, &[])
        .await?;
    let info = sel::decode_info(&info).map_err(|e| s.bad_answer("Get SEL Info", e))?;
    let mut log = EventLog {
        total: info.entries.into(),
        ..EventLog::default()
    };
    if info.entries == 0 || count == 0 {
        return Ok(log);
    }
    let keep = count.min(u32::from(info.entries)) as usize;
    let limit = usize::from(info.entries) + 16;
    let (_, last) = sel_entry(s, sel::LAST_ENTRY).await?;
    let guess = last.id.saturating_sub(keep as u16 - 1).max(1);
    let entries = match walk_sel(s, guess, keep, keep + 16).await {
        Ok(v) if v.len() == keep && v.back().map(|e| e.id) == Some(last.id) => v,
        Ok(_) => walk_sel(s, sel::FIRST_ENTRY, keep, limit).await?,
        Err(e) if code_is(&e, &[cc::NOT_PRESENT, cc::PARAMETER_OUT_OF_RANGE]) => {
            walk_sel(s, sel::FIRST_ENTRY, keep, limit).await?
        }
        Err(e) => return Err(e),
    };
    log.events = entries
        .iter()
        .map(|e| Event {
            id: e.id.to_string(),
            time: e.unix_time(),
            source: e.sensor(),
            message: e.description(),
            severity: health_of(e.severity()),
            asserted: !e.deasserted,
        })
        .collect();
    Ok(log)
}

/// Clear SEL, then waits (briefly) for the erasure to complete.
async fn clear_sel(s: &mut Session) -> Result<(), SessionError> {
    let r = reserve(s, "Reserve SEL", cmd::RESERVE_SEL).await?;
    let mut action = 0xaa;
    for _ in 0..20 {
        let d = s
            .command(
                "Clear SEL",
                cmd::NETFN_STORAGE,
                cmd::CLEAR_SEL,
                &[r[0], r[1], b'C', b'L', b'R', action],
            )
            .await?;
        if d.first().is_some_and(|p| p & 0x0f == 0x01) {
            return Ok(());
        }
        action = 0x00;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(s.bad_answer("Clear SEL", "the erasure did not complete in 2 s"))
}

/// Reads `len` bytes of FRU device 0 from `at`, in chunks.
async fn read_fru_bytes(
    s: &mut Session,
    at: usize,
    len: usize,
    words: bool,
    chunk: &mut usize,
) -> Result<Vec<u8>, SessionError> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let unit = if words { 2 } else { 1 };
        let off = (at + out.len()) / unit;
        let want = (*chunk).min(len - out.len()) / unit;
        let o = (off as u16).to_le_bytes();
        match s
            .command(
                "Read FRU Data",
                cmd::NETFN_STORAGE,
                cmd::READ_FRU_DATA,
                &[0, o[0], o[1], want.max(1) as u8],
            )
            .await
        {
            Ok(d) => {
                let n = usize::from(*d.first().unwrap_or(&0)) * unit;
                let data = d.get(1..1 + n).unwrap_or(&[]);
                if data.is_empty() {
                    return Err(s.bad_answer("Read FRU Data", "no data returned"));
                }
                out.extend_from_slice(data);
            }
            Err(e) if too_many_bytes(&e) && *chunk > MIN_CHUNK => *chunk /= 2,
            Err(e) => return Err(e),
        }
    }
    out.truncate(len);
    Ok(out)
}

/// Reads FRU device 0 into `inv`: the header, then each area it names.
/// A missing FRU or a corrupt area is a note, not a failure.
async fn read_fru(s: &mut Session, inv: &mut Inventory) -> Result<(), SessionError> {
    let info = match s
        .command(
            "Get FRU Inventory Area Info",
            cmd::NETFN_STORAGE,
            cmd::GET_FRU_AREA_INFO,
            &[0],
        )
        .await
    {
        Ok(d) if d.len() >= 3 => d,
        Ok(_) | Err(SessionError::Completion { .. }) => {
            inv.notes.push("no FRU".into());
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let size = usize::from(u16::from_le_bytes([info[0], info[1]]));
    let words = info[2] & 0x01 != 0;
    if size < 8 {
        inv.notes.push("no FRU".into());
        return Ok(());
    }
    let mut chunk = FIRST_CHUNK;
    let header = read_fru_bytes(s, 0, 8, words, &mut chunk).await?;
    let header = match fru::decode_header(&header) {
        Ok(h) => h,
        Err(e) => {
            inv.notes.push(e.to_string());
            return Ok(());
        }
    };
    for (kind, at) in [
        (AreaKind::Product, header.product),
        (AreaKind::Board, header.board),
        (AreaKind::Chassis, header.chassis),
    ] {
        let Some(at) = at.filter(|a| a + 2 <= size) else {
            continue;
        };
        let start = read_fru_bytes(s, at, 2, words, &mut chunk).await?;
        let len = fru::area_len(&start).unwrap_or(0).min(size - at);
        let bytes = read_fru_bytes(s, at, len, words, &mut chunk).await?;
        match fru::decode_area(kind, &bytes) {
            Ok(area) => {
                let target = match kind {
                    AreaKind::Product => &mut inv.system,
                    AreaKind::Board => &mut inv.board,
                    AreaKind::Chassis => &mut inv.chassis,
                };
                for (k, v) in &area.fields {
                    // The product's name is the system's model.
                    let k = if kind == AreaKind::Product && *k == "product" {
                        "model"
                    } else {
                        k
                    };
                    target.insert(k.to_string(), v.clone());
                }
                if let Some(t) = area.mfg_time
                    && let Some(d) = chrono::DateTime::from_timestamp(t, 0)
                {
                    target.insert("mfg_date".into(), d.format("%Y-%m-%dT%H:%MZ").to_string());
                }
                if let Some(t) = area.chassis_type {
                    target.insert("type".into(), t.to_string());
                }
            }
            Err(e) => inv.notes.push(e.to_string()),
        }
    }
    Ok(())
}

/// Get Device ID as inventory fields.
fn bmc_fields(d: &[u8]) -> Fields {
    let mut f = Fields::new();
    f.insert("firmware".into(), format!("{}.{:02x}", d[2] & 0x7f, d[3]));
    f.insert(
        "ipmi_version".into(),
        format!("{}.{}", d[4] & 0x0f, d[4] >> 4),
    );
    f.insert(
        "manufacturer_id".into(),
        u32::from_le_bytes([d[6], d[7], d[8] & 0x0f, 0]).to_string(),
    );
    f.insert(
        "product_id".into(),
        u16::from_le_bytes([d[9], d[10]]).to_string(),
    );
    f.insert("device_id".into(), d[0].to_string());
    f
}

/// A GUID as Get System GUID sends it (least significant byte first), in
/// the usual text form.
fn guid_text(g: &[u8]) -> String {
    let b: Vec<u8> = g.iter().rev().copied().collect();
    format!(
        "{}-{}-{}-{}-{}",
        hex(&b[0..4]),
        hex(&b[4..6]),
        hex(&b[6..8]),
        hex(&b[8..10]),
        hex(&b[10..16])
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Ipmi {
    /// The decoded SDR of this BMC's model, read now if no node of that
    /// model was read before (others of the model wait for that read).
    async fn sdr(&self, s: &mut Session) -> Result<Sdr, SessionError> {
        let mut id = device_id(s).await?;
        // The "device available" bit changes during updates; not a model.
        id[2] &= 0x7f;
        let info = s
            .command(
                "Get SDR Repository Info",
                cmd::NETFN_STORAGE,
                cmd::GET_SDR_REPOSITORY_INFO,
                &[],
            )
            .await?;
        let info = sdr::decode_repository_info(&info)
            .map_err(|e| s.bad_answer("Get SDR Repository Info", e))?;
        let slot = self.sdr_cache.slot((id, info.records));
        slot.get_or_try_init(|| async { read_sdr(s).await.map(Sdr::from) })
            .await
            .cloned()
    }
}

#[async_trait]
impl Inspect for Ipmi {
    fn properties(&self) -> Properties {
        &[hardware::IPMI]
    }

    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError> {
        Bmc::of(node).map(drop)
    }

    async fn inventory(
        &self,
        node: &NodeInfo,
        _nic_macs: &[String],
    ) -> Result<Inventory, DriverError> {
        self.with_session(node, Privilege::User, async |s| {
            let mut inv = Inventory {
                bmc: bmc_fields(&device_id(s).await?),
                ..Inventory::default()
            };
            match s
                .command("Get System GUID", cmd::NETFN_APP, cmd::GET_SYSTEM_GUID, &[])
                .await
            {
                Ok(g) if g.len() >= 16 => {
                    inv.system.insert("uuid".into(), guid_text(&g[..16]));
                }
                Ok(_) | Err(SessionError::Completion { .. }) => {
                    inv.notes.push("no system GUID".into())
                }
                Err(e) => return Err(e),
            }
            read_fru(s, &mut inv).await?;
            // Standard IPMI does not list the host's processors, memory,
            // disks or MACs (Redfish does).
            Ok(inv)
        })
        .await
    }

    async fn vitals(
        &self,
        node: &NodeInfo,
        which: SensorFilter,
    ) -> Result<Vec<Reading>, DriverError> {
        self.with_session(node, Privilege::User, async |s| {
            let sdr = self.sdr(s).await?;
            read_sensors(s, &sdr, which).await
        })
        .await
    }

    async fn event_log(
        &self,
        node: &NodeInfo,
        count: u32,
        clear: bool,
    ) -> Result<EventLog, DriverError> {
        let privilege = if clear {
            Privilege::Operator
        } else {
            Privilege::User
        };
        self.with_session(node, privilege, async |s| {
            let mut log = read_sel(s, count).await?;
            if clear {
                clear_sel(s).await?;
                log.cleared = true;
            }
            Ok(log)
        })
        .await
    }

    /// Chassis Identify: `on` forces it on until `off`; `blink` is the
    /// BMC's timed identify (255 s, the longest), which ends by itself.
    async fn set_beacon(&self, node: &NodeInfo, state: Beacon) -> Result<(), DriverError> {
        self.with_session(node, Privilege::Operator, async |s| {
            let data: &[u8] = match state {
                Beacon::On => &[0, 1],
                Beacon::Blink => &[255],
                Beacon::Off => &[0],
            };
            let r = s
                .command(
                    "Chassis Identify",
                    cmd::NETFN_CHASSIS,
                    cmd::CHASSIS_IDENTIFY,
                    data,
                )
                .await;
            match r {
                // BMCs without "force on" take the longest interval.
                Err(e)
                    if state == Beacon::On
                        && code_is(&e, &[cc::REQUEST_DATA_LENGTH, cc::INVALID_DATA_FIELD]) =>
                {
                    s.command(
                        "Chassis Identify",
                        cmd::NETFN_CHASSIS,
                        cmd::CHASSIS_IDENTIFY,
                        &[255],
                    )
                    .await
                    .map(drop)
                }
                r => r.map(drop),
            }
        })
        .await
    }

    /// Sensors and events in one session.
    async fn health(&self, node: &NodeInfo, now: i64) -> Result<HealthReport, DriverError> {
        self.with_session(node, Privilege::User, async |s| {
            let sdr = self.sdr(s).await?;
            let readings = read_sensors(s, &sdr, SensorFilter::All).await?;
            let log = read_sel(s, HEALTH_EVENTS).await?;
            Ok(HealthReport::assess(&readings, &log, now))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_print_most_significant_byte_first() {
        let g: Vec<u8> = (0u8..16).collect();
        assert_eq!(guid_text(&g), "0f0e0d0c-0b0a-0908-0706-050403020100");
    }

    #[test]
    fn device_ids_read_as_versions() {
        let f = bmc_fields(&[
            0x20, 0x81, 0x02, 0x15, 0x02, 0xbf, 0x57, 0x01, 0x00, 0x34, 0x12,
        ]);
        assert_eq!(f["firmware"], "2.15");
        assert_eq!(f["ipmi_version"], "2.0");
        assert_eq!(f["manufacturer_id"], "343");
        assert_eq!(f["product_id"], "4660");
    }
}
