//! Host name → socket addresses without blocking the executor: a small stub resolver over UDP.
//! `std::net::ToSocketAddrs` calls getaddrinfo, which blocks the one thread the agent has.
//!
//! - [`wire`]: DNS queries and answers (RFC 1035), pure.
//! - [`conf`]: `/etc/resolv.conf` and `/etc/hosts` text, pure.
//! - this file: the lookup order and the only socket of the layer.
//!
//! Lookup order ([`Resolver::resolve`]): an IP literal (`192.0.2.1`, `2001:db8::1`, `[2001:db8::1]`)
//! at once; `localhost` → 127.0.0.1 and ::1 (RFC 6761 §6.3); then /etc/hosts; then DNS: an A query,
//! then AAAA, each sent to the nameservers of resolv.conf in order, for `attempts` rounds, waiting
//! `timeout` for each try (defaults 5 s and 2, as glibc). IPv4 addresses come first in the result.
//!
//! Blocking calls: resolv.conf and /etc/hosts are read with `std::fs` once per lookup. They are small
//! files in memory (tmpfs, overlay or a bind mount), read in microseconds; the agent resolves once
//! per connection attempt, so this is accepted instead of a file-reading thread. Sockets are
//! non-blocking `Async<UdpSocket>`s.
//!
//! Trust: each try uses a new socket, so the kernel picks a new random source port (Linux), and the
//! socket is connected to the nameserver, so the kernel drops datagrams from any other address or
//! port (udp(7)). A datagram is taken only with our ID and question. The ID comes from a cheap mix of
//! the clock's nanoseconds and a counter, not a CSPRNG: together with the port that is enough for an
//! agent asking its LAN's resolver; this is not a public recursive resolver.
//!
//! Policies: after A gave addresses, AAAA is asked once of the server that answered, and its failure
//! is ignored (the IPv4 addresses are enough to connect), so a resolver that drops AAAA queries costs
//! one try, not all of them. NXDOMAIN ends the lookup at once. Other failures (SERVFAIL, REFUSED,
//! truncated or broken answers, refused ports) move on to the next server, as glibc does; when every
//! try failed the error is the last such failure, or "no answer" when every try timed out. Results
//! hold at most [`ADDR_MAX_COUNT`] addresses: [`wire::ANSWER_ADDR_MAX_COUNT`] per family.
//!
//! Limitations, on purpose: no TCP fallback (a truncated answer is an error; the agent's names have a
//! few addresses, far under 512 bytes), no search domains (names are queried as given, see
//! [`conf`]), no EDNS, no DNSSEC validation, no cache (one lookup per connection attempt, which the
//! session's backoff keeps rare), no IPv6 zone ids.
pub mod conf;
pub mod wire;

use async_io::{Async, Timer};
use log::debug;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conf::ResolvConf;
use wire::{AnswerAddrs, Qtype};

/// Addresses in one result: an A answer and an AAAA answer of [`wire::ANSWER_ADDR_MAX_COUNT`] each.
pub const ADDR_MAX_COUNT: usize = 2 * wire::ANSWER_ADDR_MAX_COUNT;
/// The nameserver port (RFC 1035 §4.2.1).
pub const PORT_DEFAULT: u16 = 53;
/// Receive buffer for one answer. Without EDNS a server keeps UDP answers to 512 bytes (RFC 1035
/// §4.2.1); 1232 (the DNS Flag Day 2020 size) still reads a server that ignores that whole. A longer
/// datagram is cut by the kernel and then fails the parse, since its counts promise more.
pub const ANSWER_MAX_BYTES: usize = 1232;

/// The system resolv.conf.
pub const RESOLV_CONF_PATH: &str = "/etc/resolv.conf";
/// The system hosts file.
pub const HOSTS_PATH: &str = "/etc/hosts";

/// A lookup result: IPv4 addresses first, then IPv6, each in the order found.
pub type Addrs = heapless::Vec<SocketAddr, ADDR_MAX_COUNT>;

/// Looks `host` up with the system files ([`Resolver::system`]) and pairs each address with `port`.
pub async fn resolve(host: &str, port: u16) -> Result<Addrs, Error> {
    Resolver::system().resolve(host, port).await
}

/// Where a lookup reads its configuration and which port it asks. Tests point it at temp files and a
/// fake server on a high port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolver {
    /// resolv.conf: nameservers and options.
    pub resolv_conf: PathBuf,
    /// The hosts file. A missing or unreadable one counts as empty, as in glibc.
    pub hosts: PathBuf,
    /// The UDP port of every nameserver ([`PORT_DEFAULT`]; resolv.conf cannot name another).
    pub port: u16,
}

impl Resolver {
    /// `/etc/resolv.conf`, `/etc/hosts`, port 53.
    pub fn system() -> Self {
        Resolver {
            resolv_conf: PathBuf::from(RESOLV_CONF_PATH),
            hosts: PathBuf::from(HOSTS_PATH),
            port: PORT_DEFAULT,
        }
    }

    /// Looks `host` up (see the module doc for the order) and pairs each address with `port`.
    /// On success the result holds at least one address, IPv4 first.
    ///
    /// Worst case when no server answers: `attempts` × nameservers × `timeout` (10 s with glibc's
    /// defaults and one nameserver). A caller that needs a tighter bound races this with its own timer;
    /// dropping the future closes the socket.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Addrs, Error> {
        let fail = |why| Error {
            host: host.to_string(),
            why,
        };
        if let Some(ip) = parse_literal(host) {
            return Ok(with_port(&[ip], port));
        }
        let name = wire::check_name(host).map_err(|e| fail(Why::BadName(e)))?;
        if name.eq_ignore_ascii_case("localhost") {
            let loopback = [
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ];
            return Ok(with_port(&loopback, port));
        }
        match std::fs::read_to_string(&self.hosts) {
            Ok(text) => {
                let found = conf::lookup_host(&text, name);
                if !found.is_empty() {
                    debug!(
                        "{name}: {} address(es) from {}",
                        found.len(),
                        self.hosts.display()
                    );
                    return Ok(with_port(&found, port));
                }
            }
            Err(e) => debug!(
                "{name}: {} not read ({e}); asking DNS",
                self.hosts.display()
            ),
        }
        let text = std::fs::read_to_string(&self.resolv_conf).map_err(|source| {
            fail(Why::ReadConf {
                path: self.resolv_conf.clone(),
                source,
            })
        })?;
        let conf = ResolvConf::parse(&text);
        if conf.nameservers.is_empty() {
            return Err(fail(Why::NoNameserver {
                path: self.resolv_conf.clone(),
            }));
        }
        self.ask_dns(name, &conf, port).await.map_err(fail)
    }

    /// A, then AAAA, over the nameservers; see the module doc for the policies.
    async fn ask_dns(&self, name: &str, conf: &ResolvConf, port: u16) -> Result<Addrs, Why> {
        let schedule = Schedule {
            servers: &conf.nameservers,
            attempts: conf.attempts,
            timeout_ms: conf.try_timeout_ms,
        };
        let (v4, server) = self.ask(name, Qtype::A, schedule).await?;
        let v6 = if v4.is_empty() {
            let (v6, server) = self.ask(name, Qtype::Aaaa, schedule).await?;
            if v6.is_empty() {
                return Err(Why::NoAddress { server });
            }
            v6
        } else {
            let once = Schedule {
                servers: std::slice::from_ref(&server),
                attempts: 1,
                timeout_ms: conf.try_timeout_ms,
            };
            match self.ask(name, Qtype::Aaaa, once).await {
                Ok((v6, _)) => v6,
                Err(why) => {
                    debug!("{name}: AAAA failed after A answered, using IPv4 only: {why}");
                    AnswerAddrs::new()
                }
            }
        };
        // ADDR_MAX_COUNT is two answers' worth, so `take` cuts nothing.
        let both = v4.iter().chain(v6.iter());
        Ok(both
            .map(|&ip| SocketAddr::new(ip, port))
            .take(ADDR_MAX_COUNT)
            .collect())
    }

    /// One query type over the schedule: returns the addresses (empty for NODATA) and who answered.
    async fn ask(
        &self,
        name: &str,
        qtype: Qtype,
        schedule: Schedule<'_>,
    ) -> Result<(AnswerAddrs, IpAddr), Why> {
        let mut last_failure = None;
        for attempt in 1..=schedule.attempts {
            for &server in schedule.servers {
                let to = SocketAddr::new(server, self.port);
                match self.try_once(name, qtype, to, schedule.timeout_ms).await {
                    Ok(addrs) => return Ok((addrs, server)),
                    Err(Try::Answer(wire::Error::NoSuchName)) => {
                        return Err(Why::NoSuchHost { server })
                    }
                    Err(Try::TimedOut) => {
                        debug!(
                            "{name} {}: no answer from {to} (try {attempt})",
                            qtype.as_str()
                        )
                    }
                    Err(Try::Answer(error)) => {
                        debug!("{name} {}: {to}: {error}", qtype.as_str());
                        last_failure = Some(Why::Server { server, error });
                    }
                    Err(Try::Io(source)) => {
                        debug!("{name} {}: {to}: {source}", qtype.as_str());
                        last_failure = Some(Why::Io { server: to, source });
                    }
                    Err(Try::Name(e)) => return Err(Why::BadName(e)),
                }
            }
        }
        Err(last_failure.unwrap_or_else(|| {
            let mut servers = heapless::Vec::new();
            for &server in schedule.servers {
                // The schedule's servers come from ResolvConf, which holds as many: none is dropped.
                let _ = servers.push(server);
            }
            Why::NoAnswer {
                servers,
                tries: schedule.attempts,
                timeout_ms: schedule.timeout_ms,
            }
        }))
    }

    /// One query to one server on a fresh socket, waiting until `timeout_ms` for our answer.
    async fn try_once(
        &self,
        name: &str,
        qtype: Qtype,
        to: SocketAddr,
        timeout_ms: u64,
    ) -> Result<AnswerAddrs, Try> {
        let id = next_id();
        let mut query = [0u8; wire::QUERY_MAX_BYTES];
        let len = wire::emit_query(&mut query, id, name, qtype).map_err(Try::Name)?;
        let local: SocketAddr = match to {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = Async::<UdpSocket>::bind(local).map_err(Try::Io)?;
        // connect(2) on UDP only sets the peer: no packet, no wait. The kernel then drops datagrams
        // from other addresses and reports ICMP port unreachable as ECONNREFUSED on recv.
        socket.get_ref().connect(to).map_err(Try::Io)?;
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        let exchange = async {
            socket.send(&query[..len]).await.map_err(Try::Io)?;
            let mut buf = [0u8; ANSWER_MAX_BYTES];
            loop {
                let n = socket.recv(&mut buf).await.map_err(Try::Io)?;
                match wire::parse_answer(&buf[..n], id, name, qtype) {
                    Err(e) if e.is_foreign() => debug!("{name}: ignored a datagram from {to}: {e}"),
                    other => return other.map_err(Try::Answer),
                }
            }
        };
        let timeout = async {
            Timer::at(deadline).await;
            Err(Try::TimedOut)
        };
        smol::future::or(exchange, timeout).await
    }
}

/// Which servers a query goes to, how many rounds, and the wait per try.
#[derive(Debug, Clone, Copy)]
struct Schedule<'a> {
    servers: &'a [IpAddr],
    attempts: u32,
    timeout_ms: u64,
}

/// How one try ended, short of an answer.
#[derive(Debug)]
enum Try {
    TimedOut,
    Answer(wire::Error),
    Io(io::Error),
    Name(wire::NameError),
}

/// `host` as an IP address: IPv4, IPv6, or IPv6 in brackets as in a URL (RFC 3986 §3.2.2).
pub fn parse_literal(host: &str) -> Option<IpAddr> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    host.parse().ok()
}

/// Pairs addresses with `port`, IPv4 first, keeping the order within each family.
fn with_port(ips: &[IpAddr], port: u16) -> Addrs {
    let v4 = ips.iter().filter(|ip| ip.is_ipv4());
    let v6 = ips.iter().filter(|ip| ip.is_ipv6());
    // Callers pass at most ADDR_MAX_COUNT addresses (HOSTS_ADDR_MAX_COUNT is the same), so none is cut.
    v4.chain(v6)
        .map(|&ip| SocketAddr::new(ip, port))
        .take(ADDR_MAX_COUNT)
        .collect()
}

/// Counts queries, so two in the same nanosecond still get different IDs.
static QUERY_COUNT: AtomicU32 = AtomicU32::new(0);

/// A query ID from the clock and a counter (see the module doc on trust).
fn next_id() -> u16 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    mix_id(nanos, QUERY_COUNT.fetch_add(1, Ordering::Relaxed))
}

/// Mixes nanoseconds and a counter into 16 bits (a murmur3 finalizer: every input bit moves the
/// output). Not cryptographic.
fn mix_id(nanos: u32, count: u32) -> u16 {
    let mut x = nanos ^ count.wrapping_mul(0x9e37_79b9);
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    x = x.wrapping_mul(0xc2b2_ae35);
    x ^= x >> 16;
    (x ^ (x >> 16)) as u16
}

/// A lookup that failed, and the host it was for.
#[derive(Debug)]
pub struct Error {
    /// The host as the caller gave it.
    pub host: String,
    /// What went wrong.
    pub why: Why,
}

/// Why a lookup failed.
#[derive(Debug)]
pub enum Why {
    /// The host is not a name we can query.
    BadName(wire::NameError),
    /// resolv.conf could not be read.
    ReadConf {
        /// Its path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// resolv.conf lists no nameserver we can use (glibc would try 127.0.0.1; we say so instead).
    NoNameserver {
        /// Its path.
        path: PathBuf,
    },
    /// NXDOMAIN: the name does not exist.
    NoSuchHost {
        /// The server that said so.
        server: IpAddr,
    },
    /// The name exists but has neither A nor AAAA records.
    NoAddress {
        /// The server that answered the AAAA query.
        server: IpAddr,
    },
    /// Every try timed out.
    NoAnswer {
        /// The servers asked.
        servers: heapless::Vec<IpAddr, { conf::NAMESERVER_MAX_COUNT }>,
        /// Rounds over them.
        tries: u32,
        /// The wait for each try.
        timeout_ms: u64,
    },
    /// A server answered, but not with an answer we can use (SERVFAIL, REFUSED, truncated, broken).
    Server {
        /// The server.
        server: IpAddr,
        /// What was wrong with its answer.
        error: wire::Error,
    },
    /// A socket call failed (no route, port unreachable).
    Io {
        /// The server and port.
        server: SocketAddr,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot resolve {}: {}", self.host, self.why)
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::BadName(e) => write!(f, "{e}"),
            Why::ReadConf { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Why::NoNameserver { path } => write!(f, "no nameserver in {}", path.display()),
            Why::NoSuchHost { server } => write!(f, "no such host (NXDOMAIN from {server})"),
            Why::NoAddress { server } => {
                write!(f, "no address: {server} has no A or AAAA record for it")
            }
            Why::NoAnswer {
                servers,
                tries,
                timeout_ms,
            } => {
                write!(f, "no answer from ")?;
                for (i, s) in servers.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{s}")?;
                }
                let plural = if *tries == 1 { "try" } else { "tries" };
                write!(f, " after {tries} {plural} of ")?;
                write_duration(f, *timeout_ms)
            }
            Why::Server { server, error } => write!(f, "{server} answered: {error}"),
            Why::Io { server, source } => write!(f, "nameserver {server}: {source}"),
        }
    }
}

/// `5 s` for whole seconds (what resolv.conf can set), else `1500 ms`.
fn write_duration(f: &mut fmt::Formatter<'_>, ms: u64) -> fmt::Result {
    if ms % 1_000 == 0 {
        write!(f, "{} s", ms / 1_000)
    } else {
        write!(f, "{ms} ms")
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.why {
            Why::BadName(e) => Some(e),
            Why::ReadConf { source, .. } | Why::Io { source, .. } => Some(source),
            Why::Server { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl Error {
    /// True when a server said the name does not exist (NXDOMAIN) or has no address (NODATA), as
    /// opposed to no answer or a failing server.
    pub fn is_no_such_host(&self) -> bool {
        matches!(self.why, Why::NoSuchHost { .. } | Why::NoAddress { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        async_io::block_on(f)
    }

    #[test]
    fn literals_need_no_files() {
        let nowhere = Resolver {
            resolv_conf: PathBuf::from("/nonexistent/resolv.conf"),
            hosts: PathBuf::from("/nonexistent/hosts"),
            port: 1,
        };
        let cases: &[(&str, &str)] = &[
            ("192.0.2.1", "192.0.2.1:8080"),
            ("2001:db8::1", "[2001:db8::1]:8080"),
            ("[2001:db8::1]", "[2001:db8::1]:8080"),
            ("[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]:8080"),
        ];
        for (host, want) in cases {
            let got = block_on(nowhere.resolve(host, 8080)).unwrap();
            assert_eq!(
                got.as_slice(),
                [want.parse::<SocketAddr>().unwrap()],
                "{host}"
            );
        }
        let lo = block_on(nowhere.resolve("LocalHost.", 1)).unwrap();
        assert_eq!(
            lo.as_slice(),
            [
                "127.0.0.1:1".parse::<SocketAddr>().unwrap(),
                "[::1]:1".parse().unwrap()
            ]
        );
        let err = block_on(nowhere.resolve("dockmon.lan", 1)).unwrap_err();
        assert!(matches!(err.why, Why::ReadConf { .. }), "{err}");
        assert!(err
            .to_string()
            .starts_with("cannot resolve dockmon.lan: cannot read /nonexistent/resolv.conf: "));
    }

    #[test]
    fn literal_forms() {
        assert_eq!(parse_literal("[192.0.2.1]"), None); // brackets are for IPv6 only
        assert_eq!(parse_literal("[2001:db8::1"), None);
        assert_eq!(parse_literal("2001:db8::1]"), None);
        assert_eq!(parse_literal("fe80::1%eth0"), None);
        assert_eq!(parse_literal("dockmon"), None);
        assert_eq!(parse_literal("::1"), Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    }

    #[test]
    fn bad_names_fail_before_any_file_is_read() {
        let r = Resolver {
            resolv_conf: PathBuf::from("/nonexistent"),
            hosts: PathBuf::from("/nonexistent"),
            port: 1,
        };
        let err = block_on(r.resolve("dock mon", 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot resolve dock mon: host name has ' '; only letters, digits, '-' and '_' are allowed"
        );
        assert!(matches!(
            err.why,
            Why::BadName(wire::NameError::BadChar(' '))
        ));
    }

    #[test]
    fn ipv4_comes_first_and_order_is_kept() {
        let ips: Vec<IpAddr> = ["2001:db8::1", "192.0.2.2", "2001:db8::2", "192.0.2.1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let got: Vec<String> = with_port(&ips, 9).iter().map(|a| a.to_string()).collect();
        assert_eq!(
            got,
            [
                "192.0.2.2:9",
                "192.0.2.1:9",
                "[2001:db8::1]:9",
                "[2001:db8::2]:9"
            ]
        );
    }

    #[test]
    fn ids_differ_for_the_same_clock_reading() {
        let ids: std::collections::HashSet<u16> =
            (0..1_000).map(|n| mix_id(123_456_789, n)).collect();
        assert!(ids.len() > 980, "{} distinct of 1000", ids.len());
        assert_ne!(mix_id(0, 0), mix_id(1, 0));
    }

    #[test]
    fn error_texts_name_the_host_and_the_server() {
        let e = |why| {
            Error {
                host: "dockmon.lan".into(),
                why,
            }
            .to_string()
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            e(Why::NoSuchHost {
                server: ip("192.168.1.1")
            }),
            "cannot resolve dockmon.lan: no such host (NXDOMAIN from 192.168.1.1)"
        );
        let mut servers = heapless::Vec::new();
        servers.push(ip("127.0.0.11")).unwrap();
        assert_eq!(
            e(Why::NoAnswer {
                servers: servers.clone(),
                tries: 2,
                timeout_ms: 5_000
            }),
            "cannot resolve dockmon.lan: no answer from 127.0.0.11 after 2 tries of 5 s"
        );
        servers.push(ip("2001:db8::53")).unwrap();
        assert_eq!(
            e(Why::NoAnswer {
                servers,
                tries: 1,
                timeout_ms: 1_500
            }),
            "cannot resolve dockmon.lan: no answer from 127.0.0.11, 2001:db8::53 after 1 try of 1500 ms"
        );
        assert_eq!(
            e(Why::NoNameserver {
                path: RESOLV_CONF_PATH.into()
            }),
            "cannot resolve dockmon.lan: no nameserver in /etc/resolv.conf"
        );
        assert_eq!(
            e(Why::Server {
                server: ip("192.168.1.1"),
                error: wire::Error::ServerFailure
            }),
            "cannot resolve dockmon.lan: 192.168.1.1 answered: server failure (SERVFAIL)"
        );
        assert_eq!(
            e(Why::NoAddress {
                server: ip("192.168.1.1")
            }),
            "cannot resolve dockmon.lan: no address: 192.168.1.1 has no A or AAAA record for it"
        );
    }
}
