//! `dockmon-agent watch`: live stats of every running container, as NDJSON (`container_stats`
//! payloads) or as a table like `docker stats`.
//!
//! Sampling is the agent's: the sampler's [`Driver`] under the board profile's budget (`DOCKMON_BOARD`,
//! the `STATS_*` overrides and `STATS_SOURCE` apply), with `--interval` replacing the profile's stats
//! interval when given. Each container is sampled every interval when the budget allows, else as often
//! as it allows (said once on stderr). The running set follows Docker's events, with the driver's
//! re-list every minute as repair.
//!
//! Output: a container's first reading only primes CPU %; from its second on, NDJSON prints one line per
//! reading as it arrives (so lines come continuously, not in rounds), and the table keeps each
//! container's latest reading and redraws them all, sorted by name, once per interval (the first time
//! one second after start, or after the interval if shorter). A container that stops leaves the table.
use super::{connect_docker, table, Error};
use crate::cli::Format;
use crate::dockmon::msg::ContainerStats;
use crate::rfc3339;
use crate::sampler::driver::{Change, Changes, Driver, Id, Name, Report};
use crate::stats::Computed;
use async_io::Timer;
use smol::LocalExecutor;
use std::cell::RefCell;
use std::io::Write;
use std::ops::ControlFlow;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Runs until the output is closed or the process is interrupted.
pub async fn run(
    ex: Rc<LocalExecutor<'static>>,
    interval: Option<Duration>,
    format: Format,
    clear_screen: bool,
    out: &mut impl Write,
) -> Result<(), Error> {
    let (selected, source, why) = super::local_sampling()?;
    let client = Rc::new(connect_docker().await?);
    let mut settings = super::sampler_settings(&selected.profile);
    if let Some(i) = interval {
        settings.interval = i;
    }
    log::debug!(
        "board profile {}, stats source {} ({why}), every {} ms",
        selected.profile.name,
        source.name(),
        settings.interval.as_millis()
    );

    let changes = Rc::new(Changes::new(settings.containers_max));
    let changes_tx = changes.clone();
    let events_client = client.clone();
    // Cancelled when dropped, at the end of this function.
    let _events = ex.spawn(async move {
        super::follow_events(&events_client, |e| {
            if let Some(change) = Change::from_event(e) {
                changes_tx.offer(change);
            }
        })
        .await;
    });
    let driver = Driver::new(client, source, settings, Instant::now());

    let written = match format {
        Format::Ndjson => {
            let mut failure = None;
            driver
                .run(&ex, Some(&changes), |report| match report {
                    Report::Reading {
                        id,
                        name,
                        stats,
                        first: false,
                    } => match write_line(out, id, name, stats) {
                        Ok(()) => ControlFlow::Continue(()),
                        Err(e) => {
                            failure = Some(e);
                            ControlFlow::Break(())
                        }
                    },
                    other => {
                        super::log_report(&other);
                        ControlFlow::Continue(())
                    }
                })
                .await;
            failure.map_or(Ok(()), Err)
        }
        Format::Table => {
            let rows: RefCell<Vec<Row>> = RefCell::new(Vec::new());
            let sampling = async {
                driver
                    .run(&ex, Some(&changes), |report| {
                        match report {
                            Report::Reading {
                                id,
                                name,
                                stats,
                                first: false,
                            } => upsert(&mut rows.borrow_mut(), id, name, stats),
                            Report::Gone { id } => rows.borrow_mut().retain(|r| r.id != id),
                            other => super::log_report(&other),
                        }
                        ControlFlow::Continue(())
                    })
                    .await;
                Ok(())
            };
            let redraw = async {
                let mut text = String::new();
                let mut next = Instant::now() + settings.interval.min(Duration::from_secs(1));
                loop {
                    Timer::at(next).await;
                    draw(&mut text, &mut rows.borrow_mut(), clear_screen);
                    out.write_all(text.as_bytes()).and_then(|()| out.flush())?;
                    next += settings.interval;
                    next = next.max(Instant::now());
                }
            };
            smol::future::or(sampling, redraw).await
        }
    };
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// One `container_stats` payload and a newline.
fn write_line(out: &mut impl Write, id: &str, name: &str, stats: &Computed) -> std::io::Result<()> {
    let stamp = rfc3339::seconds(rfc3339::now().0);
    let payload = ContainerStats::new(id, name, stats, &stamp, true);
    serde_json::to_writer(&mut *out, &payload)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// The latest reading of one container, for the table.
struct Row {
    id: Id,
    name: Name,
    stats: Computed,
}

fn upsert(rows: &mut Vec<Row>, id: &str, name: &str, stats: &Computed) {
    let name = crate::sampler::table::cut(name);
    match rows.iter_mut().find(|r| r.id == id) {
        Some(r) => {
            r.name = name;
            r.stats = *stats;
        }
        None => {
            if let Ok(id) = Id::try_from(id) {
                rows.push(Row {
                    id,
                    name,
                    stats: *stats,
                });
            }
        }
    }
}

/// The whole table into `text`: header and one row per container, by name.
fn draw(text: &mut String, rows: &mut [Row], clear_screen: bool) {
    text.clear();
    if clear_screen {
        text.push_str("\x1b[2J\x1b[H");
    }
    text.push_str(table::HEADER);
    text.push('\n');
    rows.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    for r in rows.iter() {
        table::push_row(text, &r.id, &r.name, &r.stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_keeps_the_latest_reading_per_container_sorted_by_name() {
        let mut rows = Vec::new();
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let one = Computed {
            pids: 1,
            ..Default::default()
        };
        let two = Computed {
            pids: 2,
            ..Default::default()
        };
        upsert(&mut rows, &a, "zeta", &one);
        upsert(&mut rows, &b, "alpha", &one);
        upsert(&mut rows, &a, "zeta", &two);
        assert_eq!(rows.len(), 2);
        let mut text = String::new();
        draw(&mut text, &mut rows, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], table::HEADER);
        assert!(lines[1].starts_with("bbbbbbbbbbbb   alpha "), "{text}");
        assert!(lines[2].starts_with("aaaaaaaaaaaa   zeta "), "{text}");
        assert!(lines[2].ends_with(" 2"), "{text}");
        draw(&mut text, &mut rows, true);
        assert!(text.starts_with("\x1b[2J\x1b[H"));
    }
}
