//! The machine behind a simulated BMC: its FRU, its sensors (an SDR of
//! 25 full threshold records with non-trivial conversion factors and 9
//! compact discrete ones) with readings that follow the power state, its
//! System Event Log (which power events and injected faults write to) and
//! its identify LED.
//!
//! Every BMC of a fleet is the same model, so they share one SDR (as real
//! fleets do, and as xcat3's per-model SDR cache expects); readings,
//! serial numbers and the GUID differ per BMC.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use xcat3_ipmi::fru;
use xcat3_ipmi::sdr::{self, FullSpec};
use xcat3_ipmi::sel::{SYSTEM_EVENT, SelEntry};

/// Entries the SEL holds; the oldest goes when it is full.
pub const SEL_CAPACITY: usize = 512;
/// When the SDR repository was last changed (fixed: one firmware).
pub const SDR_ADDITION_TIME: u32 = 0x6500_0000;
/// The most FRU or SEL bytes one read returns (as small BMCs do).
pub const MAX_READ: usize = 32;

/// How a sensor reads.
enum Kind {
    /// A threshold sensor: `on`/`off` raw readings (None: unavailable
    /// while off), thresholds (lower nc, cr, nr, upper nc, cr, nr).
    Analog {
        spec: FullSpec<'static>,
        on: i16,
        off: Option<i16>,
        /// Added per BMC (index modulo this), so a fleet's readings differ.
        spread: i16,
    },
    /// A discrete sensor: its state bits while on and off.
    Discrete { sensor_type: u8, on: u16, off: u16 },
}

struct Sensor {
    number: u8,
    name: &'static str,
    kind: Kind,
}

const TEMP: u8 = 0x01;
const VOLTAGE: u8 = 0x02;
const CURRENT: u8 = 0x03;
const FAN: u8 = 0x04;
const POWER_SUPPLY: u8 = 0x08;
const POWER_UNIT: u8 = 0x09;
const OTHER_UNITS: u8 = 0x0b;
const ACPI: u8 = 0x22;
const BOOT_INITIATED: u8 = 0x1d;
const EVENT_LOGGING: u8 = 0x10;

/// The sensor number of CPU1's temperature (an injected fault heats it).
pub const CPU1_TEMP: u8 = 0x01;
const CPU1_UPPER_CRITICAL: u8 = 95;
const ACPI_SENSOR: u8 = 0x45;
const POWER_UNIT_SENSOR: u8 = 0x46;
const BOOT_SENSOR: u8 = 0x47;
const EVENT_LOG_SENSOR: u8 = 0x48;

#[allow(clippy::too_many_arguments)]
fn analog(
    number: u8,
    name: &'static str,
    sensor_type: u8,
    entity: u8,
    (units1, base_unit): (u8, u8),
    (m, b, k1, k2): (i16, i16, i8, i8),
    thresholds: [Option<u8>; 6],
    (on, off, spread): (i16, Option<i16>, i16),
) -> Sensor {
    Sensor {
        number,
        name,
        kind: Kind::Analog {
            spec: FullSpec {
                number,
                entity: (entity, 1),
                sensor_type,
                units1,
                base_unit,
                m,
                b,
                k1,
                k2,
                thresholds,
                name,
            },
            on,
            off,
            spread,
        },
    }
}

fn discrete(number: u8, name: &'static str, sensor_type: u8, on: u16, off: u16) -> Sensor {
    Sensor {
        number,
        name,
        kind: Kind::Discrete {
            sensor_type,
            on,
            off,
        },
    }
}

const C: (u8, u8) = (0x00, 1);
const RPM: (u8, u8) = (0x00, 18);
const VOLTS: (u8, u8) = (0x00, 4);
const WATTS: (u8, u8) = (0x00, 6);
const AMPS: (u8, u8) = (0x00, 5);
const UNIT: (i16, i16, i8, i8) = (1, 0, 0, 0);

fn upper(nc: u8, cr: u8, nr: u8) -> [Option<u8>; 6] {
    [None, None, None, Some(nc), Some(cr), Some(nr)]
}

/// The board's sensors: 25 analog, 9 discrete.
fn sensors() -> &'static [Sensor] {
    static S: OnceLock<Vec<Sensor>> = OnceLock::new();
    S.get_or_init(|| {
        let fan = |i: u8| {
            analog(
                0x10 + i,
                ["FAN1", "FAN2", "FAN3", "FAN4", "FAN5", "FAN6"][usize::from(i)],
                FAN,
                29,
                RPM,
                // 80 RPM per count.
                (80, 0, 0, 0),
                [Some(15), Some(10), Some(5), None, None, None],
                (70 + i16::from(i), None, 4),
            )
        };
        let mut v = vec![
            analog(
                CPU1_TEMP,
                "CPU1 Temp",
                TEMP,
                3,
                C,
                UNIT,
                upper(85, CPU1_UPPER_CRITICAL, 100),
                (48, None, 5),
            ),
            analog(
                0x02,
                "CPU2 Temp",
                TEMP,
                3,
                C,
                UNIT,
                upper(85, 95, 100),
                (51, None, 5),
            ),
            analog(
                0x03,
                "Inlet Temp",
                TEMP,
                55,
                C,
                UNIT,
                upper(40, 45, 50),
                (24, Some(22), 3),
            ),
            analog(
                0x04,
                "Exhaust Temp",
                TEMP,
                55,
                C,
                UNIT,
                upper(70, 75, 80),
                (36, None, 4),
            ),
            analog(
                0x05,
                "DIMM A Temp",
                TEMP,
                32,
                C,
                UNIT,
                upper(80, 85, 90),
                (41, None, 3),
            ),
            analog(
                0x06,
                "DIMM B Temp",
                TEMP,
                32,
                C,
                UNIT,
                upper(80, 85, 90),
                (40, None, 3),
            ),
            analog(
                0x07,
                "PCH Temp",
                TEMP,
                7,
                C,
                UNIT,
                upper(90, 95, 100),
                (52, None, 4),
            ),
            analog(
                0x08,
                "VR CPU1 Temp",
                TEMP,
                20,
                C,
                UNIT,
                upper(100, 105, 110),
                (45, None, 4),
            ),
        ];
        v.extend((0..6).map(fan));
        v.extend([
            // 0.06 V per count.
            analog(
                0x20,
                "12V",
                VOLTAGE,
                7,
                VOLTS,
                (6, 0, 0, -2),
                [
                    Some(187),
                    Some(183),
                    Some(180),
                    Some(213),
                    Some(217),
                    Some(220),
                ],
                (200, Some(200), 2),
            ),
            analog(
                0x21,
                "5V",
                VOLTAGE,
                7,
                VOLTS,
                (3, 0, 0, -2),
                [
                    Some(157),
                    Some(153),
                    Some(150),
                    Some(177),
                    Some(180),
                    Some(183),
                ],
                (167, Some(167), 1),
            ),
            // (15x + 5) mV: an offset B as well as a factor M.
            analog(
                0x22,
                "3.3V",
                VOLTAGE,
                7,
                VOLTS,
                (15, 5, 0, -3),
                [
                    Some(207),
                    Some(203),
                    Some(200),
                    Some(233),
                    Some(237),
                    Some(240),
                ],
                (220, Some(220), 1),
            ),
            analog(
                0x23,
                "VBAT",
                VOLTAGE,
                7,
                VOLTS,
                (12, 0, 0, -3),
                [Some(208), Some(200), None, None, None, None],
                (250, Some(250), 1),
            ),
            analog(
                0x24,
                "CPU1 VCORE",
                VOLTAGE,
                3,
                VOLTS,
                (8, 0, 0, -3),
                [None, Some(200), Some(188), None, Some(238), Some(250)],
                (225, None, 2),
            ),
            analog(
                0x25,
                "CPU2 VCORE",
                VOLTAGE,
                3,
                VOLTS,
                (8, 0, 0, -3),
                [None, Some(200), Some(188), None, Some(238), Some(250)],
                (224, None, 2),
            ),
            // Two's complement readings: -120 counts is -12 V.
            analog(
                0x26,
                "-12V",
                VOLTAGE,
                7,
                (0x80, 4),
                (10, 0, 0, -2),
                [None; 6],
                (-120, Some(-120), 1),
            ),
            analog(
                0x30,
                "PSU1 Input",
                POWER_SUPPLY,
                10,
                WATTS,
                (4, 0, 0, 0),
                upper(200, 225, 250),
                (60, Some(3), 5),
            ),
            analog(
                0x31,
                "PSU2 Input",
                POWER_SUPPLY,
                10,
                WATTS,
                (4, 0, 0, 0),
                upper(200, 225, 250),
                (58, Some(3), 5),
            ),
            analog(
                0x32,
                "PSU1 Current",
                CURRENT,
                10,
                AMPS,
                (5, 0, 0, -2),
                upper(150, 180, 200),
                (40, Some(2), 3),
            ),
            analog(
                0x33,
                "System Power",
                OTHER_UNITS,
                7,
                WATTS,
                (4, 0, 0, 0),
                upper(220, 240, 250),
                (110, Some(6), 9),
            ),
            discrete(0x40, "PSU1 Status", POWER_SUPPLY, 0x0001, 0x0001),
            discrete(0x41, "PSU2 Status", POWER_SUPPLY, 0x0001, 0x0001),
            discrete(0x42, "CPU1 Status", 0x07, 0x0080, 0x0080),
            discrete(0x43, "CPU2 Status", 0x07, 0x0080, 0x0080),
            discrete(0x44, "Intrusion", 0x05, 0, 0),
            discrete(ACPI_SENSOR, "ACPI State", ACPI, 0x0001, 0x0020),
            discrete(POWER_UNIT_SENSOR, "Power Unit", POWER_UNIT, 0, 0x0001),
            discrete(BOOT_SENSOR, "Boot Init", BOOT_INITIATED, 0, 0),
            discrete(EVENT_LOG_SENSOR, "Event Log", EVENT_LOGGING, 0, 0),
        ]);
        v
    })
}

/// The encoded SDR repository, records 1..=N.
fn repository() -> &'static [Vec<u8>] {
    static R: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    R.get_or_init(|| {
        sensors()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let id = i as u16 + 1;
                match &s.kind {
                    Kind::Analog { spec, .. } => sdr::encode_full(id, spec),
                    Kind::Discrete { sensor_type, .. } => {
                        sdr::encode_compact(id, s.number, (7, 1), *sensor_type, 0x6f, s.name)
                    }
                }
            })
            .collect()
    })
}

/// The identify LED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identify {
    Off,
    /// On until the instant.
    Temporary(Instant),
    On,
}

impl Identify {
    pub fn as_str(self) -> &'static str {
        match self {
            Identify::Off => "off",
            Identify::Temporary(_) => "blink",
            Identify::On => "on",
        }
    }
}

/// One BMC's machine.
pub struct Board {
    index: u32,
    fru: Vec<u8>,
    /// Injected fault: CPU1 runs above its upper critical threshold.
    pub hot: bool,
    identify: Identify,
    sel: Vec<SelEntry>,
    next_sel_id: u16,
    last_sel_add: u32,
    last_sel_erase: u32,
    reservation: u16,
}

fn now_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

impl Board {
    /// BMC `index` of a fleet; a `hot` one logs its over-temperature.
    pub fn new(index: u32, hot: bool) -> Board {
        let serial = format!("SIM{:06}", index + 1);
        let board_serial = format!("BRD{:06}", index + 1);
        let chassis_serial = format!("CH{:06}", index + 1);
        let fru = fru::encode(&fru::Contents {
            chassis: Some((0x17, ["CHS-1000", &chassis_serial])),
            board: Some((
                15_000_000,
                ["xCAT3 Sim", "SimBoard X1", &board_serial, "BRD-X1-02", ""],
            )),
            product: Some([
                "xCAT3 Sim",
                "SimServer 1000",
                "XS-1000-01",
                "A1",
                &serial,
                "",
                "",
            ]),
        });
        let mut b = Board {
            index,
            fru,
            hot,
            identify: Identify::Off,
            sel: Vec::new(),
            next_sel_id: 1,
            last_sel_add: 0,
            last_sel_erase: now_secs(),
            reservation: 0,
        };
        b.log(EVENT_LOGGING, EVENT_LOG_SENSOR, 0x6f, 2, false);
        if hot {
            // Event data 2/3: the reading and the threshold crossed.
            b.log_with(
                TEMP,
                CPU1_TEMP,
                0x01,
                [0x50 | 9, 97, CPU1_UPPER_CRITICAL],
                false,
            );
        }
        b
    }

    pub fn identify(&mut self) -> Identify {
        if let Identify::Temporary(until) = self.identify
            && Instant::now() >= until
        {
            self.identify = Identify::Off;
        }
        self.identify
    }

    pub fn sel_len(&self) -> usize {
        self.sel.len()
    }

    /// Chassis Identify: `interval` seconds (0: off), or on for good.
    pub fn set_identify(&mut self, interval: u8, force: bool) {
        self.identify = if force {
            Identify::On
        } else if interval == 0 {
            Identify::Off
        } else {
            Identify::Temporary(Instant::now() + std::time::Duration::from_secs(interval.into()))
        };
    }

    /// Logs what a chassis control did (`off`, `soft`, `on`, `cycle`, `reset`).
    pub fn power_event(&mut self, what: &str) {
        match what {
            "off" => self.log(POWER_UNIT, POWER_UNIT_SENSOR, 0x6f, 0, false),
            "soft" => self.log(ACPI, ACPI_SENSOR, 0x6f, 5, false),
            "on" => self.log(ACPI, ACPI_SENSOR, 0x6f, 0, false),
            "cycle" => self.log(POWER_UNIT, POWER_UNIT_SENSOR, 0x6f, 1, false),
            "reset" => self.log(BOOT_INITIATED, BOOT_SENSOR, 0x6f, 1, false),
            _ => {}
        }
    }

    fn log(&mut self, sensor_type: u8, sensor: u8, event_type: u8, offset: u8, deasserted: bool) {
        self.log_with(
            sensor_type,
            sensor,
            event_type,
            [offset, 0xff, 0xff],
            deasserted,
        );
    }

    fn log_with(
        &mut self,
        sensor_type: u8,
        sensor: u8,
        event_type: u8,
        data: [u8; 3],
        deasserted: bool,
    ) {
        if self.sel.len() == SEL_CAPACITY {
            self.sel.remove(0);
        }
        let ts = now_secs();
        self.sel.push(SelEntry {
            id: self.next_sel_id,
            record_type: SYSTEM_EVENT,
            timestamp: ts,
            generator: 0x0020,
            sensor_type,
            sensor_number: sensor,
            deasserted,
            event_type,
            data,
        });
        self.next_sel_id = match self.next_sel_id {
            0xfffe => 1,
            n => n + 1,
        };
        self.last_sel_add = ts;
    }

    fn reserve(&mut self) -> u16 {
        self.reservation = self.reservation.wrapping_add(1).max(1);
        self.reservation
    }

    /// Get FRU Inventory Area Info (device 0 only).
    pub fn fru_info(&self, data: &[u8]) -> Result<Vec<u8>, u8> {
        match data.first() {
            Some(0) => {
                let n = (self.fru.len() as u16).to_le_bytes();
                Ok(vec![n[0], n[1], 0])
            }
            Some(_) => Err(xcat3_ipmi::cmd::cc::NOT_PRESENT),
            None => Err(xcat3_ipmi::cmd::cc::REQUEST_DATA_LENGTH),
        }
    }

    /// Read FRU Data: at most [`MAX_READ`] bytes per read.
    pub fn read_fru(&self, data: &[u8]) -> Result<Vec<u8>, u8> {
        let Some(&[dev, lo, hi, count]) = data.get(..4) else {
            return Err(xcat3_ipmi::cmd::cc::REQUEST_DATA_LENGTH);
        };
        if dev != 0 {
            return Err(xcat3_ipmi::cmd::cc::NOT_PRESENT);
        }
        let at = usize::from(u16::from_le_bytes([lo, hi]));
        if at >= self.fru.len() {
            return Err(xcat3_ipmi::cmd::cc::PARAMETER_OUT_OF_RANGE);
        }
        let end = (at + usize::from(count).min(MAX_READ)).min(self.fru.len());
        let mut out = vec![(end - at) as u8];
        out.extend_from_slice(&self.fru[at..end]);
        Ok(out)
    }

    pub fn sdr_info(&self) -> Vec<u8> {
        let n = (repository().len() as u16).to_le_bytes();
        let add = SDR_ADDITION_TIME.to_le_bytes();
        let mut v = vec![0x51, n[0], n[1], 0xff, 0xff];
        v.extend_from_slice(&add);
        v.extend_from_slice(&add);
        // Reserve SDR Repository supported.
        v.push(0x02);
        v
    }

    pub fn reserve_sdr(&mut self) -> Vec<u8> {
        self.reserve().to_le_bytes().to_vec()
    }

    /// Get SDR: whole records or partial reads (which need the current
    /// reservation).
    pub fn get_sdr(&self, data: &[u8]) -> Result<Vec<u8>, u8> {
        use xcat3_ipmi::cmd::cc;
        let d = data.get(..6).ok_or(cc::REQUEST_DATA_LENGTH)?;
        let reservation = u16::from_le_bytes([d[0], d[1]]);
        let id = u16::from_le_bytes([d[2], d[3]]);
        let (offset, count) = (usize::from(d[4]), d[5]);
        if offset != 0 && reservation != self.reservation {
            return Err(cc::RESERVATION_CANCELLED);
        }
        let repo = repository();
        let i = if id == 0 { 0 } else { usize::from(id) - 1 };
        let rec = repo.get(i).ok_or(cc::NOT_PRESENT)?;
        if offset > rec.len() {
            return Err(cc::PARAMETER_OUT_OF_RANGE);
        }
        let end = if count == 0xff {
            rec.len()
        } else {
            (offset + usize::from(count)).min(rec.len())
        };
        let next = if i + 1 < repo.len() {
            i as u16 + 2
        } else {
            sdr::LAST_RECORD
        };
        let mut out = next.to_le_bytes().to_vec();
        out.extend_from_slice(&rec[offset..end]);
        Ok(out)
    }

    fn sensor(&self, number: u8) -> Option<&'static Sensor> {
        sensors().iter().find(|s| s.number == number)
    }

    /// The raw reading of analog sensor `s` (None: unavailable).
    fn raw(&self, kind: &Kind, number: u8, power_on: bool) -> Option<u8> {
        let Kind::Analog {
            on, off, spread, ..
        } = kind
        else {
            return None;
        };
        if number == CPU1_TEMP && self.hot && power_on {
            return Some(97);
        }
        let base = if power_on { Some(*on) } else { *off };
        base.map(|b| (b + (self.index as i16).rem_euclid(*spread)) as u8)
    }

    /// Get Sensor Reading.
    pub fn reading(&self, data: &[u8], power_on: bool) -> Result<Vec<u8>, u8> {
        use xcat3_ipmi::cmd::cc;
        let n = *data.first().ok_or(cc::REQUEST_DATA_LENGTH)?;
        let s = self.sensor(n).ok_or(cc::NOT_PRESENT)?;
        Ok(match &s.kind {
            Kind::Analog { spec, .. } => match self.raw(&s.kind, n, power_on) {
                // Events and scanning enabled; byte 3's top bits read as 1.
                Some(raw) => {
                    let signed = spec.units1 >> 6 == 2;
                    let bits = if signed {
                        0
                    } else {
                        sdr::compare_thresholds(raw, &spec.thresholds)
                    };
                    vec![raw, 0xc0, 0xc0 | bits]
                }
                None => vec![0, 0xe0, 0xc0],
            },
            Kind::Discrete { on, off, .. } => {
                let st = if power_on { *on } else { *off };
                vec![0, 0xc0, st as u8, 0x80 | (st >> 8) as u8]
            }
        })
    }

    /// Get Sensor Thresholds.
    pub fn thresholds(&self, data: &[u8]) -> Result<Vec<u8>, u8> {
        use xcat3_ipmi::cmd::cc;
        let n = *data.first().ok_or(cc::REQUEST_DATA_LENGTH)?;
        let s = self.sensor(n).ok_or(cc::NOT_PRESENT)?;
        let Kind::Analog { spec, .. } = &s.kind else {
            return Err(cc::INVALID_COMMAND);
        };
        let mut mask = 0u8;
        let mut out = vec![0];
        for (i, t) in spec.thresholds.iter().enumerate() {
            if t.is_some() {
                mask |= 1 << i;
            }
            out.push(t.unwrap_or(0));
        }
        out[0] = mask;
        Ok(out)
    }

    pub fn sel_info(&self) -> Vec<u8> {
        let n = (self.sel.len() as u16).to_le_bytes();
        let free = (((SEL_CAPACITY - self.sel.len()) * 16) as u16).to_le_bytes();
        let mut v = vec![0x51, n[0], n[1], free[0], free[1]];
        v.extend_from_slice(&self.last_sel_add.to_le_bytes());
        v.extend_from_slice(&self.last_sel_erase.to_le_bytes());
        // Reserve SEL supported.
        v.push(0x02);
        v
    }

    pub fn reserve_sel(&mut self) -> Vec<u8> {
        self.reserve().to_le_bytes().to_vec()
    }

    /// Get SEL Entry (0x0000: first, 0xffff: last).
    pub fn sel_entry(&self, data: &[u8]) -> Result<Vec<u8>, u8> {
        use xcat3_ipmi::cmd::cc;
        let d = data.get(..6).ok_or(cc::REQUEST_DATA_LENGTH)?;
        let reservation = u16::from_le_bytes([d[0], d[1]]);
        let id = u16::from_le_bytes([d[2], d[3]]);
        let (offset, count) = (usize::from(d[4]), d[5]);
        if offset != 0 && reservation != self.reservation {
            return Err(cc::RESERVATION_CANCELLED);
        }
        let i = match id {
            0x0000 if !self.sel.is_empty() => 0,
            0xffff if !self.sel.is_empty() => self.sel.len() - 1,
            _ => self
                .sel
                .iter()
                .position(|e| e.id == id)
                .ok_or(cc::NOT_PRESENT)?,
        };
        let next = self.sel.get(i + 1).map(|e| e.id).unwrap_or(0xffff);
        let rec = self.sel[i].encode();
        if offset >= rec.len() {
            return Err(cc::PARAMETER_OUT_OF_RANGE);
        }
        let end = if count == 0xff {
            rec.len()
        } else {
            (offset + usize::from(count)).min(rec.len())
        };
        let mut out = next.to_le_bytes().to_vec();
        out.extend_from_slice(&rec[offset..end]);
        Ok(out)
    }

    /// Clear SEL: needs the current reservation and "CLR".
    pub fn clear_sel(&mut self, data: &[u8]) -> Result<Vec<u8>, u8> {
        use xcat3_ipmi::cmd::cc;
        let d = data.get(..6).ok_or(cc::REQUEST_DATA_LENGTH)?;
        if u16::from_le_bytes([d[0], d[1]]) != self.reservation {
            return Err(cc::RESERVATION_CANCELLED);
        }
        if &d[2..5] != b"CLR" {
            return Err(cc::INVALID_DATA_FIELD);
        }
        if d[5] == 0xaa {
            self.sel.clear();
            self.next_sel_id = 1;
            self.last_sel_erase = now_secs();
            // As real BMCs do: the clearing is the new log's first entry.
            self.log(EVENT_LOGGING, EVENT_LOG_SENSOR, 0x6f, 2, false);
        }
        // Erasure completed.
        Ok(vec![0x01])
    }

    pub fn sel_time(&self) -> Vec<u8> {
        now_secs().to_le_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_decodes_into_every_sensor() {
        let records: Vec<_> = repository()
            .iter()
            .map(|r| sdr::decode_record(r).unwrap().unwrap())
            .collect();
        assert_eq!(records.len(), 34);
        assert_eq!(records.iter().filter(|r| r.full).count(), 25);
        let v12 = records.iter().find(|r| r.name == "12V").unwrap();
        assert!((v12.convert(200).unwrap() - 12.0).abs() < 1e-9);
        let neg = records.iter().find(|r| r.name == "-12V").unwrap();
        assert!((neg.convert((-120i8) as u8).unwrap() + 12.0).abs() < 1e-9);
    }

    #[test]
    fn a_hot_board_reads_critical_and_logged_it() {
        let b = Board::new(0, true);
        let r = sdr::decode_reading(&b.reading(&[CPU1_TEMP], true).unwrap()).unwrap();
        assert_eq!(sdr::threshold_severity(r.state), sdr::Severity::Critical);
        assert_eq!(b.sel.len(), 2);
        // Off, the CPU has no reading.
        let r = sdr::decode_reading(&b.reading(&[CPU1_TEMP], false).unwrap()).unwrap();
        assert!(r.unavailable);
    }
}
