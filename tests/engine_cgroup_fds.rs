//! The cgroup source's kept files (issue 18) against the real engine: the sampler keeps each container's
//! cgroup files and `net/dev` open between samples, closes them when the container leaves the table
//! (stopped or removed), and never reports a number read from a stale file of a stopped or restarted
//! container.
//!
//! Descriptors are counted in `/proc/self/fd` (each is a link to the file it holds), so this file holds
//! the tests that count them and nothing else that opens files. Every test runs its body under a
//! watchdog thread, so a hang fails the test instead of stalling CI.
mod support;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::path::Path;
use std::rc::Rc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dockmon_agent::docker::{endpoint, Client};
use dockmon_agent::sampler::driver::{Change, Changes, Driver, Report, Settings};
use dockmon_agent::sampler::source::cgroup::{kept_count, CgroupSource, Error, Files};
use dockmon_agent::sampler::source::Source;
use support::*;

/// The two tests both count this process's descriptors: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn watchdog<T: Send + 'static>(limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(body());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(RecvTimeoutError::Timeout) => panic!("test body ran past its {limit:?} watchdog"),
        Err(RecvTimeoutError::Disconnected) => panic!("test body panicked (message above)"),
    }
}

fn pid_of(id: &str) -> u32 {
    docker(&["inspect", "--format", "{{.State.Pid}}", id])
        .trim()
        .parse()
        .unwrap()
}

/// `(all descriptors, descriptors per container)` of this process: a descriptor belongs to a container
/// when it is one of its cgroup files (the path names its ID) or the `net/dev` of its init PID.
fn fds(containers: &[(String, u32)]) -> (usize, HashMap<String, usize>) {
    let mut total = 0;
    let mut per: HashMap<String, usize> =
        containers.iter().map(|(id, _)| (id.clone(), 0)).collect();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        total += 1;
        let Ok(link) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let link = link.to_string_lossy().into_owned();
        for (id, pid) in containers {
            if link.contains(id.as_str()) || link.ends_with(&format!("/{pid}/net/dev")) {
                *per.get_mut(id).unwrap() += 1;
            }
        }
    }
    (total, per)
}

fn source() -> CgroupSource {
    CgroupSource::detect(Path::new("/"))
        .unwrap_or_else(|e| panic!("this host's cgroup files must be usable for these tests: {e}"))
}

#[derive(Default)]
struct Seen {
    readings: HashMap<String, usize>,
    gone: HashSet<String>,
}

/// Waits (30 s at most) until `done` holds for what the sink has seen.
async fn wait(seen: &RefCell<Seen>, what: &str, done: impl Fn(&Seen) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(&seen.borrow()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        async_io::Timer::after(Duration::from_millis(100)).await;
    }
}

/// Issue 18: the real sampling loop keeps 5 to 8 descriptors per container (the cgroup files of the
/// tree's controllers and `net/dev`), reads through them, and closes every one when the container
/// stops or is removed: the count of open descriptors returns to what it was before sampling began.
#[test]
fn issue_18_kept_files_close_when_containers_stop_or_are_removed() {
    require_engine();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cs = Containers::new("cgroup-fds");
    let names = ["a", "b", "stopped", "removed"];
    let ids: Vec<String> = names
        .iter()
        .map(|n| cs.run(n, &[], &["sleep", "100000"]))
        .collect();
    let containers: Vec<(String, u32)> = ids.iter().map(|id| (id.clone(), pid_of(id))).collect();
    let full_names: Vec<String> = names.iter().map(|n| cs.name(n)).collect();
    watchdog(Duration::from_secs(120), move || {
        let ex: &'static smol::LocalExecutor<'static> =
            Box::leak(Box::new(smol::LocalExecutor::new()));
        async_io::block_on(ex.run(async move {
            let ep = endpoint::select(None, endpoint::is_socket).unwrap();
            let client = Rc::new(Client::connect(ep).await.expect("connect to the engine"));
            let source = Rc::new(Source::Cgroup(Box::new(source())));
            let ours: HashSet<String> = ids.iter().cloned().collect();
            let changes = Rc::new(Changes::new(64));
            let (events_client, changes_tx) = (client.clone(), changes.clone());
            let _events = ex.spawn(async move {
                dockmon_agent::modes::follow_events(&events_client, |e| {
                    match Change::from_event(e) {
                        Some(Change::Started { id, .. } | Change::Stopped { id })
                            if !ours.contains(id.as_str()) => {}
                        Some(change) => changes_tx.offer(change),
                        None => {}
                    }
                })
                .await;
            });
            // Let the events stream subscribe before anything is counted.
            async_io::Timer::after(Duration::from_millis(500)).await;
            let (before, _) = fds(&containers);
            let kept_before = kept_count();

            let settings = Settings {
                interval: Duration::from_secs(1),
                calls_per_sec: 50,
                in_flight: 2,
                containers_max: 64,
            };
            let mut driver = Driver::new(client, source, settings, Instant::now()).without_relist();
            for (id, name) in ids.iter().zip(&full_names) {
                assert!(driver.add(id, name, Instant::now()).await);
            }
            let seen = Rc::new(RefCell::new(Seen::default()));
            let sink_seen = seen.clone();
            let _driver = ex.spawn(async move {
                driver
                    .run(ex, Some(&changes), |report| {
                        let mut s = sink_seen.borrow_mut();
                        match report {
                            Report::Reading { id, .. } => {
                                assert!(!s.gone.contains(id), "a reading of {id} after it left");
                                *s.readings.entry(id.to_string()).or_default() += 1;
                            }
                            Report::Gone { id } => {
                                s.gone.insert(id.to_string());
                            }
                            Report::Failed { id, error } => eprintln!("failed {id}: {error}"),
                            _ => {}
                        }
                        ControlFlow::Continue(())
                    })
                    .await;
            });
            // Three samples each: the first opens the files, the next ones read through them.
            wait(&seen, "three readings of each container", |s| {
                s.readings.len() == 4 && s.readings.values().all(|n| *n >= 3)
            })
            .await;
            let (warm, per) = fds(&containers);
            eprintln!(
                "descriptors: {before} before sampling, {warm} with 4 containers kept: {per:?}"
            );
            for (id, n) in &per {
                assert!(
                    (5..=8).contains(n),
                    "{id}: {n} kept descriptors (cgroup files and net/dev)"
                );
            }
            let kept: usize = per.values().sum();
            assert_eq!(kept_count() - kept_before, kept, "the process-wide count");
            assert_eq!(warm - before, kept, "nothing else stays open");

            // One stops (its cgroup goes), one is removed.
            docker(&["kill", &full_names[2]]);
            docker(&["rm", "-f", &full_names[3]]);
            wait(&seen, "both to leave the table", |s| {
                s.gone.contains(&ids[2]) && s.gone.contains(&ids[3])
            })
            .await;
            // The job in flight, if any, gives its files back to a row that is gone: they close then.
            async_io::Timer::after(Duration::from_millis(500)).await;
            let (_, per) = fds(&containers);
            assert_eq!(per[&ids[2]], 0, "stopped container's files closed: {per:?}");
            assert_eq!(per[&ids[3]], 0, "removed container's files closed: {per:?}");
            assert!(
                per[&ids[0]] >= 5 && per[&ids[1]] >= 5,
                "the others stay: {per:?}"
            );

            docker(&["rm", "-f", &full_names[0], &full_names[1]]);
            wait(&seen, "every container to leave the table", |s| {
                s.gone.len() == 4
            })
            .await;
            async_io::Timer::after(Duration::from_millis(500)).await;
            let (after, per) = fds(&containers);
            eprintln!("descriptors after every container left: {after} ({per:?})");
            assert!(per.values().all(|n| *n == 0), "{per:?}");
            assert_eq!(kept_count(), kept_before, "the process-wide count is back");
            assert_eq!(
                after, before,
                "the descriptor count is back to before sampling"
            );
        }));
    });
}

/// Issue 18: a kept file is never trusted after its container stopped or restarted: the removed
/// cgroup answers `ENODEV`, the files are dropped, and the answer comes from the paths (the container
/// is gone, or the sample is of the new cgroup).
#[test]
fn issue_18_stale_kept_files_are_dropped_never_read() {
    require_engine();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut cs = Containers::new("cgroup-stale");
    let stopped = cs.run("stopped", &[], &["sleep", "100000"]);
    let restarted = cs.run("restarted", &[], &["sleep", "100000"]);
    let (stopped_name, restarted_name) = (cs.name("stopped"), cs.name("restarted"));
    watchdog(Duration::from_secs(60), move || {
        let s = source();
        let mut buf = Vec::new();

        let pid = pid_of(&stopped);
        let mut files = Files::default();
        s.sample_kept(&stopped, pid, &mut files, &mut buf).unwrap();
        assert!(files.is_open() && files.count() >= 5, "{files:?}");
        let again = s.sample_kept(&stopped, pid, &mut files, &mut buf).unwrap();
        assert!(again.cpu_total_ns > 0);
        docker(&["kill", &stopped_name]);
        docker(&["wait", &stopped_name]);
        let e = s
            .sample_kept(&stopped, pid, &mut files, &mut buf)
            .unwrap_err();
        assert!(matches!(e, Error::NoCgroup { .. }), "{e}");
        assert!(!files.is_open() && files.count() == 0, "{files:?}");

        let old = pid_of(&restarted);
        let mut files = Files::default();
        s.sample_kept(&restarted, old, &mut files, &mut buf)
            .unwrap();
        assert!(files.is_open());
        docker(&["restart", "-t", "0", &restarted_name]);
        let new = pid_of(&restarted);
        assert_ne!(old, new);
        // With the old PID, the old cgroup's files are dead and the old process's net/dev is gone:
        // an error, not the old numbers.
        let e = s
            .sample_kept(&restarted, old, &mut files, &mut buf)
            .unwrap_err();
        assert!(matches!(e, Error::Read { .. }), "{e}");
        assert!(!files.is_open());
        // With the new PID, a sample of the new cgroup, kept again.
        s.sample_kept(&restarted, new, &mut files, &mut buf)
            .unwrap();
        assert!(files.is_open() && files.count() >= 5, "{files:?}");
        drop(files);
    });
}
