//! `/etc/resolv.conf` and `/etc/hosts` text, parsed as glibc reads them (resolv.conf(5), hosts(5)).
//! Pure: the caller reads the files and hands in the text.
//!
//! resolv.conf: `nameserver` lines (IPv4 or IPv6) and `options timeout:N attempts:N ndots:N`; every
//! other keyword and option is ignored, as glibc ignores what it does not know. `search` and `domain`
//! are ignored on purpose: names are queried as given, which is what a DockMon URL's host needs (a
//! full name, or a bare name that Docker's embedded DNS or a dnsmasq router answers as is). So `ndots`
//! is read and kept but changes nothing yet.
//!
//! Policy when full: the first [`NAMESERVER_MAX_COUNT`] nameservers are kept and later lines ignored
//! (glibc does the same); the first [`HOSTS_ADDR_MAX_COUNT`] addresses of a host name are kept.
//! Option values are clamped to glibc's limits.
//!
//! Not supported: IPv6 nameservers with a zone (`fe80::1%eth0`; the line is skipped), `RES_OPTIONS`
//! and `LOCALDOMAIN` from the environment, `sortlist`.
use std::net::IpAddr;

/// Nameservers used: `MAXNS` in glibc's `<resolv.h>`; resolv.conf(5) says later ones are ignored.
pub const NAMESERVER_MAX_COUNT: usize = 3;
/// Wait for one answer when resolv.conf does not say: `RES_TIMEOUT`, 5 s, as glibc and musl.
pub const TRY_TIMEOUT_DEFAULT_MS: u64 = 5_000;
/// Shortest wait: glibc turns `timeout:0` into one second (`send_dg`).
pub const TRY_TIMEOUT_MIN_MS: u64 = 1_000;
/// Longest wait: `RES_MAXRETRANS`, 30 s; larger `timeout:` values are clamped to it.
pub const TRY_TIMEOUT_MAX_MS: u64 = 30_000;
/// Rounds over the nameservers when resolv.conf does not say: `RES_DFLRETRY`, 2.
pub const ATTEMPT_DEFAULT_COUNT: u32 = 2;
/// Most rounds: `RES_MAXRETRY`, 5. `attempts:0` becomes 1 (glibc would send nothing).
pub const ATTEMPT_MAX_COUNT: u32 = 5;
/// `ndots` when resolv.conf does not say (resolv.conf(5)).
pub const NDOTS_DEFAULT_COUNT: u32 = 1;
/// Largest `ndots`: `RES_MAXNDOTS`, 15.
pub const NDOTS_MAX_COUNT: u32 = 15;
/// Addresses kept for one name from /etc/hosts: Docker writes one or two per name (IPv4 and IPv6);
/// eight leaves room for hand-written files, and matches [`super::ADDR_MAX_COUNT`].
pub const HOSTS_ADDR_MAX_COUNT: usize = 8;

/// What resolv.conf says. [`ResolvConf::default`] is an empty file: no nameserver, glibc's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// Nameservers in file order, at most [`NAMESERVER_MAX_COUNT`].
    pub nameservers: heapless::Vec<IpAddr, NAMESERVER_MAX_COUNT>,
    /// Wait for one answer (`options timeout:N`, seconds in the file).
    pub try_timeout_ms: u64,
    /// Rounds over all nameservers (`options attempts:N`).
    pub attempts: u32,
    /// `options ndots:N`. Read for completeness; unused while search domains are not applied.
    pub ndots: u32,
}

impl Default for ResolvConf {
    fn default() -> Self {
        ResolvConf {
            nameservers: heapless::Vec::new(),
            try_timeout_ms: TRY_TIMEOUT_DEFAULT_MS,
            attempts: ATTEMPT_DEFAULT_COUNT,
            ndots: NDOTS_DEFAULT_COUNT,
        }
    }
}

impl ResolvConf {
    /// Parses resolv.conf text. Never fails: lines and options we do not understand are skipped, as
    /// glibc skips them. Comments are lines starting with `#` or `;` (resolv.conf(5)); a `#` after the
    /// value is also ignored, since only the first word after `nameserver` is read.
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf::default();
        for line in text.lines() {
            let line = line.trim_start();
            if line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let mut words = line.split_ascii_whitespace();
            match words.next() {
                Some("nameserver") => {
                    let Some(addr) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
                        continue;
                    };
                    // Policy when full: ignore the fourth and later lines, as glibc does.
                    let _ = conf.nameservers.push(addr);
                }
                Some("options") => {
                    for option in words {
                        conf.apply_option(option);
                    }
                }
                _ => {}
            }
        }
        conf
    }

    fn apply_option(&mut self, option: &str) {
        let Some((key, value)) = option.split_once(':') else {
            return;
        };
        let Ok(n) = value.parse::<u32>() else {
            return;
        };
        match key {
            "timeout" => {
                let ms = u64::from(n).saturating_mul(1_000);
                self.try_timeout_ms = ms.clamp(TRY_TIMEOUT_MIN_MS, TRY_TIMEOUT_MAX_MS);
            }
            "attempts" => self.attempts = n.clamp(1, ATTEMPT_MAX_COUNT),
            "ndots" => self.ndots = n.min(NDOTS_MAX_COUNT),
            _ => {}
        }
    }
}

/// Addresses for `name` in /etc/hosts text, in file order, without repeats, at most
/// [`HOSTS_ADDR_MAX_COUNT`] (hosts(5): `address canonical-name aliases...`, `#` to the end of a line
/// is a comment). Names compare without ASCII case; a final dot on `name` is ignored. Every matching
/// line counts, as glibc's getaddrinfo collects them all. Lines whose address does not parse (a zone
/// like `fe80::1%lo`) are skipped.
pub fn lookup_host(text: &str, name: &str) -> heapless::Vec<IpAddr, HOSTS_ADDR_MAX_COUNT> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut found = heapless::Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or(""); // split always yields a first piece
        let mut words = line.split_ascii_whitespace();
        let Some(addr) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        if !words.any(|w| w.strip_suffix('.').unwrap_or(w).eq_ignore_ascii_case(name)) {
            continue;
        }
        if !found.contains(&addr) && found.push(addr).is_err() {
            break; // policy when full: keep the first ones
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn docker_embedded_dns_resolv_conf() {
        // What Docker 24 writes into a container on a user-defined network.
        let text = "# Generated by Docker Engine.\n\
                    # This file can be edited; Docker Engine will not make further changes once it\n\
                    # has been modified.\n\
                    \n\
                    nameserver 127.0.0.11\n\
                    search lan\n\
                    options edns0 trust-ad ndots:0\n\
                    \n\
                    # Based on host file: '/etc/resolv.conf' (internal resolver)\n\
                    # ExtServers: [192.168.1.1]\n\
                    # Overrides: []\n\
                    # Option ndots from: internal\n";
        let conf = ResolvConf::parse(text);
        assert_eq!(conf.nameservers.as_slice(), ips(&["127.0.0.11"]));
        assert_eq!(conf.try_timeout_ms, 5_000);
        assert_eq!(conf.attempts, 2);
        assert_eq!(conf.ndots, 0);
    }

    #[test]
    fn nameservers_options_and_comments() {
        let text = "; comment\n\
                    #nameserver 10.9.9.9\n\
                    nameserver 192.168.1.1 # the router\n\
                    \tnameserver   2001:db8::53\n\
                    nameserver fe80::1%eth0\n\
                    nameserver not-an-address\n\
                    nameserver\n\
                    domain lan\n\
                    options timeout:1 rotate\n\
                    options attempts:3 ndots:2 timeout:bad\n\
                    nameserver 192.168.1.2\n\
                    nameserver 192.168.1.3\n";
        let conf = ResolvConf::parse(text);
        assert_eq!(
            conf.nameservers.as_slice(),
            ips(&["192.168.1.1", "2001:db8::53", "192.168.1.2"])
        );
        assert_eq!(
            (conf.try_timeout_ms, conf.attempts, conf.ndots),
            (1_000, 3, 2)
        );
    }

    #[test]
    fn options_are_clamped_to_glibc_limits() {
        let cases = [
            ("options timeout:0 attempts:0 ndots:0", (1_000, 1, 0)),
            ("options timeout:99 attempts:99 ndots:99", (30_000, 5, 15)),
            ("options timeout:4294967295", (30_000, 2, 1)),
            ("options timeout:-1 attempts: ndots", (5_000, 2, 1)),
            ("", (5_000, 2, 1)),
        ];
        for (text, want) in cases {
            let c = ResolvConf::parse(text);
            assert_eq!((c.try_timeout_ms, c.attempts, c.ndots), want, "{text}");
        }
    }

    #[test]
    fn hosts_lookup() {
        // What Docker writes, plus hand edits.
        let text = "127.0.0.1\tlocalhost\n\
                    ::1\tlocalhost ip6-localhost ip6-loopback\n\
                    fe00::0\tip6-localnet\n\
                    # 10.0.0.9 dockmon\n\
                    172.18.0.3\t8f2c1d0e9a7b\n\
                    192.168.1.50 DockMon.lan dockmon # the server\n\
                    2001:db8::50 dockmon.lan\n\
                    192.168.1.50 dockmon.lan\n\
                    fe80::1%lo dockmon.lan\n\
                    garbage dockmon.lan\n\
                    192.168.1.51 notdockmon.lan\n";
        let cases: &[(&str, &[&str])] = &[
            ("dockmon.lan", &["192.168.1.50", "2001:db8::50"]),
            ("DOCKMON.LAN.", &["192.168.1.50", "2001:db8::50"]),
            ("dockmon", &["192.168.1.50"]),
            ("localhost", &["127.0.0.1", "::1"]),
            ("8f2c1d0e9a7b", &["172.18.0.3"]),
            ("10.0.0.9", &[]),
            ("lan", &[]),
            ("other", &[]),
        ];
        for (name, want) in cases {
            assert_eq!(lookup_host(text, name).as_slice(), ips(want), "{name}");
        }
    }

    #[test]
    fn hosts_keeps_the_first_addresses_when_full() {
        let text: String = (1..=20).map(|i| format!("10.0.0.{i} many\n")).collect();
        let got = lookup_host(&text, "many");
        assert_eq!(got.len(), HOSTS_ADDR_MAX_COUNT);
        assert_eq!(got[0], "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(got[7], "10.0.0.8".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn arbitrary_text_is_clean() {
        let mut x = 0x5eed_u64;
        let alphabet = b"nameserver options timeout:ndots:attempts: 0123456789.:#;\n\t%abcdef";
        for _ in 0..5_000 {
            let len = (x % 200) as usize;
            let text: String = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    alphabet[(x % alphabet.len() as u64) as usize] as char
                })
                .collect();
            let conf = ResolvConf::parse(&text);
            assert!(conf.attempts >= 1 && conf.attempts <= ATTEMPT_MAX_COUNT);
            assert!(conf.try_timeout_ms >= TRY_TIMEOUT_MIN_MS);
            let _ = lookup_host(&text, "timeout");
        }
    }
}
