//! Sensor Data Records (IPMI v2.0 §43) and sensor readings (§35.14):
//! full (type 1) and compact (type 2) sensor records with their
//! conversion factors and linearization, unit and sensor-type names as
//! ipmitool prints them, and the threshold status of a reading.
//!
//! [`encode_full`] and [`encode_compact`] write records for the simulator.

/// The 5-byte header every record starts with (id, version, type, length).
pub const HEADER_LEN: usize = 5;
/// Record types.
pub const FULL_SENSOR: u8 = 0x01;
pub const COMPACT_SENSOR: u8 = 0x02;
/// The record id that ends a repository walk.
pub const LAST_RECORD: u16 = 0xffff;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdrError {
    #[error("SDR record {0:#06x}: truncated")]
    Truncated(u16),
    #[error("{0}: short answer")]
    Short(&'static str),
}

/// Get SDR Repository Info: what the cache key and the walk need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepositoryInfo {
    pub records: u16,
    pub last_addition: u32,
}

pub fn decode_repository_info(data: &[u8]) -> Result<RepositoryInfo, SdrError> {
    if data.len() < 9 {
        return Err(SdrError::Short("Get SDR Repository Info"));
    }
    Ok(RepositoryInfo {
        records: u16::from_le_bytes([data[1], data[2]]),
        last_addition: u32::from_le_bytes([data[5], data[6], data[7], data[8]]),
    })
}

/// A sensor described by a full or compact record.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorRecord {
    pub record_id: u16,
    pub full: bool,
    /// Slave address of the controller that owns the sensor (0x20: the BMC).
    pub owner: u8,
    pub lun: u8,
    pub number: u8,
    pub sensor_type: u8,
    /// Event/reading type code: 0x01 threshold, 0x02-0x0c generic
    /// discrete, 0x6f sensor-specific.
    pub event_type: u8,
    pub units1: u8,
    pub base_unit: u8,
    pub modifier_unit: u8,
    /// Full records only: how a raw byte becomes a value.
    pub conversion: Option<Conversion>,
    pub name: String,
}

/// `y = L[(M·x + B·10^K1)·10^K2]` (§36.3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conversion {
    pub m: i16,
    pub b: i16,
    /// B exponent.
    pub k1: i8,
    /// Result exponent.
    pub k2: i8,
    pub linearization: u8,
}

impl SensorRecord {
    /// Whether readings are analog values compared against thresholds.
    pub fn is_threshold(&self) -> bool {
        self.event_type == 0x01
    }

    /// The value of a raw reading (None: the record has no analog reading).
    pub fn convert(&self, raw: u8) -> Option<f64> {
        let c = self.conversion?;
        let x = match self.units1 >> 6 {
            0 => f64::from(raw),
            // One's complement: a set sign bit means minus the inverse.
            1 if raw & 0x80 != 0 => -f64::from(!raw),
            1 => f64::from(raw),
            2 => f64::from(raw as i8),
            _ => return None,
        };
        let y = (f64::from(c.m) * x + f64::from(c.b) * 10f64.powi(c.k1.into()))
            * 10f64.powi(c.k2.into());
        Some(match c.linearization & 0x7f {
            1 => y.ln(),
            2 => y.log10(),
            3 => y.log2(),
            4 => y.exp(),
            5 => 10f64.powf(y),
            6 => y.exp2(),
            7 => 1.0 / y,
            8 => y * y,
            9 => y * y * y,
            10 => y.sqrt(),
            11 => y.cbrt(),
            _ => y,
        })
    }

    /// The unit as ipmitool names it (`degrees C`, `Volts`, `RPM`...).
    pub fn unit(&self) -> String {
        let base = unit_name(self.base_unit);
        let unit = match (self.units1 >> 1) & 0x03 {
            1 => format!("{base}/{}", unit_name(self.modifier_unit)),
            2 => format!("{base}*{}", unit_name(self.modifier_unit)),
            _ => base.to_string(),
        };
        if self.units1 & 0x01 != 0 {
            format!("% {unit}")
        } else {
            unit
        }
    }
}

/// Decodes a sensor record; other record types (FRU and MC locators,
/// OEM) are `Ok(None)`.
pub fn decode_record(data: &[u8]) -> Result<Option<SensorRecord>, SdrError> {
    let id = match data.get(..2) {
        Some(b) => u16::from_le_bytes([b[0], b[1]]),
        None => return Err(SdrError::Truncated(0)),
    };
    let kind = *data.get(3).ok_or(SdrError::Truncated(id))?;
    let (full, name_at) = match kind {
        FULL_SENSOR => (true, 47),
        COMPACT_SENSOR => (false, 31),
        _ => return Ok(None),
    };
    let tl = *data.get(name_at).ok_or(SdrError::Truncated(id))?;
    let name_len = usize::from(tl & 0x1f);
    let name = data
        .get(name_at + 1..name_at + 1 + name_len)
        .ok_or(SdrError::Truncated(id))?;
    let name = String::from_utf8_lossy(name)
        .trim_end_matches(['\0', ' '])
        .to_string();
    let conversion = full.then(|| {
        let ten_bits = |lo: u8, hi: u8| {
            let v = i16::from(lo) | (i16::from(hi & 0xc0) << 2);
            // Sign-extend from 10 bits.
            (v << 6) >> 6
        };
        let nibble = |n: u8| ((n << 4) as i8) >> 4;
        Conversion {
            m: ten_bits(data[24], data[25]),
            b: ten_bits(data[26], data[27]),
            k1: nibble(data[29] & 0x0f),
            k2: nibble(data[29] >> 4),
            linearization: data[23],
        }
    });
    Ok(Some(SensorRecord {
        record_id: id,
        full,
        owner: data[5],
        lun: data[6] & 0x03,
        number: data[7],
        sensor_type: data[12],
        event_type: data[13],
        units1: data[20],
        base_unit: data[21],
        modifier_unit: data[22],
        conversion,
        name,
    }))
}

/// A Get Sensor Reading answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub raw: u8,
    /// "Reading/state unavailable", or scanning disabled.
    pub unavailable: bool,
    /// Threshold sensors: the comparison bits; discrete: the state bits.
    pub state: u16,
}

pub fn decode_reading(data: &[u8]) -> Result<Reading, SdrError> {
    if data.len() < 2 {
        return Err(SdrError::Short("Get Sensor Reading"));
    }
    let flags = data[1];
    Ok(Reading {
        raw: data[0],
        unavailable: flags & 0x20 != 0 || flags & 0x40 == 0,
        state: u16::from(data.get(2).copied().unwrap_or(0))
            | u16::from(data.get(3).copied().unwrap_or(0) & 0x7f) << 8,
    })
}

/// How far a threshold sensor is from normal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Ok,
    NonCritical,
    Critical,
    NonRecoverable,
}

impl Severity {
    /// ipmitool's status column: `ok`, `nc`, `cr`, `nr`.
    pub fn short(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::NonCritical => "nc",
            Severity::Critical => "cr",
            Severity::NonRecoverable => "nr",
        }
    }
}

/// The severity a threshold reading's comparison bits say.
pub fn threshold_severity(state: u16) -> Severity {
    let s = state as u8;
    if s & 0x24 != 0 {
        Severity::NonRecoverable
    } else if s & 0x12 != 0 {
        Severity::Critical
    } else if s & 0x09 != 0 {
        Severity::NonCritical
    } else {
        Severity::Ok
    }
}

/// Threshold comparison bits for `raw` against the six thresholds
/// (lower nc, cr, nr, upper nc, cr, nr; None: not set), as a BMC computes
/// them (unsigned raw values).
pub fn compare_thresholds(raw: u8, t: &[Option<u8>; 6]) -> u8 {
    let mut bits = 0;
    for (i, th) in t.iter().enumerate() {
        let Some(th) = *th else { continue };
        let crossed = if i < 3 { raw < th } else { raw > th };
        if crossed {
            bits |= 1 << i;
        }
    }
    bits
}

/// Sensor unit names (§43.17), as ipmitool prints them.
pub fn unit_name(code: u8) -> &'static str {
    const UNITS: &[&str] = &[
        "unspecified",
        "degrees C",
        "degrees F",
        "degrees K",
        "Volts",
        "Amps",
        "Watts",
        "Joules",
        "Coulombs",
        "VA",
        "Nits",
        "lumen",
        "lux",
        "Candela",
        "kPa",
        "PSI",
        "Newton",
        "CFM",
        "RPM",
        "Hz",
        "microsecond",
        "millisecond",
        "second",
        "minute",
        "hour",
        "day",
        "week",
        "mil",
        "inches",
        "feet",
        "cu in",
        "cu feet",
        "mm",
        "cm",
        "m",
        "cu cm",
        "cu m",
        "liters",
        "fluid ounce",
        "radians",
        "steradians",
        "revolutions",
        "cycles",
        "gravities",
        "ounce",
        "pound",
        "ft-lb",
        "oz-in",
        "gauss",
        "gilberts",
        "henry",
        "millihenry",
        "farad",
        "microfarad",
        "ohms",
        "siemens",
        "mole",
        "becquerel",
        "PPM",
        "reserved",
        "Decibels",
        "DbA",
        "DbC",
        "gray",
        "sievert",
        "color temp deg K",
        "bit",
        "kilobit",
        "megabit",
        "gigabit",
        "byte",
        "kilobyte",
        "megabyte",
        "gigabyte",
        "word",
        "dword",
        "qword",
        "line",
        "hit",
        "miss",
        "retry",
        "reset",
        "overflow",
        "underrun",
        "collision",
        "packets",
        "messages",
        "characters",
        "error",
        "correctable error",
        "uncorrectable error",
        "fatal error",
        "grams",
    ];
    UNITS.get(usize::from(code)).copied().unwrap_or("unknown")
}

/// Sensor type names (§42.2), as ipmitool prints them.
pub fn sensor_type_name(code: u8) -> &'static str {
    const TYPES: &[&str] = &[
        "reserved",
        "Temperature",
        "Voltage",
        "Current",
        "Fan",
        "Physical Security",
        "Platform Security",
        "Processor",
        "Power Supply",
        "Power Unit",
        "Cooling Device",
        "Other",
        "Memory",
        "Drive Slot / Bay",
        "POST Memory Resize",
        "System Firmware Progress",
        "Event Logging Disabled",
        "Watchdog1",
        "System Event",
        "Critical Interrupt",
        "Button",
        "Module / Board",
        "Microcontroller",
        "Add-in Card",
        "Chassis",
        "Chip Set",
        "Other FRU",
        "Cable / Interconnect",
        "Terminator",
        "System Boot Initiated",
        "Boot Error",
        "OS Boot",
        "OS Critical Stop",
        "Slot / Connector",
        "System ACPI Power State",
        "Watchdog2",
        "Platform Alert",
        "Entity Presence",
        "Monitor ASIC",
        "LAN",
        "Management Subsys Health",
        "Battery",
        "Session Audit",
        "Version Change",
        "FRU State",
    ];
    match code {
        0xc0..=0xff => "OEM",
        _ => TYPES.get(usize::from(code)).copied().unwrap_or("Unknown"),
    }
}

/// A full record's contents, for [`encode_full`].
#[derive(Debug, Clone)]
pub struct FullSpec<'a> {
    pub number: u8,
    pub entity: (u8, u8),
    pub sensor_type: u8,
    pub units1: u8,
    pub base_unit: u8,
    pub m: i16,
    pub b: i16,
    pub k1: i8,
    pub k2: i8,
    /// Lower nc, cr, nr, upper nc, cr, nr (raw).
    pub thresholds: [Option<u8>; 6],
    pub name: &'a str,
}

/// A full sensor record (threshold-based) for `s`, with id `id`.
pub fn encode_full(id: u16, s: &FullSpec<'_>) -> Vec<u8> {
    let mut r = vec![0u8; 48];
    let id_b = id.to_le_bytes();
    r[..5].copy_from_slice(&[id_b[0], id_b[1], 0x51, FULL_SENSOR, 0]);
    r[5] = 0x20;
    r[6] = 0;
    r[7] = s.number;
    r[8] = s.entity.0;
    r[9] = s.entity.1;
    // Scanning and events enabled at start; thresholds readable.
    r[10] = 0x7f;
    // Auto re-arm; thresholds readable.
    r[11] = 0x44;
    r[12] = s.sensor_type;
    r[13] = 0x01;
    let readable: u8 = s
        .thresholds
        .iter()
        .enumerate()
        .fold(0, |a, (i, t)| if t.is_some() { a | 1 << i } else { a });
    // Lower/upper threshold reading masks, readable thresholds.
    r[15] = (readable & 0x07) << 4;
    r[17] = ((readable >> 3) & 0x07) << 4;
    r[18] = readable;
    r[20] = s.units1;
    r[21] = s.base_unit;
    r[22] = 0;
    r[23] = 0;
    let m = s.m as u16 & 0x3ff;
    let b = s.b as u16 & 0x3ff;
    r[24] = m as u8;
    r[25] = ((m >> 8) as u8) << 6;
    r[26] = b as u8;
    r[27] = ((b >> 8) as u8) << 6;
    r[29] = ((s.k2 as u8 & 0x0f) << 4) | (s.k1 as u8 & 0x0f);
    // Bytes 36-41 (0-based) hold upper nr, cr, nc, then lower nr, cr, nc.
    for (t, at) in s.thresholds.iter().zip([41, 40, 39, 38, 37, 36]) {
        r[at] = t.unwrap_or(0);
    }
    r[34] = 0xff;
    r[35] = 0;
    r.truncate(47);
    push_name(&mut r, s.name);
    r
}

/// A compact (discrete) sensor record.
pub fn encode_compact(
    id: u16,
    number: u8,
    entity: (u8, u8),
    sensor_type: u8,
    event_type: u8,
    name: &str,
) -> Vec<u8> {
    let mut r = vec![0u8; 31];
    let id_b = id.to_le_bytes();
    r[..5].copy_from_slice(&[id_b[0], id_b[1], 0x51, COMPACT_SENSOR, 0]);
    r[5] = 0x20;
    r[7] = number;
    r[8] = entity.0;
    r[9] = entity.1;
    r[10] = 0x63;
    r[11] = 0x40;
    r[12] = sensor_type;
    r[13] = event_type;
    // Every state readable; no analog reading.
    r[18] = 0xff;
    r[19] = 0x7f;
    r[20] = 0xc0;
    push_name(&mut r, name);
    r
}

fn push_name(r: &mut Vec<u8>, name: &str) {
    let n = &name.as_bytes()[..name.len().min(16)];
    r.push(0xc0 | n.len() as u8);
    r.extend_from_slice(n);
    r[4] = (r.len() - HEADER_LEN) as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(m: i16, b: i16, k1: i8, k2: i8, units1: u8) -> FullSpec<'static> {
        FullSpec {
            number: 7,
            entity: (3, 1),
            sensor_type: 2,
            units1,
            base_unit: 4,
            m,
            b,
            k1,
            k2,
            thresholds: [Some(10), Some(5), None, Some(200), Some(210), None],
            name: "12V",
        }
    }

    #[test]
    fn full_records_convert_with_their_factors() {
        let r = decode_record(&encode_full(9, &spec(6, 0, 0, -2, 0)))
            .unwrap()
            .unwrap();
        assert_eq!((r.record_id, r.number, r.name.as_str()), (9, 7, "12V"));
        assert_eq!(r.unit(), "Volts");
        assert!((r.convert(202).unwrap() - 12.12).abs() < 1e-9);
        // Negative M and B, B exponent, two's complement raw values.
        let r = decode_record(&encode_full(1, &spec(-3, -100, 1, -1, 0x80)))
            .unwrap()
            .unwrap();
        assert_eq!(r.conversion.unwrap().m, -3);
        assert_eq!(r.conversion.unwrap().b, -100);
        // (-3 * -10 + -100 * 10) / 10 = -97.
        assert!((r.convert((-10i8) as u8).unwrap() + 97.0).abs() < 1e-9);
    }

    #[test]
    fn compact_records_have_no_analog_value() {
        let r = decode_record(&encode_compact(4, 0x31, (10, 1), 0x08, 0x6f, "PSU1 Status"))
            .unwrap()
            .unwrap();
        assert!(!r.full && !r.is_threshold());
        assert_eq!(r.convert(1), None);
        assert_eq!(sensor_type_name(r.sensor_type), "Power Supply");
        assert_eq!(decode_record(&[1, 0, 0x51, 0x12, 0]).unwrap(), None);
    }

    #[test]
    fn threshold_bits_give_severity() {
        let t = [Some(10), Some(5), Some(1), Some(80), Some(90), Some(100)];
        assert_eq!(
            threshold_severity(compare_thresholds(50, &t).into()),
            Severity::Ok
        );
        assert_eq!(
            threshold_severity(compare_thresholds(85, &t).into()),
            Severity::NonCritical
        );
        assert_eq!(
            threshold_severity(compare_thresholds(95, &t).into()),
            Severity::Critical
        );
        assert_eq!(
            threshold_severity(compare_thresholds(0, &t).into()),
            Severity::NonRecoverable
        );
    }
}
