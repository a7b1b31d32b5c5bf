//! `risk.deny_cidrs`: source networks known to be bad.

use std::net::IpAddr;

/// One network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: u128,
    mask: u128,
    v4: bool,
}

impl Cidr {
    /// Parses `192.0.2.0/24`, `2001:db8::/32` or a single address.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or network"))?;
        let (bits, max) = match addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32u32),
            IpAddr::V6(a) => (u128::from(a), 128u32),
        };
        let len = match len {
            None => max,
            Some(l) => l
                .parse::<u32>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("`{s}`: prefix length must be 0 to {max}"))?,
        };
        let mask = if len == 0 {
            0
        } else {
            (u128::MAX << (128 - len)) >> (128 - max)
        };
        if bits & !mask != 0 {
            return Err(format!("`{s}`: host bits are set below the prefix"));
        }
        Ok(Cidr {
            net: bits,
            mask,
            v4: max == 32,
        })
    }

    /// (IPv4, prefix length, network bits): what [`Cidr::from_parts`] takes back.
    pub fn parts(&self) -> (bool, u8, u128) {
        (self.v4, self.mask.count_ones() as u8, self.net)
    }

    /// The network of [`Cidr::parts`], if they make one.
    pub fn from_parts(v4: bool, len: u8, net: u128) -> Option<Cidr> {
        let max: u32 = if v4 { 32 } else { 128 };
        let len = u32::from(len);
        if len > max || (v4 && net > u128::from(u32::MAX)) {
            return None;
        }
        let mask = if len == 0 {
            0
        } else {
            (u128::MAX << (128 - len)) >> (128 - max)
        };
        (net & !mask == 0).then_some(Cidr { net, mask, v4 })
    }

    /// Whether `addr` is inside (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, addr: &IpAddr) -> bool {
        let (bits, v4) = match addr {
            IpAddr::V4(a) => (u128::from(u32::from(*a)), true),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(a4) => (u128::from(u32::from(a4)), true),
                None => (u128::from(*a), false),
            },
        };
        v4 == self.v4 && bits & self.mask == self.net
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_and_v6_networks() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(c.contains(&ip("203.0.113.200")));
        assert!(c.contains(&ip("::ffff:203.0.113.9")));
        assert!(!c.contains(&ip("203.0.114.1")));
        let c6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c6.contains(&ip("2001:db8:1::1")));
        assert!(!c6.contains(&ip("2001:db9::1")));
        assert!(!c6.contains(&ip("203.0.113.1")));
        assert!(Cidr::parse("198.51.100.7")
            .unwrap()
            .contains(&ip("198.51.100.7")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(&ip("8.8.8.8")));
    }

    #[test]
    fn bad_networks_are_refused() {
        for bad in [
            "203.0.113.1/24",
            "1.2.3.4/33",
            "nope",
            "1.2.3.0/x",
            "::/129",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}
