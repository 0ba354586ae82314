//! The stats-service dual-send (spec 4.5, read it first): every container sample also goes, as a
//! plain JSON text frame, to a second WebSocket at `DOCKMON_URL` + `/api/stats/ws/ingest`,
//! authenticated by `Authorization: Bearer <permanent token>` on the upgrade.
//!
//! It lives in `modes/` because it is a driver: it owns a socket and its timers and reuses the agent's
//! transport ([`super::agent::open_transport`]: DNS, TCP, the same TLS configuration).
//!
//! Independence from the main socket: its own task, its own queue, its own connection; nothing is
//! shared but the sampler's callback, which only tries to queue (never waits). Every write has
//! `INGEST_WRITE_TIMEOUT_MS`; a stalled ingest server costs at most the queue and one blocked write.
//!
//! Policies: the queue holds `INGEST_QUEUE_MAX_COUNT` frames (the Go agent's buffer, 256) and drops
//! the new sample when full (as the Go agent does), with one warning per run of drops. Reconnects
//! wait 1 s doubling to 30 s and never reset (spec 4.5). An HTTP 401 is logged once per backoff step
//! (each attempt is one step); other failures once per distinct reason, at info: the Python backend
//! alone answers 404 here and that is harmless (spec 2.1).
//!
//! When it starts: at process start if a permanent token is known then (as the Go agent), else when
//! the first permanent token is stored after a registration. A later, different permanent token is
//! used from the next connection on.
use crate::config::{self, Config, WsUrl};
use crate::dockmon::msg::ContainerStats;
use crate::limits::{
    INGEST_CONNECT_TIMEOUT_MS, INGEST_POOL_MAX_COUNT, INGEST_QUEUE_MAX_COUNT,
    INGEST_RETRY_INITIAL_MS, INGEST_RETRY_MAX_MS, INGEST_WRITE_TIMEOUT_MS,
};
use crate::tls;
use crate::ws::conn::{Conn, Incoming, Transport};
use async_io::Timer;
use serde::Serialize;
use smol::channel::{Receiver, Sender, TrySendError};
use smol::LocalExecutor;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// The ingest endpoint (spec 2.1).
pub const INGEST_PATH: &str = "/api/stats/ws/ingest";

/// The delay before attempt `step + 1`: 1 s doubling to 30 s (spec 4.5). Pure.
pub fn retry_delay(step: u32) -> Duration {
    let max = Duration::from_millis(INGEST_RETRY_MAX_MS);
    Duration::from_millis(INGEST_RETRY_INITIAL_MS)
        .checked_mul(1u32.checked_shl(step.min(31)).unwrap_or(u32::MAX))
        .unwrap_or(max)
        .min(max)
}

/// Writes the ingest frame for one sample: the `container_stats` payload's fields (spec 4.5 lists
/// exactly those of spec 4.2), without envelope and without `host_id`.
pub fn write_frame(out: &mut Vec<u8>, sample: &ContainerStats<'_>) {
    out.clear();
    // Into a Vec: cannot fail (no maps with non-string keys, no I/O).
    let _ = serde_json::to_writer(&mut *out, &Frame(sample));
}

/// The payload as it is, minus `pids` (local modes only; `None` in the agent anyway).
struct Frame<'a, 'b>(&'a ContainerStats<'b>);

impl Serialize for Frame<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut c = self.0.clone();
        c.pids = None;
        c.serialize(s)
    }
}

struct Handle {
    tx: Sender<Vec<u8>>,
    token: Rc<RefCell<String>>,
    dropping: Cell<bool>,
    /// Buffers of sent frames, reused for the next samples (so a warmed-up sample allocates
    /// nothing); at most `INGEST_POOL_MAX_COUNT`, the rest are freed.
    pool: RefCell<heapless::Vec<Vec<u8>, INGEST_POOL_MAX_COUNT>>,
}

/// Gives a sent frame's buffer back to the pool (or frees it when the pool is full).
fn recycle(mut frame: Vec<u8>) {
    frame.clear();
    INGEST.with(|slot| {
        if let Some(h) = &*slot.borrow() {
            // Full: the buffer is dropped, the stated policy.
            let _ = h.pool.borrow_mut().push(frame);
        }
    });
}

thread_local! {
    static INGEST: RefCell<Option<Handle>> = const { RefCell::new(None) };
    /// Whether the ingest socket is up. Samples are queued only then: a server without the
    /// stats-service (plain DockMon backends answer 404) would otherwise hold a full queue of
    /// frames (256 × ~400 B) on the heap for as long as the agent runs.
    static INGEST_UP: Cell<bool> = const { Cell::new(false) };
}

/// Starts the ingest task with `token` (idempotent: a running task only takes the new token for
/// its next connection).
pub fn start(
    ex: &LocalExecutor<'static>,
    cfg: &Config,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    token: &str,
) {
    let running = INGEST.with(|slot| {
        if let Some(h) = &*slot.borrow() {
            if *h.token.borrow() != token {
                *h.token.borrow_mut() = token.to_string();
            }
            return true;
        }
        false
    });
    if running {
        return;
    }
    let url = match config::ws_url_for(&cfg.dockmon_url, INGEST_PATH) {
        Ok(u) => u,
        Err(e) => {
            log::warn!("stats ingest off: {e}");
            return;
        }
    };
    let (tx, rx) = smol::channel::bounded(INGEST_QUEUE_MAX_COUNT);
    let token = Rc::new(RefCell::new(token.to_string()));
    INGEST.with(|slot| {
        *slot.borrow_mut() = Some(Handle {
            tx,
            token: token.clone(),
            dropping: Cell::new(false),
            pool: RefCell::new(heapless::Vec::new()),
        })
    });
    log::info!("stats ingest to {url}");
    ex.spawn(run(url, tls_config, token, rx)).detach();
}

/// Queues one sample for the ingest socket, if the task runs. Never waits.
pub fn offer(sample: &ContainerStats<'_>) {
    if !INGEST_UP.with(Cell::get) {
        return;
    }
    INGEST.with(|slot| {
        let slot = slot.borrow();
        let Some(h) = &*slot else {
            return;
        };
        let mut frame = h
            .pool
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(384));
        write_frame(&mut frame, sample);
        match h.tx.try_send(frame) {
            Ok(()) => h.dropping.set(false),
            Err(TrySendError::Full(frame)) => {
                let _ = h.pool.borrow_mut().push(frame);
                if !h.dropping.replace(true) {
                    log::warn!(
                        "stats ingest queue full ({INGEST_QUEUE_MAX_COUNT} samples): dropping new samples until it drains"
                    );
                }
            }
            Err(TrySendError::Closed(_)) => {}
        }
    });
}

/// How one connection attempt ended.
enum Failure {
    /// HTTP 401 on the upgrade: the token is not an agent ID there.
    Unauthorized,
    /// Anything else, said in words.
    Other(String),
}

async fn run(
    url: WsUrl,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    token: Rc<RefCell<String>>,
    rx: Receiver<Vec<u8>>,
) {
    let mut step = 0u32;
    let mut last = String::new();
    loop {
        let delay = retry_delay(step);
        step = step.saturating_add(1);
        let ended = connect_and_send(&url, tls_config.clone(), &token, &rx).await;
        INGEST_UP.with(|up| up.set(false));
        // What was queued for the lost socket goes; the next connection starts with fresh samples.
        while let Ok(frame) = rx.try_recv() {
            recycle(frame);
        }
        match ended {
            Failure::Unauthorized => log::warn!(
                "stats ingest at {url}: the server refused the permanent token (HTTP 401); retrying in {} s",
                delay.as_secs()
            ),
            Failure::Other(why) => {
                if why != last {
                    log::info!(
                        "stats ingest at {url}: {why}; retrying (the main connection is not affected)"
                    );
                    last = why;
                }
            }
        }
        Timer::after(delay).await;
    }
}

async fn connect_and_send(
    url: &WsUrl,
    tls_config: Option<Arc<rustls::ClientConfig>>,
    token: &RefCell<String>,
    rx: &Receiver<Vec<u8>>,
) -> Failure {
    let transport = match super::agent::open_transport(url, tls_config).await {
        Ok(t) => t,
        Err(e) => return Failure::Other(e.to_string()),
    };
    let mut nonce = [0u8; 16];
    tls::random_bytes(&mut nonce);
    let mut seed = [0u8; 8];
    tls::random_bytes(&mut seed);
    let ua = format!("dockmon-agent/{}", crate::VERSION);
    let auth = format!("Bearer {}", token.borrow());
    let handshake = Conn::handshake(
        transport,
        &url.authority(),
        &url.path,
        &[("User-Agent", &ua), ("Authorization", &auth)],
        nonce,
        u64::from_le_bytes(seed),
        INGEST_CONNECT_TIMEOUT_MS,
    )
    .await;
    drop(auth);
    let mut ws: Conn<Transport> = match handshake {
        Ok(ws) => ws,
        Err(crate::ws::conn::Error::Wire(crate::ws::Error::Status { status: 401 })) => {
            return Failure::Unauthorized
        }
        Err(e) => return Failure::Other(format!("websocket upgrade: {e}")),
    };
    log::info!("stats ingest connected to {url}");
    INGEST_UP.with(|up| up.set(true));
    enum Ev {
        Frame(Vec<u8>),
        Read(Result<(), String>),
    }
    loop {
        // The server never sends data (spec 4.5); reading answers its pings and sees its close.
        let next = async { rx.recv().await.map(Ev::Frame).unwrap_or(Ev::Read(Ok(()))) };
        let read = async {
            Ev::Read(match ws.read_event().await {
                Ok(Incoming::Close(code, reason)) => Err(format!(
                    "server closed the connection ({} {reason})",
                    code.unwrap_or(1005)
                )),
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            })
        };
        match smol::future::or(next, read).await {
            Ev::Frame(frame) => {
                // Every sample queued meanwhile goes out with this one, a few to a write (issue
                // 18: a batch of stats costs a write per few frames, not one per frame).
                let write = async {
                    let mut next = Some(frame);
                    while let Some(mut frame) = next {
                        if let Err(e) = ws.queue_text(&mut frame).await {
                            return Some(Err(e));
                        }
                        recycle(frame);
                        next = rx.try_recv().ok();
                    }
                    Some(ws.flush_queued().await)
                };
                let timeout = async {
                    Timer::after(Duration::from_millis(INGEST_WRITE_TIMEOUT_MS)).await;
                    None
                };
                match smol::future::or(write, timeout).await {
                    Some(Ok(())) => {}
                    Some(Err(e)) => return Failure::Other(format!("write failed: {e}")),
                    None => {
                        return Failure::Other(format!(
                            "write timed out after {} s",
                            INGEST_WRITE_TIMEOUT_MS / 1000
                        ))
                    }
                }
            }
            Ev::Read(Ok(())) => {}
            Ev::Read(Err(e)) => return Failure::Other(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Computed;

    #[test]
    fn delays_double_from_1_to_30_s_and_stay() {
        let got: Vec<u64> = (0..8).map(|s| retry_delay(s).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(
            retry_delay(u32::MAX),
            Duration::from_millis(INGEST_RETRY_MAX_MS)
        );
    }

    #[test]
    fn the_frame_has_the_fields_of_spec_4_5_and_no_envelope() {
        let stamp = crate::rfc3339::seconds(1_795_911_240);
        let c = Computed {
            cpu_percent: 1.5,
            memory_usage: 10,
            memory_limit: 100,
            memory_percent: 10.0,
            network_rx: 1,
            network_tx: 2,
            disk_read: 3,
            disk_write: 4,
            pids: 9,
        };
        let mut out = Vec::new();
        write_frame(
            &mut out,
            &ContainerStats::new("a1", "web", &c, &stamp, true),
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"container_id":"a1","container_name":"web","cpu_percent":1.5,"memory_usage":10,"memory_limit":100,"memory_percent":10.0,"network_rx":1,"network_tx":2,"disk_read":3,"disk_write":4,"timestamp":"2026-11-29T00:14:00Z"}"#
        );
    }
}
