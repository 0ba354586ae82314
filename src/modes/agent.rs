//! The DockMon agent: connect, register, report and obey, reconnect; until SIGTERM or SIGINT.
//!
//! One executor thread. Per connection: the main loop races the socket, the outbox, the keepalive
//! timer and the shutdown signal; an events task forwards Docker events, a stats task samples running
//! containers, a host stats task reads /proc; each request frame gets its own task (at most
//! `COMMANDS_IN_FLIGHT_MAX`), so a slow `stop` never holds up an `inspect`. Everything written goes
//! through the outbox (replies, then events, then stats). When the connection drops, its tasks are
//! dropped (cancelled) and the agent reconnects at once; failed attempts back off with jitter.
use super::Error;
use crate::config::Config;
use crate::docker::types::Event;
use crate::docker::Client;
use crate::dockmon::command;
use crate::dockmon::context::{Context, Link, Sink};
use crate::dockmon::msg::{self, ContainerEvent, ContainerStats, Incoming};
use crate::dockmon::register::{self, Dropped, Registration};
use crate::dockmon::session::{Backoff, Keep, Keepalive};
use crate::outbox::{Class, Outbox, COMMANDS_IN_FLIGHT_MAX};
use crate::sampler::driver::{Change, Changes, Driver, Report};
use crate::sampler::source::Source;
use crate::ws::conn::{Conn, Incoming as WsIncoming, Transport};
use crate::{identity, rfc3339, tls};
use async_io::{Async, Timer};
use serde_json::value::RawValue;
use smol::channel::{Receiver, Sender};
use smol::lock::Semaphore;
use smol::LocalExecutor;
use std::cell::RefCell;
use std::net::TcpStream;
use std::ops::ControlFlow;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connecting (TCP, TLS and the upgrade) may take this long (the Go agent's dialer: 45 s).
pub const CONNECT_TIMEOUT_MS: u64 = 45_000;
/// The register frame's answer must come within this (spec 2.7).
pub const AUTH_REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Every frame write must finish within this (spec 2.2: 10 s write deadline).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Host stats cadence (spec 4.4).
pub const HOST_STATS_INTERVAL: Duration = Duration::from_secs(2);

/// State shared by the tasks of the agent.
struct Shared {
    client: Rc<Client>,
    board: crate::board::Profile,
    source: Rc<Source>,
    changes: Changes,
    outbox: RefCell<Outbox>,
    wake: Sender<()>,
    /// Closed (dropped) after each batch the writer sends: wakes producers waiting for room.
    drained: RefCell<Option<(Sender<()>, Receiver<()>)>>,
    link: Rc<Link>,
    commands: Semaphore,
}

impl Shared {
    fn send(&self, class: Class, frame: Vec<u8>) {
        self.outbox.borrow_mut().push(class, frame);
        // A full channel already holds a wake-up: nothing is lost.
        let _ = self.wake.try_send(());
    }

    /// Wakes everyone waiting in [`Sink::drained`].
    fn wrote(&self) {
        self.drained.borrow_mut().take();
    }
}

impl Sink for Shared {
    fn send(&self, class: Class, frame: Vec<u8>) {
        Shared::send(self, class, frame);
    }

    fn buffer(&self) -> Vec<u8> {
        self.outbox.borrow_mut().buffer()
    }

    fn queued(&self, class: Class) -> usize {
        let (replies, events, stats) = self.outbox.borrow().len();
        match class {
            Class::Reply => replies,
            Class::Event => events,
            Class::Stats => stats,
        }
    }

    fn drained(&self) -> Receiver<()> {
        if self.outbox.borrow().is_empty() {
            let (_, rx) = smol::channel::bounded(1);
            return rx;
        }
        let mut slot = self.drained.borrow_mut();
        slot.get_or_insert_with(|| smol::channel::bounded(1))
            .1
            .clone()
    }
}

/// Why a connection ended.
enum End {
    /// SIGTERM or SIGINT: exit 0.
    Shutdown,
    /// The connection failed or was closed; reconnect now.
    Dropped(String),
}

/// Why an attempt to connect and register failed.
enum Attempt {
    /// Try again after the backoff delay.
    Failed(String),
    /// The backend refused an optional key: drop it and retry at once.
    Refused(&'static str),
}

/// Runs the agent until a signal. Returns an error only for what no retry can fix.
pub async fn run(ex: Rc<LocalExecutor<'static>>, cfg: Config) -> Result<(), Error> {
    let cfg = Rc::new(cfg);
    let mut signals =
        async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int])
            .map_err(Error::Output)?;
    let tls_config = if cfg.ws_url.secure {
        let (config, added) =
            tls::client_config(cfg.ssl_cert_file.as_deref(), cfg.insecure_skip_verify)
                .map_err(|e| Error::Config(e.to_string()))?;
        if cfg.insecure_skip_verify {
            log::warn!(
                "INSECURE_SKIP_VERIFY=true: the DockMon server's certificate is not verified"
            );
        } else if added > 0 {
            log::info!("trusting {added} extra certificate(s) from SSL_CERT_FILE");
        }
        Some(config)
    } else {
        None
    };

    let selected = super::board()?;
    let board = selected.profile.clone();
    log::info!(
        "board profile {} ({}): stats every {} ms, {} calls/s, {} in flight, {} containers",
        board.name,
        selected.detection.reason,
        board.stats_interval_ms,
        board.stats_calls_per_sec,
        board.stats_in_flight,
        board.containers_max
    );
    let (source, why) = super::choose_source(cfg.stats_source)?;
    log::info!("stats source: {} ({why})", source.name());
    let client = Rc::new(connect_docker_patiently(&cfg, &mut signals).await?);
    log::info!(
        "docker at {} (API {})",
        client.endpoint(),
        client.api_version()
    );
    let (wake_tx, wake_rx) = smol::channel::bounded(1);
    let shared = Rc::new(Shared {
        changes: Changes::new(board.containers_max),
        client,
        outbox: RefCell::new(Outbox::with_capacity(
            board.outbox_events_max,
            board.outbox_stats_max,
        )),
        board,
        source,
        wake: wake_tx,
        drained: RefCell::new(None),
        link: Rc::new(Link::default()),
        commands: Semaphore::new(COMMANDS_IN_FLIGHT_MAX),
    });
    let ctx = Rc::new(Context {
        client: shared.client.clone(),
        config: cfg.clone(),
        ex: ex.clone(),
        sink: shared.clone(),
        link: shared.link.clone(),
    });
    let _health = super::health::serve(&ex, &cfg.data_path, shared.link.clone());
    #[cfg(feature = "count-alloc")]
    ex.spawn(crate::alloc::report_on_sigusr1()).detach();
    let mode = identity::detect_mode(
        std::path::Path::new("/proc"),
        std::env::var("HOSTNAME").ok().as_deref(),
    );
    log::info!("{mode}");

    let mut token: String = match (&cfg.permanent_token, &cfg.registration_token) {
        (Some(t), _) => t.expose().to_string(),
        (None, Some(t)) => t.expose().to_string(),
        // config::from_env refuses a configuration without either.
        (None, None) => return Err(Error::Config("no token".into())),
    };
    let mut using_permanent = cfg.permanent_token.is_some();
    let mut backoff = Backoff::new(cfg.reconnect_initial, cfg.reconnect_max);
    let mut dropped = Dropped::new();
    let mut last_failure = String::new();
    loop {
        let attempt = async {
            let reg = gather(&shared.client, &cfg, &mode).await;
            connect_and_register(&cfg, tls_config.clone(), &reg, &token, &dropped).await
        };
        let shutdown = async {
            signals_next(&mut signals).await;
            None
        };
        let result = match smol::future::or(async { Some(attempt.await) }, shutdown).await {
            None => {
                log::info!("signal received before the connection was up; exiting");
                return Ok(());
            }
            Some(r) => r,
        };
        match result {
            Ok((ws, permanent)) => {
                backoff.reset();
                last_failure.clear();
                if let Some(p) = permanent {
                    if p != token || !using_permanent {
                        token = p;
                        using_permanent = true;
                    }
                    persist_token(&cfg, &token);
                }
                shared.link.up();
                let end = serve(&ex, &shared, &ctx, ws, &wake_rx, &mut signals, &mode).await;
                shared.link.down();
                shared.outbox.borrow_mut().drop_stats();
                match end {
                    End::Shutdown => {
                        log::info!("shut down cleanly");
                        return Ok(());
                    }
                    End::Dropped(why) => {
                        log::warn!("connection to DockMon lost: {why}; reconnecting");
                    }
                }
            }
            Err(Attempt::Refused(key)) => {
                log::info!("this DockMon server does not know the registration key `{key}`; registering without it");
                if dropped.push(key).is_err() {
                    return Err(Error::Config(
                        "the server refuses every optional key".into(),
                    ));
                }
            }
            Err(Attempt::Failed(why)) => {
                if why != last_failure {
                    log::error!("{why}");
                    if using_permanent && why.contains("Invalid registration token") {
                        log::error!(
                            "the permanent token in {} is no longer known to DockMon (was the host deleted?); delete that file and set a new REGISTRATION_TOKEN",
                            cfg.token_file.display()
                        );
                    }
                    last_failure = why;
                }
                let delay = backoff.next_delay(jitter());
                log::info!("retrying in {:.1} s", delay.as_secs_f64());
                let sleep = async {
                    Timer::after(delay).await;
                    false
                };
                let stop = async {
                    signals_next(&mut signals).await;
                    true
                };
                if smol::future::or(sleep, stop).await {
                    return Ok(());
                }
            }
        }
    }
}

async fn signals_next(signals: &mut async_signal::Signals) {
    use smol::stream::StreamExt;
    let _ = signals.next().await;
}

/// Connects to Docker, retrying while it is not up yet (an agent that starts before dockerd should
/// wait, not crash-loop). A configuration error (tcp://) ends the agent.
async fn connect_docker_patiently(
    cfg: &Config,
    signals: &mut async_signal::Signals,
) -> Result<Client, Error> {
    let endpoint = crate::docker::endpoint::select(
        cfg.docker_host.as_deref(),
        crate::docker::endpoint::is_socket,
    )
    .map_err(|e| Error::Config(e.to_string()))?;
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    let mut logged = false;
    loop {
        match Client::connect(endpoint.clone()).await {
            Ok(c) => return Ok(c),
            Err(e) => {
                if !logged {
                    log::error!("{e}; retrying");
                    logged = true;
                }
                let sleep = async {
                    Timer::after(backoff.next_delay(jitter())).await;
                    false
                };
                let stop = async {
                    signals_next(signals).await;
                    true
                };
                if smol::future::or(sleep, stop).await {
                    return Err(Error::Docker(e));
                }
            }
        }
    }
}

/// Host stats are on in systemd mode and, in a container, with the host's /proc at /host/proc (the
/// Go agent's rule, spec 1.3).
fn host_sampler(mode: &identity::Mode) -> Option<crate::host::HostStats> {
    let paths = crate::host::HostPaths::detect(std::path::Path::new("/"));
    if mode.container_id().is_some() && !paths.is_host_mount() {
        log::info!(
            "host stats off: in a container without /host/proc (mount -v /proc:/host/proc:ro)"
        );
        return None;
    }
    log::info!("host stats: {paths}");
    Some(crate::host::HostStats::new(paths))
}

/// The registration facts, read fresh for each attempt (a Docker upgrade shows up on reconnect).
async fn gather(client: &Client, cfg: &Config, mode: &identity::Mode) -> Registration {
    let mut buf = Vec::new();
    let (engine_id, daemon_name, facts_info) = match client.info(&mut buf).await {
        Ok(i) => (
            i.id.to_string(),
            i.name.to_string(),
            Some((
                i.os_type.to_string(),
                i.operating_system.to_string(),
                i.kernel_version.to_string(),
                i.mem_total,
                i.ncpu,
            )),
        ),
        Err(e) => {
            log::warn!("registration facts: {e}");
            (String::new(), String::new(), None)
        }
    };
    let docker_version = client
        .version(&mut buf)
        .await
        .ok()
        .map(|v| v.version.to_string());
    let daemon_started_at = client.daemon_started_at(&mut buf).await.unwrap_or_default();
    let facts = match (facts_info, docker_version) {
        (
            Some((os_type, os_version, kernel_version, total_memory, num_cpus)),
            Some(docker_version),
        ) => Some(crate::dockmon::register::Facts {
            os_type,
            os_version,
            kernel_version,
            docker_version,
            daemon_started_at,
            total_memory,
            num_cpus,
        }),
        _ => None,
    };
    let proc_dir = std::path::Path::new("/proc");
    let os_hostname = identity::read_os_hostname(proc_dir);
    let (hostname, source) = identity::choose_hostname(
        cfg.agent_name.as_deref(),
        Some(daemon_name.as_str()),
        os_hostname.as_deref(),
        &engine_id,
    );
    let host_ips = match mode {
        identity::Mode::Systemd => {
            identity::systemd_host_ips(proc_dir, std::path::Path::new("/sys"))
        }
        identity::Mode::Container { .. } => {
            let subnets = client.network_subnets(&mut buf).await.unwrap_or_default();
            identity::container_host_ips(std::path::Path::new("/host/proc"), &subnets)
        }
    };
    Registration {
        engine_id,
        hostname: (hostname.to_string(), source.as_str()),
        version: crate::VERSION.to_string(),
        proto_version: cfg.proto_version.clone(),
        force_unique: cfg.force_unique_registration,
        agent_os: identity::agent_os(),
        agent_arch: identity::agent_arch(),
        facts,
        host_ips: host_ips.iter().map(|ip| ip.to_string()).collect(),
    }
}

async fn connect_and_register(
    cfg: &Config,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    reg: &Registration,
    token: &str,
    dropped: &Dropped,
) -> Result<(Conn<Transport>, Option<String>), Attempt> {
    let url = &cfg.ws_url;
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        Attempt::Failed(format!("cannot connect to DockMon at {url}: {what}: {e}"))
    };
    let transport = open_transport(url, tls_config)
        .await
        .map_err(|e| Attempt::Failed(format!("cannot connect to DockMon at {url}: {e}")))?;
    let mut nonce = [0u8; 16];
    tls::random_bytes(&mut nonce);
    let mut seed = [0u8; 8];
    tls::random_bytes(&mut seed);
    let ua = format!("dockmon-agent/{}", crate::VERSION);
    let mut ws = Conn::handshake(
        transport,
        &url.authority(),
        &url.path,
        &[("User-Agent", &ua)],
        nonce,
        u64::from_le_bytes(seed),
        CONNECT_TIMEOUT_MS,
    )
    .await
    .map_err(|e| fail("websocket upgrade", &e))?;

    let mut frame = Vec::with_capacity(1024);
    register::write(&mut frame, reg, token, dropped);
    timed(WRITE_TIMEOUT, ws.send_text(&mut frame))
        .await
        .map_err(|e| fail("sending the registration", &e))?;
    let deadline = Instant::now() + AUTH_REPLY_TIMEOUT;
    loop {
        let event = async { Some(ws.read_event().await) };
        let timeout = async {
            Timer::at(deadline).await;
            None
        };
        match smol::future::or(event, timeout).await {
            None => return Err(fail("registration", &"no answer within 10 s")),
            Some(Err(e)) => return Err(fail("registration", &e)),
            Some(Ok(WsIncoming::Text(text))) => {
                let reply = Incoming::parse(text).map_err(|e| fail("registration answer", &e))?;
                if reply.kind == "auth_error" {
                    let error = reply.error.as_deref().unwrap_or("(no reason given)");
                    if let Some(key) = register::refused_key(error) {
                        return Err(Attempt::Refused(key));
                    }
                    return Err(Attempt::Failed(format!(
                        "DockMon at {url} rejected the registration: {error}"
                    )));
                }
                // Like the Go agent: any other answer with agent_id and host_id is success.
                if reply.agent_id.is_none() || reply.host_id.is_none() {
                    return Err(fail("registration answer", &"no agent_id/host_id"));
                }
                // The agent ID is the permanent token (spec 2.5): never logged.
                log::info!(
                    "registered with DockMon at {url} as host {}",
                    reply.host_id.as_deref().unwrap_or("")
                );
                let permanent = reply
                    .permanent_token
                    .as_deref()
                    .filter(|t| !t.is_empty())
                    .map(str::to_string);
                return Ok((ws, permanent));
            }
            Some(Ok(WsIncoming::Close(code, reason))) => {
                return Err(fail(
                    "registration",
                    &format!(
                        "server closed the connection ({} {reason})",
                        code.unwrap_or(1005)
                    ),
                ))
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Resolves the server's host (without blocking the thread), connects over TCP to the first address
/// that answers, and adds TLS for `wss://`.
pub async fn open_transport(
    url: &crate::config::WsUrl,
    tls_config: Option<Arc<rustls::ClientConfig>>,
) -> Result<Transport, String> {
    let addrs = crate::dns::resolve(&url.host, url.port)
        .await
        .map_err(|e| e.to_string())?;
    let mut last_err = String::from("no address");
    let mut tcp = None;
    for addr in addrs.iter() {
        let connect = async { Some(Async::<TcpStream>::connect(*addr).await) };
        let timeout = async {
            Timer::after(Duration::from_millis(CONNECT_TIMEOUT_MS)).await;
            None
        };
        match smol::future::or(connect, timeout).await {
            Some(Ok(s)) => {
                tcp = Some(s);
                break;
            }
            Some(Err(e)) => last_err = format!("tcp {addr}: {e}"),
            None => last_err = format!("tcp {addr}: connect timed out"),
        }
    }
    let tcp = tcp.ok_or(last_err)?;
    let _ = tcp.get_ref().set_nodelay(true);
    match tls_config {
        None => Ok(Transport::Plain(tcp)),
        Some(config) => {
            let name = tls::server_name(&url.host).map_err(|e| e.to_string())?;
            let connector = futures_rustls::TlsConnector::from(config);
            let handshake = async { Some(connector.connect(name, tcp).await) };
            let timeout = async {
                Timer::after(Duration::from_millis(CONNECT_TIMEOUT_MS)).await;
                None
            };
            match smol::future::or(handshake, timeout).await {
                Some(Ok(s)) => Ok(Transport::Tls(Box::new(s))),
                Some(Err(e)) => Err(format!("tls handshake: {e}")),
                None => Err("tls handshake: timed out".to_string()),
            }
        }
    }
}

fn persist_token(cfg: &Config, token: &str) {
    if let Err(e) = crate::token::store(&cfg.data_path, token) {
        log::error!("{e}; the agent keeps running, but after a restart it will need a new registration token");
    }
}

/// One established connection until it ends.
async fn serve(
    ex: &Rc<LocalExecutor<'static>>,
    shared: &Rc<Shared>,
    ctx: &Rc<Context>,
    mut ws: Conn<Transport>,
    wake: &Receiver<()>,
    signals: &mut async_signal::Signals,
    mode: &identity::Mode,
) -> End {
    let _events = ex.spawn(forward_events(shared.clone()));
    let _stats = ex.spawn(sample_stats(ex.clone(), shared.clone()));
    let _host = host_sampler(mode).map(|sampler| ex.spawn(host_stats(shared.clone(), sampler)));
    let mut keepalive = Keepalive::new(Instant::now());
    // Anything queued while disconnected (replies, events) goes out first.
    let _ = shared.wake.try_send(());
    enum Ev {
        Frame(Result<Option<String>, String>),
        Outbox,
        Tick,
        Signal,
    }
    loop {
        let wait_until = match keepalive.poll(Instant::now()) {
            Keep::Dead => return End::Dropped("nothing received for 40 s".into()),
            Keep::Ping => {
                if let Err(e) = timed(WRITE_TIMEOUT, ws.send_ping(b"")).await {
                    return End::Dropped(format!("ping failed: {e}"));
                }
                continue;
            }
            Keep::Wait(at) => at,
        };
        let ev = {
            let frame = async {
                Ev::Frame(match ws.read_event().await {
                    Ok(WsIncoming::Text(t)) => Ok(Some(t.to_string())),
                    Ok(WsIncoming::Pong) => Ok(None),
                    Ok(WsIncoming::Ping) => Ok(Some(String::new())),
                    Ok(WsIncoming::Binary(n)) => Err(format!("binary:{n}")),
                    Ok(WsIncoming::Close(code, reason)) => Err(format!(
                        "close:server closed the connection ({} {reason})",
                        code.unwrap_or(1005)
                    )),
                    Err(e) => {
                        // Fail the connection the RFC 6455 way (§7.1.7) when the server broke the
                        // protocol: a close frame with the code that says why.
                        if let crate::ws::conn::Error::Wire(w) = &e {
                            if let Some(code) = w.close_code() {
                                let _ = ws.send_close(code, "").await;
                            }
                        }
                        Err(format!("close:{e}"))
                    }
                })
            };
            let outbox = async {
                let _ = wake.recv().await;
                Ev::Outbox
            };
            let tick = async {
                Timer::at(wait_until).await;
                Ev::Tick
            };
            let signal = async {
                signals_next(signals).await;
                Ev::Signal
            };
            smol::future::or(
                smol::future::or(frame, outbox),
                smol::future::or(tick, signal),
            )
            .await
        };
        match ev {
            Ev::Frame(Ok(None)) => keepalive.received(Instant::now()),
            Ev::Frame(Ok(Some(text))) if text.is_empty() => {} // a server ping, answered
            Ev::Frame(Ok(Some(text))) => {
                keepalive.received(Instant::now());
                dispatch(ex, shared, ctx, text);
            }
            Ev::Frame(Err(e)) => match e.strip_prefix("close:") {
                Some(why) => return End::Dropped(why.to_string()),
                None => log::warn!(
                    "ignoring a binary frame from DockMon ({} bytes): the protocol is JSON text",
                    e.trim_start_matches("binary:")
                ),
            },
            Ev::Outbox => {
                loop {
                    let next = shared.outbox.borrow_mut().pop();
                    let Some((class, mut frame)) = next else {
                        break;
                    };
                    if let Err(e) = timed(WRITE_TIMEOUT, ws.send_text(&mut frame)).await {
                        // A reply that could not be written goes back to the front of its queue.
                        shared.outbox.borrow_mut().requeue(class, frame);
                        return End::Dropped(format!("write failed: {e}"));
                    }
                    shared.outbox.borrow_mut().recycle(frame);
                }
                shared.wrote();
                if let Some((events, stats)) = shared.outbox.borrow_mut().take_drop_report() {
                    log::warn!("outbox full: dropped {events} event(s) and {stats} stats frame(s), oldest first");
                }
            }
            Ev::Tick => {}
            Ev::Signal => {
                log::info!("signal received; closing the connection");
                let _ = timed(
                    Duration::from_secs(2),
                    ws.send_close(1000, "agent shutting down"),
                )
                .await;
                return End::Shutdown;
            }
        }
    }
}

/// Spawns the handler of one incoming frame.
fn dispatch(ex: &LocalExecutor<'static>, shared: &Rc<Shared>, ctx: &Rc<Context>, text: String) {
    let frame = match Incoming::parse(&text) {
        Ok(f) => f,
        Err(e) => {
            log::warn!("ignoring a frame from DockMon that is not a JSON object: {e}");
            return;
        }
    };
    match command::kind(&frame) {
        command::Kind::Other => {
            if !command::notice(ctx, &frame) {
                log::warn!(
                    "ignoring a frame of unknown type `{}` from DockMon",
                    frame.kind
                );
            }
            return;
        }
        command::Kind::Request => {}
    }
    let shared = shared.clone();
    let ctx = ctx.clone();
    ex.spawn(async move {
        let _slot = shared.commands.acquire().await;
        // Parsed again inside the task: the frame borrows `text`, which the task owns.
        let Ok(frame) = Incoming::parse(&text) else {
            return;
        };
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        command::answer(&ctx, &frame, &mut scratch, &mut out).await;
        shared.send(Class::Reply, out);
    })
    .detach();
}

/// Docker container events → `container_event` frames, and the starts and stops to the sampler.
async fn forward_events(shared: Rc<Shared>) {
    super::follow_events(&shared.client, |e| {
        if let Some(change) = Change::from_event(e) {
            shared.changes.offer(change);
        }
        let mut out = shared.outbox.borrow_mut().buffer();
        write_container_event(&mut out, e);
        shared.send(Class::Event, out);
    })
    .await;
}

fn write_container_event(out: &mut Vec<u8>, e: &Event<'_>) {
    let empty: &RawValue =
        serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("valid JSON"));
    let attrs = e.actor.attributes.unwrap_or(empty);
    #[derive(serde::Deserialize, Default)]
    struct Names<'a> {
        #[serde(borrow, default)]
        name: std::borrow::Cow<'a, str>,
        #[serde(borrow, default)]
        image: std::borrow::Cow<'a, str>,
    }
    let names: Names = serde_json::from_str(attrs.get()).unwrap_or_default();
    // UTC: valid RFC 3339 that the backend parses; the Go agent uses its local zone.
    let when = rfc3339::seconds(e.time);
    let (s, n) = rfc3339::now();
    msg::write_event(
        out,
        "container_event",
        ContainerEvent {
            container_id: &e.actor.id,
            container_name: &names.name,
            image: &names.image,
            action: &e.action,
            timestamp: &when,
            attributes: attrs,
        },
        &rfc3339::nanos(s, n),
    );
}

/// `container_stats` for every running container, under the board's budget (the sampler's
/// [`Driver`]: round robin over a fixed table, at most `stats_in_flight` calls at once and
/// `stats_calls_per_sec` per second, each container every `stats_interval_ms` when the budget allows,
/// else as often as it allows, said once). The table follows Docker's events; a re-list every minute
/// repairs drift. Every reading is sent, the first one too (CPU % 0), as the Go agent does.
async fn sample_stats(ex: Rc<LocalExecutor<'static>>, shared: Rc<Shared>) {
    let settings = super::sampler_settings(&shared.board);
    let driver = Driver::new(
        shared.client.clone(),
        shared.source.clone(),
        settings,
        Instant::now(),
    );
    driver
        .run(&ex, Some(&shared.changes), |report| {
            match report {
                Report::Reading {
                    id, name, stats, ..
                } => {
                    let (s, n) = rfc3339::now();
                    let mut out = shared.outbox.borrow_mut().buffer();
                    msg::write_event(
                        &mut out,
                        "container_stats",
                        ContainerStats::new(id, name, stats, &rfc3339::seconds(s), false),
                        &rfc3339::nanos(s, n),
                    );
                    shared.send(Class::Stats, out);
                }
                other => super::log_report(&other),
            }
            ControlFlow::Continue(())
        })
        .await;
}

/// The host stats frame every `HOST_STATS_INTERVAL` (spec 4.4), when the host's /proc is visible:
/// natively (systemd mode) or mounted at /host/proc.
async fn host_stats(shared: Rc<Shared>, mut sampler: crate::host::HostStats) {
    let mut failing = false;
    loop {
        match sampler.sample(Instant::now()) {
            Ok(s) => {
                failing = false;
                let mut out = shared.outbox.borrow_mut().buffer();
                msg::write_host_stats(
                    &mut out,
                    msg::HostStats {
                        cpu_percent: s.cpu_percent,
                        mem_percent: s.mem_percent,
                        net_bytes_per_sec: s.net_bytes_per_sec,
                    },
                );
                shared.send(Class::Stats, out);
            }
            Err(e) => {
                if !failing {
                    log::warn!("host stats: {e}");
                    failing = true;
                }
            }
        }
        Timer::after(HOST_STATS_INTERVAL).await;
    }
}

/// Runs `fut` with a deadline.
async fn timed<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, crate::ws::conn::Error>>,
) -> Result<T, String> {
    let timeout = async {
        Timer::after(limit).await;
        Err(format!("timed out after {} s", limit.as_secs()))
    };
    smol::future::or(async { fut.await.map_err(|e| e.to_string()) }, timeout).await
}

/// A number in `[0, 1)` for backoff jitter.
fn jitter() -> f64 {
    let mut b = [0u8; 8];
    tls::random_bytes(&mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}
