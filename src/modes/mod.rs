//! The drivers: they own the executor and the timers, and wire the layers together.
//!
//! Everything runs on one thread: `async_io::block_on` drives a `LocalExecutor`; async-io's idle
//! reactor thread is the only other thread. No thread pool, no `unblock`.
pub mod agent;
pub mod check;
pub mod dial;
pub mod health;
pub mod ingest;
pub mod snapshot;
pub mod table;
pub mod watch;

use crate::docker::{self, types::Event, Client};
use crate::sampler::driver::{Report, Settings};
use crate::sampler::source::{self, CgroupSource, Source};
use async_io::Timer;
use smol::LocalExecutor;
use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

/// Why a mode stopped. `main` maps each to an exit code.
#[derive(Debug)]
pub enum Error {
    /// The engine could not be reached or answered wrongly: exit 1.
    Docker(docker::Error),
    /// Writing the output failed (other than a closed pipe, which ends the mode quietly): exit 1.
    Output(std::io::Error),
    /// The configuration cannot work (a bad SSL_CERT_FILE, DOCKER_HOST=tcp://): exit 2.
    Config(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Docker(e) => write!(f, "{e}"),
            Error::Output(e) => write!(f, "cannot write output: {e}"),
            Error::Config(e) => write!(f, "{e}"),
        }
    }
}

impl From<docker::Error> for Error {
    fn from(e: docker::Error) -> Self {
        Error::Docker(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Output(e)
    }
}

/// Runs `make`'s future to completion on a fresh single-threaded executor, which it may spawn on.
///
/// The mode's future is polled through a `dyn` pointer by one non-generic `drive`, and neither is
/// inlined: otherwise LLVM inlined every mode's polling into `main` and `block_on`, whose stack
/// frames grew to 94 + 64 + 36 KiB, and stack probes touch every page of a frame, so about 190 KiB
/// of stack stayed resident for the whole run.
#[inline(never)]
pub fn run_local<'a, T: 'a, F: Future<Output = T> + 'a>(
    make: impl FnOnce(Rc<LocalExecutor<'static>>) -> F,
) -> T {
    let ex = Rc::new(LocalExecutor::new());
    let fut = make(ex.clone());
    let mut output = None;
    {
        // On the heap: the agent's future is about 10 KiB, and on this stack its pages would
        // stay resident as stack.
        let mut whole = Box::pin(async { output = Some(fut.await) });
        drive(&ex, whole.as_mut());
    }
    // `drive` returns only once `whole` has completed, and `whole` sets `output` as it completes.
    output.expect("drive returned before the mode's future completed")
}

/// The binary's one `block_on`. Not generic: each mode's future comes in as a `dyn Future`, so
/// async-io's reactor loop and the executor's run loop are compiled once instead of once per mode
/// (11 KB of the aarch64 binary, issue #6).
#[inline(never)]
fn drive(ex: &LocalExecutor<'static>, whole: std::pin::Pin<&mut dyn Future<Output = ()>>) {
    async_io::block_on(ex.run(whole))
}

/// The board profile for this system: `DOCKMON_BOARD`, else detection, with single-value overrides
/// from the environment.
pub fn select_board() -> Result<crate::board::Selected, crate::board::Error> {
    let (model, product, vendor, cpuinfo) = crate::board::read_system(std::path::Path::new("/"));
    let detection = crate::board::detect(
        model.as_deref(),
        product.as_deref(),
        vendor.as_deref(),
        &cpuinfo,
        std::env::consts::ARCH,
    );
    // An empty variable is an unset one, as in Go's os.Getenv (compose files often pass
    // `STATS_INTERVAL=${STATS_INTERVAL}` with nothing in it).
    crate::board::select(
        |k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()),
        detection,
    )
}

/// Connects to the engine chosen by `DOCKER_HOST` (with `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`) or
/// the usual socket paths.
pub async fn connect_docker() -> Result<Client, docker::Error> {
    Client::connect(docker::endpoint::from_env()?).await
}

/// The sampler settings of a board profile.
pub fn sampler_settings(profile: &crate::board::Profile) -> Settings {
    Settings {
        interval: Duration::from_millis(profile.stats_interval_ms),
        calls_per_sec: profile.stats_calls_per_sec,
        in_flight: profile.stats_in_flight,
        containers_max: profile.containers_max,
    }
}

/// The board profile ([`select_board`]), its warnings logged, or a configuration error.
pub fn board() -> Result<crate::board::Selected, Error> {
    let selected = select_board().map_err(|e| Error::Config(e.to_string()))?;
    for w in &selected.warnings {
        log::warn!("{w}");
    }
    Ok(selected)
}

/// What `watch` and `snapshot` sample with: the board profile and the source `STATS_SOURCE` asks
/// for, with why it was chosen (the agent reads `STATS_SOURCE` with the rest of its configuration).
pub fn local_sampling() -> Result<(crate::board::Selected, Rc<Source>, String), Error> {
    let selected = board()?;
    let setting = crate::config::stats_source(std::env::var("STATS_SOURCE").ok().as_deref())
        .map_err(|e| Error::Config(e.to_string()))?;
    let (source, why) = choose_source(setting)?;
    Ok((selected, source, why))
}

/// The stats source for `setting` (`STATS_SOURCE`) on this host, and why (for one log line).
pub fn choose_source(setting: crate::config::StatsSource) -> Result<(Rc<Source>, String), Error> {
    let (source, why) = source::choose(setting, CgroupSource::detect(std::path::Path::new("/")))
        .map_err(|e| Error::Config(format!("STATS_SOURCE=cgroup: {e}")))?;
    Ok((Rc::new(source), why))
}

/// Logs what a sampler [`Report`] says about the sampler itself (shortfall, full table, re-list),
/// once per state change as the driver reports it. Readings, failures and departures are the
/// mode's own business and are not logged here.
pub fn log_report(report: &Report<'_>) {
    match report {
        Report::Shortfall(plan) => log::warn!(
            "stats budget: {} containers but {} calls per {} ms ({} calls/s); each container is sampled about every {:.1} s instead",
            plan.running,
            plan.capacity,
            plan.interval.as_millis(),
            plan.calls_per_sec,
            plan.effective_interval.as_secs_f64()
        ),
        Report::TableFull { max, running: None } => log::warn!(
            "stats: the container table is full ({max} containers, the board's containers_max); others are not sampled"
        ),
        Report::TableFull {
            max,
            running: Some(running),
        } => log::warn!(
            "stats: {running} running containers, more than the board's table of {max}; the rest are not sampled"
        ),
        Report::ListFailed(e) => log::warn!("stats: {e}"),
        Report::ListRecovered => log::info!("stats: docker answers again"),
        Report::Reading { .. } | Report::Failed { .. } | Report::Gone { .. } => {}
    }
}

/// Follows Docker's container events for ever, calling `each` for every one, and re-subscribes
/// whenever the stream ends or fails (every [`EVENTS_RETRY_MS`](crate::limits::EVENTS_RETRY_MS) while it keeps failing; said once).
///
/// A re-subscription asks for the events since the stream ended (Docker's `since`, wall-clock
/// time: the engine stamps events with the same host clock), so the events of the gap, a
/// container started while dockerd restarted, are replayed instead of lost (issue 17).
pub async fn follow_events(client: &Client, mut each: impl FnMut(&Event<'_>)) {
    let mut failing = false;
    let mut ended_at: Option<Duration> = None;
    loop {
        match client.events_since(ended_at).await {
            Err(e) => {
                if !failing {
                    log::warn!("docker events: {e}; re-subscribing every second");
                    failing = true;
                }
            }
            Ok(mut stream) => {
                if failing {
                    log::info!("docker events: subscribed again");
                    failing = false;
                }
                loop {
                    match stream.next_line().await {
                        Ok(Some(line)) => {
                            if let Ok(e) = serde_json::from_slice::<Event>(line) {
                                if e.kind == "container" {
                                    each(&e);
                                }
                            }
                        }
                        Ok(None) => {
                            log::warn!(
                                "docker events: the engine ended the stream; re-subscribing"
                            );
                            ended_at = wall_clock_now();
                            break;
                        }
                        Err(e) => {
                            log::warn!("docker events: {e}; re-subscribing");
                            ended_at = wall_clock_now();
                            break;
                        }
                    }
                }
            }
        }
        Timer::after(Duration::from_millis(crate::limits::EVENTS_RETRY_MS)).await;
    }
}

/// Time since the Unix epoch, for Docker's `since` (never for a timer); `None` before 1970.
fn wall_clock_now() -> Option<Duration> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
}
