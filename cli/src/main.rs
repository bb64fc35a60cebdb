//! `xcat3`: the command-line client. Same commands and output as the v1
//! python client (`node1: ok` lines, `Success: S  Total: T`, exit 1 when
//! any node failed), plus server-side noderanges and `--json`.

mod client;
mod commands;
mod kv;
mod output;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use client::Client;

#[derive(Parser)]
#[command(
    name = "xcat3",
    version,
    about = "Provision and control clusters with xcat3"
)]
pub struct Cli {
    /// API endpoint.
    #[arg(
        long,
        env = "XCAT3_URL",
        default_value = "http://127.0.0.1:3010",
        global = true
    )]
    xcat3_url: String,
    /// Print the API's JSON replies instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// API token (`xcat3-api token create`), for APIs with auth = "token".
    #[arg(long, env = "XCAT3_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Retries when the API cannot be reached.
    #[arg(long, env = "XCAT3_MAX_RETRIES", default_value_t = 3, global = true)]
    max_retries: u32,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Enroll nodes: create NODERANGE mgt=ipmi netboot=pxe [-c k=v,..] [-i k=v,..]..
    Create {
        noderange: String,
        /// arch=, netboot=, mgt=, type=
        attributes: Vec<String>,
        /// control_info key=value pairs, comma-separated.
        #[arg(short = 'c', long)]
        control: Option<String>,
        /// A nic as key=value pairs (mac=,ip=,name=,primary=); repeatable.
        #[arg(short = 'i', long = "nic")]
        nics: Vec<String>,
    },
    /// List nodes (all, or those of NODERANGE): names, or a table with
    /// -l / -o COLUMNS.
    List {
        noderange: Option<String>,
        /// Only nodes in this provisioning state (available, dhcp,
        /// deploying, deployed, "deploy failed").
        #[arg(long)]
        state: Option<String>,
        /// Only nodes whose last known power state is this (on, off).
        #[arg(long)]
        power: Option<String>,
        /// Only nodes whose last health verdict is this (ok, warning,
        /// critical, unknown).
        #[arg(long)]
        health: Option<String>,
        /// A table of the usual columns (name,state,power,mgt,arch,groups,bmc,mac,ip).
        #[arg(short = 'l', long)]
        long: bool,
        /// A table of these columns: name, state, power, mgt, arch, netboot,
        /// type, groups, osimage, conductor, reservation, bmc, mac, ip, error.
        #[arg(short = 'o', long, value_delimiter = ',')]
        columns: Option<Vec<String>>,
        /// Sort the table by this column (natural order: n2 before n10).
        #[arg(long)]
        sort: Option<String>,
    },
    /// Show nodes in detail.
    Show {
        noderange: String,
        /// Only these fields (comma-separated; `nics`, `control` are aliases).
        #[arg(short = 'i', long)]
        fields: Option<String>,
    },
    /// Update nodes: update NODERANGE path=value.. (empty value removes).
    Update {
        noderange: String,
        #[arg(required = true)]
        attributes: Vec<String>,
    },
    /// Delete nodes.
    Delete { noderange: String },
    /// Import nodes from a JSON file in the export format (masked secrets,
    /// as the v1 client exports them, are left unset and named).
    Import { file: PathBuf },
    /// Export nodes to a JSON file: each node's own values and groups.
    /// Secrets are left out unless --with-secrets.
    Export {
        noderange: String,
        #[arg(short, long)]
        output: PathBuf,
        /// Include the secrets (admin role; the export is recorded in the
        /// request history; the file is written mode 0600).
        #[arg(long)]
        with_secrets: bool,
    },
    /// Hardware inventory: BMC firmware, FRU (system, board, chassis),
    /// GUID; on Redfish also processors, memory, disks, MACs, firmware.
    /// From the database unless --refresh reads the BMCs (and stores it).
    Inventory {
        noderange: String,
        /// Read every BMC now instead of the stored inventory.
        #[arg(long)]
        refresh: bool,
    },
    /// Run a command on every node over SSH (from each node's conductor):
    /// exec NODERANGE [--fanout N] [--timeout S] [--user U] -- COMMAND.
    /// Each output line is prefixed by its node; exits non-zero if any
    /// node failed.
    Exec {
        noderange: String,
        /// The user to log in as (default root).
        #[arg(long)]
        user: Option<String>,
        /// Seconds each node's command may run (default 60).
        #[arg(long)]
        timeout: Option<u32>,
        /// SSH sessions at once per conductor (default 128).
        #[arg(long)]
        fanout: Option<u32>,
        /// Print each distinct output once, under the nodes that gave it.
        #[arg(long)]
        collapse: bool,
        /// The command (after --).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Copy files to every node over SSH: copy NODERANGE SRC... DEST
    /// (DEST a directory, or for one file its new path).
    Copy {
        noderange: String,
        /// The files, then the destination.
        #[arg(required = true, num_args = 2..)]
        paths: Vec<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        timeout: Option<u32>,
        #[arg(long)]
        fanout: Option<u32>,
    },
    /// Store a post-boot script (or replace it): script-create NAME FILE.
    /// Nodes list theirs in control_info.postscripts=a,b,c.
    ScriptCreate { name: String, file: String },
    /// List the stored post-boot scripts.
    ScriptList,
    /// Print a post-boot script.
    ScriptShow { name: String },
    /// Delete a post-boot script.
    ScriptDelete { name: String },
    /// Each node's last run of its post-boot scripts (exit status and
    /// output tail per script); with --rerun, run them again now over SSH
    /// (xCAT's updatenode).
    Postscripts {
        noderange: String,
        #[arg(long)]
        rerun: bool,
        /// Seconds each script may run (default 1800).
        #[arg(long)]
        timeout: Option<u32>,
        #[arg(long)]
        fanout: Option<u32>,
    },
    /// The cluster's SSH public key: conductors log in to nodes with it
    /// (xcat3 puts it on the nodes it deploys; add it to others).
    SshKey,
    /// Sensor readings: one line per sensor (name: value unit (status)).
    Vitals {
        noderange: String,
        /// temp, fan, voltage, power or all.
        #[arg(default_value = "all")]
        sensors: String,
    },
    /// The BMC event log (SEL): the newest entries, oldest first.
    Eventlog {
        noderange: String,
        /// How many entries (newest).
        #[arg(short = 'n', long = "count", default_value_t = 20)]
        count: u32,
        /// Clear the log after reading it.
        #[arg(long)]
        clear: bool,
    },
    /// The node's serial console in this terminal (raw: every key goes to
    /// the node); leave with Ctrl-E c . (Ctrl-E c ? lists the others).
    /// With --log, its log instead (-f: then follow the live output).
    Console {
        node: String,
        /// Watch without typing.
        #[arg(long)]
        read_only: bool,
        /// Take the console over from another holder (operator).
        #[arg(long)]
        force: bool,
        /// Print the end of the console log instead of attaching.
        #[arg(long)]
        log: bool,
        /// With --log: how many lines.
        #[arg(short = 'n', long = "lines", default_value_t = 100)]
        lines: u32,
        /// With --log: then follow the live output (read-only).
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Each node's console: connected or not, its conductor, viewers,
    /// bytes, last output and last error.
    ConsoleList { noderange: String },
    /// The identify LED: beacon NODERANGE on|off|blink.
    Beacon { noderange: String, state: String },
    /// ok, warning or critical per node, from its sensors and the last
    /// day's events (recorded: list --health critical).
    Health { noderange: String },
    /// Power: power NODERANGE on|off|soft|reset|cycle|boot|status, or
    /// power --retry-failed REQUEST [STATE] to run a past request again on
    /// its failed nodes only.
    Power {
        /// NODERANGE (or, with --retry-failed, the optional STATE).
        noderange: Option<String>,
        /// on, off, soft, reset, cycle, boot, status.
        state: Option<String>,
        /// A past power request's id (`xcat3 history`): act on the nodes
        /// whose result was an error, with its state unless STATE is given.
        #[arg(long, value_name = "REQUEST")]
        retry_failed: Option<String>,
        /// With --retry-failed: only the nodes that failed this way
        /// (unreachable, authentication, unsupported, timeout, invalid,
        /// bmc_error, locked, not_found, internal).
        #[arg(long, requires = "retry_failed")]
        kind: Option<String>,
    },
    /// Past bulk actions: history (the latest), history REQUEST (every
    /// node's result of one).
    History {
        request: Option<String>,
        /// How many requests to list.
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
    /// Boot device: bootdev NODERANGE net|disk|cdrom|bios|status [--persistent]
    Bootdev {
        noderange: String,
        #[arg(value_parser = ["net", "disk", "cdrom", "bios", "status", "stat"])]
        device: String,
        /// Every boot, not only the next one.
        #[arg(long)]
        persistent: bool,
    },
    /// Network boot and OS installs: deploy NODERANGE --osimage IMAGE
    /// (install it on the next network boot; the node is `deploying` until
    /// its installer calls back), deploy NODERANGE --state dhcp (a DHCP
    /// reservation that boots the disk), deploy NODERANGE -d (release:
    /// remove both, the node becomes available).
    Deploy {
        noderange: String,
        #[arg(long, value_parser = ["dhcp", "nodeset"], default_value = "nodeset")]
        state: String,
        /// The OS image to install (`--state nodeset`).
        #[arg(long)]
        osimage: Option<String>,
        /// Accepted for v1 compatibility; each node's network is the one
        /// holding its IP.
        #[arg(long)]
        network: Option<String>,
        /// Undo: remove the reservation and boot files, clear the state.
        #[arg(short = 'd', long)]
        delete: bool,
    },
    /// Define KVM guests on hypervisors (nodes with type=hypervisor),
    /// registering each as a node with its MAC: `created` / `exists`.
    Mkvm {
        noderange: String,
        /// The hypervisor (a node name).
        #[arg(long, conflicts_with = "hosts")]
        host: Option<String>,
        /// Hypervisors to spread the guests over, by free memory.
        #[arg(long)]
        hosts: Option<String>,
        /// Memory in MiB (default 1024).
        #[arg(long)]
        memory: Option<u64>,
        #[arg(long)]
        cpus: Option<u32>,
        /// A new qcow2 disk of this size (20G, 512M).
        #[arg(long, conflicts_with = "disk_image")]
        disk: Option<String>,
        /// A qcow2 overlay on this image (a path on the hypervisor).
        #[arg(long)]
        disk_image: Option<String>,
        /// A libvirt network, or bridge:BRIDGE (default: `default`).
        #[arg(long)]
        network: Option<String>,
        /// The libvirt storage pool for the disk (default: `default`).
        #[arg(long)]
        pool: Option<String>,
        /// Boot order, e.g. network,hd (the default).
        #[arg(long)]
        boot: Option<String>,
        /// Temporary guests: removed (disks too) and deleted this long
        /// after they are made (90s, 30m, 8h, 7d, 1h30m).
        #[arg(long)]
        expire_after: Option<String>,
    },
    /// Linked clones of a shut-off KVM guest, on its hypervisor (qcow2
    /// overlays on its disks), registered as nodes with their MACs.
    Clonevm {
        noderange: String,
        /// The guest to copy (a node made by mkvm or with a vm_host).
        #[arg(long)]
        source: String,
        /// Temporary clones (as mkvm --expire-after).
        #[arg(long)]
        expire_after: Option<String>,
    },
    /// Undefine KVM guests (stopping them); --purge deletes their disks.
    Rmvm {
        noderange: String,
        #[arg(long)]
        purge: bool,
    },
    /// Import an OS install ISO (Ubuntu, Debian, RHEL, Rocky, Alma,
    /// CentOS) as an osimage: `NAME: created (distro version arch)`.
    Copycds {
        iso: std::path::PathBuf,
        /// The osimage name (default `<distro><version>-<arch>`).
        #[arg(short = 'n', long)]
        name: Option<String>,
    },
    /// Build a node image from Debian's packages on the API host (as root,
    /// with debootstrap) and register it as an osimage: `stateless` nodes
    /// boot it into RAM on every start; `image` ones have it written to
    /// their install_disk. Progress is shown; a failed build leaves
    /// nothing behind.
    Genimage {
        name: String,
        /// `debian12` or `debian13`.
        #[arg(long)]
        distro: String,
        /// The API host's architecture (default: x86_64).
        #[arg(long)]
        arch: Option<String>,
        /// `stateless` (default) or `image`.
        #[arg(long, default_value = "stateless")]
        kind: String,
        /// Extra Debian packages, comma-separated.
        #[arg(long, value_delimiter = ',')]
        packages: Vec<String>,
        /// Refuse a root larger than this unpacked (`600M`, `2G`).
        #[arg(long)]
        size_limit: Option<String>,
        /// Build again over an existing built image of this name.
        #[arg(long)]
        force: bool,
    },
    /// The hardware types (one per mgt) and the interfaces they offer.
    DriverList,
    /// A hardware type's interfaces and the control_info keys each reads.
    DriverShow { name: String },
    /// Which conductor owns each node: `n1: c2`.
    Ring { noderange: String },
    /// Create a node group: group-create NAME [mgt=..] [arch=..]
    /// [netboot=..] [type=..] [-c k=v,..]. Its member nodes (those listing
    /// it in `groups`) inherit every attribute they do not set.
    GroupCreate {
        name: String,
        attributes: Vec<String>,
        /// control_info key=value pairs, comma-separated.
        #[arg(short = 'c', long)]
        control: Option<String>,
    },
    /// Delete a group (refused while nodes list it).
    GroupDelete { name: String },
    /// List groups.
    GroupList,
    /// Show a group, with its members as a noderange.
    GroupShow {
        name: String,
        #[arg(long)]
        fields: Option<String>,
    },
    /// Update a group: group-update NAME path=value.. (empty value removes).
    GroupUpdate {
        name: String,
        #[arg(required = true)]
        attributes: Vec<String>,
    },
    /// Create a network: network-create NAME subnet=.. netmask=..
    NetworkCreate {
        name: String,
        attributes: Vec<String>,
    },
    /// Delete a network.
    NetworkDelete { name: String },
    /// List networks.
    NetworkList,
    /// Show a network.
    NetworkShow {
        name: String,
        #[arg(long)]
        fields: Option<String>,
    },
    /// Update a network: network-update NAME key=value.. (empty value removes).
    NetworkUpdate {
        name: String,
        #[arg(required = true)]
        attributes: Vec<String>,
    },
    /// Create a nic: nic-create mac=.. node=.. [ip=..]
    NicCreate {
        #[arg(required = true)]
        attributes: Vec<String>,
    },
    /// Delete a nic by uuid.
    NicDelete { uuid: String },
    /// List nics: uuid and MAC.
    NicList,
    /// Show a nic, by uuid or --mac.
    NicShow {
        uuid: Option<String>,
        #[arg(long)]
        mac: Option<String>,
        #[arg(long)]
        fields: Option<String>,
    },
    /// Update a nic: nic-update UUID key=value.. (empty value removes).
    NicUpdate {
        uuid: String,
        #[arg(required = true)]
        attributes: Vec<String>,
    },
    /// Create a password entry: passwd-create KEY username=.. password=..
    PasswdCreate {
        key: String,
        attributes: Vec<String>,
    },
    /// Delete a password entry.
    PasswdDelete { key: String },
    /// List password entries (passwords are never shown).
    PasswdList,
    /// Show a password entry (the password masked).
    PasswdShow {
        key: String,
        #[arg(long)]
        fields: Option<String>,
    },
    /// Update a password entry: passwd-update KEY key=value..
    PasswdUpdate {
        key: String,
        #[arg(required = true)]
        attributes: Vec<String>,
    },
    /// List OS images (copycds makes them).
    OsimageList,
    /// Show an OS image.
    OsimageShow {
        name: String,
        #[arg(long)]
        fields: Option<String>,
    },
    /// Update an OS image: osimage-update NAME key=value..
    OsimageUpdate {
        name: String,
        #[arg(required = true)]
        attributes: Vec<String>,
    },
    /// Delete an OS image and its install tree.
    OsimageDelete { name: String },
    /// List conductors and whether each is online.
    ServiceList,
    /// Show one conductor's services.
    ServiceShow { hostname: String },
    /// Print a shell completion script: `source <(xcat3 completion bash)`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Whether a progress bar may be drawn.
pub fn progress_allowed() -> bool {
    std::io::stderr().is_terminal()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // reqwest is built with rustls (for https:// APIs) and needs a crypto
    // provider: ring, the one already in the tree.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("xcat3: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("xcat3: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    let c = Client::new(&cli.xcat3_url, cli.max_retries, cli.token)?;
    commands::run(&c, cli.command, cli.json).await
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_subcommand_says_what_it_does() {
        let cli = super::Cli::command();
        let silent: Vec<&str> = cli
            .get_subcommands()
            .filter(|c| c.get_about().is_none())
            .map(|c| c.get_name())
            .collect();
        assert!(silent.is_empty(), "no help text: {silent:?}");
        cli.debug_assert();
    }
}
