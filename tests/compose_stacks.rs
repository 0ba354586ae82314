//! Compose stacks end to end (issue 16): the agent against the protocol test server and the real
//! engine deploys every fixture of tests/fixtures/compose, which is then compared field by field
//! with what Debian's docker-compose 1.29 (the oracle) creates from the same file; re-up with no
//! change recreates nothing, a change recreates only the named service, down removes everything.
//! Also: unsupported keys and malformed YAML create nothing; remove_volumes; scan and read.
#[path = "support/compose.rs"]
mod compose;
#[path = "support/dockmon_server.rs"]
#[allow(dead_code)]
mod dockmon_server;
#[path = "support/registry.rs"]
mod registry;
mod support;

use dockmon_server::{DockmonServer, Options};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const TOKEN: &str = "reg-token-compose";
const APP1: &str = "dmt-compose/app:1";
const APP2: &str = "dmt-compose/app:2";

struct Agent {
    child: Child,
    stacks: PathBuf,
    home: PathBuf,
    log: PathBuf,
}

impl Agent {
    fn start(server: &DockmonServer) -> Agent {
        require_engine();
        let data = tempdir("compose-data");
        let stacks = data.join("stacks");
        let home = data.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let log = data.with_extension("log");
        let child = Command::new(agent_bin())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DOCKMON_URL", server.url())
            .env("REGISTRATION_TOKEN", TOKEN)
            .env("DATA_PATH", &data)
            .env("AGENT_STACKS_DIR", &stacks)
            .env("HOME", &home)
            .env("LOG_JSON", "false")
            .env("LOG_LEVEL", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn the agent");
        server.wait_for_agent(Duration::from_secs(15));
        Agent {
            child,
            stacks,
            home,
            log,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "agent log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

fn quiet(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes every object labelled with one of the projects (containers, networks, volumes), on drop.
struct Cleanup(Vec<String>);

impl Cleanup {
    fn sweep(&self) {
        for p in &self.0 {
            let f = format!("label=com.docker.compose.project={p}");
            for id in quiet(&["ps", "-aq", "--filter", &f]).lines() {
                quiet(&["rm", "-f", "-v", id]);
            }
            for id in quiet(&["network", "ls", "-q", "--filter", &f]).lines() {
                quiet(&["network", "rm", id]);
            }
            for id in quiet(&["volume", "ls", "-q", "--filter", &f]).lines() {
                quiet(&["volume", "rm", "-f", id]);
            }
        }
        quiet(&["rm", "-f", "dmt-compose-fixed-name"]);
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.sweep();
    }
}

fn images() {
    ensure_image();
    docker(&["tag", IMAGE, APP1]);
    docker(&["tag", IMAGE, APP2]);
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/compose")
            .join(name),
    )
    .unwrap()
}

/// Sends deploy_compose under a fresh deployment ID and waits for its deploy_complete (returns it
/// with the progress events).
fn deploy(server: &DockmonServer, project: &str, overrides: Value) -> (Value, Vec<Value>) {
    let dep_id = format!("host:{project}:{}", nanos());
    compose::deploy(server, compose::payload(&dep_id, project, overrides))
}

/// Nanoseconds since the epoch: a seed, and a fresh deployment ID.
fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Container IDs of a project by service.
fn containers(project: &str) -> BTreeMap<String, String> {
    let f = format!("label=com.docker.compose.project={project}");
    quiet(&["ps", "-aq", "--no-trunc", "--filter", &f])
        .lines()
        .map(|id| {
            let v: Value = serde_json::from_str(&quiet(&["inspect", id])).unwrap();
            let svc = v[0]["Config"]["Labels"]["com.docker.compose.service"]
                .as_str()
                .unwrap()
                .to_string();
            (svc, id.to_string())
        })
        .collect()
}

fn labelled(kind: &str, project: &str) -> Vec<String> {
    let f = format!("label=com.docker.compose.project={project}");
    let mut v: Vec<String> = quiet(&[kind, "ls", "-q", "--filter", &f])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// The fields compared with the oracle, with project names and directories replaced.
fn normalized(project: &str, dir: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (svc, id) in containers(project) {
        let v: Value = serde_json::from_str(&quiet(&["inspect", &id])).unwrap();
        let c = &v[0];
        let mut labels = c["Config"]["Labels"].as_object().unwrap().clone();
        labels.retain(|k, _| {
            !matches!(
                k.as_str(),
                "com.docker.compose.config-hash"
                    | "com.docker.compose.version"
                    | "com.docker.compose.project.working_dir"
                    | "com.docker.compose.project.config_files"
                    | "com.docker.compose.depends_on"
                    | "com.docker.compose.image"
                    | "com.docker.compose.project.environment_file"
            )
        });
        let mut env: Vec<Value> = c["Config"]["Env"].as_array().cloned().unwrap_or_default();
        env.sort_by_key(|e| e.to_string());
        let mut mounts: Vec<Value> = c["Mounts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let src = if m["Type"] == "volume" && m["Name"].as_str().is_some_and(|n| n.len() == 64) {
                    json!("<anonymous>")
                } else if m["Type"] == "volume" {
                    m["Name"].clone()
                } else {
                    m["Source"].clone()
                };
                json!({"Type": m["Type"], "Source": src, "Destination": m["Destination"], "RW": m["RW"]})
            })
            .collect();
        mounts.sort_by_key(|m| m["Destination"].to_string());
        let nets: BTreeMap<String, Value> = c["NetworkSettings"]["Networks"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, ep)| {
                let mut aliases: Vec<String> = ep["Aliases"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .filter(|a| !(a.len() == 12 && a.chars().all(|c| c.is_ascii_hexdigit())))
                    .filter(|a| !a.starts_with(project))
                    .collect();
                aliases.sort();
                aliases.dedup();
                (
                    name.clone(),
                    json!({"Aliases": aliases, "IPAMConfig": ep["IPAMConfig"]}),
                )
            })
            .collect();
        let h = &c["HostConfig"];
        // Docker names a container after its short ID (or, with `network_mode: service:x`, after
        // x's): IDs differ between the two deployments.
        let hostname = if c["Config"]["Hostname"]
            .as_str()
            .is_some_and(|n| n.len() == 12 && n.chars().all(|c| c.is_ascii_hexdigit()))
        {
            json!("<id>")
        } else {
            c["Config"]["Hostname"].clone()
        };
        let network_mode = match h["NetworkMode"].as_str() {
            Some(m) if m.starts_with("container:") => json!("container:<id>"),
            _ => h["NetworkMode"].clone(),
        };
        let fields = json!({
            "Image": c["Config"]["Image"],
            "Cmd": c["Config"]["Cmd"],
            "Entrypoint": c["Config"]["Entrypoint"],
            "Env": env,
            "Labels": labels,
            "User": c["Config"]["User"],
            "WorkingDir": c["Config"]["WorkingDir"],
            "Hostname": hostname,
            "Tty": c["Config"]["Tty"],
            "OpenStdin": c["Config"]["OpenStdin"],
            "StopSignal": c["Config"]["StopSignal"],
            "StopTimeout": c["Config"]["StopTimeout"],
            "Healthcheck": c["Config"]["Healthcheck"],
            "ExposedPorts": c["Config"]["ExposedPorts"],
            "PortBindings": h["PortBindings"],
            "Mounts": mounts,
            "Networks": nets,
            "NetworkMode": network_mode,
            "RestartPolicy": h["RestartPolicy"],
            "CapAdd": h["CapAdd"],
            "CapDrop": h["CapDrop"],
            "Dns": h["Dns"],
            "ExtraHosts": h["ExtraHosts"],
            "Privileged": h["Privileged"],
            "Init": h["Init"],
            "ShmSize": h["ShmSize"],
            "Memory": h["Memory"],
            "NanoCpus": h["NanoCpus"],
            "PidsLimit": h["PidsLimit"],
            "Ulimits": h["Ulimits"],
            "Sysctls": h["Sysctls"],
            "LogConfig": h["LogConfig"],
            "Devices": h["Devices"],
            "State": c["State"]["Status"],
        });
        let text = fields
            .to_string()
            .replace(&dir.to_string_lossy().to_string(), "<DIR>")
            .replace(project, "<P>");
        out.insert(svc, serde_json::from_str(&text).unwrap());
    }
    out
}

/// Known differences with docker-compose 1.29 that the comparison tolerates (README).
fn tolerate(field: &str, ours: &Value, oracle: &Value) -> bool {
    match field {
        // 1.29 sends no empty lists/values where we omit them, and vice versa.
        _ if (ours.is_null() || ours == &json!([]) || ours == &json!({}) || ours == &json!(""))
            && (oracle.is_null()
                || oracle == &json!([])
                || oracle == &json!({})
                || oracle == &json!("")) =>
        {
            true
        }
        // No policy and policy `no` (retry count 0) are the same thing to the engine.
        "RestartPolicy" => {
            let name = |v: &Value| match v["Name"].as_str() {
                None | Some("") => "no".to_string(),
                Some(n) => n.to_string(),
            };
            name(ours) == name(oracle) && ours["MaximumRetryCount"] == oracle["MaximumRetryCount"]
        }
        _ => false,
    }
}

fn compare(ours: &BTreeMap<String, Value>, oracle: &BTreeMap<String, Value>) -> Vec<String> {
    let mut diffs = Vec::new();
    let services: Vec<&String> = ours.keys().chain(oracle.keys()).collect();
    for s in services {
        let (Some(a), Some(b)) = (ours.get(s), oracle.get(s)) else {
            diffs.push(format!("{s}: present on one side only"));
            continue;
        };
        for (k, av) in a.as_object().unwrap() {
            let bv = &b[k];
            if av != bv && !tolerate(k, av, bv) {
                diffs.push(format!("{s}.{k}: agent {av} vs docker-compose {bv}"));
            }
        }
    }
    diffs.sort();
    diffs.dedup();
    diffs
}

fn compose_cli(dir: &Path, project: &str, args: &[&str]) -> std::process::Output {
    Command::new("docker-compose")
        .current_dir(dir)
        .args(["-p", project, "-f", "docker-compose.yml"])
        .args(args)
        .output()
        .expect("docker-compose (Debian's docker-compose 1.29) is needed as the oracle")
}

/// `count` consecutive ports, each free for TCP and UDP on all addresses, in 20000-32767 (below
/// Linux's ephemeral range, so no outgoing connection of another test takes one meanwhile).
fn free_port_block(count: u16) -> u16 {
    use std::net::{TcpListener, UdpSocket};
    let mut seed = nanos() as u64;
    for _ in 0..1000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let base = 20000 + ((seed >> 33) % (12768 - u64::from(count))) as u16;
        let free = (base..base + count).all(|p| {
            TcpListener::bind(("0.0.0.0", p)).is_ok() && UdpSocket::bind(("0.0.0.0", p)).is_ok()
        });
        if free {
            return base;
        }
    }
    panic!("no block of {count} free ports in 20000-32767");
}

/// `DMT_PORT_<n>=<port>` lines for every `${DMT_PORT_<n>}` of `yaml`, in one block of consecutive
/// free ports (in the order of `<n>`, so `${DMT_PORT_90}-${DMT_PORT_91}` is a range).
fn port_vars(yaml: &str) -> String {
    let mut names: Vec<&str> = yaml
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split('}').next())
        .filter(|n| n.starts_with("DMT_PORT_"))
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return String::new();
    }
    let base = free_port_block(names.len() as u16);
    names
        .iter()
        .zip(base..)
        .map(|(n, p)| format!("{n}={p}\n"))
        .collect()
}

fn env_files_for(name: &str, yaml: &str) -> Value {
    let stem = name.trim_end_matches(".yml");
    let mut files = serde_json::Map::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose");
    let dotenv = std::fs::read_to_string(dir.join(format!("{stem}.env"))).unwrap_or_default();
    let ports = port_vars(yaml);
    if !dotenv.is_empty() || !ports.is_empty() {
        files.insert(".env".into(), format!("{dotenv}\n{ports}").into());
    }
    if let Ok(t) = std::fs::read_to_string(dir.join(format!("{stem}.app.env"))) {
        files.insert("app.env".into(), t.into());
    }
    Value::Object(files)
}

/// With `--features count-alloc` (DMT_HEAP=1), the agent's heap figures (SIGUSR1 → a log line).
fn heap_reading(agent: &Agent, when: &str) {
    if std::env::var_os("DMT_HEAP").is_none() {
        return;
    }
    let before = std::fs::read_to_string(&agent.log)
        .unwrap_or_default()
        .matches("heap in use")
        .count();
    let _ = Command::new("kill")
        .args(["-USR1", &agent.child.id().to_string()])
        .status();
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        let log = std::fs::read_to_string(&agent.log).unwrap_or_default();
        if log.matches("heap in use").count() > before {
            let line = log.lines().rfind(|l| l.contains("heap in use")).unwrap();
            eprintln!(
                "heap {when}: {}",
                &line[line.find("heap in use").unwrap()..]
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_fixture(server: &DockmonServer, agent: &Agent, n: usize, name: &str) -> Vec<String> {
    let yaml = fixture(name);
    let changes = yaml
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# changes: "))
        .expect("first line names the changed service")
        .trim()
        .to_string();
    let project = format!("dmt-compose-{n:02}");
    let oracle = format!("dmt-compose-o{n:02}");
    let _clean = Cleanup(vec![project.clone(), oracle.clone()]);
    _clean.sweep();
    let env_files = env_files_for(name, &yaml);
    let profiles = if name.contains("profiles") {
        json!(["debug"])
    } else {
        json!([])
    };
    let base = json!({"compose_content": yaml, "env_files": env_files, "profiles": profiles});
    let dir = agent.stacks.join(&project);
    if name.contains("volumes") || name.contains("monitoring") || name.contains("media") {
        std::fs::create_dir_all(dir.join("conf")).unwrap();
    }

    // up
    let (done, progress) = deploy(server, &project, base.clone());
    assert_eq!(done["success"], true, "{name}: {done}");
    assert_eq!(progress[0]["stage"], "starting", "{name}");
    assert!(progress.iter().any(|p| p["stage"] == "completed"), "{name}");
    let first = containers(&project);
    assert_eq!(
        first.len(),
        done["services"].as_object().unwrap().len(),
        "{name}: {done}"
    );
    for (svc, r) in done["services"].as_object().unwrap() {
        assert_eq!(
            &first[svc][..12],
            r["container_id"].as_str().unwrap(),
            "{name}"
        );
    }
    let ours = normalized(&project, &dir);

    heap_reading(agent, &format!("after the first up of {name}"));

    // re-up with no change: nothing recreated.
    let (done, _) = deploy(server, &project, base.clone());
    assert_eq!(done["success"], true, "{name}: {done}");
    assert_eq!(
        containers(&project),
        first,
        "{name}: a re-up recreated something"
    );

    // a change: only that service recreated.
    let mut changed = base.clone();
    let mut ef = env_files.as_object().unwrap().clone();
    let dotenv = ef
        .get(".env")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    ef.insert(".env".into(), format!("{dotenv}\nDMT_CHANGE=1\n").into());
    changed["env_files"] = Value::Object(ef);
    let (done, _) = deploy(server, &project, changed);
    assert_eq!(done["success"], true, "{name}: {done}");
    let after = containers(&project);
    for (svc, id) in &first {
        if *svc == changes {
            assert_ne!(&after[svc], id, "{name}: {svc} was not recreated");
        } else {
            assert_eq!(
                &after[svc], id,
                "{name}: {svc} was recreated but did not change"
            );
        }
    }

    // down (with volumes): nothing left.
    let (done, _) = deploy(
        server,
        &project,
        json!({"action": "down", "remove_volumes": true}),
    );
    assert_eq!(done["success"], true, "{name}: {done}");
    assert!(containers(&project).is_empty(), "{name}");
    assert!(labelled("network", &project).is_empty(), "{name}");
    assert!(labelled("volume", &project).is_empty(), "{name}");

    // The oracle, from a directory holding the same files.
    if yaml.contains("container_name") {
        eprintln!("{name}: not compared with the oracle (container_name is global)");
        return Vec::new();
    }
    let odir = agent.home.join("oracle").join(&oracle);
    std::fs::create_dir_all(odir.join("conf")).unwrap();
    std::fs::write(odir.join("docker-compose.yml"), &yaml).unwrap();
    for (f, c) in env_files.as_object().unwrap() {
        std::fs::write(odir.join(f), c.as_str().unwrap()).unwrap();
    }
    let mut args = vec!["up", "-d"];
    if name.contains("profiles") {
        args = vec!["--profile", "debug", "up", "-d"];
    }
    let out = compose_cli(&odir, &oracle, &args);
    assert!(
        out.status.success(),
        "{name}: docker-compose up: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = normalized(&oracle, &odir);
    let out = compose_cli(&odir, &oracle, &["down", "-v", "-t", "2"]);
    assert!(
        out.status.success(),
        "{name}: docker-compose down: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    compare(&ours, &theirs)
        .into_iter()
        .map(|d| format!("{name}: {d}"))
        .collect()
}

#[test]
fn fixtures_match_docker_compose_and_redeploy_minimally() {
    images();
    let server = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let agent = Agent::start(&server);
    std::thread::sleep(Duration::from_secs(1));
    heap_reading(&agent, "idle, before any deployment");
    let only = std::env::var("DMT_FIXTURE").ok();
    let mut names: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".yml"))
            .filter(|n| only.as_ref().is_none_or(|o| n.contains(o.as_str())))
            .collect();
    names.sort();
    assert!(!names.is_empty());
    let mut diffs = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let n: usize = name[..2].parse().unwrap_or(90 + i);
        diffs.extend(run_fixture(&server, &agent, n, name));
    }
    for d in &diffs {
        eprintln!("difference: {d}");
    }
    let known = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose/known-differences.txt"),
    )
    .unwrap_or_default();
    let unknown: Vec<&String> = diffs
        .iter()
        .filter(|d| !known.lines().any(|k| !k.is_empty() && d.starts_with(k)))
        .collect();
    assert!(
        unknown.is_empty(),
        "differences with docker-compose 1.29 not listed as known:\n{}",
        unknown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Nothing of a project exists (containers, networks, volumes, by label or by name prefix).
fn nothing_of(project: &str) -> bool {
    containers(project).is_empty()
        && labelled("network", project).is_empty()
        && labelled("volume", project).is_empty()
        && !quiet(&["ps", "-a", "--format", "{{.Names}}"])
            .lines()
            .any(|n| n.starts_with(project))
}

#[test]
fn bad_files_give_a_clear_error_and_create_nothing() {
    images();
    let server = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let agent = Agent::start(&server);
    let project = "dmt-compose-bad";
    let _clean = Cleanup(vec![project.to_string()]);
    let cases = [
        (
            "services:\n  web:\n    image: dmt-compose/app:1\n    secrets: [token]\nvolumes:\n  v: {}\n",
            "line 4: `services.web.secrets` is not supported by this agent",
        ),
        (
            "services:\n  web:\n    build: .\n",
            "line 3: `services.web.build` is not supported by this agent (the agent does not build images",
        ),
        (
            "services:\n  web:\n    image: dmt-compose/app:1\n    ports: [\"80\n",
            "invalid compose file: yaml line",
        ),
        (
            "services:\n  web:\n    image: dmt-compose/app:1\n    deploy:\n      replicas: 3\n",
            "`services.web.deploy.replicas` is not supported",
        ),
        (
            "services:\n  web:\n    image: ${IMAGE:?IMAGE must be set}\n",
            "required variable IMAGE is missing a value: IMAGE must be set",
        ),
        (
            "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\nservices:\n  web:\n    image: dmt-compose/app:1\n",
            "nodes (aliases expanded); refused",
        ),
    ];
    for (yaml, want) in cases {
        let (done, progress) = deploy(&server, project, json!({ "compose_content": yaml }));
        assert_eq!(done["success"], false, "{done}");
        let error = done["error"].as_str().unwrap();
        assert!(error.contains(want), "{error:?} should contain {want:?}");
        assert_eq!(progress.last().unwrap()["stage"], "failed");
        assert!(nothing_of(project), "{want}: something was created");
        assert!(!agent
            .stacks
            .join(project)
            .join("docker-compose.yml")
            .exists());
    }
    // A missing image that cannot be pulled fails its service by name; the others still come up
    // (partial success).
    let (done, _) = deploy(
        &server,
        project,
        json!({ "compose_content": "services:\n  ok:\n    image: dmt-compose/app:1\n    command: [sleep, '30']\n  missing:\n    image: dmt-compose/not-here:1\n" }),
    );
    assert_eq!(done["success"], false, "{done}");
    assert_eq!(done["partial_success"], true, "{done}");
    assert_eq!(done["failed_services"], json!(["missing"]), "{done}");
    assert!(done["services"]["missing"]["error"]
        .as_str()
        .unwrap()
        .contains("failed to pull image dmt-compose/not-here:1: "));
    assert_eq!(done["services"]["ok"]["status"], "running", "{done}");
    let (done, _) = deploy(&server, project, json!({"action": "down"}));
    assert_eq!(done["success"], true, "{done}");
    // Unknown action.
    let (done, _) = deploy(&server, project, json!({"action": "explode"}));
    assert!(
        done["error"].as_str().unwrap().contains("unknown action"),
        "{done}"
    );
}

#[test]
fn remove_volumes_restart_and_wait_for_healthy() {
    images();
    let server = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let _agent = Agent::start(&server);
    let project = "dmt-compose-vols";
    let _clean = Cleanup(vec![project.to_string()]);
    let yaml = "services:\n  app:\n    image: dmt-compose/app:1\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; touch /ok; while :; do sleep 1; done\"]\n    volumes: [data:/data, /anon]\n    healthcheck: {test: [CMD, test, -f, /ok], interval: 1s, retries: 30}\nvolumes:\n  data: {}\n";
    let (done, progress) = deploy(
        &server,
        project,
        json!({"compose_content": yaml, "wait_for_healthy": true, "health_timeout": 60}),
    );
    assert_eq!(done["success"], true, "{done}");
    assert!(progress.iter().any(|p| p["stage"] == "health_check"));
    let id = containers(project)["app"].clone();
    let health = quiet(&["inspect", "-f", "{{.State.Health.Status}}", &id]);
    assert_eq!(health.trim(), "healthy");
    let anon: Vec<String> = quiet(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}",
        &id,
    ])
    .split_whitespace()
    .map(str::to_string)
    .collect();
    assert_eq!(anon.len(), 1);

    // restart keeps the container and restarts it.
    let started = quiet(&["inspect", "-f", "{{.State.StartedAt}}", &id]);
    let (done, _) = deploy(&server, project, json!({"action": "restart"}));
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(containers(project)["app"], id);
    assert_ne!(
        quiet(&["inspect", "-f", "{{.State.StartedAt}}", &id]),
        started
    );

    // down without remove_volumes keeps the named volume; with it, it goes (and the anonymous one).
    let (done, _) = deploy(
        &server,
        project,
        json!({"action": "down", "remove_volumes": false}),
    );
    assert_eq!(done["success"], true, "{done}");
    assert!(containers(project).is_empty());
    assert_eq!(labelled("volume", project), [format!("{project}_data")]);
    let (done, _) = deploy(&server, project, json!({"compose_content": yaml}));
    assert_eq!(done["success"], true, "{done}");
    let id = containers(project)["app"].clone();
    let anon: String = quiet(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}",
        &id,
    ])
    .trim()
    .to_string();
    let (done, _) = deploy(
        &server,
        project,
        json!({"action": "down", "remove_volumes": true}),
    );
    assert_eq!(done["success"], true, "{done}");
    assert!(nothing_of(project));
    assert!(
        quiet(&["volume", "ls", "-q"]).lines().all(|v| v != anon),
        "anonymous volume left"
    );

    // force_recreate recreates an unchanged service.
    let (done, _) = deploy(&server, project, json!({"compose_content": yaml}));
    assert_eq!(done["success"], true, "{done}");
    let id = containers(project)["app"].clone();
    let (done, _) = deploy(
        &server,
        project,
        json!({"compose_content": yaml, "force_recreate": true}),
    );
    assert_eq!(done["success"], true, "{done}");
    assert_ne!(containers(project)["app"], id);
    let (done, _) = deploy(
        &server,
        project,
        json!({"action": "down", "remove_volumes": true}),
    );
    assert_eq!(done["success"], true, "{done}");
}

#[test]
fn scan_and_read_follow_the_spec_refusals() {
    let server = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let agent = Agent::start(&server);
    let home = &agent.home;
    let w = |rel: &str, text: &str| {
        let p = home.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    };
    let site = w("site/compose.yaml", "services:\n  web:\n    image: x\n    env_file: [app.env, ../outside.env, missing.env]\n  db:\n    image: y\n");
    w("site/.env", "A=1\n");
    w("site/app.env", "B=2\n");
    w("outside.env", "S=secret\n");
    w(
        "Upper/Docker-Compose.YML",
        "services:\n  one:\n    image: x\n",
    );
    w("empty/docker-compose.yml", "services: {}\n");
    w("notyaml/compose.yml", "{{{");
    w(".hidden/compose.yml", "services:\n  h:\n    image: x\n");
    w(
        "node_modules/compose.yml",
        "services:\n  n:\n    image: x\n",
    );
    w(
        "a/b/c/d/e/f/g/compose.yml",
        "services:\n  deep:\n    image: x\n",
    );
    w(
        "big/compose.yml",
        &format!(
            "services:\n  big:\n    image: x\n#{}\n",
            "x".repeat(1024 * 1024)
        ),
    );
    std::fs::create_dir_all(home.join("dir/compose.yml")).unwrap();
    std::os::unix::fs::symlink(&site, home.join("link-compose.yml")).unwrap();
    std::fs::create_dir_all(home.join("linked")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", home.join("linked/compose.yml")).unwrap();
    std::os::unix::fs::symlink("/etc", home.join("etc-link")).unwrap();

    let id = server.send_command(
        "scan_compose_dirs",
        json!({"paths": null, "recursive": true, "max_depth": 5}),
    );
    let reply = server.wait_reply(&id, Duration::from_secs(30));
    let p = &reply["payload"];
    assert_eq!(p["success"], true, "{reply}");
    let files: Vec<&Value> = p["compose_files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .starts_with(home.to_str().unwrap())
        })
        .collect();
    let mut paths: Vec<String> = files
        .iter()
        .map(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .trim_start_matches(home.to_str().unwrap())
                .to_string()
        })
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        ["/Upper/Docker-Compose.YML", "/site/compose.yaml"],
        "{reply}"
    );
    let s = files
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("site/compose.yaml"))
        .unwrap();
    assert_eq!(s["project_name"], "site");
    assert_eq!(s["services"], json!(["web", "db"]));
    assert!(s["size"].as_u64().unwrap() > 0);
    assert!(s["modified"].as_str().unwrap().ends_with('Z'));
    // Deeper with max_depth 8.
    let id = server.send_command(
        "scan_compose_dirs",
        json!({"paths": [home], "recursive": true, "max_depth": 8}),
    );
    let reply = server.wait_reply(&id, Duration::from_secs(30));
    assert!(
        reply.to_string().contains("a/b/c/d/e/f/g/compose.yml"),
        "{reply}"
    );

    let read = |path: &str| {
        let id = server.send_command("read_compose_file", json!({ "path": path }));
        server.wait_reply(&id, Duration::from_secs(10))["payload"].clone()
    };
    let ok = read(site.to_str().unwrap());
    assert_eq!(ok["success"], true, "{ok}");
    assert!(ok["content"].as_str().unwrap().starts_with("services:"));
    assert_eq!(ok["env_content"], "A=1\n");
    assert_eq!(
        ok["env_files"],
        json!({".env": "A=1\n", "app.env": "B=2\n"})
    );
    assert_eq!(
        ok["skipped_env_files"],
        json!(["../outside.env", "missing.env"])
    );
    let h = home.to_str().unwrap();
    for (path, error) in [
        ("/etc/passwd".to_string(), "Path not allowed"),
        ("/etc/compose.yml".to_string(), "Path not allowed"),
        ("relative/compose.yml".to_string(), "Path not allowed"),
        (format!("{h}/../../etc/compose.yml"), "Path not allowed"),
        (format!("{h}/etc-link/compose.yml"), "Path not allowed"),
        ("/usr/share/compose.yml".to_string(), "Path not allowed"),
        (format!("{h}/site/app.env"), "Not a compose file"),
        (
            format!("{h}/nope/compose.yml"),
            "File not found or not accessible",
        ),
        (format!("{h}/link-compose.yml"), "Compose file is a symlink"),
        (
            format!("{h}/linked/compose.yml"),
            "Compose file is a symlink",
        ),
        (
            format!("{h}/dir/compose.yml"),
            "Path is a directory, not a file",
        ),
        (format!("{h}/big/compose.yml"), "File too large (max 1MB)"),
    ] {
        let r = read(&path);
        assert_eq!(
            r,
            json!({"success": false, "path": path, "error": error}),
            "{path}"
        );
    }
}

/// Images that are only in a registry (Debian's docker-registry on 127.0.0.1 with htpasswd auth):
/// pulled when missing, with the credentials of `registry_credentials`; no or wrong credentials
/// fail only the services of that image, with the engine's message; `pull_images` pulls again;
/// no password (or its `X-Registry-Auth` form) reaches the log.
#[test]
fn images_missing_locally_are_pulled_with_the_registry_credentials() {
    images();
    let pid = std::process::id();
    let mut reg = registry::Registry::start_with_auth("dmtuser", "s3cret-compose-pw");
    let spec =
        registry::ImageSpec::cmd(&["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]);
    let image = reg.build_and_push(&format!("dmt-compose/pull{pid}"), "v1", &spec, false);
    reg.forget_on_drop(&image);
    assert!(!registry::Registry::is_local(&image));
    let project = format!("dmt-compose-pull{pid}");
    let _clean = Cleanup(vec![project.clone()]);
    let server = DockmonServer::start(Options::default().with_token(TOKEN, None, None));
    let agent = Agent::start(&server);
    let yaml = format!(
        "services:\n  remote:\n    image: {image}\n  local:\n    image: {APP1}\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 1; done\"]\n"
    );
    let creds = |password: &str| {
        json!([
            {"registry_url": "ghcr.io", "username": "other", "password": "not-this-one"},
            {"registry_url": format!("http://{}/", reg.host()), "username": "dmtuser", "password": password},
        ])
    };

    // No credentials, then wrong ones: only `remote` fails, naming the image and the engine's reason.
    for (what, credentials) in [("none", json!([])), ("wrong", creds("wrong-pw"))] {
        let (done, _) = deploy(
            &server,
            &project,
            json!({"compose_content": yaml, "registry_credentials": credentials}),
        );
        assert_eq!(done["success"], false, "{what}: {done}");
        assert_eq!(done["partial_success"], true, "{what}: {done}");
        assert_eq!(done["failed_services"], json!(["remote"]), "{what}: {done}");
        let error = done["services"]["remote"]["error"].as_str().unwrap_or("");
        assert!(
            error.contains("failed to pull image") && error.contains(&image),
            "{what}: {error}"
        );
        let lower = error.to_lowercase();
        assert!(
            lower.contains("unauthorized") || lower.contains("no basic auth"),
            "{what}: {error}"
        );
        assert_eq!(done["services"]["local"]["status"], "running", "{what}");
        assert!(
            !registry::Registry::is_local(&image),
            "{what}: pulled anyway"
        );
    }

    // The right credentials: pulled, with pulling_image progress, and running.
    let (done, progress) = deploy(
        &server,
        &project,
        json!({"compose_content": yaml, "registry_credentials": creds("s3cret-compose-pw")}),
    );
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(done["services"]["remote"]["status"], "running", "{done}");
    let pulls: Vec<&str> = progress
        .iter()
        .filter(|p| p["stage"] == "pulling_image")
        .filter_map(|p| p["message"].as_str())
        .collect();
    assert!(
        pulls.iter().any(|m| m.starts_with("Pulling image"))
            && pulls.iter().any(|m| *m == format!("Pulled image {image}")),
        "{pulls:?}"
    );
    assert!(registry::Registry::is_local(&image));
    let first = containers(&project);

    // Present now: a re-up pulls nothing and recreates nothing; pull_images pulls again (the
    // image did not change, so nothing is recreated either).
    let (done, progress) = deploy(&server, &project, json!({"compose_content": yaml}));
    assert_eq!(done["success"], true, "{done}");
    assert!(!progress.iter().any(|p| p["stage"] == "pulling_image"));
    assert_eq!(containers(&project), first);
    let (done, progress) = deploy(
        &server,
        &project,
        json!({"compose_content": yaml, "pull_images": true, "registry_credentials": creds("s3cret-compose-pw")}),
    );
    assert_eq!(done["success"], true, "{done}");
    assert!(progress
        .iter()
        .any(|p| p["message"] == format!("Pulled image {image}").as_str()));
    // The local-only image cannot be pulled: the one on the host is used, and the progress says so.
    assert!(
        progress.iter().any(|p| p["stage"] == "pulling_image"
            && p["message"]
                .as_str()
                .is_some_and(|m| m.contains(APP1) && m.ends_with("using the local image"))),
        "{progress:?}"
    );
    assert_eq!(containers(&project), first);

    let (done, _) = deploy(&server, &project, json!({"action": "down"}));
    assert_eq!(done["success"], true, "{done}");
    let log = std::fs::read_to_string(&agent.log).unwrap_or_default();
    for secret in ["wrong-pw", "s3cret-compose-pw"] {
        assert!(!log.contains(secret), "a password reached the log");
    }
    assert!(
        !log.contains("eyJ1c2VybmFtZSI6"),
        "an X-Registry-Auth reached the log"
    );
}
