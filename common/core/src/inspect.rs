//! What the inspect interface reports: a node's hardware inventory, its
//! sensor readings, its event log and its health. Wire types: a conductor
//! sends them as a node's result text (JSON), the API stores inventories
//! and serves them, the CLI prints them. Parts a BMC cannot tell are
//! absent fields or `notes`, never failures.

use serde::{Deserialize, Serialize};

/// Which sensors `vitals` reads (xCAT's `rvitals` groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SensorKind {
    Temp,
    Fan,
    Voltage,
    Power,
    /// Anything else (discrete status sensors, ...); only in `all`.
    Other,
}

impl SensorKind {
    pub const CHOICES: &'static [&'static str] = &["temp", "fan", "voltage", "power", "all"];

    pub fn as_str(self) -> &'static str {
        match self {
            SensorKind::Temp => "temp",
            SensorKind::Fan => "fan",
            SensorKind::Voltage => "voltage",
            SensorKind::Power => "power",
            SensorKind::Other => "other",
        }
    }
}

/// `vitals` selection: one kind, or every sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorFilter {
    All,
    Only(SensorKind),
}

impl SensorFilter {
    pub fn parse(s: &str) -> Option<SensorFilter> {
        Some(match s {
            "all" | "" => SensorFilter::All,
            "temp" => SensorFilter::Only(SensorKind::Temp),
            "fan" => SensorFilter::Only(SensorKind::Fan),
            "voltage" => SensorFilter::Only(SensorKind::Voltage),
            "power" => SensorFilter::Only(SensorKind::Power),
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SensorFilter::All => "all",
            SensorFilter::Only(k) => k.as_str(),
        }
    }

    pub fn wants(self, kind: SensorKind) -> bool {
        match self {
            SensorFilter::All => true,
            SensorFilter::Only(k) => k == kind,
        }
    }
}

/// How healthy a sensor, an event or a node is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Default,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    #[default]
    Ok,
    Warning,
    Critical,
}

impl Health {
    pub const ALL: &'static [Health] = &[Health::Ok, Health::Warning, Health::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Warning => "warning",
            Health::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Health> {
        Health::ALL.iter().copied().find(|h| h.as_str() == s)
    }
}

/// One sensor, as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reading {
    pub name: String,
    pub kind: SensorKind,
    /// None: no reading (`na`): the sensor is off with the host, absent,
    /// or discrete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// `degrees C`, `RPM`, `Volts`, `Watts`, ... (empty when discrete).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    /// Discrete sensors: the asserted state bits (`0x0080`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// `ok`, `warning` or `critical`; `na` without a reading.
    pub status: String,
}

impl Reading {
    /// `45 degrees C`, `12.06 Volts`, `na`, or the discrete state.
    pub fn value_text(&self) -> String {
        match (self.value, &self.state) {
            (Some(v), _) => {
                let v = if (v - v.round()).abs() < 1e-9 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                };
                if self.unit.is_empty() {
                    v
                } else {
                    format!("{v} {}", self.unit)
                }
            }
            (None, Some(s)) => s.clone(),
            (None, None) => "na".into(),
        }
    }

    /// The health this reading says (`na` counts as ok: an unread sensor
    /// is not a fault).
    pub fn health(&self) -> Health {
        Health::parse(&self.status).unwrap_or(Health::Ok)
    }
}

/// One event-log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// The BMC's record id.
    pub id: String,
    /// Unix seconds (None: the BMC's clock was not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    /// The sensor or log it came from (`Temperature #0x01`).
    pub source: String,
    pub message: String,
    pub severity: Health,
    /// False for a deassertion (the condition ended).
    #[serde(default = "yes")]
    pub asserted: bool,
}

fn yes() -> bool {
    true
}

/// The newest entries of a node's event log, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct EventLog {
    /// Entries the log holds in all.
    pub total: u32,
    pub events: Vec<Event>,
    /// Set when the log was cleared by this request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cleared: bool,
}

/// A node's health and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthReport {
    pub health: Health,
    /// What made it warning or critical (empty when ok).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// Recent events that count toward health: the last day's.
pub const HEALTH_EVENT_WINDOW_SECS: i64 = 24 * 3600;

impl HealthReport {
    /// From readings and recent events: the worst sensor status, and any
    /// asserted warning or critical event of the last day.
    pub fn assess(readings: &[Reading], log: &EventLog, now: i64) -> HealthReport {
        let mut health = Health::Ok;
        let mut reasons = Vec::new();
        for r in readings {
            let h = r.health();
            if h > Health::Ok {
                reasons.push(format!("{}: {} ({})", r.name, r.value_text(), r.status));
                health = health.max(h);
            }
        }
        for e in &log.events {
            let recent = e.time.is_some_and(|t| now - t <= HEALTH_EVENT_WINDOW_SECS);
            if e.asserted && e.severity > Health::Ok && recent {
                reasons.push(format!("event {}: {} {}", e.id, e.source, e.message));
                health = health.max(e.severity);
            }
        }
        HealthReport { health, reasons }
    }
}

/// A field found in the hardware (manufacturer, serial, ...).
pub type Fields = std::collections::BTreeMap<String, String>;

/// A node's hardware, as its BMC describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct Inventory {
    /// The BMC itself: firmware, manufacturer and product ids (IPMI), or
    /// the manager's model and firmware (Redfish).
    #[serde(default, skip_serializing_if = "Fields::is_empty")]
    pub bmc: Fields,
    /// The system: manufacturer, model, serial, part number, UUID, BIOS.
    #[serde(default, skip_serializing_if = "Fields::is_empty")]
    pub system: Fields,
    /// IPMI FRU board area / Redfish baseboard.
    #[serde(default, skip_serializing_if = "Fields::is_empty")]
    pub board: Fields,
    #[serde(default, skip_serializing_if = "Fields::is_empty")]
    pub chassis: Fields,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processors: Vec<Fields>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memory: Vec<Fields>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage: Vec<Fields>,
    /// Firmware components and versions.
    #[serde(default, skip_serializing_if = "Fields::is_empty")]
    pub firmware: Fields,
    /// MAC addresses of the system's network interfaces (lower case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub macs: Vec<String>,
    /// Against the node's nics: nic MACs the hardware did not report and
    /// reported MACs no nic has (only when the BMC reports MACs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nics: Option<NicCheck>,
    /// What could not be read (`no FRU`, `no Storage`), as values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct NicCheck {
    pub missing: Vec<String>,
    pub unknown: Vec<String>,
}

impl NicCheck {
    /// Compares the node's nic MACs with those found (case-insensitive).
    pub fn compare(nic_macs: &[String], found: &[String]) -> NicCheck {
        let norm = |m: &String| m.to_ascii_lowercase();
        let ours: Vec<String> = nic_macs.iter().map(norm).collect();
        let seen: Vec<String> = found.iter().map(norm).collect();
        NicCheck {
            missing: ours.iter().filter(|m| !seen.contains(m)).cloned().collect(),
            unknown: seen.iter().filter(|m| !ours.contains(m)).cloned().collect(),
        }
    }
}

/// `beacon on|off|blink`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Beacon {
    On,
    Off,
    Blink,
}

impl Beacon {
    pub const ALL: &'static [&'static str] = &["on", "off", "blink"];

    pub fn parse(s: &str) -> Option<Beacon> {
        Some(match s {
            "on" => Beacon::On,
            "off" => Beacon::Off,
            "blink" => Beacon::Blink,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Beacon::On => "on",
            Beacon::Off => "off",
            Beacon::Blink => "blink",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(status: &str, value: Option<f64>) -> Reading {
        Reading {
            name: "CPU1 Temp".into(),
            kind: SensorKind::Temp,
            value,
            unit: "degrees C".into(),
            state: None,
            status: status.into(),
        }
    }

    #[test]
    fn health_is_the_worst_sensor_or_recent_event() {
        let ok = [reading("ok", Some(45.0)), reading("na", None)];
        let now = 2_000_000_000;
        let event = |severity, age, asserted| Event {
            id: "7".into(),
            time: Some(now - age),
            source: "Power Supply #0x40".into(),
            message: "Failure detected".into(),
            severity,
            asserted,
        };
        let quiet = EventLog::default();
        assert_eq!(HealthReport::assess(&ok, &quiet, now).health, Health::Ok);
        let hot = [reading("critical", Some(97.0))];
        let r = HealthReport::assess(&hot, &quiet, now);
        assert_eq!(r.health, Health::Critical);
        assert_eq!(r.reasons, ["CPU1 Temp: 97 degrees C (critical)"]);
        let log = |e| EventLog {
            total: 1,
            events: vec![e],
            cleared: false,
        };
        let fresh = log(event(Health::Critical, 60, true));
        assert_eq!(
            HealthReport::assess(&ok, &fresh, now).health,
            Health::Critical
        );
        let old = log(event(Health::Critical, 2 * 86_400, true));
        assert_eq!(HealthReport::assess(&ok, &old, now).health, Health::Ok);
        let ended = log(event(Health::Warning, 60, false));
        assert_eq!(HealthReport::assess(&ok, &ended, now).health, Health::Ok);
    }

    #[test]
    fn values_print_as_ipmitool_does() {
        assert_eq!(reading("ok", Some(45.0)).value_text(), "45 degrees C");
        let mut v = reading("ok", Some(12.06));
        v.unit = "Volts".into();
        assert_eq!(v.value_text(), "12.06 Volts");
        assert_eq!(reading("na", None).value_text(), "na");
    }

    #[test]
    fn nic_macs_are_compared_without_case() {
        let c = NicCheck::compare(
            &["AA:BB:CC:00:00:01".into(), "aa:bb:cc:00:00:02".into()],
            &["aa:bb:cc:00:00:01".into(), "aa:bb:cc:00:00:09".into()],
        );
        assert_eq!(c.missing, ["aa:bb:cc:00:00:02"]);
        assert_eq!(c.unknown, ["aa:bb:cc:00:00:09"]);
    }
}
