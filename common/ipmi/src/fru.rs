//! FRU inventory data (Platform Management FRU Information Storage
//! Definition v1.0): the common header and the chassis, board and product
//! info areas, as `Read FRU Data` returns them.
//!
//! Decoding reads the header first ([`Header`]) so a reader fetches only
//! the areas it names; [`decode_area`] takes one area's bytes. [`encode`]
//! writes the same layout (8-bit ASCII fields) for the simulator.

/// The FRU spec's epoch for the board's manufacturing date:
/// 1996-01-01 00:00 UTC, in Unix seconds.
pub const MFG_EPOCH: i64 = 820_454_400;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FruError {
    #[error("FRU {0}: bad checksum")]
    Checksum(&'static str),
    #[error("FRU {0}: unsupported format version")]
    Version(&'static str),
    #[error("FRU {0}: truncated")]
    Truncated(&'static str),
}

/// Where the info areas start (byte offsets; None: absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub chassis: Option<usize>,
    pub board: Option<usize>,
    pub product: Option<usize>,
}

/// Reads the 8-byte common header.
pub fn decode_header(data: &[u8]) -> Result<Header, FruError> {
    let h = data.get(..8).ok_or(FruError::Truncated("header"))?;
    if h[0] & 0x0f != 0x01 {
        return Err(FruError::Version("header"));
    }
    if checksum(h) != 0 {
        return Err(FruError::Checksum("header"));
    }
    let at = |b: u8| (b != 0).then_some(usize::from(b) * 8);
    Ok(Header {
        chassis: at(h[2]),
        board: at(h[3]),
        product: at(h[4]),
    })
}

/// The length in bytes of the area whose first two bytes are `start`.
pub fn area_len(start: &[u8]) -> Option<usize> {
    start.get(1).map(|&b| usize::from(b) * 8)
}

/// Which info area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AreaKind {
    Chassis,
    Board,
    Product,
}

impl AreaKind {
    fn name(self) -> &'static str {
        match self {
            AreaKind::Chassis => "chassis area",
            AreaKind::Board => "board area",
            AreaKind::Product => "product area",
        }
    }

    /// The named fields each area starts with, in order.
    fn fields(self) -> &'static [&'static str] {
        match self {
            AreaKind::Chassis => &["part_number", "serial"],
            AreaKind::Board => &[
                "manufacturer",
                "product",
                "serial",
                "part_number",
                "fru_file_id",
            ],
            AreaKind::Product => &[
                "manufacturer",
                "product",
                "part_number",
                "version",
                "serial",
                "asset_tag",
                "fru_file_id",
            ],
        }
    }
}

/// One decoded info area: its named fields (those present and not
/// empty), its custom fields, and the board's manufacturing date.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Area {
    pub fields: Vec<(&'static str, String)>,
    pub custom: Vec<String>,
    /// Chassis area: the SMBIOS chassis type.
    pub chassis_type: Option<u8>,
    /// Board area: manufacturing time, Unix seconds (None: unspecified).
    pub mfg_time: Option<i64>,
}

impl Area {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == field)
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes one info area (its whole length, from its version byte).
pub fn decode_area(kind: AreaKind, data: &[u8]) -> Result<Area, FruError> {
    let name = kind.name();
    let len = area_len(data).ok_or(FruError::Truncated(name))?;
    if len == 0 || data.len() < len {
        return Err(FruError::Truncated(name));
    }
    let data = &data[..len];
    if data[0] & 0x0f != 0x01 {
        return Err(FruError::Version(name));
    }
    if checksum(data) != 0 {
        return Err(FruError::Checksum(name));
    }
    let mut area = Area::default();
    let mut pos = match kind {
        AreaKind::Chassis => {
            area.chassis_type = Some(data[2]);
            3
        }
        AreaKind::Board => {
            let minutes = u32::from_le_bytes([
                *data.get(3).ok_or(FruError::Truncated(name))?,
                *data.get(4).ok_or(FruError::Truncated(name))?,
                *data.get(5).ok_or(FruError::Truncated(name))?,
                0,
            ]);
            area.mfg_time = (minutes != 0).then(|| MFG_EPOCH + i64::from(minutes) * 60);
            6
        }
        AreaKind::Product => 3,
    };
    // The named fields are read by position, as ipmitool does: 0xc1 there
    // is a one-character field, not the end marker, which only ends the
    // custom fields after them. The last byte is the checksum.
    for key in kind.fields() {
        if pos >= len - 1 {
            break;
        }
        let text = field(data, &mut pos, name)?;
        if !text.is_empty() {
            area.fields.push((key, text));
        }
    }
    while pos < len - 1 && data[pos] != 0xc1 {
        let text = field(data, &mut pos, name)?;
        if !text.is_empty() {
            area.custom.push(text);
        }
    }
    Ok(area)
}

/// One type/length-coded field at `*pos`.
fn field(data: &[u8], pos: &mut usize, area: &'static str) -> Result<String, FruError> {
    let tl = data[*pos];
    let len = usize::from(tl & 0x3f);
    let bytes = data
        .get(*pos + 1..*pos + 1 + len)
        .ok_or(FruError::Truncated(area))?;
    *pos += 1 + len;
    Ok(match tl >> 6 {
        0 => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        1 => bcd_plus(bytes),
        2 => six_bit_ascii(bytes),
        // 8-bit ASCII + Latin-1 (English).
        _ => bytes
            .iter()
            .map(|&b| char::from(b))
            .collect::<String>()
            .trim_end_matches(['\0', ' '])
            .to_string(),
    })
}

fn bcd_plus(bytes: &[u8]) -> String {
    let digit = |n: u8| match n {
        0..=9 => char::from(b'0' + n),
        0xa => ' ',
        0xb => '-',
        0xc => '.',
        _ => '?',
    };
    bytes
        .iter()
        .flat_map(|b| [digit(b >> 4), digit(b & 0x0f)])
        .collect()
}

/// Packed 6-bit ASCII: four characters in three bytes, least
/// significant bits first; each is its value plus 0x20.
fn six_bit_ascii(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0);
    for &b in bytes {
        acc |= u32::from(b) << bits;
        bits += 8;
        while bits >= 6 {
            out.push(char::from((acc & 0x3f) as u8 + 0x20));
            acc >>= 6;
            bits -= 6;
        }
    }
    out.trim_end().to_string()
}

/// The zero checksum byte for `data` (its sum must be 0 mod 256).
fn checksum(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |a, b| a.wrapping_add(*b))
}

/// What [`encode`] writes: fields in each area's order (empty strings are
/// written as empty fields).
#[derive(Debug, Clone, Default)]
pub struct Contents<'a> {
    pub chassis: Option<(u8, [&'a str; 2])>,
    /// Manufacturing minutes since [`MFG_EPOCH`], and the fields.
    pub board: Option<(u32, [&'a str; 5])>,
    pub product: Option<[&'a str; 7]>,
}

/// Writes a FRU image (common header and areas, 8-bit ASCII fields).
pub fn encode(c: &Contents<'_>) -> Vec<u8> {
    fn area(prefix: &[u8], fields: &[&str]) -> Vec<u8> {
        let mut a = vec![0x01, 0];
        a.extend_from_slice(prefix);
        for f in fields {
            let f = &f.as_bytes()[..f.len().min(63)];
            a.push(0xc0 | f.len() as u8);
            a.extend_from_slice(f);
        }
        a.push(0xc1);
        while (a.len() + 1) % 8 != 0 {
            a.push(0);
        }
        a[1] = ((a.len() + 1) / 8) as u8;
        a.push(0u8.wrapping_sub(checksum(&a)));
        a
    }
    let mut areas: Vec<(usize, Vec<u8>)> = Vec::new();
    if let Some((t, f)) = &c.chassis {
        areas.push((2, area(&[*t], f)));
    }
    if let Some((minutes, f)) = &c.board {
        let m = minutes.to_le_bytes();
        // Language 0 (English), then the three date bytes.
        areas.push((3, area(&[0, m[0], m[1], m[2]], f)));
    }
    if let Some(f) = &c.product {
        areas.push((4, area(&[0], f)));
    }
    let mut out = vec![0x01, 0, 0, 0, 0, 0, 0, 0];
    for (slot, bytes) in areas {
        out[slot] = (out.len() / 8) as u8;
        out.extend_from_slice(&bytes);
    }
    out[7] = 0u8.wrapping_sub(checksum(&out[..7]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_areas_decode_to_their_fields() {
        let image = encode(&Contents {
            chassis: Some((0x17, ["CH-PART", "CH123"])),
            board: Some((15_000_000, ["Acme", "X11 Board", "BRD42", "B-PART", ""])),
            product: Some(["Acme", "Server 9", "P-PART", "1.0", "SRV7", "tag1", ""]),
        });
        let h = decode_header(&image).unwrap();
        let area = |at: Option<usize>, kind| decode_area(kind, &image[at.unwrap()..]).unwrap();
        let ch = area(h.chassis, AreaKind::Chassis);
        assert_eq!(ch.chassis_type, Some(0x17));
        assert_eq!(ch.get("serial"), Some("CH123"));
        let b = area(h.board, AreaKind::Board);
        assert_eq!(b.get("product"), Some("X11 Board"));
        assert_eq!(b.get("fru_file_id"), None);
        assert_eq!(b.mfg_time, Some(MFG_EPOCH + 15_000_000 * 60));
        let p = area(h.product, AreaKind::Product);
        assert_eq!(p.get("asset_tag"), Some("tag1"));
        assert_eq!(p.get("version"), Some("1.0"));
    }

    #[test]
    fn a_one_character_named_field_is_not_the_end_marker() {
        // Version "2" is type/length 0xc1, the end marker's value.
        let image = encode(&Contents {
            product: Some(["Acme", "IPMI", "P-100", "2", "1234", "", ""]),
            ..Contents::default()
        });
        let at = decode_header(&image).unwrap().product.unwrap();
        let p = decode_area(AreaKind::Product, &image[at..]).unwrap();
        assert_eq!(p.get("version"), Some("2"));
        assert_eq!(p.get("serial"), Some("1234"));
    }

    #[test]
    fn packed_and_bcd_fields_decode() {
        // "IPMI" in 6-bit ASCII: 0x29 0xdc 0xa6 (spec example).
        assert_eq!(six_bit_ascii(&[0x29, 0xdc, 0xa6]), "IPMI");
        assert_eq!(bcd_plus(&[0x12, 0xb3, 0xc4]), "12-3.4");
    }

    #[test]
    fn a_bad_checksum_names_the_area() {
        let mut image = encode(&Contents {
            product: Some(["A", "B", "C", "D", "E", "F", ""]),
            ..Contents::default()
        });
        let at = decode_header(&image).unwrap().product.unwrap();
        image[at + 4] ^= 0xff;
        assert_eq!(
            decode_area(AreaKind::Product, &image[at..]),
            Err(FruError::Checksum("product area"))
        );
        image[7] ^= 1;
        assert_eq!(decode_header(&image), Err(FruError::Checksum("header")));
    }
}
