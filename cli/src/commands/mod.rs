//! One function per command; `run` dispatches.

mod console;
mod drivers;
mod inspect;
mod nodes;
mod remote;
mod resources;

use crate::Command;
use crate::client::Client;

/// Runs one command; `Ok(false)` means some node or item failed.
pub async fn run(c: &Client, cmd: Command, json: bool) -> anyhow::Result<bool> {
    use Command::*;
    match cmd {
        Create {
            noderange,
            attributes,
            control,
            nics,
        } => nodes::create(c, &noderange, &attributes, control.as_deref(), &nics, json).await,
        Power {
            noderange,
            state,
            retry_failed,
            kind,
        } => match retry_failed {
            Some(id) => {
                if state.is_some() {
                    anyhow::bail!(
                        "power --retry-failed REQUEST [STATE]: no noderange (the request's failed nodes are the range)"
                    );
                }
                nodes::retry_failed_power(c, &id, noderange.as_deref(), kind.as_deref(), json).await
            }
            None => {
                let (Some(range), Some(state)) = (noderange, state) else {
                    anyhow::bail!(
                        "power NODERANGE STATE (or power --retry-failed REQUEST [STATE])"
                    );
                };
                nodes::power(c, &range, &state, json).await
            }
        },
        History { request, limit } => nodes::history(c, request.as_deref(), limit, json).await,
        Bootdev {
            noderange,
            device,
            persistent,
        } => nodes::bootdev(c, &noderange, &device, persistent, json).await,
        Completion { shell } => {
            use clap::CommandFactory;
            use std::io::Write as _;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut crate::Cli::command(), "xcat3", &mut script);
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::stdout().write_all(&script);
            Ok(true)
        }
        DriverList => drivers::list(c, json).await,
        Console {
            node,
            read_only,
            force,
            log,
            lines,
            follow,
        } => {
            if log {
                console::log(c, &node, lines, follow).await
            } else {
                console::attach(c, &node, read_only, force).await
            }
        }
        ConsoleList { noderange } => console::list(c, &noderange, json).await,
        DriverShow { name } => drivers::show(c, &name, json).await,
        Ring { noderange } => nodes::ring(c, &noderange, json).await,
        Copycds { iso, name } => resources::copycds(c, &iso, name.as_deref(), json).await,
        Genimage {
            name,
            distro,
            arch,
            kind,
            packages,
            size_limit,
            force,
        } => {
            let mut body = serde_json::json!({
                "name": name, "distro": distro, "kind": kind,
                "packages": packages, "force": force,
            });
            if let Some(a) = arch {
                body["arch"] = a.into();
            }
            if let Some(s) = size_limit {
                body["size_limit"] = s.into();
            }
            resources::genimage(c, &body, json).await
        }
        Mkvm {
            noderange,
            host,
            hosts,
            memory,
            cpus,
            disk,
            disk_image,
            network,
            pool,
            boot,
            expire_after,
        } => {
            let body = serde_json::json!({
                "hosts": host.or(hosts), "memory": memory, "cpus": cpus, "disk": disk,
                "disk_image": disk_image, "network": network, "pool": pool, "boot": boot,
                "expire_after": expire_after,
            });
            let post = reqwest::Method::POST;
            nodes::vm(c, post, "/nodes/vm", &noderange, "", Some(&body), json).await
        }
        Clonevm {
            noderange,
            source,
            expire_after,
        } => {
            let body = serde_json::json!({ "source": source, "expire_after": expire_after });
            let post = reqwest::Method::POST;
            nodes::vm(
                c,
                post,
                "/nodes/vm/clone",
                &noderange,
                "",
                Some(&body),
                json,
            )
            .await
        }
        Rmvm { noderange, purge } => {
            let q = if purge { "&purge=true" } else { "" };
            let delete = reqwest::Method::DELETE;
            nodes::vm(c, delete, "/nodes/vm", &noderange, q, None, json).await
        }
        Deploy {
            noderange,
            state,
            osimage,
            network,
            delete,
        } => {
            let target = match (delete, state.as_str()) {
                (true, s) => format!("un_{s}"),
                (false, s) => s.to_string(),
            };
            nodes::deploy(
                c,
                &noderange,
                &target,
                osimage.as_deref(),
                network.as_deref(),
                json,
            )
            .await
        }
        List {
            noderange,
            state,
            power,
            health,
            long,
            columns,
            sort,
        } => {
            let columns = columns.or_else(|| {
                long.then(|| nodes::LONG_COLUMNS.split(',').map(str::to_string).collect())
            });
            let options = nodes::ListOptions {
                range: noderange.as_deref(),
                state: state.as_deref(),
                power: power.as_deref(),
                health: health.as_deref(),
                columns,
                sort: sort.as_deref(),
            };
            nodes::list(c, options, json).await
        }
        Show { noderange, fields } => nodes::show(c, &noderange, fields.as_deref()).await,
        Inventory { noderange, refresh } => inspect::inventory(c, &noderange, refresh, json).await,
        Exec {
            noderange,
            user,
            timeout,
            fanout,
            collapse,
            command,
        } => {
            let o = remote::Options {
                user,
                timeout,
                fanout,
                collapse,
            };
            remote::exec(c, &noderange, &command, &o, json).await
        }
        Copy {
            noderange,
            paths,
            user,
            timeout,
            fanout,
        } => {
            let o = remote::Options {
                user,
                timeout,
                fanout,
                collapse: false,
            };
            remote::copy(c, &noderange, &paths, &o, json).await
        }
        SshKey => remote::ssh_key(c).await,
        ScriptCreate { name, file } => remote::script_put(c, &name, &file).await,
        ScriptList => remote::script_list(c, json).await,
        ScriptShow { name } => remote::script_show(c, &name).await,
        ScriptDelete { name } => remote::script_delete(c, &name).await,
        Postscripts {
            noderange,
            rerun,
            timeout,
            fanout,
        } => {
            let o = remote::Options {
                user: None,
                timeout,
                fanout,
                collapse: false,
            };
            remote::postscripts(c, &noderange, rerun, &o, json).await
        }
        Vitals { noderange, sensors } => inspect::vitals(c, &noderange, &sensors, json).await,
        Eventlog {
            noderange,
            count,
            clear,
        } => inspect::eventlog(c, &noderange, count, clear, json).await,
        Beacon { noderange, state } => inspect::beacon(c, &noderange, &state, json).await,
        Health { noderange } => inspect::health(c, &noderange, json).await,
        Update {
            noderange,
            attributes,
        } => nodes::update(c, &noderange, &attributes, json).await,
        Delete { noderange } => nodes::delete(c, &noderange, json).await,
        Import { file } => nodes::import(c, &file, json).await,
        Export {
            noderange,
            output,
            with_secrets,
        } => nodes::export(c, &noderange, &output, with_secrets).await,
        NetworkCreate { name, attributes } => {
            resources::create(c, &resources::NETWORK, &name, &attributes).await
        }
        GroupCreate {
            name,
            attributes,
            control,
        } => resources::group_create(c, &name, &attributes, control.as_deref()).await,
        GroupDelete { name } => resources::delete(c, &resources::GROUP, &name).await,
        GroupList => resources::list(c, &resources::GROUP, json).await,
        GroupShow { name, fields } => {
            resources::show(c, &resources::GROUP, &name, fields.as_deref()).await
        }
        GroupUpdate { name, attributes } => {
            resources::update(c, &resources::GROUP, &name, &attributes).await
        }
        NetworkDelete { name } => resources::delete(c, &resources::NETWORK, &name).await,
        NetworkList => resources::list(c, &resources::NETWORK, json).await,
        NetworkShow { name, fields } => {
            resources::show(c, &resources::NETWORK, &name, fields.as_deref()).await
        }
        NetworkUpdate { name, attributes } => {
            resources::update(c, &resources::NETWORK, &name, &attributes).await
        }
        NicCreate { attributes } => resources::nic_create(c, &attributes).await,
        NicDelete { uuid } => resources::delete(c, &resources::NIC, &uuid).await,
        NicList => resources::list(c, &resources::NIC, json).await,
        NicShow { uuid, mac, fields } => {
            resources::nic_show(c, uuid.as_deref(), mac.as_deref(), fields.as_deref()).await
        }
        NicUpdate { uuid, attributes } => {
            resources::update(c, &resources::NIC, &uuid, &attributes).await
        }
        PasswdCreate { key, attributes } => {
            resources::create(c, &resources::PASSWD, &key, &attributes).await
        }
        PasswdDelete { key } => resources::delete(c, &resources::PASSWD, &key).await,
        PasswdList => resources::list(c, &resources::PASSWD, json).await,
        PasswdShow { key, fields } => {
            resources::show(c, &resources::PASSWD, &key, fields.as_deref()).await
        }
        PasswdUpdate { key, attributes } => {
            resources::update(c, &resources::PASSWD, &key, &attributes).await
        }
        OsimageList => resources::list(c, &resources::OSIMAGE, json).await,
        OsimageShow { name, fields } => {
            resources::show(c, &resources::OSIMAGE, &name, fields.as_deref()).await
        }
        OsimageUpdate { name, attributes } => {
            resources::update(c, &resources::OSIMAGE, &name, &attributes).await
        }
        OsimageDelete { name } => resources::delete(c, &resources::OSIMAGE, &name).await,
        ServiceList => resources::service_list(c, json).await,
        ServiceShow { hostname } => resources::service_show(c, &hostname).await,
    }
}
