//! A node's console log: `<log_dir>/<node>.log`, each line stamped with
//! the time its first byte arrived, rotated to `<node>.log.1` (then `.2`,
//! ...) once it reaches the size cap, so a chatty node cannot fill the
//! disk. Connection changes are written as conserver-style marks
//! (`[-- xcat3: ... --]`) on a line of their own.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};

/// The log file of one node.
pub struct LogFile {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max: u64,
    keep: u32,
    /// Whether the next byte starts a line (and so gets a timestamp).
    at_line_start: bool,
}

/// The path of `node`'s log in `dir`; None for a name that is not a plain
/// file name (node names are checked when written; this is the backstop).
pub fn path(dir: &Path, node: &str) -> Option<PathBuf> {
    let plain = !node.is_empty()
        && !node.starts_with('.')
        && node
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    plain.then(|| dir.join(format!("{node}.log")))
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    s.into()
}

impl LogFile {
    pub fn new(dir: &Path, node: &str, max: u64, keep: u32) -> io::Result<LogFile> {
        let path = path(dir, node)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a plain node name"))?;
        Ok(LogFile {
            path,
            file: None,
            size: 0,
            max: max.max(4096),
            keep,
            at_line_start: true,
        })
    }

    fn file(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                fs::create_dir_all(dir)?;
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.size = f.metadata()?.len();
            // A line left open by an earlier writer ends before ours.
            self.at_line_start = true;
            if self.size > 0 {
                let mut last = [0u8; 1];
                let mut r = File::open(&self.path)?;
                r.seek(SeekFrom::End(-1))?;
                r.read_exact(&mut last)?;
                self.at_line_start = last[0] == b'\n';
            }
            self.file = Some(f);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    /// Appends what the node printed, stamping each new line with `now`.
    pub fn write(&mut self, data: &[u8], now: DateTime<Utc>) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.file()?;
        let stamp = format!("[{}] ", now.to_rfc3339_opts(SecondsFormat::Millis, true));
        let mut out = Vec::with_capacity(data.len() + stamp.len() * 2);
        let mut at_start = self.at_line_start;
        for &b in data {
            if at_start {
                out.extend_from_slice(stamp.as_bytes());
            }
            out.push(b);
            at_start = b == b'\n';
        }
        self.file()?.write_all(&out)?;
        self.at_line_start = at_start;
        self.size += out.len() as u64;
        if self.size >= self.max {
            self.rotate()?;
        }
        Ok(())
    }

    /// A line of our own: `[-- xcat3: text --]`.
    pub fn mark(&mut self, text: &str, now: DateTime<Utc>) -> io::Result<()> {
        self.file()?;
        if !self.at_line_start {
            self.write(b"\n", now)?;
        }
        self.write(format!("[-- xcat3: {text} --]\n").as_bytes(), now)
    }

    /// `<node>.log` → `.1` → `.2` ...; the oldest beyond `keep` is removed.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.keep == 0 {
            return fs::remove_file(&self.path);
        }
        let _ = fs::remove_file(rotated(&self.path, self.keep));
        for n in (1..self.keep).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                fs::rename(&from, rotated(&self.path, n + 1))?;
            }
        }
        fs::rename(&self.path, rotated(&self.path, 1))
    }
}

/// The last `lines` lines of `node`'s log (reaching into the newest
/// rotated file when the current one is shorter). Empty when there is no
/// log yet.
pub fn tail(dir: &Path, node: &str, lines: usize) -> io::Result<Vec<u8>> {
    let Some(path) = path(dir, node) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a plain node name",
        ));
    };
    let mut out = tail_of(&path, lines)?;
    let have = out.iter().filter(|&&b| b == b'\n').count();
    if have < lines {
        let mut older = tail_of(&rotated(&path, 1), lines - have)?;
        older.extend_from_slice(&out);
        out = older;
    }
    Ok(out)
}

/// At most the last `lines` lines of one file, read backwards in blocks.
fn tail_of(path: &Path, lines: usize) -> io::Result<Vec<u8>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    if lines == 0 {
        return Ok(Vec::new());
    }
    let len = f.metadata()?.len();
    let mut pos = len;
    let mut buf: Vec<u8> = Vec::new();
    const BLOCK: u64 = 64 << 10;
    loop {
        // A final newline ends the last line; it does not start another.
        let newlines = buf.iter().filter(|&&b| b == b'\n').count();
        let trailing = usize::from(buf.last() == Some(&b'\n'));
        if newlines >= lines + trailing || pos == 0 {
            break;
        }
        let step = BLOCK.min(pos);
        pos -= step;
        let mut block = vec![0u8; step as usize];
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut block)?;
        block.extend_from_slice(&buf);
        buf = block;
    }
    // Keep the last `lines` lines.
    let trailing = usize::from(buf.last() == Some(&b'\n'));
    let mut seen = 0;
    let mut start = 0;
    for (i, &b) in buf.iter().enumerate().rev() {
        if b == b'\n' {
            seen += 1;
            if seen == lines + trailing {
                start = i + 1;
                break;
            }
        }
    }
    Ok(buf.split_off(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-02T01:02:03Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn lines_are_stamped_once_even_when_split_across_writes() {
        let dir = std::env::temp_dir().join(format!("xcat3-log-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut log = LogFile::new(&dir, "n1", 1 << 20, 2).unwrap();
        log.write(b"hello ", now()).unwrap();
        log.write(b"world\r\nsecond", now()).unwrap();
        log.mark("connected", now()).unwrap();
        log.write(b"third\n", now()).unwrap();
        let text = String::from_utf8(fs::read(dir.join("n1.log")).unwrap()).unwrap();
        let stamp = "[2026-12-02T01:02:03.000Z] ";
        assert_eq!(
            text,
            format!(
                "{stamp}hello world\r\n{stamp}second\n{stamp}[-- xcat3: connected --]\n{stamp}third\n"
            )
        );
        let t = String::from_utf8(tail(&dir, "n1", 2).unwrap()).unwrap();
        assert_eq!(
            t,
            format!("{stamp}[-- xcat3: connected --]\n{stamp}third\n")
        );
        assert!(path(&dir, "../etc/passwd").is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rotation_caps_the_size_and_tail_reaches_the_previous_file() {
        let dir = std::env::temp_dir().join(format!("xcat3-rot-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut log = LogFile::new(&dir, "n2", 4096, 2).unwrap();
        for i in 0..1000 {
            log.write(format!("line {i}\n").as_bytes(), now()).unwrap();
        }
        let total: u64 = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(total <= 3 * (4096 + 64), "{total} bytes kept");
        assert!(!dir.join("n2.log.3").exists());
        let t = String::from_utf8(tail(&dir, "n2", 150).unwrap()).unwrap();
        assert_eq!(t.lines().count(), 150);
        assert!(t.ends_with("line 999\n"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
