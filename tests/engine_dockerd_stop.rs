//! Issue 11 D5: after dockerd stops, the sampler's table holds no stopped container once its `die`
//! event has arrived, even when the stops come in a burst larger than the change channel (80 containers
//! against `SAMPLER_CHANGES_MAX_COUNT` = 64) and no re-list can repair the table (dockerd is gone).
//!
//! The test starts a private dockerd of its own (own data root, exec root, pidfile and socket, no
//! bridge, no iptables) and stops that one, never the shared engine. It runs the real driver with the
//! agent's event forwarding (`modes::follow_events` → `Change::from_event` → `Changes::offer`).
mod support;

use dockmon_agent::config::StatsSource;
use dockmon_agent::docker::{endpoint, Client};
use dockmon_agent::sampler::driver::{Change, Changes, Driver, Report, Settings};
use smol::LocalExecutor;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};
use support::*;

const CONTAINERS: usize = 80;
const WATCHDOG: Duration = Duration::from_secs(150);

/// A private dockerd, stopped (SIGKILL if SIGTERM does not do it) and its directories removed on drop.
struct PrivateDockerd {
    dir: PathBuf,
    child: std::process::Child,
}

impl PrivateDockerd {
    fn start() -> PrivateDockerd {
        let dir = PathBuf::from(format!("/tmp/dmt-tidy-d5-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // In a network namespace of its own: a dockerd with `--bridge=none` deletes the host's
        // `docker0` at startup, which breaks the shared engine's default bridge for every later test.
        let child = Command::new("unshare")
            .args(["--net", "dockerd"])
            .arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("d.sock").display()))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--shutdown-timeout=2",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("dockerd.log")).unwrap())
            .spawn()
            .expect("dockerd (apt-get install docker.io) must be on PATH");
        let d = PrivateDockerd { dir, child };
        let end = Instant::now() + Duration::from_secs(30);
        while d.docker_status(&["version"]).is_none() {
            assert!(
                Instant::now() < end,
                "private dockerd did not come up: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        d
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.join("d.sock").display())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    fn docker_status(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("docker")
            .arg("-H")
            .arg(self.host())
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// SIGTERM: dockerd stops its containers (each gets `die`) and exits.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        self.stop();
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the driver reported, per container, with the time it came.
#[derive(Default)]
struct Seen {
    readings: HashMap<String, Vec<Instant>>,
    failed: HashMap<String, Vec<Instant>>,
    gone: HashMap<String, Instant>,
    died: HashMap<String, Instant>,
}

#[test]
fn issue11_d5_no_stopped_container_stays_in_the_table_after_dockerd_stops() {
    ensure_image();
    let (tx, rx) = std::sync::mpsc::channel();
    let body = std::thread::spawn(move || {
        run();
        let _ = tx.send(());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(()) => body.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("test body ran past its {WATCHDOG:?} watchdog")
        }
        Err(_) => {
            let _ = body.join();
            panic!("test body panicked (message above)");
        }
    }
}

fn run() {
    let mut dockerd = PrivateDockerd::start();
    // The test image into the private engine (no registry).
    let mut save = Command::new("docker")
        .args(["save", IMAGE])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let load = Command::new("docker")
        .arg("-H")
        .arg(dockerd.host())
        .args(["load", "-q"])
        .stdin(save.stdout.take().unwrap())
        .output()
        .unwrap();
    let _ = save.wait();
    assert!(load.status.success(), "docker load: {load:?}");
    let mut ids = HashSet::new();
    for i in 0..CONTAINERS {
        let name = format!("dmt-tidy-d5-{i}");
        let id = dockerd
            .docker_status(&[
                "run",
                "-d",
                "--network",
                "none",
                "--stop-timeout",
                "1",
                "--name",
                &name,
                IMAGE,
                "sleep",
                "100000",
            ])
            .unwrap_or_else(|| panic!("docker run {name}: {}", dockerd.log()));
        ids.insert(id.trim().to_string());
    }

    let ep = endpoint::select(Some(&dockerd.host()), endpoint::is_socket).unwrap();
    let ex = Rc::new(LocalExecutor::new());
    let seen = Rc::new(RefCell::new(Seen::default()));
    let stopped_at = Rc::new(RefCell::new(None::<Instant>));
    async_io::block_on(ex.run(async {
        let client = Rc::new(Client::connect(ep).await.expect("private dockerd"));
        let (source, _) = dockmon_agent::modes::choose_source(StatsSource::Auto).unwrap();
        let settings = Settings {
            interval: Duration::from_secs(1),
            calls_per_sec: 50,
            in_flight: 8,
            containers_max: 512,
        };
        let changes = Rc::new(Changes::new(settings.containers_max));
        let events = {
            let (client, changes, seen) = (client.clone(), changes.clone(), seen.clone());
            ex.spawn(async move {
                dockmon_agent::modes::follow_events(&client, |e| {
                    if let Some(change) = Change::from_event(e) {
                        if e.action == "die" {
                            seen.borrow_mut()
                                .died
                                .insert(e.actor.id.to_string(), Instant::now());
                        }
                        changes.offer(change);
                    }
                })
                .await;
            })
        };
        let driver = Driver::new(client, source, settings, Instant::now());
        let sampling = driver.run(&ex, Some(&changes), |report| {
            let now = Instant::now();
            let mut s = seen.borrow_mut();
            match report {
                Report::Reading { id, .. } => s.readings.entry(id.into()).or_default().push(now),
                Report::Failed { id, .. } => s.failed.entry(id.into()).or_default().push(now),
                Report::Gone { id } => {
                    s.gone.insert(id.into(), now);
                }
                _ => {}
            }
            ControlFlow::Continue(())
        });
        let script = async {
            // Every container sampled once, then dockerd stops; then 15 s with no re-list possible.
            let end = Instant::now() + Duration::from_secs(60);
            while seen.borrow().readings.len() < CONTAINERS && Instant::now() < end {
                async_io::Timer::after(Duration::from_millis(100)).await;
            }
            assert_eq!(seen.borrow().readings.len(), CONTAINERS, "not all sampled");
            // Every container dies at once, then dockerd stops. Block the one thread meanwhile, as a
            // driver stuck in a slow engine call does: the die events pile up in the socket and reach
            // the forwarder in one burst, more than the 64-change channel holds (the defect's shape).
            // The containers are killed before dockerd's SIGTERM because dockerd closes its API (and
            // so the event stream) before it stops its containers: on a loaded machine most of those
            // dies never reached a subscriber.
            let (host, all) = (dockerd.host(), ids.iter().cloned().collect::<Vec<_>>());
            let killer = std::thread::spawn(move || {
                Command::new("docker")
                    .arg("-H")
                    .arg(host)
                    .arg("kill")
                    .args(all)
                    .output()
            });
            std::thread::sleep(Duration::from_secs(5));
            let _ = killer.join();
            dockerd.stop();
            *stopped_at.borrow_mut() = Some(Instant::now());
            async_io::Timer::after(Duration::from_secs(15)).await;
        };
        smol::future::or(sampling, script).await;
        drop(events);
    }));

    let s = seen.borrow();
    let died: HashSet<&String> = s.died.keys().collect();
    assert_eq!(
        died.len(),
        CONTAINERS,
        "every container's die arrived (the private dockerd stops them): {}",
        dockerd
            .log()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Every container whose die arrived left the table (Gone), soon (the die may wait behind the burst
    // in the queue, or for an engine call of the driver, `CALL_TIMEOUT_MS`), and was never sampled
    // after it left. With stops dropped on a full channel (the defect) some never leave.
    for id in &ids {
        let died_at = s.died[id];
        let gone_at = *s
            .gone
            .get(id)
            .unwrap_or_else(|| panic!("{id} still in the table after its die"));
        assert!(
            gone_at <= died_at + Duration::from_secs(12),
            "{id} left the table {:?} after its die",
            gone_at.saturating_duration_since(died_at)
        );
        let reports: Vec<Instant> = s
            .failed
            .get(id)
            .into_iter()
            .flatten()
            .chain(s.readings.get(id).into_iter().flatten())
            .copied()
            .collect();
        let after_gone = reports.iter().filter(|t| **t > gone_at).count();
        assert_eq!(
            after_gone, 0,
            "{id} sampled {after_gone} times after it left the table"
        );
    }
}
