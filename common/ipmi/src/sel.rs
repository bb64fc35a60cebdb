//! System Event Log entries (IPMI v2.0 §31, §32) and the standard text of
//! their events (§42.2, Table 42-3), worded as ipmitool's `sel list`.

use crate::sdr::{Severity, sensor_type_name};

/// Bytes in one SEL record.
pub const ENTRY_LEN: usize = 16;
/// Record type of a standard (system event) record.
pub const SYSTEM_EVENT: u8 = 0x02;
/// The record id that means "the first entry" in Get SEL Entry.
pub const FIRST_ENTRY: u16 = 0x0000;
/// The record id that means "the last entry" (and ends a walk).
pub const LAST_ENTRY: u16 = 0xffff;
/// Timestamps up to this are seconds since the BMC's initialisation,
/// not since 1970 (§37.1).
const PRE_INIT_TIMESTAMP: u32 = 0x2000_0000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelError {
    #[error("{0}: short answer")]
    Short(&'static str),
}

/// Get SEL Info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelInfo {
    pub entries: u16,
    pub free_bytes: u16,
}

pub fn decode_info(data: &[u8]) -> Result<SelInfo, SelError> {
    if data.len() < 5 {
        return Err(SelError::Short("Get SEL Info"));
    }
    Ok(SelInfo {
        entries: u16::from_le_bytes([data[1], data[2]]),
        free_bytes: u16::from_le_bytes([data[3], data[4]]),
    })
}

/// One SEL record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelEntry {
    pub id: u16,
    pub record_type: u8,
    /// Unix seconds, or seconds since BMC start for pre-init stamps.
    pub timestamp: u32,
    pub generator: u16,
    pub sensor_type: u8,
    pub sensor_number: u8,
    /// The event went away (a deassertion).
    pub deasserted: bool,
    pub event_type: u8,
    pub data: [u8; 3],
}

/// Decodes the 16-byte record of a Get SEL Entry answer (after the next
/// record id).
pub fn decode_entry(b: &[u8]) -> Result<SelEntry, SelError> {
    if b.len() < ENTRY_LEN {
        return Err(SelError::Short("Get SEL Entry"));
    }
    Ok(SelEntry {
        id: u16::from_le_bytes([b[0], b[1]]),
        record_type: b[2],
        timestamp: u32::from_le_bytes([b[3], b[4], b[5], b[6]]),
        generator: u16::from_le_bytes([b[7], b[8]]),
        sensor_type: b[10],
        sensor_number: b[11],
        deasserted: b[12] & 0x80 != 0,
        event_type: b[12] & 0x7f,
        data: [b[13], b[14], b[15]],
    })
}

impl SelEntry {
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let id = self.id.to_le_bytes();
        let ts = self.timestamp.to_le_bytes();
        let generator = self.generator.to_le_bytes();
        [
            id[0],
            id[1],
            self.record_type,
            ts[0],
            ts[1],
            ts[2],
            ts[3],
            generator[0],
            generator[1],
            0x04,
            self.sensor_type,
            self.sensor_number,
            u8::from(self.deasserted) << 7 | self.event_type,
            self.data[0],
            self.data[1],
            self.data[2],
        ]
    }

    /// Whether this is a standard record (OEM records carry no event).
    pub fn is_system_event(&self) -> bool {
        self.record_type == SYSTEM_EVENT
    }

    /// The time as Unix seconds (None for a pre-init timestamp).
    pub fn unix_time(&self) -> Option<i64> {
        (self.timestamp > PRE_INIT_TIMESTAMP).then_some(i64::from(self.timestamp))
    }

    /// ipmitool's sensor column without SDR names: `Temperature #0x30`.
    pub fn sensor(&self) -> String {
        format!(
            "{} #{:#04x}",
            sensor_type_name(self.sensor_type),
            self.sensor_number
        )
    }

    /// The event offset (event data 1, bits 3:0).
    fn offset(&self) -> u8 {
        self.data[0] & 0x0f
    }

    /// The standard event text (`Upper Critical going high`, `Power
    /// off/down`); unknown offsets are named by number.
    pub fn description(&self) -> String {
        if !self.is_system_event() {
            return format!("OEM record {:#04x}", self.record_type);
        }
        let o = self.offset();
        let known = match self.event_type {
            0x01 => THRESHOLD.get(usize::from(o)).copied(),
            0x02..=0x0c => GENERIC
                .iter()
                .find(|(t, _)| *t == self.event_type)
                .and_then(|(_, texts)| texts.get(usize::from(o)).copied()),
            0x6f => SPECIFIC
                .iter()
                .find(|(t, _)| *t == self.sensor_type)
                .and_then(|(_, texts)| texts.get(usize::from(o)).copied()),
            _ => None,
        };
        match known {
            Some(t) => t.to_string(),
            None => format!("event type {:#04x} offset {o:#04x}", self.event_type),
        }
    }

    /// How bad the event is: threshold crossings by their level; the
    /// failure offsets of sensor-specific events as critical; a
    /// deassertion is the end of a condition.
    pub fn severity(&self) -> Severity {
        if self.deasserted || !self.is_system_event() {
            return Severity::Ok;
        }
        offset_severity(self.sensor_type, self.event_type, self.offset())
    }
}

/// How bad state `o` of a sensor of type `sensor_type` with event/reading
/// type `event_type` is (for events, and for discrete readings' bits).
pub fn offset_severity(sensor_type: u8, event_type: u8, o: u8) -> Severity {
    match event_type {
        0x01 => match o {
            0 | 1 | 6 | 7 => Severity::NonCritical,
            2 | 3 | 8 | 9 => Severity::Critical,
            _ => Severity::NonRecoverable,
        },
        // Generic severity: transitions to non-critical / critical / nr.
        0x07 => match o {
            1 | 4 => Severity::NonCritical,
            2 | 5 => Severity::Critical,
            3 | 6 => Severity::NonRecoverable,
            _ => Severity::Ok,
        },
        0x6f => match (sensor_type, o) {
            // Processor IERR, thermal trip, FRB failures.
            (0x07, 0..=4) => Severity::Critical,
            // Power supply failure, predictive failure, AC lost.
            (0x08, 1..=4) => Severity::Critical,
            // Power unit AC lost, soft-power failure, failure.
            (0x09, 4..=6) => Severity::Critical,
            // Uncorrectable ECC, parity, critical overtemperature.
            (0x0c, 1 | 2 | 0x0a) => Severity::Critical,
            (0x0c, 0 | 5) => Severity::NonCritical,
            // OS critical stop.
            (0x20, _) => Severity::Critical,
            _ => Severity::Ok,
        },
        _ => Severity::Ok,
    }
}

const THRESHOLD: &[&str] = &[
    "Lower Non-critical going low",
    "Lower Non-critical going high",
    "Lower Critical going low",
    "Lower Critical going high",
    "Lower Non-recoverable going low",
    "Lower Non-recoverable going high",
    "Upper Non-critical going low",
    "Upper Non-critical going high",
    "Upper Critical going low",
    "Upper Critical going high",
    "Upper Non-recoverable going low",
    "Upper Non-recoverable going high",
];

/// Generic discrete event types (Table 42-2).
const GENERIC: &[(u8, &[&str])] = &[
    (
        0x02,
        &[
            "Transition to Idle",
            "Transition to Active",
            "Transition to Busy",
        ],
    ),
    (0x03, &["State Deasserted", "State Asserted"]),
    (
        0x04,
        &[
            "Predictive Failure Deasserted",
            "Predictive Failure Asserted",
        ],
    ),
    (0x05, &["Limit Not Exceeded", "Limit Exceeded"]),
    (0x06, &["Performance Met", "Performance Lags"]),
    (
        0x07,
        &[
            "Transition to OK",
            "Transition to Non-critical from OK",
            "Transition to Critical from less severe",
            "Transition to Non-recoverable from less severe",
            "Transition to Non-critical from more severe",
            "Transition to Critical from Non-recoverable",
            "Transition to Non-recoverable",
            "Monitor",
            "Informational",
        ],
    ),
    (0x08, &["Device Absent", "Device Present"]),
    (0x09, &["Device Disabled", "Device Enabled"]),
];

/// Sensor-specific event offsets (Table 42-3) of the sensor types BMCs
/// log most.
const SPECIFIC: &[(u8, &[&str])] = &[
    (
        0x05,
        &[
            "General Chassis intrusion",
            "Drive Bay intrusion",
            "I/O Card area intrusion",
            "Processor area intrusion",
            "System unplugged from LAN",
            "Unauthorized dock",
            "FAN area intrusion",
        ],
    ),
    (
        0x07,
        &[
            "IERR",
            "Thermal Trip",
            "FRB1/BIST failure",
            "FRB2/Hang in POST failure",
            "FRB3/Processor startup/init failure",
            "Configuration Error",
            "SM BIOS Uncorrectable CPU-complex Error",
            "Presence detected",
            "Disabled",
            "Terminator presence detected",
            "Throttled",
        ],
    ),
    (
        0x08,
        &[
            "Presence detected",
            "Failure detected",
            "Predictive failure",
            "Power Supply AC lost",
            "AC lost or out-of-range",
            "AC out-of-range, but present",
            "Config Error",
        ],
    ),
    (
        0x09,
        &[
            "Power off/down",
            "Power cycle",
            "240VA power down",
            "Interlock power down",
            "AC lost",
            "Soft-power control failure",
            "Failure detected",
            "Predictive failure",
        ],
    ),
    (
        0x0c,
        &[
            "Correctable ECC",
            "Uncorrectable ECC",
            "Parity",
            "Memory Scrub Failed",
            "Memory Device Disabled",
            "Correctable ECC logging limit reached",
            "Presence Detected",
            "Configuration Error",
            "Spare",
            "Throttled",
            "Critical Overtemperature",
        ],
    ),
    (
        0x10,
        &[
            "Correctable memory error logging disabled",
            "Event logging disabled",
            "Log area reset/cleared",
            "All event logging disabled",
            "Log full",
            "Log almost full",
        ],
    ),
    (
        0x12,
        &[
            "System Reconfigured",
            "OEM System boot event",
            "Undetermined system hardware failure",
            "Entry added to auxiliary log",
            "PEF Action",
            "Timestamp Clock Sync",
        ],
    ),
    (
        0x1d,
        &[
            "Initiated by power up",
            "Initiated by hard reset",
            "Initiated by warm reset",
            "User requested PXE boot",
            "Automatic boot to diagnostic",
        ],
    ),
    (
        0x22,
        &[
            "S0/G0: working",
            "S1: sleeping with system hw & processor context maintained",
            "S2: sleeping, processor context lost",
            "S3: sleeping, processor & hw context lost, memory retained",
            "S4: non-volatile sleep/suspend-to-disk",
            "S5/G2: soft-off",
            "S4/S5: soft-off",
            "G3: mechanical off",
            "Sleeping in S1/S2/S3 state",
            "G1: sleeping",
            "S5: entered by override",
            "Legacy ON state",
            "Legacy OFF state",
            "Unknown",
        ],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sensor_type: u8, event_type: u8, offset: u8, deasserted: bool) -> SelEntry {
        SelEntry {
            id: 3,
            record_type: SYSTEM_EVENT,
            timestamp: 1_790_000_000,
            generator: 0x20,
            sensor_type,
            sensor_number: 0x30,
            deasserted,
            event_type,
            data: [offset, 0xff, 0xff],
        }
    }

    #[test]
    fn entries_round_trip_and_read_as_ipmitool_words_them() {
        let e = entry(0x01, 0x01, 9, false);
        assert_eq!(decode_entry(&e.encode()).unwrap(), e);
        assert_eq!(e.description(), "Upper Critical going high");
        assert_eq!(e.sensor(), "Temperature #0x30");
        assert_eq!(e.severity(), Severity::Critical);
        assert_eq!(e.unix_time(), Some(1_790_000_000));
        let off = entry(0x09, 0x6f, 0, false);
        assert_eq!(off.description(), "Power off/down");
        assert_eq!(off.severity(), Severity::Ok);
        assert_eq!(
            entry(0x01, 0x01, 9, true).severity(),
            Severity::Ok,
            "a deassertion ends the condition"
        );
        assert_eq!(
            entry(0x2b, 0x6f, 3, false).description(),
            "event type 0x6f offset 0x03"
        );
    }
}
