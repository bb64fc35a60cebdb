//! The consistent hash ring that assigns each node to one live conductor.
//!
//! Compatible with tooz's `HashRing(hosts, partitions=32)` as Ironic uses it:
//! host `h` gets 32 points, the big-endian integers of `md5(h×2)`, …,
//! `md5(h×33)` (tooz seeds the digest with `h`, then appends `h` once per
//! point); a node's key is `md5(name)`; its owner is the host of the first
//! point strictly greater than the key, wrapping to the first point.
//!
//! Pure: the same live hosts give the same owner in every process.

use std::collections::BTreeMap;

use md5::{Digest, Md5};

/// Points per host (tooz `partitions`, Ironic `2**hash_partition_exponent`).
pub const POINTS_PER_HOST: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashRing {
    /// Sorted by point; the `u32` indexes `hosts`.
    points: Vec<(u128, u32)>,
    hosts: Vec<String>,
}

fn key_of(data: &[u8]) -> u128 {
    u128::from_be_bytes(Md5::digest(data).into())
}

impl HashRing {
    /// Builds the ring of `hosts` (order and duplicates do not matter).
    pub fn new<S: AsRef<str>>(hosts: &[S]) -> HashRing {
        let mut hosts: Vec<String> = hosts.iter().map(|h| h.as_ref().to_string()).collect();
        hosts.sort();
        hosts.dedup();
        let mut points = Vec::with_capacity(hosts.len() * POINTS_PER_HOST);
        for (i, host) in hosts.iter().enumerate() {
            let mut hasher = Md5::new();
            hasher.update(host.as_bytes());
            for _ in 0..POINTS_PER_HOST {
                hasher.update(host.as_bytes());
                let point = u128::from_be_bytes(hasher.clone().finalize().into());
                points.push((point, i as u32));
            }
        }
        // tooz keeps a dict keyed by point: on a (practically impossible)
        // collision the later host wins; sorting by (point, host) and keeping
        // the last of equal points does the same.
        points.sort();
        points.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                *earlier = *later;
                true
            } else {
                false
            }
        });
        HashRing { points, hosts }
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The host owning `name`, or `None` when the ring is empty.
    pub fn owner(&self, name: &str) -> Option<&str> {
        if self.points.is_empty() {
            return None;
        }
        let key = key_of(name.as_bytes());
        let i = self.points.partition_point(|(p, _)| *p <= key);
        let (_, host) = self.points[if i == self.points.len() { 0 } else { i }];
        Some(&self.hosts[host as usize])
    }

    /// Groups `names` by owner (empty when the ring is empty).
    pub fn group_by_owner<'a, S: AsRef<str>>(
        &self,
        names: &'a [S],
    ) -> BTreeMap<String, Vec<&'a str>> {
        let mut out: BTreeMap<String, Vec<&'a str>> = BTreeMap::new();
        for n in names {
            if let Some(h) = self.owner(n.as_ref()) {
                out.entry(h.to_string()).or_default().push(n.as_ref());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("node{i}")).collect()
    }

    /// Placement matches the real tooz (vectors from `scripts/tooz-vectors`).
    #[test]
    fn matches_tooz() {
        let text = include_str!("../testdata/tooz_ring_vectors.txt");
        let ring = HashRing::new(&["c1", "c2", "c3", "conductor-a.example.com"]);
        let mut checked = 0;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, owner) = line.split_once(' ').unwrap();
            assert_eq!(ring.owner(name), Some(owner), "{name}");
            checked += 1;
        }
        assert_eq!(checked, 203);
    }

    #[test]
    fn empty_ring_owns_nothing() {
        assert_eq!(HashRing::new::<&str>(&[]).owner("n1"), None);
    }

    #[test]
    fn each_of_10_hosts_owns_10_percent_give_or_take_4() {
        let hosts: Vec<String> = (1..=10).map(|i| format!("conductor{i}")).collect();
        let ring = HashRing::new(&hosts);
        let names = names(100_000);
        let groups = ring.group_by_owner(&names);
        assert_eq!(groups.len(), 10);
        for (host, owned) in groups {
            let share = owned.len() as f64 / 1000.0;
            assert!((6.0..=14.0).contains(&share), "{host} owns {share:.1}%");
        }
    }

    #[test]
    fn only_the_leavers_keys_move() {
        let hosts: Vec<String> = (1..=5).map(|i| format!("c{i}")).collect();
        let before = HashRing::new(&hosts);
        let after = HashRing::new(&hosts[..4]);
        for n in names(20_000) {
            let (b, a) = (before.owner(&n).unwrap(), after.owner(&n).unwrap());
            if b != "c5" {
                assert_eq!(a, b, "{n} moved from {b} though c5 left");
            }
        }
        // And a joiner takes keys only for itself.
        for n in names(20_000) {
            let (b, a) = (after.owner(&n).unwrap(), before.owner(&n).unwrap());
            assert!(a == b || a == "c5", "{n} moved {b} -> {a} when c5 joined");
        }
    }

    proptest! {
        #[test]
        fn deterministic_and_order_free(mut hosts in prop::collection::vec("[a-z]{1,8}", 1..8), key in "[a-z0-9]{1,12}") {
            let a = HashRing::new(&hosts);
            hosts.reverse();
            let b = HashRing::new(&hosts);
            prop_assert_eq!(a.owner(&key), b.owner(&key));
            prop_assert!(hosts.iter().any(|h| Some(h.as_str()) == a.owner(&key)));
        }
    }
}
