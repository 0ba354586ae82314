//! `dockmon-agent snapshot`: one JSON document describing the engine, the stats budget and every
//! container, with the `container_stats` fields of running containers measured between two samples
//! a window apart.
//!
//! The samples go through the sampler's [`Driver`] under the board profile's budget (calls per second
//! and in flight; `DOCKMON_BOARD`, the `STATS_*` overrides and `STATS_SOURCE` apply), two per running
//! container, the second one a window after the first was due. When the budget cannot take them that
//! fast the document simply comes later; nothing is printed until every container has its answer.
//! The `sampler` object shows what the profile means for this host: whether it can visit every running
//! container each stats interval, and how often each would really be sampled.
use super::{connect_docker, Error};
use crate::dockmon::msg::ContainerStats;
use crate::rfc3339;
use crate::sampler::budget::Plan;
use crate::sampler::driver::{Driver, Report, Settings};
use crate::stats::Computed;
use serde::Serialize;
use smol::LocalExecutor;
use std::io::Write;
use std::ops::ControlFlow;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[derive(Serialize)]
struct Doc<'a> {
    engine: Engine<'a>,
    sampler: SamplerDoc<'a>,
    containers: Vec<Entry<'a>>,
}

/// The board profile's budget against the running containers.
#[derive(Serialize)]
struct SamplerDoc<'a> {
    board: &'a str,
    source: &'static str,
    interval_ms: u64,
    calls_per_sec: u32,
    in_flight: usize,
    running: usize,
    capacity_per_interval: usize,
    shortfall: bool,
    effective_interval_ms: u64,
}

impl<'a> SamplerDoc<'a> {
    fn new(board: &'a str, source: &'static str, plan: &Plan) -> Self {
        SamplerDoc {
            board,
            source,
            interval_ms: duration_ms(plan.interval),
            calls_per_sec: plan.calls_per_sec,
            in_flight: plan.in_flight,
            running: plan.running,
            capacity_per_interval: plan.capacity,
            shortfall: plan.shortfall(),
            effective_interval_ms: duration_ms(plan.effective_interval),
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Serialize)]
struct Engine<'a> {
    id: &'a str,
    name: &'a str,
    version: &'a str,
    api_version: String,
    os: &'a str,
    kernel: &'a str,
    cpus: u32,
    mem_total: u64,
}

#[derive(Serialize)]
struct Entry<'a> {
    id: &'a str,
    name: &'a str,
    image: &'a str,
    state: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<ContainerStats<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats_error: Option<String>,
}

/// Writes the document to `out`.
pub async fn run(
    ex: Rc<LocalExecutor<'static>>,
    window: Duration,
    out: &mut impl Write,
) -> Result<(), Error> {
    let (selected, source, why) = super::local_sampling()?;
    log::debug!("stats source: {} ({why})", source.name());
    let client = Rc::new(connect_docker().await?);
    let mut info_buf = Vec::new();
    let info = client.info(&mut info_buf).await?;
    let mut list_buf = Vec::new();
    let list = client.containers(true, &mut list_buf).await?;
    let running: Vec<(&str, &str)> = list
        .iter()
        .filter(|c| c.state == "running")
        .map(|c| (c.id.as_ref(), c.name()))
        .collect();

    let profile = super::sampler_settings(&selected.profile);
    let plan = profile.plan(running.len());
    let computed = measure(&ex, &client, &source, &profile, window, &running).await;
    let stamp = rfc3339::seconds(rfc3339::now().0);

    let containers = list
        .iter()
        .map(|c| {
            let measured = running
                .iter()
                .position(|(id, _)| *id == c.id)
                .and_then(|i| computed[i].as_ref());
            let (stats, stats_error) = match measured {
                Some(Ok(m)) => (
                    Some(ContainerStats::new(&c.id, c.name(), m, &stamp, true)),
                    None,
                ),
                Some(Err(e)) => (None, Some(e.clone())),
                None => (None, None),
            };
            Entry {
                id: &c.id,
                name: c.name(),
                image: &c.image,
                state: &c.state,
                status: &c.status,
                stats,
                stats_error,
            }
        })
        .collect();
    let doc = Doc {
        engine: Engine {
            id: &info.id,
            name: &info.name,
            version: &info.server_version,
            api_version: client.api_version().to_string(),
            os: &info.operating_system,
            kernel: &info.kernel_version,
            cpus: info.ncpu,
            mem_total: info.mem_total,
        },
        sampler: SamplerDoc::new(&selected.profile.name, source.name(), &plan),
        containers,
    };
    serde_json::to_writer(&mut *out, &doc).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Two samples of each of `running` under `profile`'s rate and in-flight budget, the second due
/// `window` after the first: per container (in the order of `running`) the computed stats, the error
/// of a failed sample, or `None` if the table refused it (it cannot: it is sized for all of them).
async fn measure(
    ex: &LocalExecutor<'static>,
    client: &Rc<crate::docker::Client>,
    source: &Rc<crate::sampler::source::Source>,
    profile: &Settings,
    window: Duration,
    running: &[(&str, &str)],
) -> Vec<Option<Result<Computed, String>>> {
    let mut results: Vec<Option<Result<Computed, String>>> = vec![None; running.len()];
    if running.is_empty() {
        return results;
    }
    let settings = Settings {
        interval: window,
        containers_max: running.len(),
        ..*profile
    };
    let mut driver =
        Driver::new(client.clone(), source.clone(), settings, Instant::now()).without_relist();
    for (id, name) in running {
        driver.add(id, name, Instant::now()).await;
    }
    let expected = driver.len();
    let mut answered = 0;
    driver
        .run(ex, None, |report| {
            let (id, result) = match report {
                // The first reading only primes CPU %.
                Report::Reading {
                    id,
                    stats,
                    first: false,
                    ..
                } => (id, Ok(*stats)),
                Report::Failed { id, error } => (id, Err(error.to_string())),
                _ => return ControlFlow::Continue(()),
            };
            if let Some(slot) = running.iter().position(|(r, _)| *r == id) {
                if results[slot].is_none() {
                    results[slot] = Some(result);
                    answered += 1;
                }
            }
            if answered >= expected {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await;
    results
}
