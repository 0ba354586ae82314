//! Embeds the version and the git commit the binary was built from, for `--version` and registration.
//!
//! `VERSION` and `COMMIT` from the environment win (set by scripts/dist, the Dockerfile and CI, where the
//! source may not be a git checkout); otherwise the package version and `git rev-parse --short=12 HEAD`.
//!
//! Release builds of the static musl binaries also link without unwind tables (`link_without_unwind_tables`).
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
    link_without_unwind_tables();
}

/// Release binaries for x86_64 and aarch64 musl (the static `scripts/dist` and image binaries) are
/// linked without `.eh_frame` (link/no-unwind-tables.ld) and without `.eh_frame_hdr`, 210 KB of the
/// aarch64 binary (issue #6). With `panic = "abort"` nothing unwinds; a panic still prints its
/// message and location and aborts, only a RUST_BACKTRACE backtrace comes out empty (and without
/// the header the unwinder stops at once instead of reading the missing tables). Only the bin:
/// test harnesses unwind to report failures, so they keep their tables. armv7 unwinds through
/// .ARM.exidx, not .eh_frame, and is left as it is.
fn link_without_unwind_tables() {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let arch = var("CARGO_CFG_TARGET_ARCH");
    if var("PROFILE") != "release"
        || var("CARGO_CFG_TARGET_ENV") != "musl"
        || !(arch == "x86_64" || arch == "aarch64")
    {
        return;
    }
    let script = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("link/no-unwind-tables.ld");
    println!("cargo:rerun-if-changed=link/no-unwind-tables.ld");
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
    println!("cargo:rustc-link-arg-bins=-Wl,--no-eh-frame-hdr");
    let cold = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("link/cold-text.ld");
    println!("cargo:rerun-if-changed=link/cold-text.ld");
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", cold.display());
}
