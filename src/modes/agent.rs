//! The DockMon agent: connect, register, report and obey, reconnect; until SIGTERM or SIGINT.
//!
//! The executor of [`dockmon::Session`](crate::dockmon::Session): every protocol decision (register,
//! retry, keepalive, backoff, close codes) is the session's; this file runs its actions with sockets,
//! timers and tasks, and turns what happens into the session's events. It matches on no message type
//! and no close code.
//!
//! One executor thread. The main loop races the socket, the outbox, the session's timer and the
//! shutdown signal; per connection, an events task forwards Docker events, a stats task samples
//! running containers, a host stats task reads /proc; each request gets its own task (at most
//! `COMMANDS_IN_FLIGHT_MAX` at once, at most `COMMANDS_WAITING_MAX_*` waiting, else the socket is
//! not read), so a slow `stop` never holds up an `inspect`. Everything written goes through the
//! outbox (replies, then events, then stats). When the connection drops, its tasks are dropped
//! (cancelled).
use super::Error;
use crate::config::Config;
use crate::docker::types::Event;
use crate::docker::Client;
use crate::dockmon::command::{self, Notice};
use crate::dockmon::context::{Context, Link, Sink};
use crate::dockmon::error::{Connect, Error as SessionError, Io as SessionIo};
use crate::dockmon::msg::{self, ContainerEvent, ContainerStats};
use crate::dockmon::register::Registration;
use crate::dockmon::session::{Action, Actions, Event as SessionEvent, Session, Settings};
use crate::dockmon::timing::Backoff;
use crate::limits::{
    COMMANDS_WAITING_MAX_BYTES, COMMANDS_WAITING_MAX_COUNT, DOCKMON_CLOSE_TIMEOUT_MS,
    DOCKMON_CONNECT_TIMEOUT_MS, DOCKMON_WRITE_TIMEOUT_MS, FACTS_RETRY_INITIAL_MS,
    FACTS_RETRY_MAX_MS, HOST_STATS_INTERVAL_MS, LARGE_REPLIES_AT_ONCE_COUNT, TEXT_RELEASE_EVERY_S,
    TEXT_RELEASE_FIRST_S, TOKEN_STORE_RETRY_MS,
};
use crate::outbox::{
    Class, Outbox, COMMANDS_IN_FLIGHT_MAX, OUTBOX_SPARE_BYTES, OUTBOX_WRITE_BATCH_COUNT,
};
use crate::sampler::driver::{Change, Changes, Driver, Report};
use crate::sampler::source::Source;
use crate::ws::conn::{Conn, Incoming as WsIncoming, Transport, WS_WRITE_BUF_BYTES};
use crate::{identity, rfc3339, tls};
use async_io::Timer;
use serde_json::value::RawValue;
use smol::channel::{Receiver, Sender};
use smol::lock::Semaphore;
use smol::LocalExecutor;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a waiting request holds: its own size and its heap bytes.
fn request_bytes(request: &command::Request) -> usize {
    std::mem::size_of::<command::Request>() + request.bytes()
}

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
    /// Worker tasks running requests (at most `COMMANDS_IN_FLIGHT_MAX`).
    workers: Cell<usize>,
    /// Requests waiting for a worker, oldest first, and the bytes they hold.
    waiting: RefCell<(VecDeque<command::Request>, usize)>,
    /// `LARGE_REPLIES_AT_ONCE_COUNT` permits (issue 11 D2).
    large: Semaphore,
    /// Signalled when a worker took a waiting request: the executor may read again.
    room: (Sender<()>, Receiver<()>),
}

impl Shared {
    fn send(&self, class: Class, frame: Vec<u8>) {
        self.outbox.borrow_mut().push(class, frame);
        // A full channel already holds a wake-up: nothing is lost.
        let _ = self.wake.try_send(());
    }

    /// Whether another request may be read (issue 11 D2): fewer than `COMMANDS_WAITING_MAX_COUNT`
    /// wait, holding less than `COMMANDS_WAITING_MAX_BYTES` (one is always admitted).
    fn has_room(&self) -> bool {
        let waiting = self.waiting.borrow();
        let (queue, bytes) = &*waiting;
        queue.is_empty()
            || (queue.len() < COMMANDS_WAITING_MAX_COUNT && *bytes < COMMANDS_WAITING_MAX_BYTES)
    }

    fn enqueue(&self, request: command::Request) {
        let mut waiting = self.waiting.borrow_mut();
        waiting.1 += request_bytes(&request);
        waiting.0.push_back(request);
    }

    fn dequeue(&self) -> Option<command::Request> {
        let mut waiting = self.waiting.borrow_mut();
        let request = waiting.0.pop_front()?;
        waiting.1 = waiting.1.saturating_sub(request_bytes(&request));
        if waiting.0.is_empty() {
            // A burst's queue is not kept.
            waiting.0.shrink_to(COMMANDS_IN_FLIGHT_MAX);
        }
        // Full: a wake-up is already pending.
        let _ = self.room.0.try_send(());
        Some(request)
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

/// Runs the agent until a signal. Returns an error only for what no retry can fix.
///
/// The executor of [`Session`]: it runs each action (Docker calls, sockets, timers, tasks) and feeds
/// the outcome back as an event. It decides nothing about the protocol.
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
        workers: Cell::new(0),
        waiting: RefCell::new((VecDeque::new(), 0)),
        large: Semaphore::new(LARGE_REPLIES_AT_ONCE_COUNT),
        room: smol::channel::bounded(1),
    });
    let ctx = Rc::new(Context {
        client: shared.client.clone(),
        config: cfg.clone(),
        ex: ex.clone(),
        sink: shared.clone(),
        link: shared.link.clone(),
    });
    let _health = super::health::serve(&ex, &cfg.data_path, shared.link.clone());
    crate::dockmon::selfupdate::spawn_cleanup(&ctx);
    #[cfg(feature = "count-alloc")]
    ex.spawn(crate::alloc::report_on_sigusr1()).detach();
    ex.spawn(release_text()).detach();
    let mode = identity::detect_mode(
        std::path::Path::new("/proc"),
        std::env::var("HOSTNAME").ok().as_deref(),
    );
    log::info!("{mode}");

    let (token, permanent) = match (&cfg.permanent_token, &cfg.registration_token) {
        (Some(t), _) => (t.expose().to_string(), true),
        (None, Some(t)) => (t.expose().to_string(), false),
        // config::from_env refuses a configuration without either.
        (None, None) => return Err(Error::Config("no token".into())),
    };
    if permanent {
        super::ingest::start(&ex, &cfg, tls_config.clone(), &token);
    }
    let mut session = Session::new(Settings {
        url: cfg.ws_url.to_string(),
        token,
        permanent,
        reconnect_initial: cfg.reconnect_initial,
        reconnect_max: cfg.reconnect_max,
        token_file: cfg.token_file.display().to_string(),
    });
    let mut ws: Option<Conn<Transport>> = None;
    let mut timer: Option<Instant> = None;
    let mut tasks: Vec<smol::Task<()>> = Vec::new();
    let unsaved_token: Rc<RefCell<Option<String>>> = Rc::default();
    let mut actions = session.handle(Instant::now(), SessionEvent::Start, jitter());
    loop {
        // Run the actions; at most one of them (the last I/O one) answers with an event.
        let mut next: Option<SessionEvent<'static>> = None;
        for action in actions {
            match action {
                Action::GatherFacts => {
                    let facts = async { Some(gather(&shared.client, &cfg, &mode).await) };
                    next = Some(match or_signal(&mut signals, facts).await {
                        Some(r) => SessionEvent::Facts(r.map(Box::new)),
                        None => SessionEvent::Signal,
                    });
                }
                Action::Connect => {
                    let connect = async { Some(connect(&cfg, tls_config.clone()).await) };
                    next = Some(match or_signal(&mut signals, connect).await {
                        Some(Ok(conn)) => {
                            ws = Some(conn);
                            SessionEvent::Connected
                        }
                        Some(Err(e)) => SessionEvent::ConnectFailed(e),
                        None => SessionEvent::Signal,
                    });
                }
                Action::Send(mut frame) => {
                    if let Some(ws) = ws.as_mut() {
                        next = Some(
                            match timed(DOCKMON_WRITE_TIMEOUT_MS, ws.send_text(&mut frame)).await {
                                Ok(()) => SessionEvent::Sent,
                                Err(e) => SessionEvent::SendFailed(e),
                            },
                        );
                    }
                }
                Action::Ping => {
                    if let Some(ws) = ws.as_mut() {
                        if let Err(e) = timed(DOCKMON_WRITE_TIMEOUT_MS, ws.send_ping(b"")).await {
                            next = Some(SessionEvent::PingFailed(e));
                        }
                    }
                }
                Action::Close { code, reason } => {
                    if let Some(ws) = ws.as_mut() {
                        let _ = timed(DOCKMON_CLOSE_TIMEOUT_MS, ws.send_close(code, reason)).await;
                    }
                }
                Action::Disconnect => ws = None,
                Action::Up => {
                    shared.link.up();
                    tasks.push(ex.spawn(forward_events(shared.clone())));
                    tasks.push(ex.spawn(sample_stats(ex.clone(), shared.clone())));
                    if let Some(sampler) = host_sampler(&mode) {
                        tasks.push(ex.spawn(host_stats(shared.clone(), sampler)));
                    }
                    // Anything queued while disconnected (replies, events) goes out first.
                    let _ = shared.wake.try_send(());
                }
                Action::Down => {
                    tasks.clear();
                    shared.link.down();
                    shared.outbox.borrow_mut().drop_stats();
                }
                Action::WaitUntil(at) => timer = Some(at),
                Action::StoreToken(token) => {
                    persist_token(&ex, &cfg, &unsaved_token, &token);
                    super::ingest::start(&ex, &cfg, tls_config.clone(), &token);
                }
                Action::Run(request) => run_request(&ex, &shared, &ctx, request),
                Action::Notice(notice) => {
                    if !command::notice(&ctx, &notice) {
                        if let Notice::Unknown { kind } = &notice {
                            log::warn!("ignoring a frame of unknown type `{kind}` from DockMon");
                        }
                    }
                }
                Action::Log(level, text) => log::log!(level, "{text}"),
                Action::Exit(None) if ctx.link.is_retired() => {
                    log::info!(
                        "replaced by a self-update: no more reconnects; waiting to be removed"
                    );
                    signals_next(&mut signals).await;
                    return Ok(());
                }
                Action::Exit(None) => return Ok(()),
                Action::Exit(Some(why)) => return Err(Error::Config(why)),
            }
        }
        actions = match next {
            Some(event) => session.handle(Instant::now(), event, jitter()),
            None => {
                // Wait for the socket, the outbox, the timer or a signal.
                let reading = session.is_reading();
                let serving = session.is_serving();
                let admit = !serving || shared.has_room();
                let woke = {
                    let read = async {
                        match ws.as_mut() {
                            Some(ws) if reading && admit => Wake::Read(ws.read_event().await),
                            _ => std::future::pending().await,
                        }
                    };
                    let outbox = async {
                        if !serving {
                            std::future::pending::<()>().await;
                        }
                        let _ = wake_rx.recv().await;
                        Wake::Outbox
                    };
                    let room = async {
                        if admit {
                            std::future::pending::<()>().await;
                        }
                        let _ = shared.room.1.recv().await;
                        Wake::Room
                    };
                    let tick = async {
                        match timer {
                            Some(at) => Timer::at(at).await,
                            None => std::future::pending().await,
                        };
                        Wake::Timer
                    };
                    // A self-update that handed over to the new container retires this loop
                    // (`dockmon::selfupdate`): the connection closes as for a signal.
                    let signal = async {
                        smol::future::or(signals_next(&mut signals), ctx.link.retired()).await;
                        Wake::Signal
                    };
                    smol::future::or(
                        smol::future::or(read, smol::future::or(outbox, room)),
                        smol::future::or(tick, signal),
                    )
                    .await
                };
                let now = Instant::now();
                let event = match woke {
                    Wake::Read(Ok(WsIncoming::Text(t))) => Some(SessionEvent::Text(t)),
                    Wake::Read(Ok(WsIncoming::Pong)) => Some(SessionEvent::Pong),
                    // Answered by the connection; does not re-arm the read deadline (spec 2.7).
                    Wake::Read(Ok(WsIncoming::Ping)) => None,
                    Wake::Read(Ok(WsIncoming::Binary(n))) => Some(SessionEvent::Binary(n)),
                    Wake::Read(Ok(WsIncoming::Close(code, reason))) => {
                        Some(SessionEvent::Closed { code, reason })
                    }
                    Wake::Read(Err(e)) => Some(SessionEvent::ReadFailed(e)),
                    Wake::Outbox => match write_outbox(&shared, ws.as_mut()).await {
                        Ok(()) => None,
                        Err(e) => Some(SessionEvent::WriteFailed(e)),
                    },
                    Wake::Room => None,
                    Wake::Timer => {
                        timer = None;
                        Some(SessionEvent::Timer)
                    }
                    Wake::Signal => Some(SessionEvent::Signal),
                };
                match event {
                    Some(event) => session.handle(now, event, jitter()),
                    None => Actions::new(),
                }
            }
        };
    }
}

/// What ended a wait of the executor.
enum Wake<'a> {
    Read(Result<WsIncoming<'a>, crate::ws::conn::Error>),
    Outbox,
    Room,
    Timer,
    Signal,
}

/// Races `fut` against SIGTERM/SIGINT; `None` when a signal came first.
async fn or_signal<T>(
    signals: &mut async_signal::Signals,
    fut: impl std::future::Future<Output = Option<T>>,
) -> Option<T> {
    let stop = async {
        signals_next(signals).await;
        None
    };
    smol::future::or(fut, stop).await
}

/// Writes everything queued in the outbox (replies, then events, then stats). Small frames go out
/// several to a write (`Conn::queue_text`, at most `OUTBOX_WRITE_BATCH_COUNT`; issue 18: a batch of
/// stats costs a write per few frames, not one per frame); a frame goes back to the outbox's spares
/// only once its write is done, and to the front of its queue when the write fails.
async fn write_outbox(shared: &Shared, ws: Option<&mut Conn<Transport>>) -> Result<(), SessionIo> {
    let Some(ws) = ws else { return Ok(()) };
    let mut held = Held::new();
    loop {
        let next = shared.outbox.borrow_mut().pop();
        let Some((class, mut frame)) = next else {
            break;
        };
        if held.is_full() || !ws.fits_queued(frame.len()) {
            flush_held(shared, ws, &mut held).await?;
        }
        if frame.len() > WS_WRITE_BUF_BYTES {
            if let Err(e) = timed(DOCKMON_WRITE_TIMEOUT_MS, ws.send_text(&mut frame)).await {
                shared.outbox.borrow_mut().requeue(class, frame);
                return Err(e);
            }
            shared.outbox.borrow_mut().recycle(frame);
            continue;
        }
        // Fits (checked above): copied into the write buffer, nothing written yet.
        let queued = timed(DOCKMON_WRITE_TIMEOUT_MS, ws.queue_text(&mut frame)).await;
        // Cannot fail: `held` was emptied above when full.
        let _ = held.push((class, frame));
        if let Err(e) = queued {
            requeue_held(shared, &mut held);
            return Err(e);
        }
    }
    flush_held(shared, ws, &mut held).await?;
    shared.wrote();
    if let Some((events, stats)) = shared.outbox.borrow_mut().take_drop_report() {
        log::warn!(
            "outbox full: dropped {events} event(s) and {stats} stats frame(s), oldest first"
        );
    }
    Ok(())
}

/// Frames queued on the connection and not yet written.
type Held = heapless::Vec<(Class, Vec<u8>), OUTBOX_WRITE_BATCH_COUNT>;

/// Writes the frames queued on the connection; their buffers go back to the outbox's spares.
async fn flush_held(
    shared: &Shared,
    ws: &mut Conn<Transport>,
    held: &mut Held,
) -> Result<(), SessionIo> {
    if let Err(e) = timed(DOCKMON_WRITE_TIMEOUT_MS, ws.flush_queued()).await {
        requeue_held(shared, held);
        return Err(e);
    }
    let mut outbox = shared.outbox.borrow_mut();
    for (_, frame) in held.drain(..) {
        outbox.recycle(frame);
    }
    Ok(())
}

/// Frames whose write failed go back to the front of their queues, in their order (a reply is never
/// lost to a failed write).
fn requeue_held(shared: &Shared, held: &mut Held) {
    let mut outbox = shared.outbox.borrow_mut();
    while let Some((class, frame)) = held.pop() {
        outbox.requeue(class, frame);
    }
}

/// Queues one request and makes sure a worker runs it (issue 11 D2). At most
/// `COMMANDS_IN_FLIGHT_MAX` worker tasks exist; each takes requests from the queue until it is empty.
/// Waiting requests are only their parsed commands (about 150 bytes for `list_containers`), not
/// tasks, and the executor stops reading the socket when they reach `COMMANDS_WAITING_MAX_*`. A large
/// reply also waits for `LARGE_REPLIES_AT_ONCE_COUNT` and for the replies before it to be written, so
/// the memory of replies stays bounded.
fn run_request(
    ex: &LocalExecutor<'static>,
    shared: &Rc<Shared>,
    ctx: &Rc<Context>,
    request: command::Request,
) {
    shared.enqueue(request);
    if shared.workers.get() >= COMMANDS_IN_FLIGHT_MAX {
        return;
    }
    shared.workers.set(shared.workers.get() + 1);
    let shared = shared.clone();
    let ctx = ctx.clone();
    ex.spawn(async move {
        let mut scratch = Vec::new();
        loop {
            // The outbox's promise: at most `COMMANDS_IN_FLIGHT_MAX` replies wait for the socket.
            while shared.outbox.borrow().len().0 >= COMMANDS_IN_FLIGHT_MAX {
                let drained = Sink::drained(&*shared);
                let _ = drained.recv().await;
            }
            let Some(request) = shared.dequeue() else {
                break;
            };
            let _large = if request.command.is_large_reply() {
                let permit = shared.large.acquire().await;
                while shared.outbox.borrow().len().0 > 0 {
                    let drained = Sink::drained(&*shared);
                    let _ = drained.recv().await;
                }
                Some(permit)
            } else {
                None
            };
            let mut out = Vec::new();
            command::answer(&ctx, &request, &mut scratch, &mut out).await;
            drop(request);
            shared.send(Class::Reply, out);
            // A large Docker body is not kept for the next request.
            if scratch.capacity() > OUTBOX_SPARE_BYTES {
                scratch = Vec::new();
            }
        }
        shared.workers.set(shared.workers.get() - 1);
    })
    .detach();
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
    // DOCKER_HOST from the configuration; TLS settings (tcp://) as the docker CLI reads them.
    let endpoint = crate::docker::endpoint::select_env(
        |k| match k {
            "DOCKER_HOST" => cfg.docker_host.clone(),
            _ => std::env::var(k).ok(),
        },
        crate::docker::endpoint::is_socket,
    )
    .map_err(|e| Error::Config(e.to_string()))?;
    let mut backoff = Backoff::new(
        Duration::from_millis(FACTS_RETRY_INITIAL_MS),
        Duration::from_millis(FACTS_RETRY_MAX_MS),
    );
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
/// Fails when `GET /info` does: without the engine ID the backend refuses the registration (issue 11
/// D3), so the session does not dial DockMon then.
async fn gather(
    client: &Client,
    cfg: &Config,
    mode: &identity::Mode,
) -> Result<Registration, crate::docker::Error> {
    let mut buf = Vec::new();
    let i = client.info(&mut buf).await?;
    let engine_id = i.id.to_string();
    let daemon_name = i.name.to_string();
    let facts_info = (
        i.os_type.to_string(),
        i.operating_system.to_string(),
        i.kernel_version.to_string(),
        i.mem_total,
        i.ncpu,
    );
    let docker_version = client
        .version(&mut buf)
        .await
        .ok()
        .map(|v| v.version.to_string());
    // One GET /networks for the start time and the subnets (issue 10).
    let (daemon_started_at, subnets) = client.network_facts(&mut buf).await.unwrap_or_default();
    let facts = docker_version.map(|docker_version| {
        let (os_type, os_version, kernel_version, total_memory, num_cpus) = facts_info;
        crate::dockmon::register::Facts {
            os_type,
            os_version,
            kernel_version,
            docker_version,
            daemon_started_at,
            total_memory,
            num_cpus,
        }
    });
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
            identity::container_host_ips(std::path::Path::new("/host/proc"), &subnets)
        }
    };
    Ok(Registration {
        engine_id,
        hostname: (hostname.to_string(), source.as_str()),
        version: crate::VERSION.to_string(),
        proto_version: cfg.proto_version.clone(),
        force_unique: cfg.force_unique_registration,
        agent_os: identity::agent_os(),
        agent_arch: identity::agent_arch(),
        facts,
        host_ips: host_ips.iter().map(|ip| ip.to_string()).collect(),
        self_update: mode.container_id().is_some(),
    })
}

/// Opens the transport and upgrades it to a WebSocket (spec 2.1, 2.2).
async fn connect(
    cfg: &Config,
    tls_config: Option<Arc<rustls::ClientConfig>>,
) -> Result<Conn<Transport>, SessionError> {
    let url = &cfg.ws_url;
    let transport = open_transport(url, tls_config).await?;
    let mut nonce = [0u8; 16];
    tls::random_bytes(&mut nonce);
    let mut seed = [0u8; 8];
    tls::random_bytes(&mut seed);
    let ua = format!("dockmon-agent/{}", crate::VERSION);
    Conn::handshake(
        transport,
        &url.authority(),
        &url.path,
        &[("User-Agent", &ua)],
        nonce,
        u64::from_le_bytes(seed),
        DOCKMON_CONNECT_TIMEOUT_MS,
    )
    .await
    .map_err(SessionError::Upgrade)
}

/// Gives the pages of code the steady agent does not run back, after start-up and then every 30 s
/// (`textmem` says why). A failure is logged once and ends the task: it only costs memory.
async fn release_text() {
    let mut wait = TEXT_RELEASE_FIRST_S;
    loop {
        Timer::after(Duration::from_secs(wait)).await;
        wait = TEXT_RELEASE_EVERY_S;
        match crate::textmem::release() {
            Ok(r) => log::trace!(
                "released {} mappings ({} bytes) of the executable",
                r.mappings,
                r.bytes
            ),
            Err(e) => {
                log::debug!("cannot give the executable's unused pages back: {e}");
                return;
            }
        }
    }
}

/// Connects over TCP to the server (directly, or through the HTTP proxy the environment names for
/// it: modes/dial.rs), and adds TLS for `wss://` (inside the proxy's tunnel).
pub async fn open_transport(
    url: &crate::config::WsUrl,
    tls_config: Option<Arc<rustls::ClientConfig>>,
) -> Result<Transport, Connect> {
    // Directly or through the environment's proxy (modes/dial.rs).
    let tcp = super::dial::connect(url).await?;
    match tls_config {
        None => Ok(Transport::Plain(tcp)),
        Some(config) => {
            let name = tls::server_name(&url.host).map_err(Connect::ServerName)?;
            let connector = futures_rustls::TlsConnector::from(config);
            let handshake = async { Some(connector.connect(name, tcp).await) };
            let timeout = async {
                Timer::after(Duration::from_millis(DOCKMON_CONNECT_TIMEOUT_MS)).await;
                None
            };
            match smol::future::or(handshake, timeout).await {
                Some(Ok(s)) => Ok(Transport::Tls(Box::new(s))),
                Some(Err(e)) => Err(Connect::Tls(e)),
                None => Err(Connect::TlsTimeout),
            }
        }
    }
}

/// Writes the permanent token to `DATA_PATH`. When that fails (a read-only or full disk) the token
/// stays in memory, where the session reconnects with it, and one task tries the write again every
/// `TOKEN_STORE_RETRY_MS` until it succeeds, so a restart after the disk is fixed needs no new
/// registration token (issue 17). A newer token replaces the one waiting; the failure is logged
/// once, the late success once.
fn persist_token(
    ex: &LocalExecutor<'static>,
    cfg: &Config,
    unsaved: &Rc<RefCell<Option<String>>>,
    token: &str,
) {
    let Err(e) = crate::token::store(&cfg.data_path, token) else {
        unsaved.replace(None);
        return;
    };
    if unsaved.replace(Some(token.to_owned())).is_some() {
        return; // a retry task is already waiting; it now writes this token
    }
    log::error!(
        "{e}; the agent keeps running with the token in memory and tries again every {} s (a restart before it is written will need a new registration token)",
        TOKEN_STORE_RETRY_MS / 1000
    );
    let (dir, file, unsaved) = (
        cfg.data_path.clone(),
        cfg.token_file.clone(),
        unsaved.clone(),
    );
    ex.spawn(async move {
        loop {
            Timer::after(Duration::from_millis(TOKEN_STORE_RETRY_MS)).await;
            if retry_store(&unsaved, |t| crate::token::store(&dir, t)) {
                log::info!("the permanent token is written to {} now", file.display());
                return;
            }
        }
    })
    .detach();
}

/// One retry of [`persist_token`]: writes the waiting token. True when none is left waiting.
fn retry_store<E: std::fmt::Display>(
    unsaved: &RefCell<Option<String>>,
    store: impl Fn(&str) -> Result<(), E>,
) -> bool {
    let Some(token) = unsaved.borrow().clone() else {
        return true;
    };
    match store(&token) {
        Ok(()) => {
            unsaved.replace(None);
            true
        }
        Err(e) => {
            log::debug!("{e}; trying again later");
            false
        }
    }
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
                    let seconds = rfc3339::seconds(s);
                    let payload = ContainerStats::new(id, name, stats, &seconds, false);
                    msg::write_event(&mut out, "container_stats", &payload, &rfc3339::nanos(s, n));
                    shared.send(Class::Stats, out);
                    super::ingest::offer(&payload);
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
        Timer::after(Duration::from_millis(HOST_STATS_INTERVAL_MS)).await;
    }
}

/// Runs `fut` with a deadline.
async fn timed<T>(
    limit_ms: u64,
    fut: impl std::future::Future<Output = Result<T, crate::ws::conn::Error>>,
) -> Result<T, SessionIo> {
    let limit = Duration::from_millis(limit_ms);
    let timeout = async {
        Timer::after(limit).await;
        Err(SessionIo::Timeout(limit))
    };
    smol::future::or(async { fut.await.map_err(SessionIo::Ws) }, timeout).await
}

/// A number in `[0, 1)` for backoff jitter.
fn jitter() -> f64 {
    let mut b = [0u8; 8];
    tls::random_bytes(&mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod token_retry_tests {
    use super::retry_store;
    use std::cell::{Cell, RefCell};

    #[test]
    fn a_token_that_could_not_be_written_is_retried_until_written() {
        let unsaved = RefCell::new(Some("tok-1".to_owned()));
        let disk_ok = Cell::new(false);
        let written = RefCell::new(Vec::new());
        let store = |t: &str| {
            if disk_ok.get() {
                written.borrow_mut().push(t.to_owned());
                Ok(())
            } else {
                Err("No space left on device (os error 28)")
            }
        };
        assert!(!retry_store(&unsaved, store), "disk still full");
        assert!(!retry_store(&unsaved, store));
        // A newer token (a re-registration) replaces the waiting one.
        unsaved.replace(Some("tok-2".to_owned()));
        disk_ok.set(true);
        assert!(retry_store(&unsaved, store));
        assert_eq!(*written.borrow(), ["tok-2"]);
        assert!(unsaved.borrow().is_none());
        // Nothing waiting: nothing written.
        assert!(retry_store(&unsaved, store));
        assert_eq!(written.borrow().len(), 1);
    }
}
