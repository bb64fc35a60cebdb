//! The IPMI commands xcat3 speaks: numbers, request data and the meaning
//! of their answers. Both the driver and the simulator use these, so the
//! two can only disagree with a real peer, which the interop tests check.

use xcat3_common::rpc::BootDevice;

pub const NETFN_CHASSIS: u8 = 0x00;
pub const NETFN_SENSOR: u8 = 0x04;
pub const NETFN_APP: u8 = 0x06;
pub const NETFN_STORAGE: u8 = 0x0a;

pub const GET_DEVICE_ID: u8 = 0x01;
pub const GET_SYSTEM_GUID: u8 = 0x37;
pub const GET_CHANNEL_AUTH_CAPABILITIES: u8 = 0x38;
pub const SET_SESSION_PRIVILEGE: u8 = 0x3b;
pub const CLOSE_SESSION: u8 = 0x3c;

pub const GET_CHASSIS_STATUS: u8 = 0x01;
pub const CHASSIS_CONTROL: u8 = 0x02;
pub const SET_BOOT_OPTIONS: u8 = 0x08;
pub const GET_BOOT_OPTIONS: u8 = 0x09;
pub const CHASSIS_IDENTIFY: u8 = 0x04;

/// Sensor/Event netfn.
pub const GET_SENSOR_THRESHOLDS: u8 = 0x27;
pub const GET_SENSOR_READING: u8 = 0x2d;

/// Storage netfn: FRU, SDR repository, SEL.
pub const GET_FRU_AREA_INFO: u8 = 0x10;
pub const READ_FRU_DATA: u8 = 0x11;
pub const GET_SDR_REPOSITORY_INFO: u8 = 0x20;
pub const RESERVE_SDR_REPOSITORY: u8 = 0x22;
pub const GET_SDR: u8 = 0x23;
pub const GET_SEL_INFO: u8 = 0x40;
pub const RESERVE_SEL: u8 = 0x42;
pub const GET_SEL_ENTRY: u8 = 0x43;
pub const CLEAR_SEL: u8 = 0x47;
pub const GET_SEL_TIME: u8 = 0x48;

/// Boot option parameters (Set/Get System Boot Options).
pub const BOOT_PARAM_SET_IN_PROGRESS: u8 = 0;
pub const BOOT_PARAM_FLAG_CLEARING: u8 = 3;
pub const BOOT_PARAM_INFO_ACK: u8 = 4;
pub const BOOT_PARAM_FLAGS: u8 = 5;

/// Completion codes used by the simulator.
pub mod cc {
    pub const OK: u8 = 0x00;
    pub const RESERVATION_CANCELLED: u8 = 0xc5;
    pub const CANNOT_RETURN_BYTES: u8 = 0xca;
    pub const NOT_PRESENT: u8 = 0xcb;
    pub const INVALID_COMMAND: u8 = 0xc1;
    pub const REQUEST_DATA_LENGTH: u8 = 0xc7;
    pub const PARAMETER_OUT_OF_RANGE: u8 = 0xc9;
    pub const INVALID_DATA_FIELD: u8 = 0xcc;
    pub const INSUFFICIENT_PRIVILEGE: u8 = 0xd4;
    pub const UNSPECIFIED: u8 = 0xff;
    /// Get/Set System Boot Options: parameter not supported.
    pub const PARAMETER_NOT_SUPPORTED: u8 = 0x80;
}

/// What a completion code means, for per-node errors.
pub fn completion_text(code: u8) -> &'static str {
    match code {
        0x00 => "ok",
        0x80 => "parameter not supported",
        0xc0 => "node busy",
        0xc1 => "invalid command",
        0xc2 => "command invalid for given LUN",
        0xc3 => "timeout while processing command",
        0xc4 => "out of space",
        0xc5 => "reservation cancelled or invalid",
        0xc6 => "request data truncated",
        0xc7 => "request data length invalid",
        0xc8 => "request data field length limit exceeded",
        0xc9 => "parameter out of range",
        0xca => "cannot return number of requested data bytes",
        0xcb => "requested sensor, data, or record not present",
        0xcc => "invalid data field in request",
        0xcd => "command illegal for specified sensor or record type",
        0xce => "command response could not be provided",
        0xcf => "cannot execute duplicated request",
        0xd0 => "SDR repository in update mode",
        0xd1 => "device in firmware update mode",
        0xd2 => "BMC initialization in progress",
        0xd3 => "destination unavailable",
        0xd4 => "insufficient privilege level",
        0xd5 => "command not supported in present state",
        0xd6 => "command sub-function disabled or unavailable",
        _ => "unspecified error",
    }
}

/// Session privilege levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Privilege {
    Callback = 1,
    User = 2,
    Operator = 3,
    Administrator = 4,
}

impl Privilege {
    pub fn from_u8(b: u8) -> Option<Privilege> {
        Some(match b & 0x0f {
            1 => Privilege::Callback,
            2 => Privilege::User,
            3 => Privilege::Operator,
            4 => Privilege::Administrator,
            _ => return None,
        })
    }

    /// The least privilege a command needs (IPMI v2.0 Appendix G).
    pub fn required(netfn: u8, cmd: u8) -> Privilege {
        match (netfn, cmd) {
            (
                NETFN_CHASSIS,
                CHASSIS_CONTROL | SET_BOOT_OPTIONS | GET_BOOT_OPTIONS | CHASSIS_IDENTIFY,
            ) => Privilege::Operator,
            (NETFN_STORAGE, CLEAR_SEL) => Privilege::Operator,
            (NETFN_CHASSIS, _) => Privilege::User,
            (NETFN_APP, GET_CHANNEL_AUTH_CAPABILITIES | CLOSE_SESSION) => Privilege::Callback,
            (NETFN_APP, SET_SESSION_PRIVILEGE) => Privilege::User,
            _ => Privilege::User,
        }
    }
}

/// Chassis Control data byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChassisControl {
    PowerDown = 0,
    PowerUp = 1,
    PowerCycle = 2,
    HardReset = 3,
    Diagnostic = 4,
    SoftShutdown = 5,
}

impl ChassisControl {
    pub fn from_u8(b: u8) -> Option<ChassisControl> {
        Some(match b & 0x0f {
            0 => ChassisControl::PowerDown,
            1 => ChassisControl::PowerUp,
            2 => ChassisControl::PowerCycle,
            3 => ChassisControl::HardReset,
            4 => ChassisControl::Diagnostic,
            5 => ChassisControl::SoftShutdown,
            _ => return None,
        })
    }
}

/// Whether a Get Chassis Status answer says the system is on.
pub fn power_is_on(status: &[u8]) -> Option<bool> {
    status.first().map(|b| b & 0x01 != 0)
}

/// Boot flags (boot option parameter 5): the next boot device, and
/// whether it applies to every boot and boots in UEFI mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootFlags {
    /// None: no override (the firmware's own order).
    pub device: Option<BootDevice>,
    pub persistent: bool,
    pub efi: bool,
    /// The valid bit: the override is in force.
    pub valid: bool,
}

const FLAG_VALID: u8 = 0x80;
const FLAG_PERSISTENT: u8 = 0x40;
const FLAG_EFI: u8 = 0x20;

impl BootFlags {
    /// The five data bytes of parameter 5 (byte 2 bits 5:2 select the device).
    pub fn encode(&self) -> [u8; 5] {
        let mut f1 = 0;
        if self.valid {
            f1 |= FLAG_VALID;
        }
        if self.persistent {
            f1 |= FLAG_PERSISTENT;
        }
        if self.efi {
            f1 |= FLAG_EFI;
        }
        let dev = match self.device {
            None => 0x00,
            Some(BootDevice::Net) => 0x04,
            Some(BootDevice::Disk) => 0x08,
            Some(BootDevice::Cdrom) => 0x14,
            Some(BootDevice::Bios) => 0x18,
        };
        [f1, dev, 0, 0, 0]
    }

    /// Reads parameter data; selectors xcat3 has no name for (floppy,
    /// diagnostics, ...) are an error naming the selector.
    pub fn decode(data: &[u8]) -> Result<BootFlags, String> {
        if data.len() < 2 {
            return Err("boot flags: short parameter data".into());
        }
        let device = match data[1] & 0x3c {
            0x00 => None,
            0x04 => Some(BootDevice::Net),
            0x08 | 0x0c => Some(BootDevice::Disk),
            0x14 => Some(BootDevice::Cdrom),
            0x18 => Some(BootDevice::Bios),
            other => {
                return Err(format!(
                    "boot flags: unsupported device selector {other:#04x}"
                ));
            }
        };
        Ok(BootFlags {
            device,
            persistent: data[0] & FLAG_PERSISTENT != 0,
            efi: data[0] & FLAG_EFI != 0,
            valid: data[0] & FLAG_VALID != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_flags_match_ironic_bytes() {
        // Ironic: 0xa0 = one-time UEFI, 0xe0 = persistent UEFI; 0x04 = PXE.
        let f = BootFlags {
            device: Some(BootDevice::Net),
            persistent: false,
            efi: true,
            valid: true,
        };
        assert_eq!(f.encode(), [0xa0, 0x04, 0, 0, 0]);
        let p = BootFlags {
            persistent: true,
            ..f
        };
        assert_eq!(p.encode()[0], 0xe0);
        for dev in [
            BootDevice::Net,
            BootDevice::Disk,
            BootDevice::Cdrom,
            BootDevice::Bios,
        ] {
            let f = BootFlags {
                device: Some(dev),
                ..f
            };
            assert_eq!(BootFlags::decode(&f.encode()).unwrap(), f);
        }
        assert!(BootFlags::decode(&[0x80, 0x3c]).is_err());
    }
}
