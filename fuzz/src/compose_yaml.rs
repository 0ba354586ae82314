//! Compose files (`compose::yaml::parse`, `compose::model::load`, `compose::scan`, and the plan built
//! from a loaded project, `compose::plan`). The input is the file's text.
//!
//! Checks: the start order lists every active service exactly once; every create, network and
//! volume body is one JSON value; the scan's service list names services of the file.
use dockmon_agent::compose::model::{load, Input};
use dockmon_agent::compose::{plan, scan, yaml};

pub fn run(data: &[u8]) {
    let text = crate::text(data);
    let _ = yaml::parse(&text);
    if let Some(names) = scan::services_of(&text) {
        assert!(!names.is_empty());
    }
    let _ = scan::env_file_refs(&text);
    let vars = [
        ("TAG".to_string(), "1.2".to_string()),
        ("PORT".to_string(), "8080".to_string()),
        ("EMPTY".to_string(), String::new()),
    ];
    let profiles = ["debug".to_string()];
    let read_env_file = |path: &str| -> Result<Option<Vec<(String, String)>>, String> {
        match path {
            "missing.env" => Ok(None),
            "bad.env" => Err("unreadable".into()),
            _ => Ok(Some(vec![("FROM_FILE".into(), "yes".into())])),
        }
    };
    let input = Input {
        project: "fz",
        vars: &vars,
        profiles: &profiles,
        project_dir: "/srv/fz",
        read_env_file: &read_env_file,
    };
    let Ok(project) = load(&text, &input) else {
        return;
    };
    let mut order = plan::start_order(&project);
    order.sort_unstable();
    assert_eq!(
        order,
        (0..project.services.len()).collect::<Vec<_>>(),
        "start order is not a permutation of the services"
    );
    let at = plan::Where {
        working_dir: "/srv/fz",
        config_file: "/srv/fz/compose.yaml",
    };
    let container_of = |name: &str| Some(format!("{name}-id"));
    for s in &project.services {
        let _ = plan::container_name(&project.name, s);
        let _ = plan::service_networks(&project, s);
        let (body, hash) = plan::create_body(&project, s, &at, &container_of);
        assert!(!hash.is_empty());
        crate::assert_json(&serde_json::to_vec(&body).unwrap());
    }
    for n in &project.networks {
        crate::assert_json(&serde_json::to_vec(&plan::network_body(&project.name, n)).unwrap());
    }
    for v in &project.volumes {
        crate::assert_json(&serde_json::to_vec(&plan::volume_body(&project.name, v)).unwrap());
    }
}
