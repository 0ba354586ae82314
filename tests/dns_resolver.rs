//! `dns::Resolver` against a scripted fake DNS server on the loopback interface.
//!
//! The fake (a `std::net::UdpSocket` in a thread) is written independently of `dns::wire`: it reads
//! the question by hand and answers by the query's first label: `one`, `dual`, `v6only`, `nothing`,
//! `alias`, `nx`, `servfail`, `refused`, `tc`, `garbage`, `garbage-then-answer`, `wrongid`,
//! `wrongid-then-answer`, `otherq-then-answer`, `spoof`, `spoof-then-answer`, `broken`, `silent`,
//! `aaaa-silent`, `second-try`, `mixedcase`. It logs every query it gets. resolv.conf and hosts are
//! temp files; the resolver's port points at the fake. Timeouts come from `options timeout:1`, the
//! shortest resolv.conf can say, so a silence costs one second. Every test runs under a watchdog.
use dockmon_agent::dns::{wire, Resolver, Why};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Runs `test` in a thread and fails if it takes longer than `limit`, so a hang cannot stall CI.
fn watchdog<T: Send + 'static>(limit: Duration, test: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(test)));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("test ran past its {limit:?} watchdog"),
    }
}

/// A query as the fake server sees it.
struct Query {
    id: u16,
    first_label: String,
    name: String,
    qtype: u16,
    /// Name, QTYPE and QCLASS as received.
    question: Vec<u8>,
}

fn parse_query(b: &[u8]) -> Option<Query> {
    let id = u16::from_be_bytes([*b.first()?, *b.get(1)?]);
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let n = *b.get(at)? as usize;
        at += 1;
        if n == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(b.get(at..at + n)?).into_owned());
        at += n;
    }
    let qtype = u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]);
    Some(Query {
        id,
        first_label: labels.first()?.to_ascii_lowercase(),
        name: labels.join("."),
        qtype,
        question: b.get(12..at + 4)?.to_vec(),
    })
}

const A: u16 = 1;
const AAAA: u16 = 28;
const CNAME: u16 = 5;
/// The question name's offset, for compressed owners.
const QNAME: [u8; 2] = [0xc0, 12];

/// A header (QR, RD, RA and `rcode`, plus `extra` flags), the question, then `records`.
fn reply(q: &Query, extra: u16, rcode: u16, records: &[Vec<u8>]) -> Vec<u8> {
    let mut m = q.id.to_be_bytes().to_vec();
    m.extend((0x8180 | extra | rcode).to_be_bytes());
    m.extend(1u16.to_be_bytes());
    m.extend((records.len() as u16).to_be_bytes());
    m.extend([0, 0, 0, 0]);
    m.extend(&q.question);
    for r in records {
        m.extend(r);
    }
    m
}

/// A record: owner bytes, type, class IN, TTL 30, RDATA.
fn rr(owner: &[u8], rtype: u16, rdata: &[u8]) -> Vec<u8> {
    let mut r = owner.to_vec();
    r.extend(rtype.to_be_bytes());
    r.extend([0, 1, 0, 0, 0, 30]);
    r.extend((rdata.len() as u16).to_be_bytes());
    r.extend(rdata);
    r
}

fn a(last: u8) -> Vec<u8> {
    rr(&QNAME, A, &[192, 0, 2, last])
}

/// An A answer 192.0.2.`last` to an A query, NODATA to any other.
fn a_or_nodata(q: &Query, last: u8) -> Vec<u8> {
    let records = if q.qtype == A { vec![a(last)] } else { vec![] };
    reply(q, 0, 0, &records)
}

fn aaaa(ip: &str) -> Vec<u8> {
    rr(&QNAME, AAAA, &ip.parse::<Ipv6Addr>().unwrap().octets())
}

/// How a fake nameserver answers.
#[derive(Clone, Copy)]
enum Mode {
    /// By the query's first label ([`script`]).
    Script,
    /// Never.
    Silent,
    /// SERVFAIL to everything.
    ServFail,
}

/// A fake nameserver: answers by script until dropped, logging `(name, qtype)` of every query.
struct FakeDns {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<(String, u16)>>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeDns {
    /// Starts on `ip:port` (port 0: any), answering as `mode` says.
    fn start(addr: SocketAddr, mode: Mode) -> FakeDns {
        let socket = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("fake DNS bind {addr}: {e}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stop2, log2) = (stop.clone(), log.clone());
        let thread = std::thread::spawn(move || {
            let mut seen: std::collections::HashMap<String, usize> = Default::default();
            let mut buf = [0u8; 512];
            while !stop2.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Some(q) = parse_query(&buf[..n]) else {
                    continue;
                };
                log2.lock().unwrap().push((q.name.clone(), q.qtype));
                let count = seen.entry(q.name.clone()).or_default();
                *count += 1;
                let datagrams = match mode {
                    Mode::Script => script(&q, *count, &socket, peer),
                    Mode::Silent => vec![],
                    Mode::ServFail => vec![reply(&q, 0, 2, &[])],
                };
                for datagram in datagrams {
                    let _ = socket.send_to(&datagram, peer);
                }
            }
        });
        FakeDns {
            addr,
            stop,
            log,
            thread: Some(thread),
        }
    }

    fn queries(&self) -> Vec<(String, u16)> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The datagrams the fake sends for `q`, the `count`th query for this name.
fn script(q: &Query, count: usize, socket: &UdpSocket, peer: SocketAddr) -> Vec<Vec<u8>> {
    let (is_a, id) = (q.qtype == A, q.id);
    let other_id = (id ^ 0x5555).to_be_bytes();
    match q.first_label.as_str() {
        "one" if is_a => vec![reply(q, 0, 0, &[a(1)])],
        "one" => vec![reply(q, 0, 0, &[])],
        "dual" if is_a => vec![reply(q, 0, 0, &[a(1), a(2)])],
        "dual" => vec![reply(q, 0, 0, &[aaaa("2001:db8::1")])],
        "v6only" if is_a => vec![reply(q, 0, 0, &[])],
        "v6only" => vec![reply(q, 0, 0, &[aaaa("2001:db8::6")])],
        "nothing" => vec![reply(q, 0, 0, &[])],
        "alias" => {
            // alias.test CNAME target.test; the A record's owner points into the CNAME data.
            let cname = rr(&QNAME, CNAME, b"\x06target\x04test\x00");
            let target = (12 + q.question.len() + 2 + 10) as u8;
            let mut records = vec![cname];
            if is_a {
                records.push(rr(&[0xc0, target], A, &[192, 0, 2, 7]));
            }
            vec![reply(q, 0, 0, &records)]
        }
        "nx" => vec![reply(q, 0, 3, &[])],
        "servfail" => vec![reply(q, 0, 2, &[])],
        "refused" => {
            // REFUSED with no question, as some servers send it.
            let mut m = id.to_be_bytes().to_vec();
            m.extend([0x81, 0x85, 0, 0, 0, 0, 0, 0, 0, 0]);
            vec![m]
        }
        "tc" => vec![reply(q, 0x0200, 0, &[])],
        "garbage" | "garbage-then-answer" => {
            let mut junk = other_id.to_vec();
            junk.extend(b"\x81\x80 not a dns message at all, just bytes");
            let mut out = vec![b"\x00\x01\x02".to_vec(), junk];
            if q.first_label == "garbage-then-answer" {
                out.push(a_or_nodata(q, 8));
            }
            out
        }
        "wrongid" | "wrongid-then-answer" => {
            let mut wrong = reply(q, 0, 0, &[a(66)]);
            wrong[..2].copy_from_slice(&other_id);
            let mut out = vec![wrong];
            if q.first_label == "wrongid-then-answer" {
                out.push(a_or_nodata(q, 9));
            }
            out
        }
        "otherq-then-answer" => {
            // Our id, but the question is for another name.
            let mut other = reply(q, 0, 0, &[a(66)]);
            other[13] = b'x'; // the first letter: "xtherq-then-answer"
            vec![other, a_or_nodata(q, 11)]
        }
        "spoof" | "spoof-then-answer" => {
            // A correct answer, but from another port of the server's address.
            let forger = UdpSocket::bind((socket.local_addr().unwrap().ip(), 0)).unwrap();
            let _ = forger.send_to(&reply(q, 0, 0, &[a(66)]), peer);
            std::thread::sleep(Duration::from_millis(20));
            if q.first_label == "spoof-then-answer" {
                vec![a_or_nodata(q, 10)]
            } else {
                vec![]
            }
        }
        "broken" => {
            let mut m = reply(q, 0, 0, &[a(1)]);
            m.truncate(m.len() - 6);
            vec![m]
        }
        "silent" => vec![],
        "aaaa-silent" if is_a => vec![reply(q, 0, 0, &[a(1)])],
        "aaaa-silent" => vec![],
        "second-try" if count < 2 => vec![],
        "second-try" => vec![a_or_nodata(q, 2)],
        "mixedcase" => {
            let mut m = a_or_nodata(q, 3);
            m[12..12 + q.question.len() - 4].make_ascii_uppercase();
            vec![m]
        }
        _ => vec![reply(q, 0, 3, &[])],
    }
}

/// Temp resolv.conf and hosts, removed on drop.
struct Files {
    dir: PathBuf,
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A resolver reading `resolv_conf` and `hosts` from a fresh temp folder, asking `port`.
fn resolver(resolv_conf: &str, hosts: &str, port: u16) -> (Files, Resolver) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dockmon-dns-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("resolv.conf"), resolv_conf).unwrap();
    std::fs::write(dir.join("hosts"), hosts).unwrap();
    let r = Resolver {
        resolv_conf: dir.join("resolv.conf"),
        hosts: dir.join("hosts"),
        port,
    };
    (Files { dir }, r)
}

/// One fake on 127.0.0.1 and a resolver using it with `options`.
fn setup(options: &str) -> (FakeDns, Files, Resolver) {
    let dns = FakeDns::start("127.0.0.1:0".parse().unwrap(), Mode::Script);
    let conf = format!("nameserver 127.0.0.1\noptions {options}\n");
    let (files, r) = resolver(&conf, "", dns.addr.port());
    (dns, files, r)
}

fn lookup(r: &Resolver, host: &str) -> Result<Vec<String>, dockmon_agent::dns::Error> {
    async_io::block_on(r.resolve(host, 7070)).map(|a| a.iter().map(|s| s.to_string()).collect())
}

const FAST: &str = "timeout:1 attempts:1";
const LIMIT: Duration = Duration::from_secs(15);

#[test]
fn a_then_aaaa_ipv4_first() {
    watchdog(LIMIT, || {
        let (dns, _f, r) = setup(FAST);
        let got = lookup(&r, "dual.test").unwrap();
        assert_eq!(
            got,
            ["192.0.2.1:7070", "192.0.2.2:7070", "[2001:db8::1]:7070"]
        );
        assert_eq!(
            dns.queries(),
            [
                ("dual.test".to_string(), A),
                ("dual.test".to_string(), AAAA)
            ]
        );
        assert_eq!(lookup(&r, "one.test.").unwrap(), ["192.0.2.1:7070"]);
    });
}

#[test]
fn ipv6_only_name_and_name_without_address() {
    watchdog(LIMIT, || {
        let (_dns, _f, r) = setup(FAST);
        assert_eq!(lookup(&r, "v6only.test").unwrap(), ["[2001:db8::6]:7070"]);
        let err = lookup(&r, "nothing.test").unwrap_err();
        assert!(matches!(err.why, Why::NoAddress { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "cannot resolve nothing.test: no address: 127.0.0.1 has no A or AAAA record for it"
        );
    });
}

#[test]
fn cname_is_followed() {
    watchdog(LIMIT, || {
        let (_dns, _f, r) = setup(FAST);
        assert_eq!(lookup(&r, "alias.test").unwrap(), ["192.0.2.7:7070"]);
    });
}

#[test]
fn nxdomain_is_no_such_host_and_ends_the_lookup() {
    watchdog(LIMIT, || {
        // Two servers on one port: 127.0.0.2 first, then 127.0.0.1.
        let second = FakeDns::start("127.0.0.1:0".parse().unwrap(), Mode::Script);
        let first = FakeDns::start(
            SocketAddr::new([127, 0, 0, 2].into(), second.addr.port()),
            Mode::Script,
        );
        let conf = format!("nameserver 127.0.0.2\nnameserver 127.0.0.1\noptions {FAST}\n");
        let (_f, r) = resolver(&conf, "", second.addr.port());
        let err = lookup(&r, "nx.dockmon.lan").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot resolve nx.dockmon.lan: no such host (NXDOMAIN from 127.0.0.2)"
        );
        assert!(err.is_no_such_host());
        assert_eq!(first.queries().len(), 1);
        assert!(second.queries().is_empty(), "{:?}", second.queries());
    });
}

#[test]
fn servfail_moves_on_to_the_next_server() {
    watchdog(LIMIT, || {
        let second = FakeDns::start("127.0.0.1:0".parse().unwrap(), Mode::Script);
        let first = FakeDns::start(
            SocketAddr::new([127, 0, 0, 2].into(), second.addr.port()),
            Mode::ServFail,
        );
        let conf = format!("nameserver 127.0.0.2\nnameserver 127.0.0.1\noptions {FAST}\n");
        let (_f, r) = resolver(&conf, "", second.addr.port());
        assert_eq!(lookup(&r, "one.test").unwrap(), ["192.0.2.1:7070"]);
        assert_eq!(first.queries(), [("one.test".to_string(), A)]);
        // When every server fails, the error is the last one's.
        let err = lookup(&r, "servfail.test").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot resolve servfail.test: 127.0.0.1 answered: server failure (SERVFAIL)"
        );
        let servfail = |dns: &FakeDns| {
            dns.queries()
                .iter()
                .filter(|(n, _)| n == "servfail.test")
                .count()
        };
        assert_eq!((servfail(&first), servfail(&second)), (1, 1));
    });
}

#[test]
fn silent_first_server_then_the_second_answers() {
    watchdog(LIMIT, || {
        let good = FakeDns::start("127.0.0.1:0".parse().unwrap(), Mode::Script);
        let mute = FakeDns::start(
            SocketAddr::new([127, 0, 0, 2].into(), good.addr.port()),
            Mode::Silent,
        );
        let conf = format!("nameserver 127.0.0.2\nnameserver 127.0.0.1\noptions {FAST}\n");
        let (_f, r) = resolver(&conf, "", good.addr.port());
        let start = Instant::now();
        assert_eq!(lookup(&r, "one.test").unwrap(), ["192.0.2.1:7070"]);
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(3),
            "{took:?}"
        );
        assert_eq!(mute.queries(), [("one.test".to_string(), A)]);
        // AAAA went only to the server that answered A.
        assert_eq!(
            good.queries(),
            [("one.test".to_string(), A), ("one.test".to_string(), AAAA)]
        );
    });
}

#[test]
fn refused_without_question_and_truncated_and_broken_answers_are_errors() {
    watchdog(LIMIT, || {
        let (_dns, _f, r) = setup(FAST);
        let cases = [
            ("refused.test", "127.0.0.1 answered: error REFUSED (RCODE 5)"),
            (
                "tc.test",
                "127.0.0.1 answered: truncated answer (TC bit); this resolver does not retry over TCP",
            ),
            (
                "broken.test",
                "127.0.0.1 answered: message ends inside the answer section",
            ),
        ];
        for (host, want) in cases {
            let err = lookup(&r, host).unwrap_err();
            assert!(matches!(err.why, Why::Server { .. }), "{err}");
            assert_eq!(err.to_string(), format!("cannot resolve {host}: {want}"));
        }
        let tc = lookup(&r, "tc.test").unwrap_err();
        assert!(matches!(
            tc.why,
            Why::Server {
                error: wire::Error::Truncated,
                ..
            }
        ));
    });
}

#[test]
fn silence_ends_in_a_timeout_after_every_try() {
    watchdog(LIMIT, || {
        let (dns, _f, r) = setup("timeout:1 attempts:2");
        let start = Instant::now();
        let err = lookup(&r, "silent.test").unwrap_err();
        let took = start.elapsed();
        assert_eq!(
            err.to_string(),
            "cannot resolve silent.test: no answer from 127.0.0.1 after 2 tries of 1 s"
        );
        assert!(!err.is_no_such_host());
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
            "{took:?}"
        );
        // Two A tries; AAAA is not asked of a server that never answers.
        assert_eq!(dns.queries(), vec![("silent.test".to_string(), A); 2]);
    });
}

#[test]
fn a_second_try_gets_the_answer() {
    watchdog(LIMIT, || {
        let (dns, _f, r) = setup("timeout:1 attempts:2");
        assert_eq!(lookup(&r, "second-try.test").unwrap(), ["192.0.2.2:7070"]);
        let a_queries = dns.queries().iter().filter(|(_, t)| *t == A).count();
        assert_eq!(a_queries, 2);
    });
}

#[test]
fn aaaa_silence_after_an_a_answer_costs_one_try_and_keeps_ipv4() {
    watchdog(LIMIT, || {
        let (dns, _f, r) = setup("timeout:1 attempts:3");
        let start = Instant::now();
        assert_eq!(lookup(&r, "aaaa-silent.test").unwrap(), ["192.0.2.1:7070"]);
        let took = start.elapsed();
        assert!(took < Duration::from_millis(1900), "{took:?}");
        let aaaa_queries = dns.queries().iter().filter(|(_, t)| *t == AAAA).count();
        assert_eq!(aaaa_queries, 1);
    });
}

#[test]
fn garbage_wrong_ids_other_questions_and_other_ports_are_ignored() {
    watchdog(LIMIT, || {
        let (_dns, _f, r) = setup(FAST);
        let cases = [
            ("garbage-then-answer.test", "192.0.2.8:7070"),
            ("wrongid-then-answer.test", "192.0.2.9:7070"),
            ("spoof-then-answer.test", "192.0.2.10:7070"),
            ("otherq-then-answer.test", "192.0.2.11:7070"),
            ("MixedCase.test", "192.0.2.3:7070"),
        ];
        for (host, want) in cases {
            assert_eq!(lookup(&r, host).unwrap(), [want], "{host}");
        }
    });
}

#[test]
fn only_ignored_datagrams_end_in_a_timeout() {
    watchdog(LIMIT, || {
        let (_dns, _f, r) = setup(FAST);
        for host in ["garbage.test", "wrongid.test", "spoof.test"] {
            let err = lookup(&r, host).unwrap_err();
            assert!(matches!(err.why, Why::NoAnswer { tries: 1, .. }), "{err}");
        }
    });
}

#[test]
fn closed_port_is_reported_at_once() {
    watchdog(LIMIT, || {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (_f, r) = resolver(
            "nameserver 127.0.0.1\noptions timeout:5 attempts:1\n",
            "",
            port,
        );
        let start = Instant::now();
        let err = lookup(&r, "one.test").unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        assert!(matches!(err.why, Why::Io { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "cannot resolve one.test: nameserver 127.0.0.1:{port}: "
            )),
            "{text}"
        );
    });
}

#[test]
fn ipv6_nameserver() {
    watchdog(LIMIT, || {
        // Needs an IPv6 loopback (`::1`); the test fails, not skips, without one.
        let dns = FakeDns::start("[::1]:0".parse().unwrap(), Mode::Script);
        let conf = format!("nameserver ::1\noptions {FAST}\n");
        let (_f, r) = resolver(&conf, "", dns.addr.port());
        assert_eq!(
            lookup(&r, "dual.test").unwrap(),
            ["192.0.2.1:7070", "192.0.2.2:7070", "[2001:db8::1]:7070"]
        );
    });
}

#[test]
fn hosts_file_answers_before_dns() {
    watchdog(LIMIT, || {
        let dns = FakeDns::start("127.0.0.1:0".parse().unwrap(), Mode::Script);
        let hosts =
            "127.0.0.1 localhost\n2001:db8::50 dockmon.lan\n192.0.2.50 DockMon.lan dockmon\n";
        let conf = format!("nameserver 127.0.0.1\noptions {FAST}\n");
        let (_f, r) = resolver(&conf, hosts, dns.addr.port());
        assert_eq!(
            lookup(&r, "dockmon.LAN").unwrap(),
            ["192.0.2.50:7070", "[2001:db8::50]:7070"]
        );
        assert_eq!(lookup(&r, "dockmon").unwrap(), ["192.0.2.50:7070"]);
        assert_eq!(
            lookup(&r, "localhost").unwrap(),
            ["127.0.0.1:7070", "[::1]:7070"]
        );
        assert_eq!(lookup(&r, "[::1]").unwrap(), ["[::1]:7070"]);
        assert!(dns.queries().is_empty(), "{:?}", dns.queries());
        // Not in the file: DNS is asked.
        assert_eq!(lookup(&r, "one.test").unwrap(), ["192.0.2.1:7070"]);
    });
}

#[test]
fn no_nameserver_is_an_error_naming_the_file() {
    watchdog(LIMIT, || {
        let (files, r) = resolver("search lan\noptions ndots:2\n", "", 1);
        let err = lookup(&r, "dockmon.lan").unwrap_err();
        assert!(matches!(err.why, Why::NoNameserver { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot resolve dockmon.lan: no nameserver in {}",
                files.dir.join("resolv.conf").display()
            )
        );
    });
}

#[test]
fn system_resolver_takes_literals_without_any_query() {
    watchdog(LIMIT, || {
        let r = Resolver::system();
        assert_eq!(r.port, 53);
        assert_eq!(lookup(&r, "192.0.2.1").unwrap(), ["192.0.2.1:7070"]);
        let addrs = async_io::block_on(dockmon_agent::dns::resolve("[2001:db8::1]", 443)).unwrap();
        assert_eq!(
            addrs.as_slice(),
            [SocketAddr::new(
                IpAddr::V6("2001:db8::1".parse().unwrap()),
                443
            )]
        );
    });
}
