//! This host's own IPv4 addresses, so a network without a configured
//! next-server gets the conductor's address on it (as xCAT and the
//! prototype did: the management node's address on the node's subnet).

use std::net::Ipv4Addr;

/// Every IPv4 address of every interface that is up, loopback excluded.
pub fn ipv4_addresses() -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we only read and then
    // free with freeifaddrs, exactly once.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            let up = ifa.ifa_flags & libc::IFF_UP as libc::c_uint != 0;
            if up
                && !ifa.ifa_addr.is_null()
                && (*ifa.ifa_addr).sa_family as libc::c_int == libc::AF_INET
            {
                let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() {
                    out.push(ip);
                }
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out
}

/// The first of `addrs` inside `network`/`netmask`.
pub fn address_in(addrs: &[Ipv4Addr], network: Ipv4Addr, netmask: Ipv4Addr) -> Option<Ipv4Addr> {
    addrs
        .iter()
        .copied()
        .find(|a| in_subnet(*a, network, netmask))
}

/// Whether `ip` lies in `network`/`netmask`.
pub fn in_subnet(ip: Ipv4Addr, network: Ipv4Addr, netmask: Ipv4Addr) -> bool {
    let mask = u32::from(netmask);
    u32::from(ip) & mask == u32::from(network) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_address_on_the_subnet() {
        let addrs = ["10.1.0.5".parse().unwrap(), "192.0.2.1".parse().unwrap()];
        let net = "192.0.2.0".parse().unwrap();
        let mask = "255.255.255.0".parse().unwrap();
        assert_eq!(
            address_in(&addrs, net, mask),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            address_in(&addrs, "172.16.0.0".parse().unwrap(), mask),
            None
        );
    }

    #[test]
    fn reads_this_hosts_addresses_without_loopback() {
        assert!(ipv4_addresses().iter().all(|a| !a.is_loopback()));
    }
}
