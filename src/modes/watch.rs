//! `dockmon-agent watch`: stats of every running container each interval, as NDJSON
//! (`container_stats` payloads) or as a table like `docker stats`.
//!
//! A container's first reading only primes CPU %: it is printed from its second round on. The first
//! round comes one second after start (or after the interval, if shorter), so output starts quickly.
//! If the engine goes away the mode says so once on stderr and retries every interval.
use super::{connect_docker, sample_round, table, Error};
use crate::cli::Format;
use crate::docker::stats::{self, Sample};
use crate::dockmon::msg::ContainerStats;
use crate::limits::STATS_IN_FLIGHT_DEFAULT;
use crate::rfc3339;
use async_io::Timer;
use smol::LocalExecutor;
use std::collections::HashMap;
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Runs until the output is closed or the process is interrupted.
pub async fn run(
    ex: Rc<LocalExecutor<'static>>,
    interval: Duration,
    format: Format,
    clear_screen: bool,
    out: &mut impl Write,
) -> Result<(), Error> {
    let client = Rc::new(connect_docker().await?);
    let mut prev: HashMap<String, Sample> = HashMap::new();
    let mut list_buf = Vec::new();
    let mut text = String::new();
    let mut failing = false;
    let mut next = Instant::now();
    let mut first = true;
    loop {
        let listed = client.containers(false, &mut list_buf).await.map(|list| {
            list.iter()
                .map(|c| (c.id.to_string(), c.name().to_string()))
                .collect::<Vec<_>>()
        });
        match listed {
            Err(e) => {
                if !failing {
                    log::warn!("{e}; retrying every {} s", interval.as_secs_f64());
                    failing = true;
                }
            }
            Ok(containers) => {
                if failing {
                    log::info!("docker is answering again");
                    failing = false;
                }
                let ids = Rc::new(containers.iter().map(|(id, _)| id.clone()).collect());
                let samples = sample_round(&ex, &client, &ids, STATS_IN_FLIGHT_DEFAULT).await;
                let stamp = rfc3339::seconds(rfc3339::now().0);
                let mut current = HashMap::with_capacity(containers.len());
                text.clear();
                if format == Format::Table {
                    if clear_screen {
                        text.push_str("\x1b[2J\x1b[H");
                    }
                    text.push_str(table::HEADER);
                    text.push('\n');
                }
                for ((id, name), sample) in containers.iter().zip(samples) {
                    let sample = match sample {
                        Ok(s) => s,
                        Err(e) => {
                            // Stopped between the list and the stats call, most often.
                            log::debug!("{e}");
                            continue;
                        }
                    };
                    if let Some(p) = prev.get(id) {
                        let c = stats::compute(Some(p), &sample);
                        match format {
                            Format::Ndjson => {
                                let payload = ContainerStats::new(id, name, &c, &stamp, true);
                                // Serializing plain numbers and strings into a String cannot fail.
                                if let Ok(line) = serde_json::to_string(&payload) {
                                    text.push_str(&line);
                                    text.push('\n');
                                }
                            }
                            Format::Table => table::push_row(&mut text, id, name, &c),
                        }
                    }
                    current.insert(id.clone(), sample);
                }
                prev = current;
                if !first || format == Format::Table {
                    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        let wait = if first {
            interval.min(Duration::from_secs(1))
        } else {
            interval
        };
        first = false;
        next += wait;
        let now = Instant::now();
        if next < now {
            next = now;
        }
        Timer::at(next).await;
    }
}
