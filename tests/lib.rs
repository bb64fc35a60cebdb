//! Helpers for end-to-end tests: start the real `xcat3-api`, run the real
//! `xcat3` CLI, make throwaway directories and databases.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Servers the tests start read no power states on their own: the example
/// inventory's BMC addresses (11.x) are not on loopback, and a periodic
/// sync would send them packets. The test of the sync turns it on (a
/// test's `env` comes after this).
const NO_POWER_SYNC: (&str, &str) = ("XCAT3_POWER_SYNC_INTERVAL", "0");

/// A `/proc/PID/status` field in KiB (`VmRSS:`, `VmHWM:`); 0 when gone.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) process `pid` has used; 0 when gone.
pub fn proc_cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (field(11) + field(12)) as f64 / 100.0
}

/// Where tests and benchmarks keep bootstrapped roots for `genimage`:
/// the first build on a machine bootstraps Debian (minutes), later ones
/// pack the cache (seconds).
pub fn genimage_cache_dir() -> String {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    format!("{home}/.cache/xcat3/genimage")
}

/// The directory holding the workspace's binaries (next to `deps/`),
/// brought up to date first: `cargo test` builds test harnesses, not the
/// other packages' executables, so the tests build them once per process
/// (a no-op when current) instead of running stale ones.
pub fn bin_dir() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf();
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        // The same targets and features as the `cargo test` / `nextest`
        // run that built us, so the build is a no-op unless a binary is
        // stale (a narrower build would resolve features differently and
        // rebuild half the tree every time).
        if dir.file_name().is_some_and(|n| n == "release") {
            // A benchmark (`cargo bench`): the shipped binaries only.
            cmd.args(["build", "--release", "-p", "xcat3-api", "-p", "xcat3-cli"]);
            cmd.args([
                "-p",
                "xcat3-conductor",
                "-p",
                "xcat3-sim",
                "-p",
                "xcat3-agent",
            ]);
        } else {
            cmd.args(["build", "--workspace", "--all-targets"]);
            if cfg!(feature = "servers") {
                cmd.args(["--features", "xcat3-tests/servers"]);
            }
        }
        // Cargo sets package variables (CARGO_MANIFEST_DIR, ...) for this
        // test process; build scripts that watch them would see a changed
        // environment and rebuild. Hand the inner build the caller's.
        for (k, _) in std::env::vars() {
            let ours = k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_TARGET_DIR";
            if ours || k.starts_with("NEXTEST") || k == "OUT_DIR" || k == "LD_LIBRARY_PATH" {
                cmd.env_remove(k);
            }
        }
        let out = cmd.output().expect("run cargo build");
        assert!(
            out.status.success(),
            "building the binaries failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    for b in [
        "xcat3-api",
        "xcat3",
        "xcat3-conductor",
        "xcat3-sim",
        "xcat3-agent",
    ] {
        assert!(dir.join(b).exists(), "{} is missing", dir.join(b).display());
    }
    dir
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("xcat3-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `xcat3-api` process, killed on drop.
pub struct Api {
    child: Child,
    pub url: String,
    /// The network namespace the API (and so the CLI) runs in, if any.
    netns: Option<String>,
}

impl Api {
    /// `xcat3-api --standalone --data-dir DIR --listen 127.0.0.1:0`.
    pub fn standalone(data_dir: &Path) -> Api {
        Api::standalone_with(data_dir, &[])
    }

    /// [`standalone`](Api::standalone) with config overrides (`XCAT3_*`).
    pub fn standalone_with(data_dir: &Path, env: &[(&str, &str)]) -> Api {
        let mut env = env.to_vec();
        env.push(("XCAT3_CONDUCTOR_HOST", "local"));
        Api::start(
            &[
                "--standalone",
                "--data-dir",
                data_dir.to_str().expect("utf-8 path"),
                "--listen",
                "127.0.0.1:0",
            ],
            &env,
        )
    }

    /// `xcat3-api` on a database URL (through the environment, as an
    /// operator's config override would).
    pub fn with_db(url: &str) -> Api {
        Api::start(&["--listen", "127.0.0.1:0"], &[("XCAT3_DATABASE_URL", url)])
    }

    /// `xcat3-api` with extra flags and environment (config overrides).
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Api {
        Api::start_in(None, args, env)
    }

    /// Like [`start`](Api::start), inside network namespace `netns`; the
    /// CLI then runs there too.
    pub fn start_in(netns: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Api {
        Api::spawn(netns, args, env, None)
    }

    /// Like [`start_in`](Api::start_in), logging at `info` into `log`
    /// (for tests that assert on what the servers saw).
    pub fn start_logged(
        netns: Option<&str>,
        args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Api {
        Api::spawn(netns, args, env, Some(log))
    }

    fn spawn(netns: Option<&str>, args: &[&str], env: &[(&str, &str)], log: Option<&Path>) -> Api {
        let mut cmd = in_netns(netns, &bin_dir().join("xcat3-api"));
        cmd.args(args)
            .env(NO_POWER_SYNC.0, NO_POWER_SYNC.1)
            // Standalone serves boot files on a fixed port by default;
            // tests run side by side and take a free one (a test's `env`
            // may name its own).
            .env("XCAT3_BOOT_HTTP_LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdout(Stdio::piped());
        match log {
            Some(path) => cmd
                .env("RUST_LOG", "info")
                .stderr(std::fs::File::create(path).expect("API log file")),
            None => cmd.env("RUST_LOG", "warn").stderr(Stdio::inherit()),
        };
        let mut child = cmd.spawn().expect("spawn xcat3-api");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            assert!(
                Instant::now() < deadline,
                "xcat3-api did not report its address"
            );
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(u) = l.strip_prefix("listening on ") {
                        break u.trim().to_string();
                    }
                }
                _ => {
                    let status = child.wait().ok();
                    panic!("xcat3-api exited before listening: {status:?}");
                }
            }
        };
        Api {
            child,
            url,
            netns: netns.map(str::to_string),
        }
    }

    /// A standalone API that serves boot files over HTTP on `http`
    /// (loopback nodes, no DHCP server) and builds images from the
    /// machine's genimage cache ([`genimage_cache_dir`]), with `env` added.
    pub fn standalone_boot(data_dir: &Path, http: &str, env: &[(&str, &str)]) -> Api {
        let cache = genimage_cache_dir();
        let mut all = vec![
            ("XCAT3_BOOT_HTTP_LISTEN", http),
            ("XCAT3_BOOT_SERVER_ADDRESS", "127.0.0.1"),
            ("XCAT3_DHCP_BACKEND", "none"),
            ("XCAT3_GENIMAGE_CACHE_DIR", cache.as_str()),
        ];
        all.extend_from_slice(env);
        Api::standalone_with(data_dir, &all)
    }

    /// The network `lab` (`network` holds its `subnet=`, `netmask=`, ...)
    /// and the root password every deploy needs, as `token`'s holder.
    pub fn create_lab(&self, token: Option<&str>, network: &[&str]) {
        let mut args = vec!["network-create", "lab"];
        args.extend_from_slice(network);
        self.xcat3_as(token, &args).ok();
        self.xcat3_as(
            token,
            &[
                "passwd-create",
                "system",
                "username=root",
                "password=cluster",
            ],
        )
        .ok();
    }

    /// Runs the real `xcat3` CLI against this API.
    pub fn xcat3(&self, args: &[&str]) -> Run {
        self.xcat3_as(None, args)
    }

    /// [`xcat3`](Api::xcat3) with an API token (`XCAT3_TOKEN`).
    pub fn xcat3_as(&self, token: Option<&str>, args: &[&str]) -> Run {
        let mut cmd = in_netns(self.netns.as_deref(), &bin_dir().join("xcat3"));
        cmd.args(args).env("XCAT3_URL", &self.url);
        match token {
            Some(t) => cmd.env("XCAT3_TOKEN", t),
            None => cmd.env_remove("XCAT3_TOKEN"),
        };
        Run(cmd.output().expect("run xcat3"))
    }

    /// Runs the prototype's Python client (`tests/peers/python-xcat3client`,
    /// in the venv `scripts/test` makes) against this API. Its
    /// `rstrip('/v1')` eats a port's trailing `1`s: start the API with
    /// [`v1_client_port`].
    pub fn v1_client(&self, args: &[&str]) -> Run {
        let python = std::env::var("XCAT3_TEST_V1CLIENT_PYTHON").expect(
            "XCAT3_TEST_V1CLIENT_PYTHON is not set: run scripts/test, which makes the v1 client's venv",
        );
        let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/python-xcat3client");
        let out = Command::new(python)
            .args(["-c", "from xcat3client.shell import main; main()"])
            .args(args)
            .env("PYTHONPATH", peer)
            .env("XCAT3_URL", &self.url)
            .output()
            .expect("run the v1 client");
        Run(out)
    }

    /// SIGKILL: the API dies mid-request, without draining (reaped on drop).
    pub fn kill9(&self) {
        let ok = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -KILL the API");
    }

    /// The API process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The API process's peak resident memory (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> u64 {
        let kib = proc_status_kib(self.child.id(), "VmHWM:");
        assert!(kib > 0, "VmHWM in the API's /proc status");
        (kib + 512) / 1024
    }

    /// Stops the API with SIGTERM and waits for it (graceful shutdown).
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("wait xcat3-api")
    }
}

impl Drop for Api {
    /// SIGTERM first, so the API stops what it runs (a managed dnsmasq)
    /// as in production; SIGKILL if it has not exited within 5 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program`, run inside `netns` when one is given.
pub fn in_netns(netns: Option<&str>, program: &Path) -> Command {
    match netns {
        None => Command::new(program),
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
    }
}

/// Two network namespaces joined by a veth pair, deleted on drop: `server`
/// has `192.0.2.1/24` (TEST-NET-1, never routed) on `server_if`; `client`
/// has `client_if`, up, without an address, for DHCP clients.
pub struct NetnsPair {
    pub server: String,
    pub client: String,
    pub server_if: String,
    pub client_if: String,
}

impl NetnsPair {
    pub fn new(tag: &str) -> NetnsPair {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}{}{n}", tag, std::process::id() % 100_000);
        let pair = NetnsPair {
            server: format!("xs-{id}"),
            client: format!("xc-{id}"),
            // Interface names are at most 15 bytes.
            server_if: format!("s{}", &id[id.len().saturating_sub(12)..]),
            client_if: format!("c{}", &id[id.len().saturating_sub(12)..]),
        };
        let (s, c, si, ci) = (
            pair.server.as_str(),
            pair.client.as_str(),
            pair.server_if.as_str(),
            pair.client_if.as_str(),
        );
        let ip = ip_ok;
        ip(&["netns", "add", s]);
        ip(&["netns", "add", c]);
        ip(&["link", "add", si, "type", "veth", "peer", "name", ci]);
        ip(&["link", "set", si, "netns", s]);
        ip(&["link", "set", ci, "netns", c]);
        ip(&["-n", s, "addr", "add", "192.0.2.1/24", "dev", si]);
        for (ns, dev) in [(s, si), (c, ci), (s, "lo"), (c, "lo")] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        pair
    }

    /// Runs `args` in the client namespace.
    pub fn client_run(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.client])
            .args(args)
            .output()
            .expect("run in the client namespace")
    }

    /// Gives the client interface an address (for TFTP and HTTP after the
    /// DHCP exchanges, whose client only reports its lease).
    pub fn set_client_addr(&self, cidr: &str) {
        ip_ok(&[
            "-n",
            &self.client,
            "addr",
            "add",
            cidr,
            "dev",
            &self.client_if,
        ]);
    }

    /// Sets the client interface's MAC (the link goes down and up).
    pub fn set_client_mac(&self, mac: &str) {
        let (ns, dev) = (self.client.as_str(), self.client_if.as_str());
        ip_ok(&["-n", ns, "link", "set", dev, "down"]);
        ip_ok(&["-n", ns, "link", "set", dev, "address", mac]);
        ip_ok(&["-n", ns, "link", "set", dev, "up"]);
    }
}

/// Runs `ip ARGS`, failing the test if it fails.
fn ip_ok(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "delete", ns]).status();
        }
    }
}

/// A throwaway MariaDB (root without password) on 127.0.0.1:`port`, in
/// network namespace `netns` or on this host's loopback, killed on drop.
/// Tests own it, so they may restart it.
pub struct MariaDb {
    child: std::sync::Mutex<Option<Child>>,
    netns: Option<String>,
    dir: PathBuf,
    pub port: u16,
}

impl MariaDb {
    /// Inside `netns`, on its 127.0.0.1:3306.
    pub fn start_in(netns: &str, dir: &Path) -> MariaDb {
        MariaDb::boot_new(Some(netns), dir, 3306)
    }

    /// On this host's loopback, on a free port.
    pub fn start(dir: &Path) -> MariaDb {
        MariaDb::boot_new(None, dir, free_port())
    }

    fn boot_new(netns: Option<&str>, dir: &Path, port: u16) -> MariaDb {
        let data = dir.join("mariadb");
        let out = Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=root",
                "--auth-root-authentication-method=normal",
            ])
            .args(["--skip-test-db"])
            .arg(format!("--datadir={}", data.display()))
            .output()
            .expect("run mariadb-install-db (package mariadb-server)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let db = MariaDb {
            child: std::sync::Mutex::new(None),
            netns: netns.map(str::to_string),
            dir: dir.to_path_buf(),
            port,
        };
        db.boot();
        db
    }

    fn boot(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mariadb.log"))
            .expect("log");
        let child = in_netns(self.netns.as_deref(), Path::new("mariadbd"))
            .args(["--no-defaults", "--user=root"])
            .arg(format!("--datadir={}", self.dir.join("mariadb").display()))
            .arg(format!(
                "--socket={}",
                self.dir.join("mariadb.sock").display()
            ))
            .arg(format!("--port={}", self.port))
            .args(["--bind-address=127.0.0.1", "--max-connections=500"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn mariadbd");
        *self.child.lock().unwrap() = Some(child);
        wait_until(60, "MariaDB to answer", || {
            self.sql("SELECT 1").status.success().then_some(())
        });
    }

    /// `mysql://root@127.0.0.1:PORT/DB`, creating `db`.
    pub fn url(&self, db: &str) -> String {
        let out = self.sql(&format!("CREATE DATABASE IF NOT EXISTS {db}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("mysql://root@127.0.0.1:{}/{db}", self.port)
    }

    /// Kills the server (as a crash would) and starts it again on the same
    /// port and data; `down` is how long it stays away.
    pub fn restart(&self, down: Duration) {
        self.kill();
        std::thread::sleep(down);
        self.boot();
    }

    fn kill(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs SQL as root over TCP; `-N`: values only.
    pub fn sql(&self, sql: &str) -> Output {
        in_netns(self.netns.as_deref(), Path::new("mariadb"))
            .args(["--no-defaults", "-h127.0.0.1"])
            .arg(format!("-P{}", self.port))
            .args(["-uroot", "-N", "-e", sql])
            .output()
            .expect("run mariadb")
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `name: result` lines of a CLI run, by node.
pub fn node_results(out: &str) -> std::collections::BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(n, _)| !n.starts_with("Success"))
        .map(|(n, r)| (n.to_string(), r.to_string()))
        .collect()
}

/// A finished CLI run.
pub struct Run(pub Output);

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    /// Asserts success and returns stdout.
    pub fn ok(&self) -> String {
        assert_eq!(
            self.code(),
            0,
            "stdout:\n{}\nstderr:\n{}",
            tail(&self.stdout()),
            self.stderr()
        );
        self.stdout()
    }
    /// Asserts the exit code is `code` and returns stdout.
    pub fn ok_or_code(&self, code: i32) -> String {
        assert_eq!(
            self.code(),
            code,
            "stdout:\n{}\nstderr:\n{}",
            tail(&self.stdout()),
            self.stderr()
        );
        self.stdout()
    }

    /// The request id of the `xcat3 power --retry-failed ID` hint the CLI
    /// prints when nodes failed; panics without one.
    pub fn retry_hint(&self) -> String {
        let err = self.stderr();
        err.split("--retry-failed ")
            .nth(1)
            .unwrap_or_else(|| panic!("no retry hint in: {err}"))
            .trim()
            .to_string()
    }

    /// The `Success: S  Total: T` summary.
    pub fn summary(&self) -> (usize, usize) {
        let out = self.stdout();
        let line = out
            .lines()
            .rev()
            .find(|l| l.starts_with("Success:"))
            .unwrap_or_else(|| panic!("no summary in:\n{}\n{}", tail(&out), self.stderr()));
        let nums: Vec<usize> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        (nums[0], nums[1])
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Node `i` shaped like the prototype's examples/create_nodes.py (two nics),
/// in the import/export file format.
pub fn example_node(i: usize) -> Value {
    let (a, b) = (i / 256, i % 256);
    json!({
        "name": format!("node{i}"), "mgt": "ipmi", "netboot": "pxe",
        "arch": if i.is_multiple_of(2) { "x86_64" } else { "ppc64le" },
        "control_info": {"bmc_address": format!("11.0.{a}.{b}"), "bmc_username": "admin", "bmc_password": "password"},
        "nics_info": {"nics": [
            {"mac": format!("42:87:0a:05:{a:02x}:{b:02x}"), "ip": format!("12.0.{a}.{b}"), "name": "eth0", "primary": true},
            {"mac": format!("43:87:0a:05:{a:02x}:{b:02x}"), "ip": format!("13.0.{a}.{b}"), "name": "eth1"}]}
    })
}

/// Writes an import file with nodes `range` and returns its path.
pub fn write_import_file(dir: &Path, range: std::ops::RangeInclusive<usize>) -> PathBuf {
    let nodes: Vec<Value> = range.map(example_node).collect();
    let p = dir.join("nodes.json");
    std::fs::write(&p, json!({ "nodes": nodes }).to_string()).expect("write import file");
    p
}

/// A fresh, empty MariaDB database on the server of `XCAT3_TEST_DB_URL`,
/// dropped on drop. Panics (fails the test) when the server is unreachable.
pub struct TestDb {
    server: String,
    name: String,
    pub url: String,
}

impl TestDb {
    pub fn create() -> TestDb {
        let base = std::env::var("XCAT3_TEST_DB_URL").expect(
            "XCAT3_TEST_DB_URL is not set: run scripts/test, which starts a throwaway MariaDB",
        );
        TestDb::create_on(&base)
    }

    /// A fresh database on the server of `base` (a `mysql://` URL).
    pub fn create_on(base: &str) -> TestDb {
        let server = match base.rfind('/') {
            Some(i) if i > "mysql://".len() => base[..i].to_string(),
            _ => base.to_string(),
        };
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("xcat3_t{}_{}", std::process::id(), n);
        exec_sql(&server, &format!("CREATE DATABASE `{name}`"));
        let url = format!("{server}/{name}");
        TestDb { server, name, url }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        exec_sql(
            &self.server,
            &format!("DROP DATABASE IF EXISTS `{}`", self.name),
        );
    }
}

impl TestDb {
    /// A server-wide counter of `SHOW GLOBAL STATUS` (e.g. `Questions`).
    pub fn global_status(&self, name: &str) -> u64 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            use sea_orm::ConnectionTrait;
            let db = sea_orm::Database::connect(format!("{}/mysql", self.server))
                .await
                .expect("MariaDB");
            let sql = format!("SHOW GLOBAL STATUS LIKE '{name}'");
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    sql,
                ))
                .await
                .expect("SHOW GLOBAL STATUS")
                .expect("a status row");
            let v: String = row.try_get_by_index(1).expect("status value");
            v.parse().expect("a number")
        })
    }
}

fn exec_sql(server: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(format!("{server}/mysql"))
            .await
            .unwrap_or_else(|e| panic!("cannot reach MariaDB at {server}: {e}"));
        db.execute_unprepared(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    });
}

/// A unique suffix for names shared on one server (queues, hosts).
pub fn unique(tag: &str) -> String {
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Polls `f` every 200 ms until it returns `Some`, or panics after `secs`.
pub fn wait_until<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A running `xcat3-conductor`, killed on drop; its log goes to a file.
pub struct Conductor {
    child: Option<Child>,
    pub host: String,
    pub log: PathBuf,
}

impl Conductor {
    /// Starts `xcat3-conductor --host HOST` with `env` (XCAT3_* overrides).
    pub fn start(host: &str, dir: &Path, env: &[(&str, &str)]) -> Conductor {
        let log = dir.join(format!("{host}.log"));
        let file = std::fs::File::create(&log).expect("conductor log");
        // Boot and DHCP trees of its own (not /var/lib/xcat3); `env` may
        // override them.
        let tree = |what: &str| dir.join(format!("{host}-{what}"));
        let child = Command::new(bin_dir().join("xcat3-conductor"))
            .args(["--host", host])
            .env("XCAT3_BOOT_TFTP_ROOT", tree("tftpboot"))
            .env("XCAT3_BOOT_HTTP_ROOT", tree("httpboot"))
            .env("XCAT3_DHCP_DIR", tree("dhcp"))
            .env(NO_POWER_SYNC.0, NO_POWER_SYNC.1)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info,sqlx=warn,sea_orm=warn,lapin=warn")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn xcat3-conductor");
        Conductor {
            child: Some(child),
            host: host.to_string(),
            log,
        }
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let ok = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill {sig} {}", self.host);
        }
    }

    /// SIGKILL: the conductor dies without cleaning up (reaped on drop).
    pub fn kill9(&self) {
        self.signal("-KILL");
    }

    /// SIGSTOP / SIGCONT: freeze and thaw (a conductor that "comes back late").
    pub fn pause(&self) {
        self.signal("-STOP");
    }
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// SIGTERM and wait: graceful shutdown.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        self.child.take().expect("running").wait().expect("wait")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// CPU seconds (user + system) the conductor has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        proc_cpu_seconds(self.child.as_ref().expect("running conductor").id())
    }

    /// Resident memory now (VmRSS), in MiB.
    pub fn rss_mib(&self) -> u64 {
        let pid = self.child.as_ref().expect("running conductor").id();
        proc_status_kib(pid, "VmRSS:") / 1024
    }

    /// Sum of `handled=N` over this conductor's `request done` log lines.
    pub fn handled(&self) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains("request done"))
            .filter_map(|l| l.split("handled=").nth(1))
            .filter_map(|v| v.split_whitespace().next()?.parse::<usize>().ok())
            .sum()
    }
}

impl Drop for Conductor {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A throwaway RabbitMQ node this test owns (so it may restart it): own
/// node name, ports, config and data, no plugins.
pub struct Broker {
    dir: TempDir,
    port: u16,
    dist: u16,
    child: std::sync::Mutex<Option<Child>>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Broker {
    pub fn start() -> Broker {
        let b = Broker {
            dir: TempDir::new("rabbit"),
            port: free_port(),
            dist: free_port(),
            child: std::sync::Mutex::new(None),
        };
        b.boot();
        b
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn boot(&self) {
        let d = self.dir.path();
        std::fs::write(
            d.join("rabbitmq.conf"),
            format!("listeners.tcp.default = 127.0.0.1:{}\n", self.port),
        )
        .unwrap();
        std::fs::write(d.join("enabled_plugins"), "[].").unwrap();
        std::fs::write(d.join("env.conf"), "").unwrap();
        let log = std::fs::File::create(d.join("server.log")).unwrap();
        let child = Command::new("/usr/lib/rabbitmq/bin/rabbitmq-server")
            .current_dir(d)
            .env("RABBITMQ_CONF_ENV_FILE", d.join("env.conf"))
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq.conf"))
            .env(
                "RABBITMQ_NODENAME",
                format!("xcat3-{}@localhost", self.port),
            )
            .env("RABBITMQ_DIST_PORT", self.dist.to_string())
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", d.join("pid"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("rabbitmq-server (install it: scripts/test does)");
        *self.child.lock().unwrap() = Some(child);
        let port = self.port;
        wait_until(90, "RabbitMQ to accept connections", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
    }

    /// Stops the broker (its queues are durable) and boots it again on the
    /// same port and data.
    pub fn restart(&self) {
        self.shutdown();
        self.boot();
    }

    fn shutdown(&self) {
        let child = self.child.lock().unwrap().take();
        if let Some(mut c) = child {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
        let port = self.port;
        wait_until(30, "RabbitMQ to stop listening", || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .err()
                .map(|_| ())
        });
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A TCP port free on loopback now.
/// A free TCP port the v1 client can be pointed at: not ending in `1`
/// (its `rstrip('/v1')` would eat it).
pub fn v1_client_port() -> u16 {
    loop {
        let p = free_tcp_port();
        if p % 10 != 1 {
            return p;
        }
    }
}

pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind a TCP port")
        .port()
}

/// A running process, killed on drop (simulators, emulators).
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `cmd` (an `xcat3-sim` fleet) and waits for its first line, which
/// must contain `ready` (`IPMI BMCs on`, ...): the fleet is listening.
fn spawn_sim(cmd: &mut Command, ready: &str) -> Child {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn xcat3-sim");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    match lines.next() {
        Some(Ok(l)) if l.contains(ready) => child,
        other => {
            let _ = child.kill();
            panic!("xcat3-sim did not start ({ready}): {other:?}");
        }
    }
}

/// `xcat3-sim redfish`: `count` BMCs from `first_ip` on a free port (user
/// `admin`, password `secret`); returns the daemon, its port, the import
/// file and the state file it keeps.
pub fn redfish_sim(dir: &Path, first_ip: &str, count: u32) -> (Daemon, u16, PathBuf, PathBuf) {
    let port = free_tcp_port();
    let export = dir.join(format!("redfish-{first_ip}.json"));
    let state = dir.join(format!("redfish-state-{first_ip}.json"));
    let mut cmd = Command::new(bin_dir().join("xcat3-sim"));
    cmd.args([
        "redfish",
        "--count",
        &count.to_string(),
        "--first-ip",
        first_ip,
    ])
    .args(["--port", &port.to_string(), "--password", "secret"])
    .arg("--export-nodes")
    .arg(&export)
    .arg("--state-file")
    .arg(&state);
    let child = spawn_sim(&mut cmd, "Redfish BMCs on");
    (Daemon(child), port, export, state)
}

/// A UDP port free on loopback now (for BMC simulators).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind a UDP port")
        .port()
}

/// A running `xcat3-sim ipmi` fleet, killed on drop. Its state file is
/// rewritten every 200 ms.
pub struct Sim {
    child: Child,
    pub port: u16,
    pub state_file: PathBuf,
    pub export: PathBuf,
}

impl Sim {
    /// `count` BMCs from `first_ip` on a free port (user `admin`,
    /// password `secret`), plus `extra` flags; exports `nodes.json` into `dir`.
    pub fn start(dir: &Path, first_ip: &str, count: u32, extra: &[&str]) -> Sim {
        Sim::spawn(dir, first_ip, count, extra, true)
    }

    /// [`start`](Sim::start) without the state file (for benchmarks: its
    /// rewrites cost CPU the benchmark measures); [`bmc`](Sim::bmc) then
    /// has nothing to read.
    pub fn start_without_state(dir: &Path, first_ip: &str, count: u32) -> Sim {
        Sim::spawn(dir, first_ip, count, &[], false)
    }

    fn spawn(dir: &Path, first_ip: &str, count: u32, extra: &[&str], state: bool) -> Sim {
        let port = free_udp_port();
        let state_file = dir.join(format!("sim-{first_ip}.json"));
        let export = dir.join(format!("nodes-{first_ip}.json"));
        let mut cmd = Command::new(bin_dir().join("xcat3-sim"));
        cmd.args([
            "ipmi",
            "--count",
            &count.to_string(),
            "--first-ip",
            first_ip,
        ])
        .args(["--port", &port.to_string(), "--password", "secret"]);
        if state {
            cmd.arg("--state-file").arg(&state_file);
        }
        cmd.arg("--export-nodes").arg(&export).args(extra);
        let child = spawn_sim(&mut cmd, "IPMI BMCs on");
        Sim {
            child,
            port,
            state_file,
            export,
        }
    }

    /// The state of the BMC at `ip` (`chassis`, `stats`), read from the
    /// state file.
    pub fn bmc(&self, ip: &str) -> Value {
        let text = wait_until(10, "the simulator's state file", || {
            std::fs::read_to_string(&self.state_file).ok()
        });
        let all: Value = serde_json::from_str(&text).expect("state file is JSON");
        all.get(ip)
            .cloned()
            .unwrap_or_else(|| panic!("no BMC {ip} in the simulator"))
    }

    /// Waits (up to 10 s) until `f` holds for the BMC at `ip`: the state
    /// file lags the BMC by up to 200 ms.
    pub fn wait_bmc(&self, ip: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        wait_until(10, what, || {
            let b = self.bmc(ip);
            f(&b).then_some(b)
        })
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `xcat3-sim ssh`: `count` nodes' SSH servers from `first_ip` on a free
/// port, letting in the keys of `authorized_keys` (a file); exports the
/// import file (mgt=fake, `os_*` keys) into `dir`.
pub struct SshSim {
    _daemon: Daemon,
    pub port: u16,
    pub export: PathBuf,
}

impl SshSim {
    pub fn start(
        dir: &Path,
        first_ip: &str,
        count: u32,
        authorized_keys: &Path,
        extra: &[&str],
    ) -> SshSim {
        let port = free_tcp_port();
        let export = dir.join(format!("ssh-nodes-{first_ip}.json"));
        let mut cmd = Command::new(bin_dir().join("xcat3-sim"));
        cmd.args(["ssh", "--count", &count.to_string(), "--first-ip", first_ip])
            .args(["--port", &port.to_string(), "--authorized-keys"])
            .arg(authorized_keys)
            .arg("--export-nodes")
            .arg(&export)
            .args(extra);
        let child = spawn_sim(&mut cmd, "SSH nodes on");
        SshSim {
            _daemon: Daemon(child),
            port,
            export,
        }
    }
}

/// OpenIPMI's `ipmi_sim` serving one BMC on 127.0.0.1 (user `admin`,
/// password `secret`), with a chassis-control script that keeps power and
/// boot device in files, so tests check them without our code.
pub struct IpmiSim {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl IpmiSim {
    pub fn start(dir: &Path) -> IpmiSim {
        IpmiSim::start_with(
            dir,
            "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n",
        )
    }

    /// With `emu` as the emulator file (sensors, FRU data, SEL entries).
    pub fn start_with(dir: &Path, emu: &str) -> IpmiSim {
        IpmiSim::spawn(dir, emu, "")
    }

    /// With its SOL payload connected to `127.0.0.1:serial_port`, a TCP
    /// server the test runs (ipmi_sim's `sol "telnet:..."`): the test is
    /// the serial line of the simulated machine.
    pub fn start_with_sol(dir: &Path, serial_port: u16) -> IpmiSim {
        IpmiSim::spawn(
            dir,
            "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n",
            &format!("  sol \"telnet:127.0.0.1:{serial_port}\" 115200\n"),
        )
    }

    fn spawn(dir: &Path, emu: &str, extra_conf: &str) -> IpmiSim {
        let port = free_udp_port();
        let script = dir.join("chassis.sh");
        std::fs::write(
            &script,
            format!(
                r#"#!/bin/sh
# ipmi_sim chassis control: `get power boot` / `set power 1 boot pxe`.
d={dir}
mc=$1; op=$2; shift 2
if [ "$op" = get ]; then
  for p in "$@"; do
    case $p in
      power) echo "power:$(cat $d/power 2>/dev/null || echo 0)";;
      boot) echo "boot:$(cat $d/boot 2>/dev/null || echo default)";;
    esac
  done
else
  while [ $# -ge 2 ]; do
    case $1 in power|boot) echo "$2" > $d/$1;; esac
    shift 2
  done
fi
"#,
                dir = dir.display()
            ),
        )
        .expect("write chassis.sh");
        Command::new("chmod")
            .arg("+x")
            .arg(&script)
            .status()
            .expect("chmod");
        std::fs::write(
            dir.join("lan.conf"),
            format!(
                r#"name "xcat3test"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 {port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "{script} 0x20"
{extra_conf}  user 2 true "admin" "secret" admin 10 none md2 md5 straight
"#,
                script = script.display()
            ),
        )
        .expect("write lan.conf");
        std::fs::write(dir.join("bmc.emu"), emu).expect("write bmc.emu");
        std::fs::create_dir_all(dir.join("state")).expect("state dir");
        let log = std::fs::File::create(dir.join("ipmi_sim.log")).expect("log file");
        let child = Command::new("ipmi_sim")
            .arg("-c")
            .arg(dir.join("lan.conf"))
            .arg("-f")
            .arg(dir.join("bmc.emu"))
            .arg("-s")
            .arg(dir.join("state"))
            .arg("-n")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn ipmi_sim (package openipmi; scripts/test installs it)");
        let sim = IpmiSim {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        // Up when ipmitool gets an answer.
        wait_until(20, "ipmi_sim to answer", || {
            let out = Command::new("ipmitool")
                .args(["-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p"])
                .arg(port.to_string())
                .args(["-U", "admin", "-P", "secret", "-N", "1", "-R", "1"])
                .args(["power", "status"])
                .output()
                .ok()?;
            out.status.success().then_some(())
        });
        sim
    }

    /// What the chassis script last stored for `what` (`power`, `boot`).
    pub fn stored(&self, what: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(what))
            .ok()
            .map(|s| s.trim().to_string())
    }
}

impl Drop for IpmiSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds `NAME.iso` (Rock Ridge + Joliet) holding `files`, with xorriso.
pub fn make_iso(dir: &Path, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let root = dir.join(format!("{name}-tree"));
    for (path, content) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    make_iso_of(dir, name, &root)
}

/// Builds `NAME.iso` from the directory `root` as it is (Rock Ridge keeps
/// FIFOs and symbolic links, as a hostile medium would carry them).
pub fn make_iso_of(dir: &Path, name: &str, root: &Path) -> PathBuf {
    let iso = dir.join(format!("{name}.iso"));
    let out = Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-r", "-J", "-V", "TEST", "-o"])
        .arg(&iso)
        .arg(root)
        .output()
        .expect("xorriso (Debian package xorriso) is required; scripts/test installs it");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    iso
}

/// A Rocky 9.3 install ISO (`.treeinfo`, `images/pxeboot/`) with these
/// kernel and initrd: copycds names it `rocky9.3-x86_64`.
pub fn make_rocky_iso(dir: &Path, kernel: &[u8], initrd: &[u8]) -> PathBuf {
    make_iso(
        dir,
        "Rocky-9.3-x86_64-dvd",
        &[
            (
                ".treeinfo",
                b"[release]\nname = Rocky Linux\nshort = Rocky\nversion = 9.3\n[tree]\narch = x86_64\n",
            ),
            ("images/pxeboot/vmlinuz", kernel),
            ("images/pxeboot/initrd.img", initrd),
        ],
    )
}

/// A websocket viewer of a node's console (`GET /v1/nodes/NODE/console`),
/// a real websocket client with a runtime of its own.
pub struct Viewer {
    rt: tokio::runtime::Runtime,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    /// Console bytes received so far, as text.
    pub seen: String,
    /// Text frames (notices) received so far.
    pub notices: Vec<String>,
}

impl Viewer {
    /// Attaches to `node` on the API at `url` with `query`
    /// (`read_only=true`, ...); a refusal is `Err((status, body))`.
    pub fn connect(
        url: &str,
        node: &str,
        query: &str,
        token: Option<&str>,
    ) -> Result<Viewer, (u16, String)> {
        Viewer::connect_with(url, node, query, token, None)
    }

    /// [`connect`](Self::connect) on a socket whose receive buffer is
    /// `rcvbuf` bytes (fixed: the kernel does not grow it), for a viewer
    /// that stops reading without the kernel absorbing megabytes for it.
    pub fn connect_with(
        url: &str,
        node: &str,
        query: &str,
        token: Option<&str>,
        rcvbuf: Option<usize>,
    ) -> Result<Viewer, (u16, String)> {
        use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest as _};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let ws_url = format!(
            "{}/v1/nodes/{node}/console?{query}",
            url.replacen("http://", "ws://", 1)
        );
        let mut req = ws_url.as_str().into_client_request().expect("request");
        if let Some(t) = token {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        let addr: std::net::SocketAddr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the API's address");
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        if let Some(n) = rcvbuf {
            socket.set_recv_buffer_size(n).expect("SO_RCVBUF");
        }
        socket
            .connect(&addr.into())
            .map_err(|e| (0, e.to_string()))?;
        socket.set_nonblocking(true).expect("nonblocking");
        let ws = rt.block_on(async {
            let stream = tokio::net::TcpStream::from_std(socket.into()).expect("tokio stream");
            let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
            match tokio_tungstenite::client_async(req, stream).await {
                Ok((ws, _)) => Ok(ws),
                Err(tungstenite::Error::Http(r)) => Err((
                    r.status().as_u16(),
                    String::from_utf8_lossy(r.body().as_deref().unwrap_or_default()).into_owned(),
                )),
                Err(e) => Err((0, e.to_string())),
            }
        })?;
        Ok(Viewer {
            rt,
            ws,
            seen: String::new(),
            notices: Vec::new(),
        })
    }

    /// Reads until the console output holds `needle` (after `from` bytes
    /// of it) or `secs` pass (a panic naming what was seen).
    pub fn expect_after(&mut self, from: usize, needle: &str, secs: u64) -> usize {
        use futures_util::StreamExt as _;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(i) = self.seen.get(from..).and_then(|s| s.find(needle)) {
                return from + i + needle.len();
            }
            let ws = &mut self.ws;
            let next = self
                .rt
                .block_on(async { tokio::time::timeout_at(deadline, ws.next()).await });
            match next {
                Ok(Some(Ok(Message::Binary(b)))) => {
                    self.seen.push_str(&String::from_utf8_lossy(&b))
                }
                Ok(Some(Ok(Message::Text(t)))) => self.notices.push(t.as_str().to_string()),
                Ok(Some(Ok(_))) => {}
                other => panic!(
                    "console: waiting for {needle:?}: {other:?}; seen {:?}; notices {:?}",
                    self.seen, self.notices
                ),
            }
        }
    }

    /// [`expect_after`](Self::expect_after) from the start.
    pub fn expect(&mut self, needle: &str, secs: u64) -> usize {
        self.expect_after(0, needle, secs)
    }

    /// Reads whatever arrives within `secs`.
    pub fn drain(&mut self, secs: u64) {
        self.drain_for(Duration::from_secs(secs));
    }

    /// Reads whatever arrives within `d` (no more).
    pub fn drain_for(&mut self, d: Duration) {
        use futures_util::StreamExt as _;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let ws = &mut self.ws;
            let Ok(Some(Ok(m))) = self
                .rt
                .block_on(async { tokio::time::timeout_at(deadline, ws.next()).await })
            else {
                break;
            };
            match m {
                Message::Binary(b) => self.seen.push_str(&String::from_utf8_lossy(&b)),
                Message::Text(t) => self.notices.push(t.as_str().to_string()),
                _ => {}
            }
        }
    }

    /// Types `keys` (a binary frame).
    pub fn send(&mut self, keys: &[u8]) {
        use futures_util::SinkExt as _;
        self.rt
            .block_on(
                self.ws
                    .send(tokio_tungstenite::tungstenite::Message::Binary(
                        keys.to_vec().into(),
                    )),
            )
            .expect("send keys");
    }
}

/// A throwaway sshd on a loopback port for root, by key or by the password
/// `s3cret`, which it checks against a shadow file only it sees (bind-
/// mounted in a private mount namespace); killed on drop.
pub struct Sshd {
    _daemon: Daemon,
    pub port: u16,
    pub key: PathBuf,
    pub wrong_key: PathBuf,
    pub log: PathBuf,
}

impl Sshd {
    pub fn start(dir: &Path) -> Sshd {
        Sshd::start_with(dir, "")
    }

    /// [`start`](Sshd::start) with more `sshd_config` lines (a
    /// `ForceCommand`, say).
    pub fn start_with(dir: &Path, extra_config: &str) -> Sshd {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "sshd (openssh-server) is required; scripts/test installs it"
        );
        std::fs::create_dir_all("/run/sshd").unwrap();
        let keygen = |name: &str| {
            let p = dir.join(name);
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&p)
                .status()
                .expect("ssh-keygen");
            assert!(ok.success());
            p
        };
        let host = keygen("ssh_host");
        let key = keygen("client");
        let wrong_key = keygen("wrong");
        std::fs::copy(dir.join("client.pub"), dir.join("authorized_keys")).unwrap();
        let hash = Command::new("openssl")
            .args(["passwd", "-6", "s3cret"])
            .output()
            .expect("openssl");
        let shadow = dir.join("shadow");
        std::fs::write(
            &shadow,
            format!(
                "root:{}:19000:0:99999:7:::\n",
                String::from_utf8_lossy(&hash.stdout).trim()
            ),
        )
        .unwrap();
        let port = free_tcp_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                 StrictModes no\nPermitRootLogin yes\nPasswordAuthentication yes\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nPidFile {}\n{extra_config}",
                host.display(),
                dir.join("authorized_keys").display(),
                dir.join("sshd.pid").display()
            ),
        )
        .unwrap();
        let log = dir.join("sshd.log");
        let child = Command::new("unshare")
            .args(["-m", "sh", "-c"])
            .arg(format!(
                "mount --bind {} /etc/shadow && exec /usr/sbin/sshd -D -e -f {}",
                shadow.display(),
                config.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("unshare + sshd");
        let daemon = Daemon(child);
        wait_until(10, "sshd listening", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Sshd {
            _daemon: daemon,
            port,
            key,
            wrong_key,
            log,
        }
    }

    /// How many logins sshd accepted with `method` (publickey, password).
    pub fn accepted(&self, method: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches(&format!("Accepted {method} for root"))
            .count()
    }
}
