//! The `newc` cpio format (SVR4, no CRC): what the Linux kernel unpacks
//! into its root file system from an initramfs. Node images are one big
//! compressed archive of the root, and each node's overlay a small
//! uncompressed one appended after it; the kernel unpacks them in order,
//! so the overlay's files replace the image's.
//!
//! Pure: callers hand in names, modes and bytes; the API's image builder
//! walks a tree into it, the conductor writes overlays from memory.

/// File type bits of `st_mode`.
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFBLK: u32 = 0o060000;

/// One archive member's header fields.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// Path without a leading `/` (`etc/hostname`).
    pub name: String,
    /// Type bits and permissions.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
    /// Device numbers of character and block devices.
    pub rdev_major: u32,
    pub rdev_minor: u32,
    /// Inode number: unique per member (the kernel uses it with the link
    /// count to find hard links; we store every file whole with nlink 1).
    pub ino: u32,
}

/// Writes a `newc` archive into any `Write`.
pub struct Writer<W: std::io::Write> {
    out: W,
    written: u64,
    next_ino: u32,
}

impl<W: std::io::Write> Writer<W> {
    pub fn new(out: W) -> Writer<W> {
        Writer {
            out,
            written: 0,
            next_ino: 1,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends one member with its contents (a symlink's target for links,
    /// nothing for directories and devices).
    pub fn add(&mut self, entry: &Entry, data: &[u8]) -> std::io::Result<()> {
        self.add_streamed(entry, data.len() as u64, &mut &data[..])
    }

    /// Appends one member whose `size` bytes come from `data` (a file read
    /// as it is written, not held in memory).
    pub fn add_streamed(
        &mut self,
        entry: &Entry,
        size: u64,
        data: &mut dyn std::io::Read,
    ) -> std::io::Result<()> {
        let size32 = u32::try_from(size).map_err(|_| {
            std::io::Error::other(format!("{}: over 4 GiB, too big for cpio", entry.name))
        })?;
        let ino = if entry.ino == 0 {
            self.next_ino += 1;
            self.next_ino
        } else {
            entry.ino
        };
        let nlink = if entry.mode & 0o170000 == S_IFDIR {
            2
        } else {
            1
        };
        self.header(entry, ino, nlink, size32)?;
        let copied = std::io::copy(&mut std::io::Read::take(data, size), &mut self.out)?;
        if copied != size {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{}: changed size while archived", entry.name),
            ));
        }
        self.written += size;
        self.pad()
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> std::io::Result<W> {
        let trailer = Entry {
            name: "TRAILER!!!".into(),
            ..Entry::default()
        };
        self.header(&trailer, 0, 1, 0)?;
        Ok(self.out)
    }

    fn header(&mut self, e: &Entry, ino: u32, nlink: u32, size: u32) -> std::io::Result<()> {
        let name_len = e.name.len() + 1;
        let h = format!(
            "070701{ino:08x}{:08x}{:08x}{:08x}{nlink:08x}{:08x}{size:08x}{:08x}{:08x}{:08x}{:08x}{name_len:08x}{:08x}",
            e.mode, e.uid, e.gid, e.mtime, 0, 0, e.rdev_major, e.rdev_minor, 0
        );
        self.out.write_all(h.as_bytes())?;
        self.out.write_all(e.name.as_bytes())?;
        self.out.write_all(&[0])?;
        self.written += (h.len() + name_len) as u64;
        self.pad()
    }

    /// Zero bytes up to the next 4-byte boundary.
    fn pad(&mut self) -> std::io::Result<()> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.out.write_all(&[0u8; 3][..n])?;
        self.written += n as u64;
        Ok(())
    }
}

/// A small archive of text files (and the directories above them), all
/// owned by root: a node's overlay. A path ending in `/` is a directory
/// with that mode; directories not named are 0755. Being headers of
/// ASCII hex, names, zero padding and the files' UTF-8 text, the archive
/// is itself valid UTF-8 and can be kept with the node's other text boot
/// files.
pub fn text_archive(files: &[(&str, u32, &str)]) -> String {
    let mut w = Writer::new(Vec::new());
    let mut dirs: Vec<String> = Vec::new();
    for (path, mode, text) in files {
        let path = path.trim_start_matches('/');
        if let Some(dir) = path.strip_suffix('/') {
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_string());
                let e = Entry {
                    name: dir.to_string(),
                    mode: S_IFDIR | mode,
                    ..Entry::default()
                };
                w.add(&e, &[]).expect("writing to memory");
            }
            continue;
        }
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let dir = &path[..at + i];
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_string());
                let e = Entry {
                    name: dir.to_string(),
                    mode: S_IFDIR | 0o755,
                    ..Entry::default()
                };
                w.add(&e, &[]).expect("writing to memory");
            }
            at += i + 1;
        }
        let e = Entry {
            name: path.to_string(),
            mode: S_IFREG | mode,
            ..Entry::default()
        };
        w.add(&e, text.as_bytes()).expect("writing to memory");
    }
    let bytes = w.finish().expect("writing to memory");
    String::from_utf8(bytes).expect("headers, names, text and zero bytes are UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a newc archive back: (name, mode, data) per member.
    fn parse(mut b: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut off = 0usize;
        loop {
            assert_eq!(&b[..6], b"070701", "magic at {off}");
            let field = |i: usize| {
                u32::from_str_radix(std::str::from_utf8(&b[6 + i * 8..14 + i * 8]).unwrap(), 16)
                    .unwrap()
            };
            let mode = field(1);
            let size = field(6) as usize;
            let name_len = field(11) as usize;
            let name = String::from_utf8(b[110..110 + name_len - 1].to_vec()).unwrap();
            let data_at = (110 + name_len).div_ceil(4) * 4;
            let end = (data_at + size).div_ceil(4) * 4;
            if name == "TRAILER!!!" {
                return out;
            }
            out.push((name, mode, b[data_at..data_at + size].to_vec()));
            off += end;
            b = &b[end..];
        }
    }

    #[test]
    fn text_archive_holds_its_files_and_their_directories() {
        let a = text_archive(&[
            ("/etc/hostname", 0o644, "n1\n"),
            ("etc/xcat3/node.conf", 0o600, "node=n1\n"),
        ]);
        assert_eq!(a.len() % 4, 0);
        let members = parse(a.as_bytes());
        let names: Vec<&str> = members.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(
            names,
            ["etc", "etc/hostname", "etc/xcat3", "etc/xcat3/node.conf"]
        );
        assert_eq!(members[0].1, S_IFDIR | 0o755);
        assert_eq!(members[3].1, S_IFREG | 0o600);
        assert_eq!(members[1].2, b"n1\n");
    }

    #[test]
    fn a_short_read_is_an_error_not_a_corrupt_archive() {
        let mut w = Writer::new(Vec::new());
        let e = Entry {
            name: "f".into(),
            mode: S_IFREG | 0o644,
            ..Entry::default()
        };
        let err = w.add_streamed(&e, 10, &mut &b"12345"[..]).unwrap_err();
        assert!(err.to_string().contains("changed size"), "{err}");
    }

    /// The kernel's rule: every header starts on a 4-byte boundary.
    #[test]
    fn members_are_aligned() {
        let mut w = Writer::new(Vec::new());
        for (i, len) in [1usize, 2, 3, 4, 5].into_iter().enumerate() {
            let e = Entry {
                name: format!("f{i}{}", "x".repeat(i)),
                mode: S_IFREG | 0o644,
                ..Entry::default()
            };
            w.add(&e, &vec![b'a'; len]).unwrap();
        }
        let b = w.finish().unwrap();
        let members = parse(&b);
        assert_eq!(members.len(), 5);
        assert_eq!(members[4].2.len(), 5);
    }
}
