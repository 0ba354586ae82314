//! Agent-side HTTP health checks (spec 3.6): the three configuration frames, the scheduler, and the
//! `health_check_result` events. Read spec 3.6 first.
//!
//! - [`config`]: a `<config>` object → the compact [`config::Check`], pure.
//! - [`set`]: the configs and when each is due, pure (time is an argument).
//! - this file: the entry point [`notice`], the scheduler task, one check run ([`crate::probe`]), and
//!   the result's shape and texts ([`judge`], [`write_result`], pure).
//!
//! Life cycle: the first configuration frame spawns one scheduler task on the agent's executor,
//! which lives as long as the agent. Configs survive a reconnect until the next sync replaces them
//! (spec 3.6.1: the backend sends nothing when a host has no checks left). The task wakes every
//! `HEALTH_TICK_MS` (the Go agent's 1 s ticker) and whenever a config arrives or a run ends, and
//! starts due checks while a slot is free; while DockMon is not connected it starts nothing. A run
//! is cancelled when the connection it started on ends ("Request cancelled"), and a result is sent
//! only on that same connection and only if its config is still the one stored; anything else is
//! dropped (spec 3.6.2: results produced while the connection is torn down are dropped).
//!
//! Heap: while a large reply is built (`list_containers`, see [`Quiet`]) no check starts, so the
//! reply's peak and the buffers of checks in flight do not add up at the heap's high-water mark.
//!
//! Bounds: `HEALTH_CHECKS_MAX_COUNT` configs (the one past the cap is refused with one warning until
//! the set has room again), `HEALTH_IN_FLIGHT_MAX_COUNT` runs at once (each its own small task and
//! one socket), every run under its own timeout. Nothing here blocks the thread, so a slow target
//! delays neither the stats sampler nor command replies. The backend's own field limits
//! ([`FAILURE_TEXT_MAX_CHARS`], [`config::HOST_ID_MAX_BYTES`]) stay beside the code that applies them
//! rather than in `limits`.
//!
//! State: the agent builds one `Context` for its life and the frames that carry configs get no
//! reply, so the set lives in this module (one per thread: the agent has one) rather than in
//! `Context`, which keeps `modes::agent` unaware of health checks.
pub mod config;
pub mod set;

use super::context::{Context, Link, Sink};
use super::msg;
use crate::outbox::Class;
use crate::probe::{self, Answer, Request};
use crate::rfc3339;
use async_io::Timer;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use smol::channel::{Receiver, Sender};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::limits::{HEALTH_CHECKS_MAX_COUNT, HEALTH_TICK_MS};
use config::Check;
use set::{Due, Full, Set};

/// The frame types handled here (spec 3.6.1).
pub const FRAME_TYPES: [&str; 3] = [
    "health_check_configs_sync",
    "health_check_config",
    "health_check_config_remove",
];

/// The scheduler's state, shared by its task and the runs it starts.
struct State {
    set: RefCell<Set>,
    /// Wakes the scheduler: a config arrived or a run ended.
    wake: (Sender<()>, Receiver<()>),
    tls: probe::Tls,
    /// A config was refused for the cap since the set last had room (one warning per episode).
    full_warned: Cell<bool>,
}

thread_local! {
    static STATE: RefCell<Option<Rc<State>>> = const { RefCell::new(None) };
    /// [`Quiet`] guards alive: while non-zero the scheduler starts no run.
    static QUIET: Cell<usize> = const { Cell::new(0) };
}

/// Held by a handler that builds a large reply (DockMon's `list_containers`, about 1 KB per
/// container): while one is alive, and then while any reply waits in the outbox, the scheduler
/// starts no check, so the heap a reply needs at its
/// largest does not add up with the buffers of checks in flight (a socket's `CONN_BUF_BYTES`, a TLS
/// handshake's records). Checks already running go on; fast ones end long before a list of many
/// containers is complete, so at the reply's peak only hung targets still hold their buffers. Due
/// checks wait until the last guard is dropped (a list takes well under a second): no run is lost,
/// and nothing the handler does waits for a check.
#[must_use = "the scheduler is quiet only while the guard lives"]
pub struct Quiet(());

/// Starts a quiet period that lasts until the guard is dropped (see [`Quiet`]).
pub fn quiet() -> Quiet {
    QUIET.with(|q| q.set(q.get() + 1));
    Quiet(())
}

impl Drop for Quiet {
    fn drop(&mut self) {
        let left = QUIET.with(|q| {
            q.set(q.get().saturating_sub(1));
            q.get()
        });
        if left == 0 {
            // Due checks start now rather than at the next tick.
            STATE.with(|cell| {
                if let Some(state) = cell.borrow().as_ref() {
                    let _ = state.wake.0.try_send(());
                }
            });
        }
    }
}

fn is_quiet() -> bool {
    QUIET.with(|q| q.get() > 0)
}

/// Handles a health-check frame (`kind` one of [`FRAME_TYPES`]); returns false for any other type.
/// The first one starts the scheduler on `ctx.ex`.
pub fn notice(ctx: &Context, kind: &str, payload: Option<&RawValue>) -> bool {
    if !FRAME_TYPES.contains(&kind) {
        return false;
    }
    let state = STATE.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| {
                let state = Rc::new(State {
                    set: RefCell::new(Set::default()),
                    wake: smol::channel::bounded(1),
                    tls: probe::Tls::new(ctx.config.ssl_cert_file.clone()),
                    full_warned: Cell::new(false),
                });
                ctx.ex
                    .spawn(schedule(
                        state.clone(),
                        ctx.link.clone(),
                        ctx.sink.clone(),
                        ctx.ex.clone(),
                    ))
                    .detach();
                state
            })
            .clone()
    });
    let payload = payload.map_or("null", RawValue::get);
    match kind {
        "health_check_configs_sync" => sync(&state, payload),
        "health_check_config" => {
            if let Some(check) = parse_one(payload) {
                add(&state, check);
            }
        }
        _ => remove(&state, payload),
    }
    let _ = state.wake.0.try_send(());
    true
}

#[derive(Deserialize)]
struct SyncPayload<'a> {
    #[serde(borrow, default)]
    configs: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct RemovePayload<'a> {
    #[serde(borrow, default)]
    container_id: Option<Cow<'a, str>>,
}

fn sync(state: &State, payload: &str) {
    let configs = match serde_json::from_str::<SyncPayload>(payload) {
        Ok(p) => p.configs.unwrap_or_default(),
        Err(e) => {
            log::warn!("ignoring a health_check_configs_sync frame whose payload is not {{\"configs\":[…]}}: {e}");
            return;
        }
    };
    state.set.borrow_mut().clear();
    state.full_warned.set(false);
    for raw in configs {
        if let Some(check) = parse_one(raw.get()) {
            add(state, check);
        }
    }
    let set = state.set.borrow();
    log::info!(
        "health checks: {} configured by DockMon ({} enabled)",
        set.len(),
        set.enabled()
    );
}

fn parse_one(json: &str) -> Option<Check> {
    match config::parse(json) {
        Ok(p) => {
            for note in &p.notes {
                log::warn!(
                    "health check for container {}: {note}",
                    p.check.container_id
                );
            }
            Some(p.check)
        }
        Err(e) => {
            log::warn!("ignoring a health-check config: {e}");
            None
        }
    }
}

fn add(state: &State, check: Check) {
    let id = check.container_id.clone();
    let result = state.set.borrow_mut().upsert(check);
    if result == Err(Full) && !state.full_warned.replace(true) {
        log::warn!(
            "health check for container {id} refused: {HEALTH_CHECKS_MAX_COUNT} checks are configured (HEALTH_CHECKS_MAX_COUNT); further ones are refused without another warning until one is removed"
        );
    }
}

fn remove(state: &State, payload: &str) {
    match serde_json::from_str::<RemovePayload>(payload) {
        Ok(RemovePayload {
            container_id: Some(id),
        }) => {
            if state.set.borrow_mut().remove(&id) {
                state.full_warned.set(false);
                log::info!("health check for container {id} removed");
            } else {
                log::debug!("health_check_config_remove for {id}: no such check");
            }
        }
        _ => log::warn!("ignoring a health_check_config_remove frame without a container_id"),
    }
}

/// The scheduler: starts due checks on every tick and whenever woken, while DockMon is connected.
async fn schedule(
    state: Rc<State>,
    link: Rc<Link>,
    sink: Rc<dyn Sink>,
    ex: Rc<smol::LocalExecutor<'static>>,
) {
    let tick = Duration::from_millis(HEALTH_TICK_MS);
    let mut next_tick = Instant::now() + tick;
    // A reply waiting in the outbox: checked again once the writer has written something.
    let mut replies_waiting = false;
    loop {
        let woken = async {
            let _ = state.wake.1.recv().await;
        };
        let drained = async {
            if replies_waiting {
                // Closed (`Err`) is the signal: the writer sent something.
                let _ = sink.drained().recv().await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let timer = async {
            Timer::at(next_tick).await;
        };
        smol::future::or(woken, smol::future::or(drained, timer)).await;
        let now = Instant::now();
        if now >= next_tick {
            next_tick = now + tick;
        }
        // Quiet also while a reply waits to be written: the list reply a Quiet guard covered is
        // queued after the guard is gone, and its buffer lives until the writer is done with it.
        replies_waiting = sink.queued(Class::Reply) > 0;
        if !link.is_connected() || is_quiet() || replies_waiting {
            continue;
        }
        loop {
            let Some(due) = state.set.borrow_mut().next_due(now) else {
                break;
            };
            ex.spawn(run(state.clone(), link.clone(), sink.clone(), due))
                .detach();
        }
    }
}

/// One run: the request, then the result event (or nothing, see the module doc).
async fn run(state: Rc<State>, link: Rc<Link>, sink: Rc<dyn Sink>, due: Due) {
    let generation = link.generation();
    let ended = link.ended();
    let check = &due.check;
    let req = Request {
        method: check.method,
        url: &check.url,
        headers: check.header_lines(),
        authorization: check.authorization(),
        follow_redirects: check.follow_redirects,
        verify_tls: check.verify_ssl,
    };
    let started = Instant::now();
    let timeout = Duration::from_secs(u64::from(check.timeout_s));
    let request = async { Some(probe::run(&req, &state.tls, timeout).await) };
    let cancel = async {
        // Never sent on: fails once the connection ends.
        let _ = ended.recv().await;
        None
    };
    let outcome = match smol::future::or(request, cancel).await {
        Some(Ok(answer)) => Run::Answer(answer),
        Some(Err(e)) => Run::Failed(e),
        None => Run::Cancelled,
    };
    let current = state.set.borrow_mut().finished(&due);
    let _ = state.wake.0.try_send(());
    let (healthy, status, error) = judge(check, &outcome);
    let elapsed = match &outcome {
        Run::Answer(a) => a.head_at.saturating_duration_since(started),
        _ => started.elapsed(),
    };
    if !current || !link.is_connected() || link.generation() != generation {
        log::debug!(
            "health check for container {}: result dropped (config changed or connection ended): {}",
            check.container_id,
            if healthy { "healthy" } else { error.as_str() }
        );
        return;
    }
    log::debug!(
        "health check for container {}: {} in {} ms",
        check.container_id,
        if healthy { "healthy" } else { error.as_str() },
        elapsed.as_millis()
    );
    let mut out = sink.buffer();
    let (secs, nanos) = rfc3339::now();
    write_result(
        &mut out,
        &ResultPayload {
            container_id: &check.container_id,
            host_id: &check.host_id,
            healthy,
            status_code: status,
            response_time_ms: elapsed.as_millis() as u64,
            error_message: &error,
            timestamp: &rfc3339::seconds(secs),
        },
        &rfc3339::nanos(secs, nanos),
    );
    sink.send(Class::Event, out);
}

/// How a run ended.
#[derive(Debug)]
pub enum Run {
    /// A response arrived.
    Answer(Answer),
    /// The request failed.
    Failed(probe::Error),
    /// The connection the run belongs to ended first.
    Cancelled,
}

/// Characters of a failure kept after `Connection failed: ` (spec 3.6.2).
pub const FAILURE_TEXT_MAX_CHARS: usize = 100;

/// Healthy or not, the status code (0 when there was none) and the error text (empty when healthy),
/// with the texts of spec 3.6.2.
pub fn judge(check: &Check, run: &Run) -> (bool, u16, String) {
    match run {
        Run::Answer(a) if check.expected.contains(a.status) => (true, a.status, String::new()),
        Run::Answer(a) => (false, a.status, format!("Status {}", a.status)),
        Run::Cancelled => (false, 0, "Request cancelled".to_string()),
        Run::Failed(e) => (false, 0, failure_text(e, check.timeout_s)),
    }
}

/// The spec 3.6.2 text for a failed request.
pub fn failure_text(e: &probe::Error, timeout_s: u32) -> String {
    if matches!(e, probe::Error::Timeout { .. }) {
        format!("Timeout after {timeout_s}s")
    } else if e.is_refused() {
        "Connection refused".to_string()
    } else if e.is_host_not_found() {
        "Host not found".to_string()
    } else {
        let detail: String = e.to_string().chars().take(FAILURE_TEXT_MAX_CHARS).collect();
        format!("Connection failed: {detail}")
    }
}

/// The `health_check_result` payload (spec 3.6.2).
#[derive(Debug, Serialize)]
pub struct ResultPayload<'a> {
    /// The check's container.
    pub container_id: &'a str,
    /// The config's `host_id`.
    pub host_id: &'a str,
    /// Whether the status was expected.
    pub healthy: bool,
    /// Sent only when non-zero.
    #[serde(skip_serializing_if = "is_zero")]
    pub status_code: u16,
    /// Until the response head (or the failure).
    pub response_time_ms: u64,
    /// Sent only when non-empty.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub error_message: &'a str,
    /// UTC, RFC 3339 seconds.
    pub timestamp: &'a str,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

/// Writes the `health_check_result` event.
pub fn write_result(out: &mut Vec<u8>, payload: &ResultPayload<'_>, now: &rfc3339::Stamp) {
    msg::write_event(out, "health_check_result", payload, now);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: &str) -> Check {
        config::parse(json).unwrap().check
    }

    fn answer(status: u16) -> Run {
        Run::Answer(Answer {
            status,
            head_at: Instant::now(),
        })
    }

    #[test]
    fn statuses_judge_health() {
        let c =
            check(r#"{"container_id":"a","expected_status_codes":"200-204","timeout_seconds":7}"#);
        assert_eq!(judge(&c, &answer(204)), (true, 204, String::new()));
        assert_eq!(judge(&c, &answer(500)), (false, 500, "Status 500".into()));
        assert_eq!(
            judge(&c, &Run::Cancelled),
            (false, 0, "Request cancelled".into())
        );
        let timeout = Run::Failed(probe::Error::Timeout { ms: 7000 });
        assert_eq!(judge(&c, &timeout), (false, 0, "Timeout after 7s".into()));
    }

    #[test]
    fn failures_have_the_documented_texts() {
        let refused = probe::Error::Connect {
            addr: "127.0.0.1:9".parse().unwrap(),
            source: std::io::ErrorKind::ConnectionRefused.into(),
        };
        assert_eq!(failure_text(&refused, 5), "Connection refused");
        let unreachable = probe::Error::Connect {
            addr: "192.0.2.1:80".parse().unwrap(),
            source: std::io::Error::from_raw_os_error(113),
        };
        assert!(failure_text(&unreachable, 5).starts_with("Connection failed: tcp 192.0.2.1:80: "));
        let nx = probe::Error::Dns(crate::dns::Error {
            host: "nope.example".into(),
            why: crate::dns::Why::NoSuchHost {
                server: "192.0.2.53".parse().unwrap(),
            },
        });
        assert_eq!(failure_text(&nx, 5), "Host not found");
        let long = probe::Error::TlsConfig("x".repeat(300));
        let text = failure_text(&long, 5);
        assert_eq!(
            text.len(),
            "Connection failed: ".len() + FAILURE_TEXT_MAX_CHARS
        );
        let url = probe::Error::Url(probe::url::Error::Scheme);
        assert_eq!(
            failure_text(&url, 5),
            "Connection failed: invalid URL: only http:// and https:// URLs are supported"
        );
    }

    #[test]
    fn result_frames_leave_out_zero_and_empty_fields() {
        let mut out = Vec::new();
        let now = rfc3339::nanos(0, 5);
        let mut p = ResultPayload {
            container_id: "b1b2c3d4e5f6",
            host_id: "h",
            healthy: false,
            status_code: 0,
            response_time_ms: 3,
            error_message: "Connection refused",
            timestamp: "2026-11-29T00:16:47Z",
        };
        write_result(&mut out, &p, &now);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"type":"event","command":"health_check_result","payload":{"container_id":"b1b2c3d4e5f6","host_id":"h","healthy":false,"response_time_ms":3,"error_message":"Connection refused","timestamp":"2026-11-29T00:16:47Z"},"timestamp":"1970-01-01T00:00:00.000000005Z"}"#
        );
        p.healthy = true;
        p.status_code = 200;
        p.error_message = "";
        write_result(&mut out, &p, &now);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["payload"]["status_code"], 200);
        assert!(v["payload"].get("error_message").is_none());
        assert!(v.get("id").is_none() && v.get("correlation_id").is_none());
    }
}
