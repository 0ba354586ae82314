//! `dockmon-agent snapshot`: one JSON document describing the engine and every container, with the
//! `container_stats` fields of running containers measured between two samples a window apart.
use super::{connect_docker, sample_round, Error};
use crate::docker::stats;
use crate::dockmon::msg::ContainerStats;
use crate::limits::STATS_IN_FLIGHT_DEFAULT;
use crate::rfc3339;
use async_io::Timer;
use serde::Serialize;
use smol::LocalExecutor;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

#[derive(Serialize)]
struct Doc<'a> {
    engine: Engine<'a>,
    containers: Vec<Entry<'a>>,
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
    let client = Rc::new(connect_docker().await?);
    let mut info_buf = Vec::new();
    let info = client.info(&mut info_buf).await?;
    let mut list_buf = Vec::new();
    let list = client.containers(true, &mut list_buf).await?;
    let running: Rc<Vec<String>> = Rc::new(
        list.iter()
            .filter(|c| c.state == "running")
            .map(|c| c.id.to_string())
            .collect(),
    );

    let first = sample_round(&ex, &client, &running, STATS_IN_FLIGHT_DEFAULT).await;
    if !running.is_empty() {
        Timer::after(window).await;
    }
    let second = sample_round(&ex, &client, &running, STATS_IN_FLIGHT_DEFAULT).await;
    let stamp = rfc3339::seconds(rfc3339::now().0);

    let computed: Vec<Result<stats::Computed, String>> = first
        .iter()
        .zip(&second)
        .map(|(a, b)| match b {
            Ok(b) => Ok(stats::compute(a.as_ref().ok(), b)),
            Err(e) => Err(e.to_string()),
        })
        .collect();

    let containers = list
        .iter()
        .map(|c| {
            let measured = running
                .iter()
                .position(|id| id.as_str() == c.id)
                .map(|i| &computed[i]);
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
        containers,
    };
    serde_json::to_writer(&mut *out, &doc).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}
