//! Which network addresses a download may connect to: public ones only, so a name that
//! resolves to loopback, a private network or the cloud metadata service gets no request.
//! The check runs in the HTTP client's resolver, so redirects and every new connection pass
//! through it; IP-literal hosts skip the resolver and are checked by the URL guard.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address is refused, or `None` for a public address.
pub fn refused_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped().or_else(|| nat64_embedded(v6)) {
            Some(v4) => v4_kind(v4),
            None => v6_kind(v6),
        },
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if a == 0 {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip == Ipv4Addr::new(169, 254, 169, 254) {
        Some("cloud metadata")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_broadcast() || ip.is_multicast() {
        Some("broadcast or multicast")
    } else {
        None
    }
}

/// The AWS IPv6 metadata address; it also lies in fc00::/7, but deserves its own name.
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip == METADATA_V6 {
        Some("cloud metadata")
    } else if first & 0xfe00 == 0xfc00 {
        Some("private")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("broadcast or multicast")
    } else {
        None
    }
}

/// The IPv4 address inside a NAT64 address (64:ff9b::/96), which a gateway would reach.
fn nat64_embedded(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0])
        .then(|| Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))
}

/// A name that resolved only to addresses a download must not reach.
#[derive(Debug, thiserror::Error)]
#[error(
    "download host `{host}` resolves only to refused addresses ({found}); a download host must be public (acs.allow_http lifts this for the emulator and tests)"
)]
pub struct RefusedAddress {
    host: String,
    found: String,
}

/// The system resolver with every refused address dropped from its answer; a name left
/// with no address fails to resolve, before any connection is attempted.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (public, refused): (Vec<_>, Vec<_>) = resolved
                .into_iter()
                .partition(|addr| refused_kind(addr.ip()).is_none());
            if public.is_empty() {
                let found = refused
                    .iter()
                    .take(4)
                    .map(|addr| {
                        let kind = refused_kind(addr.ip()).unwrap_or("no address");
                        format!("{}: {kind}", addr.ip())
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(Box::new(RefusedAddress { host, found }) as _);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(ip: &str) -> Option<&'static str> {
        refused_kind(ip.parse().unwrap())
    }

    #[test]
    fn refuses_every_internal_range() {
        for (ip, expected) in [
            ("127.0.0.1", "loopback"),
            ("127.9.9.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fc00::1", "private"),
            ("fd12:3456::1", "private"),
            ("fd00:ec2::254", "cloud metadata"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("64:ff9b::a00:1", "private"),
        ] {
            assert_eq!(kind(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn lets_public_addresses_through() {
        for ip in [
            "52.114.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2603:1030::1",
            "::ffff:52.114.1.1",
        ] {
            assert_eq!(kind(ip), None, "{ip}");
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_does_not_resolve() {
        let err = match PublicOnlyResolver
            .resolve("localhost".parse().unwrap())
            .await
        {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(err) => err.to_string(),
        };
        assert!(
            err.contains("refused addresses") && err.contains("loopback"),
            "{err}"
        );
    }
}
