//! Embeds the version and the git commit the binary was built from, for `--version` and registration.
//!
//! `VERSION` and `COMMIT` from the environment win (set by scripts/dist, the Dockerfile and CI, where the
//! source may not be a git checkout); otherwise the package version and `git rev-parse --short=12 HEAD`.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=VERSION");
    println!("cargo:rerun-if-env-changed=COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let version = std::env::var("VERSION")
        .ok()
        .map(|v| v.trim().trim_start_matches('v').to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| std::env::var("CARGO_PKG_VERSION").unwrap_or_default());
    let commit = std::env::var("COMMIT")
        .ok()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| s.trim().to_string())
        })
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=DOCKMON_AGENT_VERSION={version}");
    println!("cargo:rustc-env=DOCKMON_AGENT_COMMIT={commit}");
}
