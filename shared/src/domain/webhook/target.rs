//! Where a webhook may be sent. A subscription URL is chosen by whoever holds an admin
//! token, and the deliverer runs inside our network, so an unchecked URL would let it
//! call internal services or the instance metadata endpoint (SSRF). Targets must be
//! public: checked on the URL at subscription (its form, an address or a local name in
//! it; no DNS on the request path) and on every resolved address at delivery (so a
//! name that resolves somewhere private, then or later, is refused).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use reqwest::Url;

/// `true` turns on local mode: `http://` URLs and private, loopback and link-local
/// targets are allowed, so a receiver on the developer's machine can subscribe.
/// Never set it in a deployed stack.
pub const ALLOW_PRIVATE_TARGETS_ENV: &str = "WEBHOOKS_ALLOW_PRIVATE_TARGETS";

pub const MAX_URL_LEN: usize = 2048;

/// The ports a deployed stack sends webhooks to: HTTPS's own and its common
/// alternative. A receiver on a public address can still sit beside internal
/// services on other ports (databases, admin consoles, caches) that a subscription
/// must not be able to probe. Local mode allows any port.
pub const ALLOWED_PORTS: [u16; 2] = [443, 8443];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TargetPolicy {
    /// Local mode (see [`ALLOW_PRIVATE_TARGETS_ENV`]).
    pub allow_private: bool,
}

impl TargetPolicy {
    /// Public HTTPS receivers only: what a deployed stack runs with.
    pub const STRICT: TargetPolicy = TargetPolicy {
        allow_private: false,
    };
    /// Local mode: any http(s) receiver, including this machine.
    pub const LOCAL: TargetPolicy = TargetPolicy {
        allow_private: true,
    };

    /// Checks a subscription URL without network access: its form, its scheme and,
    /// when it names an address or a local name, that address. The error is the
    /// message for the `url` field.
    pub fn check_url(&self, text: &str) -> Result<Url, String> {
        if text.len() > MAX_URL_LEN {
            return Err(format!("must be at most {MAX_URL_LEN} characters"));
        }
        let url = Url::parse(text).map_err(|e| format!("must be an absolute URL ({e})"))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            "http" => return Err("must use https".into()),
            _ if self.allow_private => return Err("must use http or https".into()),
            _ => return Err("must use https".into()),
        }
        if !url.username().is_empty() || url.password().is_some() {
            // URLs are shown in listings and logs; a credential does not belong there.
            return Err("must not contain credentials".into());
        }
        self.check_port(&url)?;
        match host(&url) {
            None => return Err("must name a host".into()),
            Some(Target::Ip(ip)) => self.check_ip(ip)?,
            Some(Target::Name(name)) => {
                if !self.allow_private && is_local_name(name) {
                    return Err(format!(
                        "must be a public host; {name} is a local name (allowed only in local mode)"
                    ));
                }
            }
        }
        Ok(url)
    }

    /// Refuses a port other than [`ALLOWED_PORTS`], unless in local mode.
    pub fn check_port(&self, url: &Url) -> Result<(), String> {
        match url.port_or_known_default() {
            _ if self.allow_private => Ok(()),
            Some(port) if ALLOWED_PORTS.contains(&port) => Ok(()),
            Some(port) => Err(format!(
                "must use port 443 or 8443; {port} is allowed only in local mode"
            )),
            None => Err("must use port 443 or 8443".into()),
        }
    }

    /// Refuses an address that is not on the public internet, unless in local mode.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        match non_public(ip) {
            Some(kind) if !self.allow_private => Err(format!(
                "must be a public address; {ip} is {kind} (allowed only in local mode)"
            )),
            _ => Ok(()),
        }
    }
}

/// A URL's host: an address, or a name to resolve.
pub enum Target<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

/// The URL parser has already normalised every spelling of an address
/// (`2130706433`, `0x7f.1`, `[::ffff:7f00:1]`) into its canonical text.
pub fn host(url: &Url) -> Option<Target<'_>> {
    let host = url.host_str()?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    Some(match bare.parse::<IpAddr>() {
        Ok(ip) => Target::Ip(ip),
        Err(_) => Target::Name(host),
    })
}

/// Names that always mean this machine or a private network.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    // A single label ("intranet", "metadata") is resolved through search domains.
    !name.contains('.')
        || ["localhost", "local", "internal", "home.arpa"]
            .iter()
            .any(|suffix| name == *suffix || name.ends_with(&format!(".{suffix}")))
}

/// What kind of non-public address `ip` is, or `None` for a public one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => non_public_v4(ip),
        IpAddr::V6(ip) => non_public_v6(ip),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        // 169.254.169.254 is the cloud metadata endpoint.
        Some("a link-local address")
    } else if a == 0 {
        Some("an unspecified address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("a multicast or reserved address")
    } else if (a, b, c) == (192, 0, 0) || (a == 198 && (18..20).contains(&b)) {
        Some("a reserved address")
    } else if ip.is_documentation() {
        Some("a documentation address")
    } else {
        None
    }
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // Addresses that carry an IPv4 address are judged by it, since that is where a
    // translator or relay delivers them.
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // ::ffff:a.b.c.d (IPv4-mapped), ::a.b.c.d (IPv4-compatible, deprecated) and
    // ::ffff:0:a.b.c.d (IPv4-translated, RFC 2765).
    if (s[..5] == [0; 5] && matches!(s[5], 0 | 0xffff)) || s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return non_public_v4(v4(s[6], s[7]));
    }
    // 64:ff9b::/96, the well-known NAT64 prefix (RFC 6052).
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return non_public_v4(v4(s[6], s[7]));
    }
    // 64:ff9b:1::/48, NAT64 for local use (RFC 8215): a network's own translator,
    // whose embedding its operator chooses.
    if s[..3] == [0x64, 0xff9b, 1] {
        return Some("a local-use NAT64 address");
    }
    // 2002::/16, 6to4: the relay's IPv4 address follows the prefix.
    if s[0] == 0x2002 {
        return non_public_v4(v4(s[1], s[2]));
    }
    // 2001::/32, Teredo: the server's IPv4 address, then the client's, inverted.
    if s[..2] == [0x2001, 0] {
        return non_public_v4(v4(s[2], s[3])).or(non_public_v4(v4(!s[6], !s[7])));
    }
    if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_unique_local() {
        Some("a unique-local address")
    } else if ip.is_unicast_link_local() || s[0] & 0xffc0 == 0xfec0 {
        Some("a link-local address")
    } else if s[..2] == [0x2001, 0x0db8] || s[0] & 0xfff0 == 0x3ff0 {
        // 2001:db8::/32 and 3fff::/20 (RFC 9637).
        Some("a documentation address")
    } else if s[..3] == [0x2001, 2, 0] || (s[0] == 0x2001 && s[1] & 0xffe0 == 0x0020) {
        // 2001:2::/48 (benchmarking), 2001:20::/28 (ORCHIDv2); 2001:10::/28 (ORCHID)
        // is no longer assigned but also unroutable.
        Some("a reserved address")
    } else if s[0] == 0x2001 && s[1] & 0xfff0 == 0x0010 {
        Some("a reserved address")
    } else if s[0] & 0xe000 != 0x2000 {
        // Only 2000::/3 is global unicast: 100::/64 (discard), 5f00::/16 (SRv6) and
        // every unassigned block are not the internet.
        Some("a reserved address")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:c0a8:0101::1",
            "ff02::1",
        ] {
            assert!(
                non_public(ip(private)).is_some(),
                "{private} counted as public"
            );
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(non_public(ip(public)), None, "{public} counted as private");
        }
    }

    /// Each embedding of an IPv4 address: refused when the address is not public,
    /// allowed when it is.
    #[test]
    fn embedded_ipv4_addresses_are_judged_by_the_embedded_address() {
        let cases = [
            // IPv4-mapped ::ffff:0:0/96
            ("::ffff:10.1.2.3", "::ffff:93.184.216.34"),
            ("::ffff:169.254.169.254", "::ffff:8.8.8.8"),
            // IPv4-compatible ::/96
            ("::192.168.0.1", "::8.8.8.8"),
            // IPv4-translated ::ffff:0:0:0/96
            ("::ffff:0:127.0.0.1", "::ffff:0:8.8.8.8"),
            ("::ffff:0:a9fe:a9fe", "::ffff:0:5db8:d822"),
            // NAT64 64:ff9b::/96
            ("64:ff9b::10.0.0.1", "64:ff9b::8.8.8.8"),
            ("64:ff9b::127.0.0.1", "64:ff9b::93.184.216.34"),
            // 6to4 2002::/16 (2002:AABB:CCDD::)
            ("2002:0a00:0001::1", "2002:5db8:d822::1"),
            ("2002:a9fe:a9fe::", "2002:0808:0808::1"),
            // Teredo 2001::/32: server 8.8.8.8 (0808:0808), client inverted
            // (10.0.0.1 = f5ff:fffe; 93.184.216.34 = a247:27dd).
            ("2001:0:0808:0808::f5ff:fffe", "2001:0:0808:0808::a247:27dd"),
            ("2001:0:7f00:1::a247:27dd", "2001:0:5db8:d822::a247:27dd"),
        ];
        for (private, public) in cases {
            assert!(
                non_public(ip(private)).is_some(),
                "{private} counted as public"
            );
            assert_eq!(non_public(ip(public)), None, "{public} counted as private");
        }
    }

    #[test]
    fn reserved_ipv6_ranges_are_not_public() {
        for (reserved, kind) in [
            ("64:ff9b:1::8.8.8.8", "a local-use NAT64 address"),
            ("64:ff9b:1:ffff::1", "a local-use NAT64 address"),
            ("100::1", "a reserved address"),
            ("2001:2::1", "a reserved address"),
            ("2001:10::1", "a reserved address"),
            ("2001:20::1", "a reserved address"),
            ("2001:db8::1", "a documentation address"),
            ("3fff::1", "a documentation address"),
            ("5f00::1", "a reserved address"),
            ("fec0::1", "a link-local address"),
            ("fd00::1", "a unique-local address"),
            ("ff05::2", "a multicast address"),
            ("4000::1", "a reserved address"),
        ] {
            assert_eq!(non_public(ip(reserved)), Some(kind), "{reserved}");
        }
        for public in ["2001:4860:4860::8888", "2a00:1450:4001::1", "2001:1::1"] {
            assert_eq!(non_public(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn strict_urls_use_443_or_8443() {
        let strict = TargetPolicy::STRICT;
        assert!(strict.check_url("https://hooks.example.com/").is_ok());
        assert!(strict.check_url("https://hooks.example.com:443/").is_ok());
        assert!(strict.check_url("https://hooks.example.com:8443/").is_ok());
        for port in [22, 80, 6379, 8080, 9200, 2375, 65535] {
            let url = format!("https://hooks.example.com:{port}/");
            let refused = strict.check_url(&url).unwrap_err();
            assert!(refused.contains("port 443 or 8443"), "{url}: {refused}");
        }
        let local = TargetPolicy::LOCAL;
        assert!(local.check_url("http://127.0.0.1:6379/").is_ok());
    }

    #[test]
    fn strict_urls_are_https_to_public_hosts() {
        let strict = TargetPolicy::STRICT;
        assert!(strict.check_url("https://hooks.example.com/orders").is_ok());
        for refused in [
            "http://hooks.example.com/orders",
            "ftp://hooks.example.com/",
            "https://127.0.0.1/hook",
            "https://[::1]/hook",
            "https://[::ffff:7f00:1]/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://localhost/hook",
            "https://api.localhost/hook",
            "https://printer.local/hook",
            "https://intranet/hook",
            "https://user:pass@hooks.example.com/",
            "hooks.example.com/orders",
        ] {
            assert!(strict.check_url(refused).is_err(), "{refused} accepted");
        }
    }

    #[test]
    fn local_mode_allows_http_and_this_machine() {
        let local = TargetPolicy::LOCAL;
        assert!(local.check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(local.check_url("http://localhost:8080/hook").is_ok());
        assert!(local.check_url("ftp://localhost/").is_err());
    }
}
