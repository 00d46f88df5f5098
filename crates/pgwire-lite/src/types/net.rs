//! Network address types: `inet` / `cidr` as [`Inet`], `macaddr` as [`MacAddr`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use bytes::{BufMut, BytesMut};

use super::codec::{Reader, cannot_decode, cannot_encode, err, fixed, snippet, utf8};
use super::{BoxError, FromSql, IsNull, ToSql, Type};

/// The address family bytes of `inet_send` (PostgreSQL's `PGSQL_AF_INET`, `PGSQL_AF_INET6`:
/// AF_INET + 0 and + 1, fixed on the wire whatever the platform's AF_INET is).
const PGSQL_AF_INET: u8 = 2;
const PGSQL_AF_INET6: u8 = 3;

/// An `inet` or `cidr` value: an IP address and a network prefix length.
///
/// `192.168.0.1` is `Inet { addr, prefix: 32 }`; `10.0.0.0/8` has prefix 8. A `cidr` must
/// have no bits set right of the prefix (the server refuses it otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Inet {
    addr: IpAddr,
    prefix: u8,
}

impl Inet {
    /// An address with a prefix length; fails when the prefix is longer than the address
    /// (32 bits for IPv4, 128 for IPv6).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Inet, BoxError> {
        let max = max_prefix(&addr);
        if prefix > max {
            return Err(err(format!(
                "invalid inet prefix /{prefix} for {addr}: at most /{max}"
            )));
        }
        Ok(Inet { addr, prefix })
    }

    /// A single host: the address with its full prefix (/32 or /128).
    pub fn host(addr: IpAddr) -> Inet {
        Inet {
            prefix: max_prefix(&addr),
            addr,
        }
    }

    /// The address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl From<IpAddr> for Inet {
    fn from(addr: IpAddr) -> Inet {
        Inet::host(addr)
    }
}

fn max_prefix(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `addr/prefix`, or just `addr` for a single host (as `inet`'s output does).
impl fmt::Display for Inet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == max_prefix(&self.addr) {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

impl FromStr for Inet {
    type Err = BoxError;

    /// `addr` or `addr/prefix`, as the server prints `inet` and `cidr`.
    fn from_str(s: &str) -> Result<Inet, BoxError> {
        let bad = || err(format!("invalid inet value: {}", snippet(s)));
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        match p {
            None => Ok(Inet::host(addr)),
            Some(p) => Inet::new(addr, p.parse().map_err(|_| bad())?),
        }
    }
}

fn is_inet(ty: &Type) -> bool {
    *ty == Type::INET || *ty == Type::CIDR
}

impl ToSql for Inet {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if !is_inet(ty) {
            return Err(cannot_encode::<Inet>(ty));
        }
        let (family, bytes): (u8, &[u8]) = match &self.addr {
            IpAddr::V4(a) => (PGSQL_AF_INET, &a.octets()[..]),
            IpAddr::V6(a) => (PGSQL_AF_INET6, &a.octets()[..]),
        };
        out.put_u8(family);
        out.put_u8(self.prefix);
        out.put_u8(u8::from(*ty == Type::CIDR));
        // 4 or 16: always fits.
        out.put_u8(bytes.len() as u8);
        out.put_slice(bytes);
        Ok(IsNull::No)
    }

    fn accepts(&self, ty: &Type) -> bool {
        is_inet(ty)
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::INET)
    }
}

impl<'a> FromSql<'a> for Inet {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if !is_inet(ty) {
            return Err(cannot_decode::<Inet>(ty));
        }
        let mut r = Reader::new("inet", raw);
        let head = r.take(4)?;
        let (family, prefix, len) = (head[0], head[1], head[3]);
        let bytes = r.take(usize::from(len))?;
        r.finish()?;
        let addr = match family {
            PGSQL_AF_INET => IpAddr::V4(Ipv4Addr::from(fixed::<4>("inet", bytes)?)),
            PGSQL_AF_INET6 => IpAddr::V6(Ipv6Addr::from(fixed::<16>("inet", bytes)?)),
            f => return Err(err(format!("invalid inet value: address family {f}"))),
        };
        Inet::new(addr, prefix)
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if !is_inet(ty) {
            return Err(cannot_decode::<Inet>(ty));
        }
        utf8("inet", raw)?.parse()
    }

    fn accepts(ty: &Type) -> bool {
        is_inet(ty)
    }
}

/// A `macaddr` value: six bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

/// `08:00:2b:01:02:03`, as the server prints it.
impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = BoxError;

    /// Six hex byte pairs separated by `:` (the server's output form) or `-`.
    fn from_str(s: &str) -> Result<MacAddr, BoxError> {
        let bad = || err(format!("invalid macaddr value: {}", snippet(s)));
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.len() != 2 {
                return Err(bad());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

impl ToSql for MacAddr {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *ty != Type::MACADDR {
            return Err(cannot_encode::<MacAddr>(ty));
        }
        out.put_slice(&self.0);
        Ok(IsNull::No)
    }

    fn accepts(&self, ty: &Type) -> bool {
        *ty == Type::MACADDR
    }

    fn type_hint(&self) -> Option<Type> {
        Some(Type::MACADDR)
    }
}

impl<'a> FromSql<'a> for MacAddr {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::MACADDR {
            return Err(cannot_decode::<MacAddr>(ty));
        }
        fixed::<6>("macaddr", raw).map(MacAddr)
    }

    fn from_sql_text(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if *ty != Type::MACADDR {
            return Err(cannot_decode::<MacAddr>(ty));
        }
        utf8("macaddr", raw)?.parse()
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::MACADDR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_binary_round_trip_and_hostile_input() {
        let v: Inet = "10.1.0.0/16".parse().unwrap();
        let mut buf = BytesMut::new();
        v.to_sql(&Type::CIDR, &mut buf).unwrap();
        assert_eq!(&buf[..], &[2, 16, 1, 4, 10, 1, 0, 0]);
        assert_eq!(Inet::from_sql(&Type::CIDR, &buf).unwrap(), v);
        // Prefix beyond the address, a length that lies, an unknown family.
        assert!(Inet::from_sql(&Type::INET, &[2, 33, 0, 4, 1, 2, 3, 4]).is_err());
        assert!(Inet::from_sql(&Type::INET, &[2, 32, 0, 16, 1, 2, 3, 4]).is_err());
        assert!(Inet::from_sql(&Type::INET, &[9, 32, 0, 4, 1, 2, 3, 4]).is_err());
        assert!(Inet::from_sql(&Type::INET, &[2]).is_err());
        let h: Inet = "::1".parse().unwrap();
        assert_eq!((h.prefix(), h.to_string()), (128, "::1".to_string()));
    }

    #[test]
    fn macaddr_text_forms() {
        let m: MacAddr = "08:00:2b:01:02:03".parse().unwrap();
        assert_eq!(m.0, [8, 0, 0x2b, 1, 2, 3]);
        assert_eq!(m.to_string(), "08:00:2b:01:02:03");
        assert!("08:00:2b:01:02".parse::<MacAddr>().is_err());
        assert!("08:00:2b:01:02:03:04".parse::<MacAddr>().is_err());
        assert!(MacAddr::from_sql(&Type::MACADDR, &[1, 2, 3]).is_err());
    }
}
