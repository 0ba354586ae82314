//! The drivers: they own the executor and the timers, and wire the layers together.
//!
//! Everything runs on one thread: `async_io::block_on` drives a `LocalExecutor`; async-io's idle
//! reactor thread is the only other thread. No thread pool, no `unblock`.
pub mod agent;
pub mod check;
pub mod snapshot;
pub mod table;
pub mod watch;

use crate::docker::{self, stats::Sample, Client};
use smol::LocalExecutor;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::rc::Rc;

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
pub fn run_local<F: Future>(make: impl FnOnce(Rc<LocalExecutor<'static>>) -> F) -> F::Output {
    let ex = Rc::new(LocalExecutor::new());
    let fut = make(ex.clone());
    let mut output = None;
    {
        let whole = std::pin::pin!(async { output = Some(fut.await) });
        drive(&ex, whole);
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
    crate::board::select(|k| std::env::var(k).ok(), detection)
}

/// Connects to the engine chosen by `DOCKER_HOST` or the usual socket paths.
pub async fn connect_docker() -> Result<Client, docker::Error> {
    let host = std::env::var("DOCKER_HOST").ok();
    let endpoint = docker::endpoint::select(host.as_deref(), docker::endpoint::is_socket)?;
    Client::connect(endpoint).await
}

/// Takes one stats reading of each container in `ids`, at most `in_flight` calls at a time (one-shot
/// calls on older engines take about a second each, so they must overlap). Results come back in the
/// order of `ids`.
pub async fn sample_round(
    ex: &LocalExecutor<'static>,
    client: &Rc<Client>,
    ids: &Rc<Vec<String>>,
    in_flight: usize,
) -> Vec<Result<Sample, docker::Error>> {
    type Slot = Option<Result<Sample, docker::Error>>;
    let results: Rc<RefCell<Vec<Slot>>> =
        Rc::new(RefCell::new((0..ids.len()).map(|_| None).collect()));
    let next = Rc::new(std::cell::Cell::new(0usize));
    let workers: Vec<_> = (0..in_flight.clamp(1, ids.len().max(1)))
        .map(|_| {
            let (client, ids, results, next) =
                (client.clone(), ids.clone(), results.clone(), next.clone());
            ex.spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let i = next.get();
                    if i >= ids.len() {
                        break;
                    }
                    next.set(i + 1);
                    let r = client.stats(&ids[i], &mut buf).await;
                    results.borrow_mut()[i] = Some(r);
                }
            })
        })
        .collect();
    for w in workers {
        w.await;
    }
    let mut results = results.borrow_mut();
    results
        .drain(..)
        .map(|r| {
            // Every index below ids.len() was taken by exactly one worker, which stored its result.
            r.unwrap_or_else(|| unreachable!("each index is sampled once"))
        })
        .collect()
}
