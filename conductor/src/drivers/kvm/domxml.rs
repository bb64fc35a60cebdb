//! Reading and editing libvirt domain XML: the boot order and the MACs.
//!
//! Edits stream the document through quick-xml and change only the boot
//! elements, so everything else a site put in its domain XML (devices,
//! metadata, comments) goes back to `virDomainDefineXML` untouched.

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, Writer, XmlVersion};
use xcat3_common::rpc::BootDevice;

/// libvirt's `<boot dev=…>` name for a boot device.
pub fn libvirt_dev(device: BootDevice) -> Result<&'static str, String> {
    match device {
        BootDevice::Net => Ok("network"),
        BootDevice::Disk => Ok("hd"),
        BootDevice::Cdrom => Ok("cdrom"),
        BootDevice::Bios => Err("a KVM guest has no BIOS setup to boot into".into()),
    }
}

fn from_libvirt_dev(dev: &str) -> Result<BootDevice, String> {
    match dev {
        "network" => Ok(BootDevice::Net),
        "hd" => Ok(BootDevice::Disk),
        "cdrom" => Ok(BootDevice::Cdrom),
        other => Err(format!(
            "the guest boots from `{other}`, which xcat3 does not manage"
        )),
    }
}

/// What the boot-related parts of a domain say.
#[derive(Debug, Default)]
struct BootOrder {
    has_os: bool,
    /// `<os><boot dev=…/>` in order.
    os: Vec<String>,
    /// Per-device `<boot order='N'/>`: (N, libvirt dev name).
    devices: Vec<(u32, String)>,
    /// `<interface><mac address=…/>`, lower case.
    macs: Vec<String>,
}

impl BootOrder {
    /// The boot devices, first first, whichever way the XML gives them.
    fn devs(&self) -> Vec<String> {
        if !self.os.is_empty() {
            return self.os.clone();
        }
        let mut by_order = self.devices.clone();
        by_order.sort();
        let mut out: Vec<String> = Vec::new();
        for (_, dev) in by_order {
            if !out.contains(&dev) {
                out.push(dev);
            }
        }
        out
    }
}

fn attr(e: &BytesStart, name: &str) -> Result<Option<String>, String> {
    match e.try_get_attribute(name) {
        Ok(Some(a)) => a
            .normalized_value(XmlVersion::Implicit1_0)
            .map(|v| Some(v.into_owned()))
            .map_err(|e| format!("domain XML: {e}")),
        Ok(None) => Ok(None),
        Err(e) => Err(format!("domain XML: {e}")),
    }
}

fn local(e: &BytesStart) -> String {
    e.local_name().as_ref().to_string()
}

/// Where in the document an element sits, for what we look for.
fn is_os_boot(path: &[String], name: &str) -> bool {
    name == "boot" && path.len() == 2 && path[0] == "domain" && path[1] == "os"
}

/// `<devices><disk|interface|hostdev|…><boot order=…/>`.
fn is_device_boot(path: &[String], name: &str) -> bool {
    name == "boot" && path.len() == 3 && path[0] == "domain" && path[1] == "devices"
}

/// Walks the document once, calling `keep` on every event with whether it
/// belongs to a boot element (so an editor can drop it).
fn walk(
    xml: &str,
    mut on_event: impl FnMut(&Event, bool, &[String]) -> Result<(), String>,
) -> Result<BootOrder, String> {
    let mut reader = Reader::from_str(xml);
    let mut order = BootOrder::default();
    let mut path: Vec<String> = Vec::new();
    // The `device` attribute of the <disk> we are in (cdrom or disk).
    let mut disk_kind: Option<String> = None;
    // Depth of a <boot> element given as start/end rather than empty.
    let mut in_boot = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("domain XML: {e}"))?;
        let mut is_boot = in_boot > 0;
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let name = local(e);
                let empty = matches!(event, Event::Empty(_));
                if is_os_boot(&path, &name) {
                    is_boot = true;
                    if let Some(dev) = attr(e, "dev")? {
                        order.os.push(dev);
                    }
                } else if is_device_boot(&path, &name) {
                    is_boot = true;
                    if let Some(n) = attr(e, "order")?.and_then(|o| o.parse().ok()) {
                        let dev = match path[2].as_str() {
                            "interface" => "network".to_string(),
                            "disk" if disk_kind.as_deref() == Some("cdrom") => "cdrom".into(),
                            "disk" => "hd".into(),
                            other => other.to_string(),
                        };
                        order.devices.push((n, dev));
                    }
                }
                if path.len() == 1 && name == "os" {
                    order.has_os = true;
                }
                if path.len() == 2 && path[1] == "devices" && name == "disk" {
                    disk_kind = attr(e, "device")?;
                }
                if path.len() == 3
                    && path[1] == "devices"
                    && path[2] == "interface"
                    && name == "mac"
                    && let Some(mac) = attr(e, "address")?
                {
                    order.macs.push(mac.to_ascii_lowercase());
                }
                on_event(&event, is_boot, &path)?;
                if !empty {
                    if is_boot {
                        in_boot += 1;
                    }
                    path.push(name);
                }
            }
            Event::End(_) => {
                path.pop();
                on_event(&event, is_boot, &path)?;
                in_boot = in_boot.saturating_sub(1);
            }
            Event::Eof => break,
            other => on_event(other, is_boot, &path)?,
        }
    }
    Ok(order)
}

/// The device the guest boots from first. A guest without any boot
/// element boots from its disk (libvirt's default for HVM guests).
pub fn boot_device(xml: &str) -> Result<BootDevice, String> {
    let order = walk(xml, |_, _, _| Ok(()))?;
    match order.devs().first() {
        Some(dev) => from_libvirt_dev(dev),
        None => Ok(BootDevice::Disk),
    }
}

/// The primary MACs of the guest's interfaces, lower case.
pub fn macs(xml: &str) -> Result<Vec<String>, String> {
    Ok(walk(xml, |_, _, _| Ok(()))?.macs)
}

/// The same domain with `dev` first in `<os>`'s boot order and the other
/// devices it booted from after it. Per-device `<boot order>` elements are
/// folded into `<os>` (libvirt refuses a domain that has both).
pub fn with_boot_first(xml: &str, dev: &str) -> Result<String, String> {
    let order = walk(xml, |_, _, _| Ok(()))?;
    if !order.has_os {
        return Err("domain XML has no <os> element".into());
    }
    let mut devs = vec![dev.to_string()];
    devs.extend(order.devs().into_iter().filter(|d| d != dev));
    let mut writer = Writer::new(Vec::with_capacity(xml.len() + 64));
    let mut write_error = None;
    walk(xml, |event, is_boot, path| {
        if is_boot {
            return Ok(());
        }
        // Closing </os>: our boot order goes last in it.
        if let Event::End(e) = event
            && path.len() == 1
            && e.local_name().as_ref() == "os"
        {
            for d in &devs {
                let mut boot = BytesStart::new("boot");
                boot.push_attribute(("dev", d.as_str()));
                if let Err(e) = writer.write_event(Event::Empty(boot)) {
                    write_error = Some(e);
                }
            }
        }
        if let Err(e) = writer.write_event(event.borrow()) {
            write_error = Some(e);
        }
        Ok(())
    })?;
    if let Some(e) = write_error {
        return Err(format!("domain XML: {e}"));
    }
    String::from_utf8(writer.into_inner()).map_err(|e| format!("domain XML: {e}"))
}

/// The XML namespace of our `<metadata>` mark on guests `mkvm` defined.
pub const XCAT3_NS: &str = "https://xcat3.dev/libvirt/1";

/// What `mkvm` puts in a domain.
pub struct GuestXml<'a> {
    pub name: &'a str,
    /// `kvm` (hardware acceleration) or `qemu` (emulation).
    pub kind: &'a str,
    pub arch: &'a str,
    pub memory_mib: u64,
    pub cpus: u32,
    pub mac: &'a str,
    pub network: &'a xcat3_common::model::VmNetwork,
    /// The disk image's path and format (`qcow2`).
    pub disk: Option<(&'a str, &'a str)>,
    pub boot: &'a [String],
}

/// `s` escaped for an XML attribute or text.
pub fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// A guest's domain XML, marked as xcat3's for node `name`.
pub fn build_guest(g: &GuestXml) -> String {
    use std::fmt::Write;
    use xcat3_common::model::VmNetwork;
    let mut x = String::with_capacity(1024);
    let _ = write!(
        x,
        "<domain type='{}'>\n  <name>{}</name>\n  <metadata><xcat3:node xmlns:xcat3='{XCAT3_NS}'>{}</xcat3:node></metadata>\n  <memory unit='MiB'>{}</memory>\n  <vcpu>{}</vcpu>\n  <os>\n    <type arch='{}'>hvm</type>\n",
        escape(g.kind),
        escape(g.name),
        escape(g.name),
        g.memory_mib,
        g.cpus,
        escape(g.arch)
    );
    for b in g.boot {
        let _ = writeln!(x, "    <boot dev='{}'/>", escape(b));
    }
    x.push_str("  </os>\n  <features><acpi/><apic/></features>\n  <on_poweroff>destroy</on_poweroff>\n  <on_reboot>restart</on_reboot>\n  <devices>\n");
    if let Some((path, format)) = g.disk {
        let _ = writeln!(
            x,
            "    <disk type='file' device='disk'><driver name='qemu' type='{}'/><source file='{}'/><target dev='vda' bus='virtio'/></disk>",
            escape(format),
            escape(path)
        );
    }
    let (kind, source) = match g.network {
        VmNetwork::Network(n) => ("network", format!("network='{}'", escape(n))),
        VmNetwork::Bridge(b) => ("bridge", format!("bridge='{}'", escape(b))),
    };
    let _ = writeln!(
        x,
        "    <interface type='{kind}'><mac address='{}'/><source {source}/><model type='virtio'/></interface>",
        escape(g.mac)
    );
    x.push_str("    <serial type='pty'/>\n    <console type='pty'/>\n  </devices>\n</domain>\n");
    x
}

/// The node named in our `<metadata>` mark, if the guest carries one.
pub fn marked_for(xml: &str) -> Option<String> {
    let start = xml.find("<xcat3:node")?;
    let rest = &xml[start..];
    let open_end = rest.find('>')?;
    let close = rest.find("</xcat3:node>")?;
    let text = &rest[open_end + 1..close];
    quick_xml::escape::unescape(text)
        .ok()
        .map(|t| t.into_owned())
}

/// Each `<disk>` of the guest in order: whether it is a hard disk
/// (`device='disk'`; CD-ROM images are not the guest's) and its file.
fn disks_in(xml: &str) -> Result<Vec<(bool, Option<String>)>, String> {
    let mut reader = Reader::from_str(xml);
    let mut out: Vec<(bool, Option<String>)> = Vec::new();
    let mut path: Vec<String> = Vec::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("domain XML: {e}"))?;
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let name = local(e);
                if path.len() == 2 && path[1] == "devices" && name == "disk" {
                    let hard = attr(e, "device")?.as_deref().unwrap_or("disk") == "disk";
                    out.push((hard, None));
                }
                if path.len() == 3
                    && path[2] == "disk"
                    && name == "source"
                    && let Some(last) = out.last_mut()
                {
                    last.1 = attr(e, "file")?;
                }
                if matches!(event, Event::Start(_)) {
                    path.push(name);
                }
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// The files of the guest's hard disks.
pub fn disk_files(xml: &str) -> Result<Vec<String>, String> {
    Ok(disks_in(xml)?
        .into_iter()
        .filter(|(hard, _)| *hard)
        .filter_map(|(_, f)| f)
        .collect())
}

/// A clone of a guest's inactive XML: named `name` and marked for it,
/// without the source's UUID, NVRAM path and extra MACs (libvirt makes
/// new ones), its first interface on `mac`, and each disk file in
/// `disks` (source path → clone path) swapped for the clone's qcow2
/// overlay.
pub fn clone_xml(
    xml: &str,
    name: &str,
    mac: &str,
    disks: &[(String, String)],
) -> Result<String, String> {
    let mut reader = Reader::from_str(xml);
    let mut writer = Writer::new(Vec::with_capacity(xml.len() + 128));
    let mut path: Vec<String> = Vec::new();
    // Depth of an element being dropped with everything inside it.
    let mut skip = 0usize;
    let mut interfaces = 0usize;
    // Which disks get an overlay (by position), so their <driver> can say
    // qcow2 before their <source> is reached.
    let overlaid: Vec<bool> = disks_in(xml)?
        .into_iter()
        .map(|(_, f)| f.is_some_and(|f| disks.iter().any(|(from, _)| *from == f)))
        .collect();
    let mut disk_index: Option<usize> = None;
    let w = |writer: &mut Writer<Vec<u8>>, e: Event| {
        writer
            .write_event(e)
            .map_err(|e| format!("domain XML: {e}"))
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("domain XML: {e}"))?;
        if skip > 0 {
            match &event {
                Event::Start(_) => skip += 1,
                Event::End(_) => skip -= 1,
                Event::Eof => return Err("domain XML: ends inside an element".into()),
                _ => {}
            }
            continue;
        }
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let tag = local(e);
                let empty = matches!(event, Event::Empty(_));
                let under =
                    |p: &[&str]| path.len() == p.len() && path.iter().zip(p).all(|(a, b)| a == b);
                let drop = (under(&["domain"]) && ["uuid", "metadata"].contains(&tag.as_str()))
                    || (under(&["domain", "os"]) && tag == "nvram")
                    || (under(&["domain", "devices", "interface"])
                        && tag == "mac"
                        && interfaces > 1)
                    || (under(&["domain", "devices", "disk"]) && tag == "backingStore");
                if drop {
                    if !empty {
                        skip = 1;
                    }
                    continue;
                }
                if under(&["domain", "devices"]) && tag == "interface" {
                    interfaces += 1;
                }
                if under(&["domain", "devices"]) && tag == "disk" {
                    disk_index = Some(disk_index.map_or(0, |i| i + 1));
                }
                let in_overlaid = under(&["domain", "devices", "disk"])
                    && disk_index.is_some_and(|i| overlaid.get(i).copied().unwrap_or(false));
                let mut out = BytesStart::new(tag.clone());
                for a in e.attributes().with_checks(false) {
                    let a = a.map_err(|e| format!("domain XML: {e}"))?;
                    let key = a.key.as_ref().to_string();
                    let value = a
                        .normalized_value(XmlVersion::Implicit1_0)
                        .map_err(|e| format!("domain XML: {e}"))?
                        .into_owned();
                    let value = if under(&["domain", "devices", "interface"])
                        && tag == "mac"
                        && key == "address"
                    {
                        mac.to_string()
                    } else if in_overlaid && tag == "source" && key == "file" {
                        disks
                            .iter()
                            .find(|(from, _)| *from == value)
                            .map_or(value, |(_, to)| to.clone())
                    } else if in_overlaid && tag == "driver" && key == "type" {
                        "qcow2".to_string()
                    } else {
                        value
                    };
                    out.push_attribute((key.as_str(), value.as_str()));
                }
                w(
                    &mut writer,
                    if empty {
                        Event::Empty(out)
                    } else {
                        Event::Start(out)
                    },
                )?;
                if !empty {
                    path.push(tag);
                }
            }
            Event::Text(t) if path.len() == 2 && path[1] == "name" => {
                let _ = t;
                w(
                    &mut writer,
                    Event::Text(quick_xml::events::BytesText::new(name)),
                )?;
            }
            Event::End(e) => {
                path.pop();
                w(&mut writer, Event::End(e.clone()))?;
                // Our mark right after </name>.
                if path.len() == 1 && e.local_name().as_ref() == "name" {
                    let mark = format!(
                        "<metadata><xcat3:node xmlns:xcat3='{XCAT3_NS}'>{}</xcat3:node></metadata>",
                        escape(name)
                    );
                    writer.get_mut().extend_from_slice(mark.as_bytes());
                }
            }
            Event::Eof => break,
            other => w(&mut writer, other.borrow())?,
        }
    }
    String::from_utf8(writer.into_inner()).map_err(|e| format!("domain XML: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = "<domain type='kvm'>
  <name>n1</name>
  <description>a &amp; b</description>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
    <boot dev='network'/>
  </os>
  <devices>
    <disk type='file' device='disk'><source file='/x.qcow2'/><target dev='vda'/></disk>
    <interface type='network'><mac address='52:54:00:AA:bb:01'/><source network='default'/></interface>
    <interface type='user'><mac address='52:54:00:aa:bb:02'/></interface>
  </devices>
</domain>";

    #[test]
    fn reads_first_boot_device_and_macs() {
        assert_eq!(boot_device(DOMAIN).unwrap(), BootDevice::Disk);
        assert_eq!(
            macs(DOMAIN).unwrap(),
            ["52:54:00:aa:bb:01", "52:54:00:aa:bb:02"]
        );
    }

    #[test]
    fn moves_the_device_first_and_keeps_everything_else() {
        let out = with_boot_first(DOMAIN, "network").unwrap();
        assert_eq!(boot_device(&out).unwrap(), BootDevice::Net);
        let order = walk(&out, |_, _, _| Ok(())).unwrap();
        assert_eq!(order.os, ["network", "hd"]);
        for kept in [
            "<description>a &amp; b</description>",
            "<source file='/x.qcow2'/>",
            "<type arch='x86_64' machine='pc'>hvm</type>",
            "<interface type='user'>",
        ] {
            assert!(out.contains(kept), "{kept} lost in {out}");
        }
        // Setting it again changes nothing.
        let again = with_boot_first(&out, "network").unwrap();
        assert_eq!(
            walk(&again, |_, _, _| Ok(())).unwrap().os,
            ["network", "hd"]
        );
    }

    #[test]
    fn per_device_boot_orders_fold_into_os() {
        let xml = "<domain><os><type>hvm</type></os><devices>\
            <disk device='cdrom'><boot order='2'/></disk>\
            <disk device='disk'><boot order='1'></boot></disk>\
            <interface type='user'><boot order='3'/></interface></devices></domain>";
        assert_eq!(boot_device(xml).unwrap(), BootDevice::Disk);
        let out = with_boot_first(xml, "cdrom").unwrap();
        assert!(!out.contains("order="), "{out}");
        let order = walk(&out, |_, _, _| Ok(())).unwrap();
        assert_eq!(order.os, ["cdrom", "hd", "network"]);
        assert!(order.devices.is_empty());
    }

    #[test]
    fn guest_xml_is_marked_and_reads_back() {
        use xcat3_common::model::VmNetwork;
        let boot = vec!["network".to_string(), "hd".to_string()];
        let net = VmNetwork::Bridge("br<0>".into());
        let xml = build_guest(&GuestXml {
            name: "vm&1",
            kind: "kvm",
            arch: "x86_64",
            memory_mib: 512,
            cpus: 2,
            mac: "52:54:00:00:00:01",
            network: &net,
            disk: Some(("/var/lib/libvirt/images/vm&1.qcow2", "qcow2")),
            boot: &boot,
        });
        assert_eq!(marked_for(&xml).as_deref(), Some("vm&1"));
        assert_eq!(macs(&xml).unwrap(), ["52:54:00:00:00:01"]);
        assert_eq!(boot_device(&xml).unwrap(), BootDevice::Net);
        assert_eq!(
            disk_files(&xml).unwrap(),
            ["/var/lib/libvirt/images/vm&1.qcow2"]
        );
        assert!(xml.contains("<source bridge='br&lt;0&gt;'/>"), "{xml}");
        assert_eq!(marked_for(DOMAIN), None);
        assert_eq!(disk_files(DOMAIN).unwrap(), ["/x.qcow2"]);
        let with_cd = DOMAIN.replace(
            "<devices>",
            "<devices><disk type='file' device='cdrom'><source file='/iso'/></disk>",
        );
        assert_eq!(disk_files(&with_cd).unwrap(), ["/x.qcow2"]);
    }

    #[test]
    fn clones_rename_remark_and_swap_disks() {
        let golden = "<domain type='kvm'><name>golden</name><uuid>1234</uuid>\
            <metadata><xcat3:node xmlns:xcat3='https://xcat3.dev/libvirt/1'>golden</xcat3:node></metadata>\
            <os><type>hvm</type><nvram>/var/lib/libvirt/qemu/nvram/golden.fd</nvram><boot dev='hd'/></os>\
            <devices><disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/p/golden.img'/><target dev='vda'/></disk>\
            <disk type='file' device='cdrom'><source file='/iso/x.iso'/><target dev='hdc'/></disk>\
            <interface type='network'><mac address='52:54:00:00:00:aa'/><source network='default'/></interface>\
            <interface type='network'><mac address='52:54:00:00:00:bb'/><source network='other'/></interface>\
            </devices></domain>";
        let out = clone_xml(
            golden,
            "c&1",
            "52:54:00:11:22:33",
            &[("/p/golden.img".into(), "/p/c&1.qcow2".into())],
        )
        .unwrap();
        assert!(out.contains("<name>c&amp;1</name>"), "{out}");
        assert_eq!(marked_for(&out).as_deref(), Some("c&1"));
        assert!(!out.contains("<uuid>") && !out.contains("nvram"), "{out}");
        assert_eq!(macs(&out).unwrap(), ["52:54:00:11:22:33"]);
        assert_eq!(disk_files(&out).unwrap(), ["/p/c&1.qcow2"]);
        assert!(out.contains("type=\"qcow2\""), "{out}");
        assert!(out.contains("/iso/x.iso"), "{out}");
        assert!(out.contains("<source network=\"other\"/>"), "{out}");
        assert_eq!(boot_device(&out).unwrap(), BootDevice::Disk);
    }

    #[test]
    fn defaults_and_errors() {
        assert_eq!(
            boot_device("<domain><os><type>hvm</type></os></domain>").unwrap(),
            BootDevice::Disk
        );
        assert!(
            boot_device("<domain><os><boot dev='fd'/></os></domain>")
                .unwrap_err()
                .contains("`fd`")
        );
        assert!(
            with_boot_first("<domain/>", "hd")
                .unwrap_err()
                .contains("<os>")
        );
        assert!(boot_device("<domain><os></domain>").is_err());
        assert!(libvirt_dev(BootDevice::Bios).is_err());
    }
}
