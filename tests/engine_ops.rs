//! Container operations, logs and the `list_containers` payload against the real engine: every call
//! is checked with the docker CLI (`docker inspect`, `docker ps -a`, `docker logs`), never against our
//! own reading of the answer.
mod support;

use dockmon_agent::docker::{endpoint, Client, Error};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::*;

/// Runs `test` on its own thread and fails if it takes longer than `limit` (so a hang fails instead
/// of stalling CI). A panic in `test` is passed on.
fn watchdog<F: FnOnce() + Send + 'static>(limit: Duration, test: F) {
    let (done, wait) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        test();
        let _ = done.send(());
    });
    match wait.recv_timeout(limit) {
        Ok(()) => worker.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test ran past its {limit:?} watchdog"),
    }
}

fn client() -> Client {
    require_engine();
    let ep = endpoint::select(None, endpoint::is_socket).unwrap();
    async_io::block_on(Client::connect(ep)).expect("connect to the engine")
}

/// `docker inspect -f <format> <name>`, trimmed.
fn inspect(name: &str, format: &str) -> String {
    docker(&["inspect", "-f", format, name]).trim().to_string()
}

/// Whether `docker inspect` finds `name`.
fn exists(name: &str) -> bool {
    Command::new("docker")
        .args(["inspect", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Removes a container by name when dropped (for names `Containers` does not know, after a rename).
struct RemoveOnDrop(String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Waits until `docker logs` of `name` shows `lines` lines (the log copier is asynchronous).
/// The text after Docker's time stamp (RFC 3339 nano, whose length varies: trailing zeros of the
/// fraction are dropped).
fn after_stamp(l: &str) -> &str {
    l.split_once(' ').map_or("", |(_, rest)| rest)
}

fn wait_for_log_lines(name: &str, lines: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new("docker")
            .args(["logs", name])
            .output()
            .unwrap();
        let n = out
            .stdout
            .iter()
            .chain(&out.stderr)
            .filter(|&&b| b == b'\n')
            .count();
        if n >= lines {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} logged {n} of {lines} lines"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `2026-11-29T03:42:22.615270964Z ` at the start: Docker's RFC 3339 timestamp with nine digits.
fn starts_with_timestamp(line: &str) -> bool {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd.dddddddddZ ";
    let b = line.as_bytes();
    b.len() >= SHAPE.len()
        && SHAPE.iter().zip(b).all(|(&want, &got)| match want {
            b'd' => got.is_ascii_digit(),
            _ => got == want,
        })
}

fn status_of(err: &Error) -> (u16, &str) {
    match err {
        Error::Status {
            status, message, ..
        } => (*status, message.as_str()),
        other => panic!("expected an HTTP status error, got {other}"),
    }
}

#[test]
fn start_stop_restart_and_kill_change_the_state_docker_reports() {
    watchdog(Duration::from_secs(120), || {
        let c = client();
        let mut cs = Containers::new("ops");
        // Exits 0 at once on SIGTERM (`wait` is interrupted by a trapped signal).
        let id = cs.create(
            "life",
            &["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"],
        );
        let name = cs.name("life");
        async_io::block_on(async {
            c.start(&id).await.unwrap();
            assert_eq!(inspect(&name, "{{.State.Status}}"), "running");
            let first_start = inspect(&name, "{{.State.StartedAt}}");

            c.start(&id)
                .await
                .expect("starting a running container is success (304)");
            assert_eq!(inspect(&name, "{{.State.StartedAt}}"), first_start);

            let t = Instant::now();
            c.stop(&id, 10).await.unwrap();
            assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
            assert_eq!(
                inspect(&name, "{{.State.Status}} {{.State.ExitCode}}"),
                "exited 0"
            );
            c.stop(&id, 10)
                .await
                .expect("stopping a stopped container is success (304)");

            // Restart of a stopped container starts it; of a running one stops and starts it.
            c.restart(&id, 10).await.unwrap();
            assert_eq!(inspect(&name, "{{.State.Status}}"), "running");
            let second_start = inspect(&name, "{{.State.StartedAt}}");
            assert_ne!(second_start, first_start);
            c.restart(&id[..12], 10).await.unwrap();
            assert_eq!(inspect(&name, "{{.State.Status}}"), "running");
            assert_ne!(inspect(&name, "{{.State.StartedAt}}"), second_start);

            c.kill(&id).await.unwrap();
            assert_eq!(
                inspect(&name, "{{.State.Status}} {{.State.ExitCode}}"),
                "exited 137"
            );
            let err = c.kill(&id).await.unwrap_err();
            let (status, message) = status_of(&err);
            assert_eq!(status, 409);
            assert!(message.contains("is not running"), "{message}");
        });
    });
}

#[test]
fn stop_of_a_container_ignoring_sigterm_takes_the_timeout() {
    watchdog(Duration::from_secs(60), || {
        let c = client();
        let mut cs = Containers::new("stopwait");
        let id = cs.run("deaf", &[], &["sh", "-c", "trap '' TERM; sleep 100000"]);
        async_io::block_on(async {
            let t = Instant::now();
            c.stop(&id, 2).await.unwrap();
            let took = t.elapsed();
            assert!(
                took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
                "stop with t=2 took {took:?}"
            );
        });
        assert_eq!(
            inspect(&cs.name("deaf"), "{{.State.Status}} {{.State.ExitCode}}"),
            "exited 137",
            "SIGTERM was ignored, so Docker killed it"
        );
    });
}

#[test]
fn rename_and_remove_act_on_the_container() {
    watchdog(Duration::from_secs(90), || {
        let c = client();
        let mut cs = Containers::new("rename");
        let id = cs.run("old", &[], &["sleep", "100000"]);
        let taken = cs.run("taken", &[], &["sleep", "100000"]);
        let new_name = cs.name("new");
        let _guard = RemoveOnDrop(new_name.clone());
        async_io::block_on(async {
            c.rename(&id, &new_name).await.unwrap();
            assert_eq!(inspect(&id, "{{.Name}}"), format!("/{new_name}"));

            let err = c.rename(&id, &cs.name("taken")).await.unwrap_err();
            let (status, message) = status_of(&err);
            assert_eq!(status, 409);
            assert!(message.contains("already in use"), "{message}");

            // Encoded, so the slash reaches Docker as part of the name, which it refuses.
            let err = c.rename(&id, "bad/name x").await.unwrap_err();
            let (status, message) = status_of(&err);
            assert_eq!(status, 400, "{message}");
            assert!(message.contains("Invalid container name"), "{message}");
            assert_eq!(inspect(&id, "{{.Name}}"), format!("/{new_name}"));

            let err = c.remove(&id, false).await.unwrap_err();
            let (status, message) = status_of(&err);
            assert_eq!(status, 409);
            assert!(
                message.contains("cannot remove a running container"),
                "{message}"
            );
            assert!(exists(&id));

            c.remove(&id, true).await.unwrap();
            assert!(!exists(&id), "forced remove of a running container");

            c.stop(&taken, 0).await.unwrap();
            c.remove(&taken, false).await.unwrap();
            assert!(!exists(&taken), "remove of a stopped container");
        });
    });
}

#[test]
fn unknown_ids_are_404_with_dockers_message() {
    watchdog(Duration::from_secs(60), || {
        let c = client();
        let ghost = format!("dmtest-ghost-{}", std::process::id());
        async_io::block_on(async {
            let mut text = String::new();
            let results: Vec<(&str, Result<(), Error>)> = vec![
                ("start", c.start(&ghost).await),
                ("stop", c.stop(&ghost, 1).await),
                ("restart", c.restart(&ghost, 1).await),
                ("kill", c.kill(&ghost).await),
                ("rename", c.rename(&ghost, "whatever").await),
                ("remove", c.remove(&ghost, true).await),
                ("logs", c.logs(&ghost, 10, false, &mut text).await),
            ];
            for (op, result) in results {
                let err = result.expect_err(op);
                assert!(err.is_not_found(), "{op}: {err}");
                let (_, message) = status_of(&err);
                // Kill prefixes its own context: `Cannot kill container: x: No such container: x`.
                assert!(
                    message.ends_with(&format!("No such container: {ghost}")),
                    "{op}: {message}"
                );
                assert!(err.to_string().contains(&ghost), "{op}: {err}");
            }
            let mut buf = Vec::new();
            let err = c
                .image_repo_digests(
                    "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                    &mut buf,
                )
                .await
                .unwrap_err();
            assert!(err.is_not_found(), "{err}");
            assert!(status_of(&err).1.contains("No such image"), "{err}");
        });
    });
}

#[test]
fn logs_of_a_non_tty_container_list_stdout_lines_then_stderr_lines() {
    watchdog(Duration::from_secs(60), || {
        let c = client();
        let mut cs = Containers::new("logs");
        let id = cs.run(
            "mixed",
            &[],
            &[
                "sh",
                "-c",
                "echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo out3; sleep 100000",
            ],
        );
        wait_for_log_lines(&cs.name("mixed"), 5);
        let mut text = String::new();
        async_io::block_on(c.logs(&id, 100, false, &mut text)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let messages: Vec<&str> = lines.iter().map(|l| after_stamp(l)).collect();
        assert_eq!(
            messages,
            ["out1", "out2", "out3", "err1", "err2"],
            "{text:?}"
        );
        assert!(text.ends_with('\n'));
        for line in &lines {
            assert!(starts_with_timestamp(line), "{line:?}");
        }

        // The same lines, stream by stream, as the docker CLI shows them.
        let out = Command::new("docker")
            .args(["logs", "-t", &id])
            .output()
            .unwrap();
        let cli = String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap();
        assert_eq!(text, cli);
    });
}

#[test]
fn logs_of_a_tty_container_are_the_raw_stream() {
    watchdog(Duration::from_secs(60), || {
        let c = client();
        let mut cs = Containers::new("logstty");
        let id = cs.run(
            "tty",
            &["-t"],
            &[
                "sh",
                "-c",
                "echo out1; echo err1 >&2; printf '\\377x\\n'; sleep 100000",
            ],
        );
        wait_for_log_lines(&cs.name("tty"), 3);
        assert_eq!(inspect(&id, "{{.Config.Tty}}"), "true");
        let mut text = String::new();
        async_io::block_on(c.logs(&id, 100, true, &mut text)).unwrap();
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        assert_eq!(lines.len(), 3, "{text:?}");
        for line in &lines {
            assert!(starts_with_timestamp(line), "{line:?}");
            assert!(line.ends_with('\r'), "a TTY writes CRLF: {line:?}");
        }
        assert_eq!(after_stamp(lines[0]), "out1\r");
        assert_eq!(after_stamp(lines[1]), "err1\r");
        assert_eq!(after_stamp(lines[2]), "\u{fffd}x\r");

        // Read as multiplexed, the raw stream is refused cleanly, not misread.
        let err = async_io::block_on(c.logs(&id, 100, false, &mut text)).unwrap_err();
        assert!(matches!(err, Error::Stream { .. }), "{err}");
        assert!(err.to_string().contains("unknown stream type 50"), "{err}");
    });
}

#[test]
fn logs_honour_tail_and_tail_zero_means_one_hundred() {
    watchdog(Duration::from_secs(60), || {
        let c = client();
        let mut cs = Containers::new("logstail");
        let id = cs.run("seq", &[], &["sh", "-c", "seq 1 150; sleep 100000"]);
        wait_for_log_lines(&cs.name("seq"), 150);
        let numbers = |text: &str| -> Vec<u32> {
            text.lines()
                .map(|l| {
                    assert!(starts_with_timestamp(l), "{l:?}");
                    after_stamp(l).parse().unwrap()
                })
                .collect()
        };
        let mut text = String::new();
        async_io::block_on(async {
            c.logs(&id, 5, false, &mut text).await.unwrap();
            assert_eq!(numbers(&text), (146..=150).collect::<Vec<_>>());
            c.logs(&id, 0, false, &mut text).await.unwrap();
            assert_eq!(numbers(&text), (51..=150).collect::<Vec<_>>());
            c.logs(&id, 10_000, false, &mut text).await.unwrap();
            assert_eq!(numbers(&text), (1..=150).collect::<Vec<_>>());
        });
    });
}

#[test]
fn logs_of_a_100_kib_line_arrive_whole() {
    watchdog(Duration::from_secs(60), || {
        let c = client();
        let mut cs = Containers::new("logsbig");
        let id = cs.run(
            "big",
            &[],
            &[
                "sh",
                "-c",
                "head -c 102400 /dev/zero | tr '\\0' x; echo; echo after; sleep 100000",
            ],
        );
        wait_for_log_lines(&cs.name("big"), 2);
        let mut text = String::new();
        async_io::block_on(c.logs(&id, 100, false, &mut text)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{} bytes", text.len());
        assert!(starts_with_timestamp(lines[0]));
        assert_eq!(lines[0].matches('x').count(), 102_400);
        // Docker stores the line as 16 KiB messages, each with its own timestamp.
        assert_eq!(
            lines[0].matches("Z x").count(),
            102_400usize.div_ceil(16 * 1024)
        );
        assert!(starts_with_timestamp(lines[1]));
        assert_eq!(after_stamp(lines[1]), "after");
    });
}

#[test]
fn logs_past_the_cap_keep_the_newest_whole_lines() {
    watchdog(Duration::from_secs(60), || {
        let c = client();
        let mut cs = Containers::new("logscap");
        // 12000 lines of about 128 bytes with their timestamps: 1.5 MiB, past LOGS_REPLY_MAX_BYTES.
        // Each stderr line follows its thousand stdout lines once they are flushed and Docker has had
        // 0.2 s to log them: Docker reads the two streams apart, and under load its stdout side fell
        // more than 8,000 lines behind, which logged every stderr line before the newest 10,000
        // lines and left none for the reply (seen with a cold page cache and four tests at once).
        let id = cs.run(
            "many",
            &[],
            &[
                "awk",
                "BEGIN { pad = sprintf(\"%90s\", \"\"); gsub(/ /, \"y\", pad); \
                 for (i = 1; i <= 12000; i++) { printf \"%d %s\\n\", i, pad; \
                 if (i % 1000 == 0) { system(\"sleep 0.2\"); \
                 printf \"e%d\\n\", i > \"/dev/stderr\" } } \
                 system(\"sleep 100000\") }",
            ],
        );
        wait_for_log_lines(&cs.name("many"), 12_012);
        let mut text = String::new();
        async_io::block_on(c.logs(&id, 10_000, false, &mut text)).unwrap();
        assert!(
            text.len() <= dockmon_agent::limits::LOGS_REPLY_MAX_BYTES,
            "{} bytes",
            text.len()
        );
        let lines: Vec<&str> = text.lines().collect();
        // Docker's RFC 3339 nano stamps drop trailing zeros: cut at the first space, not at a column.
        let body = |l: &str| l.split_once(' ').map_or("", |(_, rest)| rest).to_string();
        let (out, err): (Vec<&str>, Vec<&str>) =
            lines.iter().partition(|l| !body(l).starts_with('e'));
        let numbers: Vec<u32> = out
            .iter()
            .map(|l| {
                assert!(starts_with_timestamp(l), "{l:?}");
                let rest = body(l);
                let (n, pad) = rest.split_once(' ').unwrap();
                assert_eq!(pad.len(), 90, "whole lines only");
                n.parse::<u32>().unwrap()
            })
            .collect();
        let first = numbers[0];
        assert_eq!(
            numbers,
            (first..=12000).collect::<Vec<_>>(),
            "the newest, in order"
        );
        assert!(numbers.len() > 7000, "kept {} lines", numbers.len());
        assert!(
            first > 2001,
            "the tail of 10000 lines did not fit, so older ones went"
        );
        // stderr lines come after every stdout line and are the newest ones too.
        assert_eq!(&lines[out.len()..], &err[..]);
        let errs: Vec<u32> = err.iter().map(|l| body(l)[1..].parse().unwrap()).collect();
        assert_eq!(errs.last(), Some(&12000));
        assert!(
            errs.iter().all(|&e| e >= first - 1000),
            "{errs:?} vs first {first}"
        );
    });
}

#[test]
fn list_for_dockmon_has_every_container_with_the_three_keys() {
    watchdog(Duration::from_secs(120), || {
        let c = client();
        let mut cs = Containers::new("list");
        let running = cs.run(
            "running",
            &[
                "-e",
                "FOO=bar",
                "-e",
                "QUOTE=say \"hi\"",
                "-e",
                "EQ=a=b",
                "-l",
                "app=dmtest",
            ],
            &["sleep", "100000"],
        );
        let created = cs.create("created", &["true"]);
        let exited = cs.run("exited", &[], &["true"]);
        docker(&["wait", &exited]);
        let ps = || -> BTreeSet<String> {
            docker(&["ps", "-a", "--no-trunc", "--format", "{{.ID}}"])
                .lines()
                .map(str::to_string)
                .collect()
        };
        // Other tests create and remove containers meanwhile: check those there before and after.
        let before = ps();
        let mut out = Vec::new();
        let count = async_io::block_on(c.list_for_dockmon(&mut out)).unwrap();
        let after = ps();

        let doc: Value = serde_json::from_slice(&out).expect("the payload is JSON");
        let elements = doc.as_array().expect("an array");
        assert_eq!(count, elements.len());
        let by_id = |id: &str| {
            elements
                .iter()
                .find(|e| e["Id"] == id)
                .unwrap_or_else(|| panic!("{id} missing from the list"))
        };
        for id in before.intersection(&after) {
            let e = by_id(id);
            assert!(e["RepoDigests"].is_array(), "{id}: {e}");
            assert!(e["Env"].is_object(), "{id}: Env");
            assert!(
                e["Names"].is_array() && e["State"].is_string(),
                "{id}: Docker's keys kept"
            );
            // Containers of other tests may be removed from here on: compare details on ours only.
            if ![&running, &created, &exited].contains(&id) {
                continue;
            }
            let started = inspect(id, "{{json .State.StartedAt}}");
            if started == "\"0001-01-01T00:00:00Z\"" {
                assert!(e.get("StartedAt").is_none(), "{id}: never started");
            } else {
                assert_eq!(e["StartedAt"].to_string(), started, "{id}");
            }
            let digests: Value = serde_json::from_str(&docker(&[
                "image",
                "inspect",
                "-f",
                "{{json .RepoDigests}}",
                e["ImageID"].as_str().unwrap(),
            ]))
            .unwrap();
            assert_eq!(e["RepoDigests"], digests, "{id}");
        }
        for id in [&running, &created, &exited] {
            assert!(before.contains(id) && after.contains(id));
        }

        let r = by_id(&running);
        assert_eq!(r["State"], "running");
        assert_eq!(r["Labels"]["app"], "dmtest");
        assert_eq!(r["Env"]["FOO"], "bar");
        assert_eq!(r["Env"]["QUOTE"], "say \"hi\"");
        assert_eq!(r["Env"]["EQ"], "a=b");
        let env: Vec<String> =
            serde_json::from_str(&inspect(&running, "{{json .Config.Env}}")).unwrap();
        assert_eq!(r["Env"].as_object().unwrap().len(), env.len());
        assert_eq!(
            r["RepoDigests"],
            serde_json::json!([]),
            "a locally built image"
        );

        let cr = by_id(&created);
        assert_eq!(cr["State"], "created");
        assert!(cr.get("StartedAt").is_none());
        let ex = by_id(&exited);
        assert_eq!(ex["State"], "exited");
        assert!(ex["StartedAt"].is_string(), "an exited container did start");
    });
}

#[test]
fn daemon_started_at_is_the_bridge_networks_creation_time() {
    watchdog(Duration::from_secs(30), || {
        let c = client();
        let mut buf = Vec::new();
        let ours = async_io::block_on(c.daemon_started_at(&mut buf)).unwrap();
        let bridge: Value =
            serde_json::from_str(&docker(&["network", "inspect", "bridge"])).unwrap();
        assert_eq!(ours, bridge[0]["Created"].as_str().unwrap());
        assert!(ours.len() >= 20 && ours.contains('T'), "{ours}");
    });
}

#[test]
fn image_repo_digests_agree_with_docker_image_inspect() {
    watchdog(Duration::from_secs(30), || {
        let c = client();
        ensure_image();
        let id = docker(&["image", "inspect", "-f", "{{.Id}}", IMAGE]);
        let mut buf = Vec::new();
        let ours = async_io::block_on(c.image_repo_digests(id.trim(), &mut buf)).unwrap();
        let theirs: Vec<String> = serde_json::from_str(&docker(&[
            "image",
            "inspect",
            "-f",
            "{{json .RepoDigests}}",
            IMAGE,
        ]))
        .unwrap();
        assert_eq!(ours, theirs);
    });
}
