//! The Redfish inspect interface: the ComputerSystem and its Processors,
//! Memory, Storage and EthernetInterfaces, the manager and the firmware
//! inventory; the chassis' Thermal and Power (or its Sensors collection);
//! the system's (else the manager's) LogServices; the indicator LED.
//!
//! Every link followed is a path on the same BMC (`bmc_path`). A resource
//! the BMC does not have (404, no link) is a note in the result.

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};
use xcat3_common::hardware;
use xcat3_common::inspect::{
    Beacon, Event, EventLog, Fields, Health, Inventory, NicCheck, Reading, SensorFilter, SensorKind,
};

use xcat3_common::rpc::ErrorKind;

use super::{Redfish, Target};
use crate::drivers::{DriverError, Inspect, NodeInfo, Properties};

/// A part's read: a BMC-side failure (HTTP 5xx, an odd answer) becomes a
/// note naming the part; only a BMC that cannot be reached or refuses us
/// fails the node.
fn soften<T>(
    r: Result<Option<T>, DriverError>,
    what: &str,
    notes: &mut Vec<String>,
) -> Result<Option<T>, DriverError> {
    match r {
        Err(e) if matches!(e.kind, ErrorKind::BmcError | ErrorKind::Unsupported) => {
            notes.push(format!("{what}: {}", e.message));
            Ok(None)
        }
        r => r,
    }
}

/// Members of one collection followed at most.
const MAX_MEMBERS: usize = 256;

/// `v[key]` as text (strings as they are, numbers and booleans printed).
fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Copies `keys` (Redfish name, our name) of `v` that are set into `out`.
fn copy(v: &Value, keys: &[(&str, &str)], out: &mut Fields) {
    for (theirs, ours) in keys {
        if let Some(t) = text(v, theirs) {
            out.insert((*ours).to_string(), t);
        }
    }
}

fn link<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)?.get("@odata.id")?.as_str()
}

/// Whether a member says it is not there (an empty DIMM slot).
fn absent(v: &Value) -> bool {
    v.pointer("/Status/State").and_then(Value::as_str) == Some("Absent")
}

fn health(v: &Value) -> Option<Health> {
    match v.pointer("/Status/Health").and_then(Value::as_str)? {
        "OK" => Some(Health::Ok),
        "Warning" => Some(Health::Warning),
        "Critical" => Some(Health::Critical),
        _ => None,
    }
}

/// A reading's status: from its thresholds when it has them, else from
/// the BMC's own health; `na` without a reading.
fn status(value: Option<f64>, v: &Value) -> String {
    let Some(x) = value else {
        return "na".into();
    };
    let th = |k: &str| {
        v.get(k)
            .and_then(Value::as_f64)
            .or_else(|| v.pointer(&format!("/Thresholds/{k}/Reading"))?.as_f64())
    };
    let crossed = |upper: &str, lower: &str| {
        th(upper).is_some_and(|t| x >= t) || th(lower).is_some_and(|t| x <= t)
    };
    let by_threshold = if crossed("UpperThresholdCritical", "LowerThresholdCritical")
        || crossed("UpperCritical", "LowerCritical")
        || crossed("UpperThresholdFatal", "LowerThresholdFatal")
    {
        Some(Health::Critical)
    } else if crossed("UpperThresholdNonCritical", "LowerThresholdNonCritical")
        || crossed("UpperCaution", "LowerCaution")
    {
        Some(Health::Warning)
    } else {
        None
    };
    by_threshold
        .or_else(|| health(v))
        .unwrap_or(Health::Ok)
        .as_str()
        .into()
}

fn reading(v: &Value, kind: SensorKind, value_key: &str, unit: &str) -> Reading {
    let name = text(v, "Name")
        .or_else(|| text(v, "FanName"))
        .or_else(|| text(v, "MemberId"))
        .unwrap_or_else(|| "unnamed".into());
    let enabled = !matches!(
        v.pointer("/Status/State").and_then(Value::as_str),
        Some("Absent" | "Disabled" | "UnavailableOffline" | "StandbyOffline")
    );
    let value = enabled
        .then(|| v.get(value_key).and_then(Value::as_f64))
        .flatten();
    let unit = match (unit, v.get("ReadingUnits").and_then(Value::as_str)) {
        ("", Some("Percent")) => "percent".to_string(),
        ("", Some(u)) => u.to_string(),
        (u, _) => u.to_string(),
    };
    Reading {
        name,
        kind,
        value,
        unit,
        state: None,
        status: status(value, v),
    }
}

/// A Sensors-collection member (Redfish 2020.4+).
fn sensor_reading(v: &Value) -> Reading {
    let kind = match v.get("ReadingType").and_then(Value::as_str) {
        Some("Temperature") => SensorKind::Temp,
        Some("Rotational") => SensorKind::Fan,
        Some("Voltage") => SensorKind::Voltage,
        Some("Power" | "Current" | "EnergykWh" | "EnergyJoules") => SensorKind::Power,
        _ => SensorKind::Other,
    };
    let unit = match v.get("ReadingUnits").and_then(Value::as_str) {
        Some("Cel") => "degrees C",
        Some("V") => "Volts",
        Some("W") => "Watts",
        Some("A") => "Amps",
        Some("RPM" | "{rev}/min") => "RPM",
        _ => "",
    };
    reading(v, kind, "Reading", unit)
}

fn time_of(created: Option<&str>) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(created?)
        .ok()
        .map(|d| d.timestamp())
}

fn event_of(v: &Value) -> Event {
    let severity = match v.get("Severity").and_then(Value::as_str) {
        Some("Critical") => Health::Critical,
        Some("Warning") => Health::Warning,
        _ => Health::Ok,
    };
    Event {
        id: text(v, "Id").unwrap_or_default(),
        time: time_of(v.get("Created").and_then(Value::as_str)),
        source: text(v, "SensorType")
            .or_else(|| text(v, "EntryType"))
            .unwrap_or_else(|| "Log".into()),
        message: text(v, "Message").unwrap_or_default(),
        severity,
        asserted: v.get("EntryCode").and_then(Value::as_str) != Some("Deassert"),
    }
}

impl Redfish {
    /// The members of the collection at `path` (each fetched unless the
    /// collection holds them whole); None when the BMC has none there.
    async fn members(&self, t: &Target, path: &str) -> Result<Option<Vec<Value>>, DriverError> {
        let Some(c) = self.get_optional(t, path).await? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for m in c
            .get("Members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .take(MAX_MEMBERS)
        {
            // A link only: fetch it; an expanded member: take it.
            let is_link = m.as_object().is_some_and(|o| o.len() == 1);
            match m.get("@odata.id").and_then(Value::as_str) {
                Some(p) if is_link => {
                    if let Some(v) = self.get_optional(t, p).await? {
                        out.push(v);
                    }
                }
                _ => out.push(m.clone()),
            }
        }
        Ok(Some(out))
    }

    /// The collection `key` of `owner`, or a note saying it is missing.
    async fn collection(
        &self,
        t: &Target,
        owner: &Value,
        key: &str,
        notes: &mut Vec<String>,
    ) -> Result<Vec<Value>, DriverError> {
        let found = match link(owner, key) {
            Some(p) => {
                let before = notes.len();
                let r = soften(self.members(t, p).await, key, notes)?;
                if notes.len() > before {
                    return Ok(Vec::new());
                }
                r
            }
            None => None,
        };
        Ok(found.unwrap_or_else(|| {
            notes.push(format!("no {key}"));
            Vec::new()
        }))
    }

    /// The chassis of the system: its first `Links.Chassis`, else the
    /// first member of `/redfish/v1/Chassis`.
    async fn chassis(&self, t: &Target, system: &Value) -> Result<Option<Value>, DriverError> {
        let path = match system
            .pointer("/Links/Chassis/0/@odata.id")
            .and_then(Value::as_str)
        {
            Some(p) => p.to_string(),
            None => match self.get_optional(t, "/redfish/v1/Chassis").await? {
                Some(c) => match c.pointer("/Members/0/@odata.id").and_then(Value::as_str) {
                    Some(p) => p.to_string(),
                    None => return Ok(None),
                },
                None => return Ok(None),
            },
        };
        self.get_optional(t, &path).await
    }

    /// The log services of the system, else of its manager.
    async fn log_services(&self, t: &Target, system: &Value) -> Result<Vec<Value>, DriverError> {
        if let Some(p) = link(system, "LogServices")
            && let Some(v) = self.members(t, p).await?
            && !v.is_empty()
        {
            return Ok(v);
        }
        if let Some(m) = system
            .pointer("/Links/ManagedBy/0/@odata.id")
            .and_then(Value::as_str)
            && let Some(manager) = self.get_optional(t, m).await?
            && let Some(p) = link(&manager, "LogServices")
        {
            return Ok(self.members(t, p).await?.unwrap_or_default());
        }
        Ok(Vec::new())
    }
}

#[async_trait]
impl Inspect for Redfish {
    fn properties(&self) -> Properties {
        &[hardware::REDFISH]
    }

    fn validate(&self, node: &NodeInfo) -> Result<(), DriverError> {
        Target::of(node).map(drop)
    }

    async fn inventory(
        &self,
        node: &NodeInfo,
        nic_macs: &[String],
    ) -> Result<Inventory, DriverError> {
        let t = Target::of(node)?;
        let (_, sys) = self.system(&t).await?;
        let mut inv = Inventory::default();
        copy(
            &sys,
            &[
                ("Manufacturer", "manufacturer"),
                ("Model", "model"),
                ("SerialNumber", "serial"),
                ("PartNumber", "part_number"),
                ("SKU", "sku"),
                ("UUID", "uuid"),
                ("BiosVersion", "bios_version"),
            ],
            &mut inv.system,
        );
        if let Some(gib) = sys
            .pointer("/MemorySummary/TotalSystemMemoryGiB")
            .and_then(Value::as_f64)
        {
            inv.system.insert("memory_gib".into(), gib.to_string());
        }
        if let Some(n) = sys
            .pointer("/ProcessorSummary/Count")
            .and_then(Value::as_u64)
        {
            inv.system.insert("processor_count".into(), n.to_string());
        }
        let mut notes = Vec::new();
        for p in self.collection(&t, &sys, "Processors", &mut notes).await? {
            if absent(&p) {
                continue;
            }
            let mut f = Fields::new();
            copy(
                &p,
                &[
                    ("Id", "id"),
                    ("Socket", "socket"),
                    ("Manufacturer", "manufacturer"),
                    ("Model", "model"),
                    ("TotalCores", "cores"),
                    ("TotalThreads", "threads"),
                    ("MaxSpeedMHz", "max_speed_mhz"),
                ],
                &mut f,
            );
            inv.processors.push(f);
        }
        for m in self.collection(&t, &sys, "Memory", &mut notes).await? {
            if absent(&m) {
                continue;
            }
            let mut f = Fields::new();
            copy(
                &m,
                &[
                    ("Id", "id"),
                    ("CapacityMiB", "capacity_mib"),
                    ("MemoryDeviceType", "type"),
                    ("OperatingSpeedMhz", "speed_mhz"),
                    ("Manufacturer", "manufacturer"),
                    ("PartNumber", "part_number"),
                    ("SerialNumber", "serial"),
                ],
                &mut f,
            );
            inv.memory.push(f);
        }
        for s in self.collection(&t, &sys, "Storage", &mut notes).await? {
            let drives: Vec<&str> = s
                .get("Drives")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|d| d.get("@odata.id").and_then(Value::as_str))
                .take(MAX_MEMBERS)
                .collect();
            for d in drives {
                let Some(d) = soften(self.get_optional(&t, d).await, "drive", &mut notes)? else {
                    continue;
                };
                let mut f = Fields::new();
                copy(
                    &d,
                    &[
                        ("Id", "id"),
                        ("Model", "model"),
                        ("CapacityBytes", "capacity_bytes"),
                        ("MediaType", "media"),
                        ("Protocol", "protocol"),
                        ("SerialNumber", "serial"),
                    ],
                    &mut f,
                );
                inv.storage.push(f);
            }
        }
        for nic in self
            .collection(&t, &sys, "EthernetInterfaces", &mut notes)
            .await?
        {
            if let Some(mac) =
                text(&nic, "MACAddress").or_else(|| text(&nic, "PermanentMACAddress"))
            {
                inv.macs.push(mac.to_ascii_lowercase());
            }
        }
        if !inv.macs.is_empty() {
            inv.nics = Some(NicCheck::compare(nic_macs, &inv.macs));
        }
        if let Some(m) = sys
            .pointer("/Links/ManagedBy/0/@odata.id")
            .and_then(Value::as_str)
            && let Some(manager) = soften(self.get_optional(&t, m).await, "manager", &mut notes)?
        {
            copy(
                &manager,
                &[("FirmwareVersion", "firmware"), ("Model", "model")],
                &mut inv.bmc,
            );
        }
        let update = soften(
            self.get_optional(&t, "/redfish/v1/UpdateService").await,
            "UpdateService",
            &mut notes,
        )?;
        let firmware = match update.as_ref().and_then(|u| link(u, "FirmwareInventory")) {
            Some(p) => soften(self.members(&t, p).await, "FirmwareInventory", &mut notes)?,
            None => None,
        };
        match firmware {
            Some(items) => {
                for f in items {
                    if let (Some(name), Some(version)) = (
                        text(&f, "Name").or_else(|| text(&f, "Id")),
                        text(&f, "Version"),
                    ) {
                        inv.firmware.insert(name, version);
                    }
                }
            }
            None => notes.push("no FirmwareInventory".into()),
        }
        inv.notes = notes;
        Ok(inv)
    }

    async fn vitals(
        &self,
        node: &NodeInfo,
        which: SensorFilter,
    ) -> Result<Vec<Reading>, DriverError> {
        let t = Target::of(node)?;
        let (_, sys) = self.system(&t).await?;
        let Some(chassis) = self.chassis(&t, &sys).await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let thermal = match link(&chassis, "Thermal") {
            Some(p) => self.get_optional(&t, p).await?,
            None => None,
        };
        let power = match link(&chassis, "Power") {
            Some(p) => self.get_optional(&t, p).await?,
            None => None,
        };
        let list = |v: &Option<Value>, key: &str| -> Vec<Value> {
            v.as_ref()
                .and_then(|v| v.get(key))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        for v in list(&thermal, "Temperatures") {
            out.push(reading(&v, SensorKind::Temp, "ReadingCelsius", "degrees C"));
        }
        for v in list(&thermal, "Fans") {
            out.push(reading(&v, SensorKind::Fan, "Reading", ""));
        }
        for v in list(&power, "Voltages") {
            out.push(reading(&v, SensorKind::Voltage, "ReadingVolts", "Volts"));
        }
        for v in list(&power, "PowerControl") {
            out.push(reading(
                &v,
                SensorKind::Power,
                "PowerConsumedWatts",
                "Watts",
            ));
        }
        for v in list(&power, "PowerSupplies") {
            let key = if v.get("PowerInputWatts").is_some() {
                "PowerInputWatts"
            } else {
                "LastPowerOutputWatts"
            };
            out.push(reading(&v, SensorKind::Power, key, "Watts"));
        }
        if thermal.is_none()
            && power.is_none()
            && let Some(p) = link(&chassis, "Sensors")
        {
            for v in self.members(&t, p).await?.unwrap_or_default() {
                out.push(sensor_reading(&v));
            }
        }
        out.retain(|r| which.wants(r.kind));
        Ok(out)
    }

    async fn event_log(
        &self,
        node: &NodeInfo,
        count: u32,
        clear: bool,
    ) -> Result<EventLog, DriverError> {
        let t = Target::of(node)?;
        let (_, sys) = self.system(&t).await?;
        let services = self.log_services(&t, &sys).await?;
        let mut log = EventLog::default();
        let mut all = Vec::new();
        for s in &services {
            let Some(p) = link(s, "Entries") else {
                continue;
            };
            let Some(entries) = self.get_optional(&t, p).await? else {
                continue;
            };
            let members = entries
                .get("Members")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            log.total += entries
                .get("Members@odata.count")
                .and_then(Value::as_u64)
                .unwrap_or(members.len() as u64) as u32;
            // Entries are usually inline; links only are fetched, the
            // newest `count` of them.
            let skip = members.len().saturating_sub(count as usize);
            for m in members.into_iter().skip(skip) {
                let whole = m.get("Message").is_some() || m.get("Created").is_some();
                match m.get("@odata.id").and_then(Value::as_str) {
                    Some(p) if !whole => {
                        if let Some(v) = self.get_optional(&t, p).await? {
                            all.push(event_of(&v));
                        }
                    }
                    _ => all.push(event_of(&m)),
                }
            }
        }
        all.sort_by_key(|e| e.time.unwrap_or(i64::MIN));
        let skip = all.len().saturating_sub(count as usize);
        log.events = all.into_iter().skip(skip).collect();
        if clear {
            for s in &services {
                let Some(id) = s.get("@odata.id").and_then(Value::as_str) else {
                    continue;
                };
                let target = s
                    .pointer("/Actions/#LogService.ClearLog/target")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{id}/Actions/LogService.ClearLog"));
                self.call(&t, Method::POST, &target, Some(json!({})))
                    .await?;
            }
            log.cleared = true;
        }
        Ok(log)
    }

    /// `IndicatorLED` (`Lit`, `Blinking`, `Off`) where the system has it,
    /// else `LocationIndicatorActive` (on for `on` and `blink`).
    async fn set_beacon(&self, node: &NodeInfo, state: Beacon) -> Result<(), DriverError> {
        let t = Target::of(node)?;
        let (path, sys) = self.system(&t).await?;
        let body =
            if sys.get("IndicatorLED").is_some() || sys.get("LocationIndicatorActive").is_none() {
                json!({"IndicatorLED": match state {
                    Beacon::On => "Lit",
                    Beacon::Blink => "Blinking",
                    Beacon::Off => "Off",
                }})
            } else {
                json!({"LocationIndicatorActive": state != Beacon::Off})
            };
        self.call(&t, Method::PATCH, &path, Some(body))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_decide_status_before_the_bmc_health() {
        let v = json!({"Name": "CPU1", "ReadingCelsius": 96,
            "UpperThresholdNonCritical": 85, "UpperThresholdCritical": 95,
            "Status": {"State": "Enabled", "Health": "OK"}});
        let r = reading(&v, SensorKind::Temp, "ReadingCelsius", "degrees C");
        assert_eq!((r.value, r.status.as_str()), (Some(96.0), "critical"));
        let v = json!({"Name": "FAN1", "Reading": 40, "ReadingUnits": "Percent",
            "Status": {"State": "Enabled", "Health": "Warning"}});
        let r = reading(&v, SensorKind::Fan, "Reading", "");
        assert_eq!((r.unit.as_str(), r.status.as_str()), ("percent", "warning"));
        let v = json!({"Name": "PSU2", "Status": {"State": "Absent"}, "PowerInputWatts": 0});
        assert_eq!(
            reading(&v, SensorKind::Power, "PowerInputWatts", "Watts").status,
            "na"
        );
    }

    #[test]
    fn log_entries_read_severity_and_time() {
        let e = event_of(&json!({"Id": "4", "Created": "2026-12-01T10:00:00+00:00",
            "Severity": "Critical", "Message": "PSU 2 lost input", "SensorType": "Power Supply / Converter"}));
        assert_eq!(e.severity, Health::Critical);
        assert_eq!(e.time, Some(1_796_119_200));
        assert_eq!(e.source, "Power Supply / Converter");
    }
}
