use super::*;

fn load_with(text: &str, vars: &[(&str, &str)], profiles: &[&str]) -> Result<Project, Error> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let profiles: Vec<String> = profiles.iter().map(|p| p.to_string()).collect();
    let read = |p: &str| -> Result<Option<Vec<(String, String)>>, String> {
        match p {
            "web.env" => Ok(Some(vec![
                ("FROM_FILE".into(), "1".into()),
                ("B".into(), "file".into()),
            ])),
            _ => Ok(None),
        }
    };
    load(
        text,
        &Input {
            project: "p",
            vars: &vars,
            profiles: &profiles,
            project_dir: "/stacks/p",
            read_env_file: &read,
        },
    )
}

fn load_ok(text: &str) -> Project {
    load_with(text, &[], &[]).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_full_service() {
    let p = load_with(
        r#"
services:
  web:
    image: "busybox:${TAG:-latest}"
    command: sh -c 'echo "hi there"'
    environment:
      A: 1
      B:
      C: ${X}
    env_file: web.env
    ports: ["8080:80", "127.0.0.1:53:53/udp", "9000-9001:9000-9001", {target: 443, published: "8443"}]
    volumes: ["./data:/data:ro", "named:/n", "/anon", {type: tmpfs, target: /t, tmpfs: {size: 1m}}]
    restart: on-failure:3
    healthcheck: {test: "true", interval: 1m30s, retries: 2}
    mem_limit: 64m
    deploy: {resources: {limits: {cpus: "0.5", pids: 50}}}
    ulimits: {nofile: {soft: 10, hard: 20}, nproc: 5}
volumes:
  named: {}
"#,
        &[("X", "x"), ("B", "var")],
        &[],
    )
    .unwrap();
    let s = &p.services[0];
    assert_eq!(s.image, "busybox:latest");
    assert_eq!(
        s.command.as_deref().unwrap(),
        ["sh", "-c", "echo \"hi there\""]
    );
    assert_eq!(s.environment, ["A=1", "B=var", "C=x", "FROM_FILE=1"]);
    assert_eq!(s.ports.len(), 5);
    assert_eq!(s.ports[1].host_ip, "127.0.0.1");
    assert_eq!(s.ports[1].protocol, "udp");
    assert_eq!(s.ports[3].published, "9001");
    assert_eq!(s.mounts[0].source, "/stacks/p/data");
    assert!(s.mounts[0].read_only);
    assert_eq!(s.mounts[1].kind, MountKind::Volume);
    assert_eq!(s.mounts[2].source, "");
    assert_eq!(s.mounts[3].tmpfs_size, 1 << 20);
    assert_eq!(s.restart, Some(("on-failure".into(), 3)));
    assert_eq!(s.healthcheck.as_ref().unwrap().interval_ns, 90_000_000_000);
    assert_eq!(s.memory, Some(64 << 20));
    assert_eq!(s.nano_cpus, Some(500_000_000));
    assert_eq!(s.ulimits[1].soft, 5);
    assert_eq!(p.networks[0].name, "p_default");
    assert_eq!(p.volumes[0].name, "p_named");
}

#[test]
fn unsupported_keys_are_named_with_their_line() {
    let e = load_ok_err("services:\n  web:\n    image: x\n    secrets: [a]\n");
    assert_eq!(
        e,
        "line 4: `services.web.secrets` is not supported by this agent"
    );
    let e = load_ok_err("services:\n  web:\n    build: .\n");
    assert!(
        e.starts_with("line 3: `services.web.build` is not supported"),
        "{e}"
    );
    assert!(e.contains("does not build images"));
    let e = load_ok_err("services:\n  web:\n    image: x\n    deploy:\n      replicas: 2\n");
    assert!(e.contains("services.web.deploy.replicas"), "{e}");
    let e = load_ok_err("services:\n  web:\n    image: x\nsecrets: {}\n");
    assert!(e.contains("`secrets`"), "{e}");
    let e = load_ok_err("services:\n  web:\n    image: x\n    volumes: ['a:/b:z']\n");
    assert!(e.contains("not supported"), "{e}");
}

fn load_ok_err(t: &str) -> String {
    load_with(t, &[], &[]).unwrap_err().to_string()
}

#[test]
fn required_variables_and_references() {
    let e = load_ok_err("services:\n  web:\n    image: ${IMG:?set IMG}\n");
    assert_eq!(
        e,
        "line 3: `services.web.image`: required variable IMG is missing a value: set IMG"
    );
    let e = load_ok_err("services:\n  web:\n    image: x\n    depends_on: [db]\n");
    assert!(e.contains("service `db` is not defined"), "{e}");
    let e = load_ok_err("services:\n  web:\n    image: x\n    networks: [front]\n");
    assert!(e.contains("network `front` is not declared"), "{e}");
    let e = load_ok_err("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n");
    assert!(e.contains("cycle"), "{e}");
    assert!(load_ok_err("services: {}\n").contains("no services"));
    assert!(load_ok_err("services:\n  web:\n    command: x\n").contains("`image` is required"));
}

#[test]
fn profiles_select_services() {
    let t = "services:\n  web:\n    image: x\n  dbg:\n    image: x\n    profiles: [debug]\n";
    assert_eq!(load_with(t, &[], &[]).unwrap().services.len(), 1);
    assert_eq!(load_with(t, &[], &["debug"]).unwrap().services.len(), 2);
    assert_eq!(load_with(t, &[], &["*"]).unwrap().services.len(), 2);
    let t = "services:\n  web:\n    image: x\n    depends_on: [dbg]\n  dbg:\n    image: x\n    profiles: [debug]\n";
    assert!(load_with(t, &[], &[])
        .unwrap_err()
        .to_string()
        .contains("not enabled"));
}

#[test]
fn networks_and_external_resources() {
    let p = load_ok(
        "services:\n  web:\n    image: x\n    networks:\n      front: {aliases: [w], ipv4_address: 10.1.0.5}\n      back:\nnetworks:\n  front:\n    ipam: {config: [{subnet: 10.1.0.0/24}]}\n  back:\n    external: true\n    name: shared\nvolumes:\n  v: {external: true}\n",
    );
    assert_eq!(p.networks.len(), 2, "no implicit default");
    assert_eq!(p.networks[0].ipam_config[0].0, "10.1.0.0/24");
    assert_eq!(p.networks[1].name, "shared");
    assert!(p.networks[1].external);
    assert_eq!(p.volumes[0].name, "v");
    assert_eq!(p.services[0].networks[0].aliases, ["w"]);
}

#[test]
fn bytes_durations_words() {
    assert_eq!(parse_bytes("1g"), Some(1 << 30));
    assert_eq!(parse_bytes("512"), Some(512));
    assert_eq!(parse_bytes("1x"), None);
    assert_eq!(parse_duration_ns("1m30s"), Some(90_000_000_000));
    assert_eq!(parse_duration_ns("500ms"), Some(500_000_000));
    assert_eq!(parse_duration_ns("10"), None);
    assert_eq!(
        shell_words("a 'b c' \"d\\\"e\" f\\ g").unwrap(),
        ["a", "b c", "d\"e", "f g"]
    );
    assert_eq!(shell_words("a 'b"), None);
    assert_eq!(normalize_project_name("My App!").as_deref(), Some("myapp"));
}
