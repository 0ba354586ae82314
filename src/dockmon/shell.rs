//! DockMon's web shell (spec 3.8.6): `shell_session` frames from the backend open, feed, resize and
//! close a TTY exec in a container; its output goes back as `shell_data` events.
//!
//! Read spec 3.8.6 first. Per session one task on the agent's executor owns the exec's hijacked
//! Docker socket ([`crate::docker::exec`]) and races three things: TTY output → `shell_data` `data`
//! frames (base64, at most `SHELL_READ_BYTES` each), keystrokes and resizes from the backend → the
//! TTY and `POST /exec/{id}/resize`, and the end of the DockMon connection. Frames: `started` once
//! attached, `data`, then `closed` at EOF (or after the backend's `close`), or `error` with the
//! reason (`Failed to create shell: …`). When the connection drops nothing more is sent: the
//! session just ends, like every session of that connection.
//!
//! Ending a session does not end its shell by itself: Docker keeps a TTY exec's stdin open when the
//! attach connection closes (moby `container/stream/attach.go` closes stdin only without a TTY), so
//! the shell would wait for input forever. A session that ends before its shell did (`close`, the
//! DockMon connection dropped, a socket error) hangs it up: a second exec in the container runs the
//! shell builtin `kill -HUP` on the shell's PID inside the container (then `kill -KILL` if it is
//! still there). The shell is the session leader of its TTY, so the kernel hangs up its foreground
//! job with it. Then the task checks that the exec ended (exec inspect, `SHELL_EXIT_CHECK_MS`) and
//! warns if not. Docker only tells the exec's host PID, so the PID inside the container is found
//! one of two ways:
//! - with the host's /proc (`/host/proc` in container mode, `/proc` in systemd mode): `NSpid` of
//!   `<proc>/<pid>/status`, checked to belong to the container by its cgroup file;
//! - without it (container mode as DockMon's `docker run` line starts it: no /host/proc, and the
//!   agent's own PID namespace hides the exec): through the Docker API alone. Every session's exec
//!   gets one more environment variable, `DOCKMON_SHELL=<nonce>` ([`marker`]; fixed width, unique
//!   per agent start and session, so no nonce is a prefix of another), and the second exec signals
//!   the process in the container whose environment holds it and whose parent is outside the
//!   container (`PPid: 0`: the exec's own process, not a child that inherited the variable). The
//!   terminal shows nothing of this (the variable is in the shell's environment, `env` lists it);
//!   the script needs `cat` in the container besides `sh` ([`hangup_script`]).
//!
//! Bounds and policies when full:
//! - at most `SHELL_SESSIONS_MAX_COUNT` sessions; a `start` past it gets an `error` frame;
//! - output is never dropped: while the outbox holds `SHELL_OUTBOX_EVENTS_HIGH_COUNT` events the
//!   task stops reading the TTY (backpressure reaches the process through Docker and the TTY), and
//!   waits for the writer to drain;
//! - per session one read buffer of `SHELL_READ_BYTES` and its base64 text, allocated once;
//! - keystrokes queue up to `SHELL_INPUT_QUEUE_MAX_COUNT` messages; past that they are dropped
//!   (debug line).
//!
//! The registry of open sessions is thread-local: the agent has one thread, and the entry point
//! stays `handle(ctx, payload)` without new fields in [`Context`].
use super::context::{Context, Sink};
use super::msg;
use crate::docker::{self, Client};
use crate::limits::*;
use crate::outbox::Class;
use crate::rfc3339;
use crate::ws::base64;
use async_io::Timer;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use smol::channel::{Receiver, Sender, TrySendError};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

/// The exec's command: bash when the image has it, else sh (spec 3.8.6, the Go agent's command).
pub const SHELL_CMD: [&str; 3] = [
    "/bin/sh",
    "-c",
    "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi",
];
/// The exec's environment (spec 3.8.6).
pub const SHELL_ENV: [&str; 1] = ["TERM=xterm-256color"];

/// A session ID from the backend.
pub type SessionId = heapless::String<SHELL_SESSION_ID_MAX_BYTES>;

/// What a `shell_session` frame asks (spec 3.8.6), parsed from its payload.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Open a shell in a container.
    Start {
        /// The session.
        session: &'a str,
        /// The container (ID or name).
        container: &'a str,
    },
    /// Keystrokes, base64-decoded.
    Data {
        /// The session.
        session: &'a str,
        /// The bytes to write to the TTY.
        bytes: Vec<u8>,
    },
    /// A new terminal size.
    Resize {
        /// The session.
        session: &'a str,
        /// Rows (1-65535).
        rows: u16,
        /// Columns (1-65535).
        cols: u16,
    },
    /// End the session.
    Close {
        /// The session.
        session: &'a str,
    },
}

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow, default)]
    action: Cow<'a, str>,
    #[serde(borrow, default)]
    session_id: Cow<'a, str>,
    #[serde(borrow, default)]
    container_id: Cow<'a, str>,
    #[serde(borrow, default)]
    data: Cow<'a, str>,
    #[serde(default)]
    cols: Option<f64>,
    #[serde(default)]
    rows: Option<f64>,
}

/// Why a `shell_session` payload was not understood. Carries the session ID when there was one, so
/// the session can be told.
#[derive(Debug, PartialEq, Eq)]
pub struct BadPayload {
    /// The payload's `session_id` (empty when missing).
    pub session: String,
    /// What was wrong.
    pub reason: String,
}

/// Parses a `shell_session` payload. Pure.
pub fn parse(payload: &str) -> Result<Action<'_>, BadPayload> {
    let bad = |session: &str, reason: String| BadPayload {
        session: session.to_string(),
        reason,
    };
    let p: Payload = serde_json::from_str(payload).map_err(|e| bad("", e.to_string()))?;
    // Only borrowed strings can outlive `p`: an escaped ID or base64 text (Cow::Owned) would need a
    // copy, and none of these values has a reason to hold escapes.
    let borrowed = |c: &Cow<'_, str>, what: &str| -> Result<(), BadPayload> {
        match c {
            Cow::Borrowed(_) => Ok(()),
            Cow::Owned(_) => Err(bad("", format!("{what} contains JSON escapes"))),
        }
    };
    // A missing field defaults to an owned empty string: check emptiness first.
    if p.session_id.is_empty() {
        return Err(bad("", "session_id is required".into()));
    }
    borrowed(&p.session_id, "session_id")?;
    let session = borrowed_str(&p.session_id);
    if session.len() > SHELL_SESSION_ID_MAX_BYTES {
        return Err(bad(
            "",
            format!(
                "session_id is {} bytes long, the limit is {SHELL_SESSION_ID_MAX_BYTES}",
                session.len()
            ),
        ));
    }
    let size = |v: Option<f64>, what: &str| -> Result<u16, BadPayload> {
        match v {
            Some(n) if n.is_finite() && n >= 1.0 && n <= f64::from(u16::MAX) => Ok(n as u16),
            _ => Err(bad(
                session,
                format!("{what} must be a number from 1 to 65535"),
            )),
        }
    };
    match p.action.as_ref() {
        "start" => {
            if p.container_id.is_empty() {
                return Err(bad(session, "container_id is required".into()));
            }
            borrowed(&p.container_id, "container_id")?;
            let container = borrowed_str(&p.container_id);
            Ok(Action::Start { session, container })
        }
        "data" => {
            let mut bytes = Vec::new();
            base64::decode(p.data.as_bytes(), &mut bytes)
                .map_err(|e| bad(session, format!("data: {e}")))?;
            Ok(Action::Data { session, bytes })
        }
        "resize" => Ok(Action::Resize {
            session,
            rows: size(p.rows, "rows")?,
            cols: size(p.cols, "cols")?,
        }),
        "close" => Ok(Action::Close { session }),
        other => Err(bad(session, format!("unknown action `{other}`"))),
    }
}

fn borrowed_str<'a>(c: &Cow<'a, str>) -> &'a str {
    match c {
        Cow::Borrowed(s) => s,
        Cow::Owned(_) => "",
    }
}

/// Keeps the first line of the shell's output (up to its capacity): when the exec never started,
/// it is Docker's reason.
pub(crate) fn remember(bytes: &[u8], first_line: &mut heapless::String<200>) {
    if first_line.is_empty() {
        let line = String::from_utf8_lossy(bytes);
        for c in line.trim().lines().next().unwrap_or("").chars() {
            if first_line.push(c).is_err() {
                break;
            }
        }
    }
}

/// The `shell_data` payload (spec 3.8.6).
#[derive(Debug, Serialize)]
struct ShellData<'a> {
    session_id: &'a str,
    action: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// Writes a `shell_data` event: `action` with the optional `data` (base64 text) or `error`.
pub fn write_shell_data(
    out: &mut Vec<u8>,
    session: &str,
    action: &str,
    data: Option<&str>,
    error: Option<&str>,
) {
    let (s, n) = rfc3339::now();
    msg::write_event(
        out,
        "shell_data",
        ShellData {
            session_id: session,
            action,
            data,
            error,
        },
        &rfc3339::nanos(s, n),
    );
}

enum Input {
    Data(Vec<u8>),
    Resize(u16, u16),
}

struct Entry {
    id: SessionId,
    serial: u64,
    tx: Sender<Input>,
}

thread_local! {
    /// The open sessions. A session's input sender lives only here: removing the entry closes the
    /// channel, which ends the session (`close`).
    static SESSIONS: RefCell<heapless::Vec<Entry, SHELL_SESSIONS_MAX_COUNT>> =
        const { RefCell::new(heapless::Vec::new()) };
    static SERIAL: Cell<u64> = const { Cell::new(0) };
}

/// Sessions open now (for tests and the log).
pub fn open_count() -> usize {
    SESSIONS.with(|s| s.borrow().len())
}

fn with_session<R>(id: &str, f: impl FnOnce(&Entry) -> R) -> Option<R> {
    SESSIONS.with(|s| s.borrow().iter().find(|e| e.id == id).map(f))
}

fn remove(serial: u64) {
    SESSIONS.with(|s| s.borrow_mut().retain(|e| e.serial != serial));
}

/// Handles one `shell_session` frame's payload: never answers with a reply, only `shell_data`.
pub fn handle(ctx: &Context, payload: Option<&RawValue>) {
    let Some(payload) = payload else {
        log::warn!("shell_session without payload ignored");
        return;
    };
    let action = match parse(payload.get()) {
        Ok(a) => a,
        Err(BadPayload { session, reason }) => {
            log::warn!("shell_session: {reason}");
            if !session.is_empty() {
                send(&*ctx.sink, &session, "error", None, Some(&reason));
            }
            return;
        }
    };
    match action {
        Action::Start { session, container } => start(ctx, session, container),
        Action::Data { session, bytes } => feed(session, Input::Data(bytes)),
        Action::Resize {
            session,
            rows,
            cols,
        } => feed(session, Input::Resize(rows, cols)),
        Action::Close { session } => {
            if let Some(serial) = with_session(session, |e| e.serial) {
                remove(serial);
            }
        }
    }
}

fn feed(session: &str, input: Input) {
    match with_session(session, |e| e.tx.try_send(input)) {
        None => log::debug!("shell input for session {session}, which is not open: dropped"),
        Some(Ok(())) => {}
        Some(Err(TrySendError::Full(_))) => log::debug!(
            "shell session {session}: {SHELL_INPUT_QUEUE_MAX_COUNT} inputs queued, one dropped"
        ),
        Some(Err(TrySendError::Closed(_))) => {}
    }
}

fn start(ctx: &Context, session: &str, container: &str) {
    // parse() checked the length.
    let Ok(id) = SessionId::try_from(session) else {
        return;
    };
    let refuse = |why: &str| {
        log::warn!("shell session {session} in {container} refused: {why}");
        let text = format!("Failed to create shell: {why}");
        send(&*ctx.sink, session, "error", None, Some(&text));
    };
    if with_session(session, |_| ()).is_some() {
        return refuse("a session with this ID is already open");
    }
    let (tx, rx) = smol::channel::bounded(SHELL_INPUT_QUEUE_MAX_COUNT);
    let serial = SERIAL.with(|s| {
        s.set(s.get() + 1);
        s.get()
    });
    let pushed = SESSIONS.with(|s| {
        s.borrow_mut()
            .push(Entry {
                id: id.clone(),
                serial,
                tx,
            })
            .is_ok()
    });
    if !pushed {
        return refuse(&format!(
            "too many shell sessions open on this host (the limit is {SHELL_SESSIONS_MAX_COUNT})"
        ));
    }
    log::info!("shell session {session} started in container {container}");
    let task = Session {
        client: ctx.client.clone(),
        sink: ctx.sink.clone(),
        ended: ctx.link.ended(),
        container: container.to_string(),
        id,
        marker: marker(agent_start_nanos(), serial),
    };
    ctx.ex
        .spawn(async move {
            task.run(rx).await;
            remove(serial);
        })
        .detach();
}

fn send(sink: &dyn Sink, session: &str, action: &str, data: Option<&str>, error: Option<&str>) {
    let mut out = sink.buffer();
    write_shell_data(&mut out, session, action, data, error);
    sink.send(Class::Event, out);
}

/// How a session's stream ended.
enum End {
    /// The TTY closed (the shell exited).
    Eof,
    /// The backend sent `close`.
    Closed,
    /// The DockMon connection ended.
    Dropped,
    /// Reading or writing the exec's socket failed.
    Failed(String),
}

struct Session {
    client: Rc<Client>,
    sink: Rc<dyn Sink>,
    ended: Receiver<()>,
    container: String,
    id: SessionId,
    /// `DOCKMON_SHELL=<nonce>`, in the exec's environment (see the module doc).
    marker: Marker,
}

/// `DOCKMON_SHELL=` and 24 hex digits.
pub type Marker = heapless::String<40>;

/// The environment variable that marks a session's exec: `DOCKMON_SHELL=` then the agent's start
/// time in nanoseconds (16 hex digits) and the session's serial (8), so it is unique across
/// restarts of the agent and, being of fixed width, never a prefix of another. Pure.
pub fn marker(start_nanos: u64, serial: u64) -> Marker {
    let mut m = Marker::new();
    // 14 + 16 + 8 = 38 bytes fit the 40.
    let _ = std::fmt::Write::write_fmt(
        &mut m,
        format_args!("DOCKMON_SHELL={start_nanos:016x}{:08x}", serial as u32),
    );
    m
}

/// When this agent started, in nanoseconds since the epoch (taken at its first session).
fn agent_start_nanos() -> u64 {
    thread_local! {
        static START: Cell<u64> = const { Cell::new(0) };
    }
    START.with(|s| {
        if s.get() == 0 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
            s.set(now.max(1));
        }
        s.get()
    })
}

/// The second exec's script without the host's /proc: sends `signal` to every process of the
/// container whose environment holds `marker` and whose parent is outside the container. Shell
/// builtins and `cat` only (command substitution drops the NULs between the variables; the marker's
/// fixed width keeps the match exact). Pure.
pub fn hangup_script(signal: &str, marker: &str) -> String {
    format!(
        "for d in /proc/[0-9]*; do case $(cat $d/environ 2>/dev/null) in *{marker}*) \
         while read -r k v; do [ \"$k\" = PPid: ] && [ \"$v\" = 0 ] && kill -{signal} ${{d#/proc/}}; \
         done < $d/status;; esac; done"
    )
}

impl Session {
    /// Queues a frame of this session, unless its connection has ended: the session belongs to that
    /// connection, and a frame for it would only reach the next one.
    fn send(&self, action: &str, data: Option<&str>, error: Option<&str>) {
        if !self.ended.is_closed() {
            send(&*self.sink, &self.id, action, data, error);
        }
    }

    async fn run(&self, rx: Receiver<Input>) {
        let env = [SHELL_ENV[0], self.marker.as_str()];
        let exec = match self
            .client
            .exec_create(&self.container, &SHELL_CMD, &env, true)
            .await
        {
            Ok(e) => e,
            Err(e) => return self.fail(&e),
        };
        let attached = match self.client.exec_start_attached(&exec).await {
            Ok(a) => a,
            Err(e) => return self.fail(&e),
        };
        self.send("started", None, None);
        let mut first_line = heapless::String::<200>::new();
        let end = self
            .stream(
                &exec,
                attached.stream,
                &attached.early,
                &rx,
                &mut first_line,
            )
            .await;
        // The socket is closed now: the exec's stdin with it.
        match end {
            End::Eof => match self.client.exec_inspect(&exec).await {
                // Docker upgraded but could not start the command (no /bin/sh): it wrote the
                // reason into the stream, and the exec never had a process.
                Ok(state) if state.pid == 0 && matches!(state.exit_code, Some(126 | 127)) => {
                    let reason = if first_line.is_empty() {
                        "the shell could not be started"
                    } else {
                        first_line.as_str()
                    };
                    log::warn!("shell session {} failed: {reason}", self.id);
                    let text = format!("Failed to create shell: {reason}");
                    self.send("error", None, Some(&text));
                }
                _ => self.send("closed", None, None),
            },
            End::Closed => self.send("closed", None, None),
            End::Dropped => {}
            End::Failed(why) => {
                log::warn!("shell session {}: {why}", self.id);
                self.send("error", None, Some(&why));
            }
        }
        log::info!("shell session {} ended", self.id);
        self.check_exit(&exec).await;
    }

    /// Sends `signal` to the exec's process from inside its container (see the module doc): by its
    /// PID there when the host's /proc tells it, else by the session's marker.
    async fn signal(&self, state: &docker::exec::ExecState, signal: &str) {
        let script = match container_pid(state) {
            Some(ns_pid) => format!("kill -{signal} {ns_pid}"),
            None => {
                log::debug!(
                    "shell session {}: no /proc entry of host pid {}: kill -{signal} by {}",
                    self.id,
                    state.pid,
                    self.marker
                );
                hangup_script(signal, &self.marker)
            }
        };
        let cmd = ["/bin/sh", "-c", script.as_str()];
        let started = match self
            .client
            .exec_create(&state.container_id, &cmd, &[], false)
            .await
        {
            Ok(kill) => self.client.exec_start_detached(&kill).await,
            Err(e) => Err(e),
        };
        if let Err(e) = started {
            log::debug!("shell session {}: kill -{signal}: {e}", self.id);
        }
    }

    fn fail(&self, e: &docker::Error) {
        let text = match e {
            docker::Error::Status { message, .. } => {
                format!("Failed to create shell: Error response from daemon: {message}")
            }
            other => format!("Failed to create shell: {other}"),
        };
        log::warn!("shell session {} in {}: {text}", self.id, self.container);
        self.send("error", None, Some(&text));
    }

    /// Pumps the TTY both ways until one side ends. Owns the socket and the buffers, so all of it
    /// is freed when this returns.
    async fn stream(
        &self,
        exec: &str,
        stream: crate::docker::stream::Stream,
        early: &[u8],
        rx: &Receiver<Input>,
        first_line: &mut heapless::String<200>,
    ) -> End {
        let mut text = vec![0u8; base64::encoded_len(SHELL_READ_BYTES)];
        for chunk in early.chunks(SHELL_READ_BYTES) {
            self.room().await;
            remember(chunk, first_line);
            self.send_data(chunk, &mut text);
        }
        // Read and written at once: a TLS stream (tcp:// engines) needs the two halves split.
        let (mut reader, mut writer) = smol::io::split(stream);
        let output = async {
            let mut buf = vec![0u8; SHELL_READ_BYTES];
            loop {
                self.room().await;
                match reader.read(&mut buf).await {
                    Ok(0) => return End::Eof,
                    Ok(n) => {
                        remember(&buf[..n], first_line);
                        self.send_data(&buf[..n], &mut text);
                    }
                    Err(e) => return End::Failed(format!("reading the shell's output: {e}")),
                }
            }
        };
        let input = async {
            loop {
                match rx.recv().await {
                    Ok(Input::Data(bytes)) => {
                        let write = async { Some(writer.write_all(&bytes).await) };
                        let timeout = async {
                            Timer::after(Duration::from_millis(SHELL_WRITE_TIMEOUT_MS)).await;
                            None
                        };
                        match smol::future::or(write, timeout).await {
                            Some(Ok(())) => {}
                            Some(Err(e)) => {
                                return End::Failed(format!("writing to the shell: {e}"))
                            }
                            None => {
                                return End::Failed(format!(
                                    "writing to the shell: no progress in {} s",
                                    SHELL_WRITE_TIMEOUT_MS / 1000
                                ))
                            }
                        }
                    }
                    Ok(Input::Resize(rows, cols)) => {
                        if let Err(e) = self.client.exec_resize(exec, rows, cols).await {
                            log::debug!("shell session {}: resize: {e}", self.id);
                        }
                    }
                    Err(_) => return End::Closed,
                }
            }
        };
        let dropped = async {
            let _ = self.ended.recv().await;
            End::Dropped
        };
        smol::future::or(dropped, smol::future::or(input, output)).await
    }

    /// Waits while the outbox holds `SHELL_OUTBOX_EVENTS_HIGH_COUNT` events or more.
    async fn room(&self) {
        while self.sink.queued(Class::Event) >= SHELL_OUTBOX_EVENTS_HIGH_COUNT {
            log::trace!("shell session {}: outbox busy, output held back", self.id);
            // Closed (`Err`) is the signal: the writer sent something.
            let _ = self.sink.drained().recv().await;
        }
    }

    fn send_data(&self, bytes: &[u8], text: &mut [u8]) {
        // `text` holds encoded_len(SHELL_READ_BYTES) and no chunk is longer.
        let n = base64::encode(bytes, text).unwrap_or(0);
        // Base64 output is ASCII.
        let data = std::str::from_utf8(&text[..n]).unwrap_or("");
        self.send("data", Some(data), None);
    }

    /// Hangs up the exec's process if it still runs, and waits (at most `SHELL_EXIT_CHECK_MS`) for it
    /// to end: `HUP` at once, `KILL` half-way. Warns if it did not end.
    async fn check_exit(&self, exec: &str) {
        let start = std::time::Instant::now();
        let deadline = start + Duration::from_millis(SHELL_EXIT_CHECK_MS);
        let half = start + Duration::from_millis(SHELL_EXIT_CHECK_MS / 2);
        let (mut hup, mut kill) = (false, false);
        loop {
            match self.client.exec_inspect(exec).await {
                Ok(state) if !state.running => return,
                Ok(state) if std::time::Instant::now() >= deadline => {
                    log::warn!(
                        "shell session {}: its shell (host pid {}) in container {} still runs {} ms after the session ended (without the host's /proc at /host/proc the hang-up needs `cat` in the container)",
                        self.id, state.pid, self.container, SHELL_EXIT_CHECK_MS
                    );
                    return;
                }
                Ok(state) => {
                    if !hup {
                        hup = true;
                        self.signal(&state, "HUP").await;
                    } else if !kill && std::time::Instant::now() >= half {
                        kill = true;
                        self.signal(&state, "KILL").await;
                    }
                    Timer::after(Duration::from_millis(SHELL_EXIT_POLL_MS)).await
                }
                // The container is gone, or Docker is: nothing left to check.
                Err(e) => {
                    log::debug!("shell session {}: exit check: {e}", self.id);
                    return;
                }
            };
        }
    }
}

/// The exec's PID inside its container: the last `NSpid` entry of its status file, read under the
/// host's /proc (`/host/proc` in container mode, `/proc` in systemd mode), taken only when its cgroup
/// names the container (so a PID of the agent's own namespace is never mistaken for it).
fn container_pid(state: &docker::exec::ExecState) -> Option<u32> {
    if state.pid == 0 || state.container_id.is_empty() {
        return None;
    }
    ["/host/proc", "/proc"].iter().find_map(|root| {
        let dir = std::path::Path::new(root).join(state.pid.to_string());
        let cgroup = std::fs::read_to_string(dir.join("cgroup")).ok()?;
        if !cgroup.contains(state.container_id.as_str()) {
            return None;
        }
        ns_pid(&std::fs::read_to_string(dir.join("status")).ok()?)
    })
}

/// The innermost PID of a `/proc/<pid>/status` text (`NSpid:\t4242\t7`: 7). Pure.
pub fn ns_pid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_fixed_width_and_unique_per_start_and_session() {
        let m = marker(0x1234, 7);
        assert_eq!(m.as_str(), "DOCKMON_SHELL=000000000000123400000007");
        assert_eq!(marker(u64::MAX, u64::MAX).len(), m.len());
        assert_ne!(marker(1, 2), marker(1, 3));
        assert_ne!(marker(1, 2), marker(2, 2));
    }

    #[test]
    fn the_hangup_script_matches_the_marker_and_the_outside_parent() {
        let script = hangup_script("HUP", "DOCKMON_SHELL=ab");
        assert!(script.contains("*DOCKMON_SHELL=ab*)"), "{script}");
        assert!(script.contains("kill -HUP ${d#/proc/}"), "{script}");
        assert!(
            script.contains("[ \"$k\" = PPid: ] && [ \"$v\" = 0 ]"),
            "{script}"
        );
    }

    #[test]
    fn ns_pid_is_the_innermost() {
        assert_eq!(ns_pid("Name:\tsh\nNSpid:\t4242\t7\nNSsid:\t1\n"), Some(7));
        assert_eq!(ns_pid("NSpid:\t4242\n"), Some(4242));
        assert_eq!(ns_pid("Name:\tsh\n"), None);
        assert_eq!(ns_pid("NSpid:\tx\n"), None);
    }

    #[test]
    fn payloads_of_spec_3_8_6() {
        assert_eq!(
            parse(r#"{"action":"start","container_id":"abc","session_id":"s1"}"#),
            Ok(Action::Start {
                session: "s1",
                container: "abc"
            })
        );
        assert_eq!(
            parse(r#"{"action":"data","session_id":"s1","data":"ZWNobyBoaQo="}"#),
            Ok(Action::Data {
                session: "s1",
                bytes: b"echo hi\n".to_vec()
            })
        );
        assert_eq!(
            parse(r#"{"action":"resize","session_id":"s1","cols":120,"rows":40}"#),
            Ok(Action::Resize {
                session: "s1",
                rows: 40,
                cols: 120
            })
        );
        assert_eq!(
            parse(r#"{"action":"close","session_id":"s1"}"#),
            Ok(Action::Close { session: "s1" })
        );
    }

    #[test]
    fn bad_payloads_say_why_and_keep_the_session() {
        let cases: &[(&str, &str, &str)] = &[
            (r#"{"action":"start"}"#, "", "session_id is required"),
            (
                r#"{"action":"start","session_id":"s"}"#,
                "s",
                "container_id is required",
            ),
            (
                r#"{"action":"data","session_id":"s","data":"!!"}"#,
                "s",
                "data: invalid base64 length or padding",
            ),
            (
                r#"{"action":"resize","session_id":"s","cols":0,"rows":5}"#,
                "s",
                "cols must be a number from 1 to 65535",
            ),
            (
                r#"{"action":"resize","session_id":"s","cols":80}"#,
                "s",
                "rows must be a number from 1 to 65535",
            ),
            (
                r#"{"action":"dance","session_id":"s"}"#,
                "s",
                "unknown action `dance`",
            ),
        ];
        for (input, session, reason) in cases {
            let e = parse(input).unwrap_err();
            assert_eq!((e.session.as_str(), e.reason.as_str()), (*session, *reason));
        }
        let long = format!(r#"{{"action":"close","session_id":"{}"}}"#, "x".repeat(65));
        assert!(parse(&long).unwrap_err().reason.contains("limit is 64"));
        assert!(parse("[1]").is_err());
        assert!(parse(r#"{"session_id":"a\"b","action":"close"}"#).is_err());
    }

    #[test]
    fn shell_data_frames_are_events_without_ids() {
        let mut out = Vec::new();
        write_shell_data(&mut out, "s1", "data", Some("aGk="), None);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["type"], "event");
        assert_eq!(v["command"], "shell_data");
        assert_eq!(
            v["payload"],
            serde_json::json!({"session_id":"s1","action":"data","data":"aGk="})
        );
        assert!(v.get("id").is_none() && v.get("correlation_id").is_none());
        write_shell_data(
            &mut out,
            "s1",
            "error",
            None,
            Some("Failed to create shell: x"),
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["payload"],
            serde_json::json!({"session_id":"s1","action":"error","error":"Failed to create shell: x"})
        );
    }
}
