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

/// The files of the guest's disks (`device='disk'`; CD-ROM images are
/// not the guest's to delete).
pub fn disk_files(xml: &str) -> Result<Vec<String>, String> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    let mut depth_path: Vec<String> = Vec::new();
    let mut in_disk = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("domain XML: {e}"))?;
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let name = local(e);
                if depth_path.len() == 2
                    && depth_path[1] == "devices"
                    && name == "disk"
                    && matches!(event, Event::Start(_))
                {
                    in_disk = attr(e, "device")?.as_deref().unwrap_or("disk") == "disk";
                }
                if in_disk
                    && depth_path.len() == 3
                    && name == "source"
                    && let Some(f) = attr(e, "file")?
                {
                    out.push(f);
                }
                if matches!(event, Event::Start(_)) {
                    depth_path.push(name);
                }
            }
            Event::End(_) => {
                depth_path.pop();
                if depth_path.len() == 2 {
                    in_disk = false;
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
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
