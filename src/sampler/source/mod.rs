//! Where container stats come from: the Docker stats endpoint or the cgroup files, and which one to use.
//!
//! Read this first: DockMon spec §4.2 (what one `container_stats` payload holds) and `docker::stats`
//! (the [`Sample`](crate::stats::Sample) both sources produce, with the same meaning per field).
//!
//! Owns: [`Source`], the chosen source, and [`choose`], the startup decision from `STATS_SOURCE` and
//! what [`CgroupSource::detect`] found. The cgroup reader itself is [`cgroup`]; the Docker source is
//! `docker::Client::stats` and holds nothing here.
//!
//! Must not: log (the mode that calls [`choose`] logs its answer once, at startup), read a clock, or
//! detect anything itself: detection is [`CgroupSource::detect`]'s, so [`choose`] is a pure function.
//!
//! Policy: `auto` takes the cgroup files when they are usable and the Docker API otherwise; `docker`
//! always takes the Docker API; `cgroup` takes the cgroup files or fails at startup ([`Refused`]).
//! Why fail rather than fall back: a user who sets `STATS_SOURCE=cgroup` has asked for the reader that
//! puts no load on dockerd, usually because dockerd's stats cost too much on their board; quietly
//! using the Docker API would hide a missing mount (`/host/sys/fs/cgroup`, `/host/proc`) behind a
//! log line and bring back exactly the load they turned off. A clear startup error names the missing
//! piece instead; `auto` is there for those who want the fallback.
use core::fmt;

use crate::config::StatsSource;

pub mod cgroup;

pub use cgroup::{CgroupSource, Unavailable};

/// The stats source the sampler uses for its whole life.
#[derive(Debug)]
pub enum Source {
    /// `GET /containers/{id}/stats` through `docker::Client::stats`.
    Docker,
    /// The cgroup files and procfs, through [`CgroupSource::sample`]. Boxed: the source holds a few paths
    /// (about 300 bytes) and `Source` is made once, at startup.
    Cgroup(Box<CgroupSource>),
}

impl Source {
    /// `docker` or `cgroup`, for the startup log line `stats source: <name> (<why>)`.
    pub fn name(&self) -> &'static str {
        match self {
            Source::Docker => "docker",
            Source::Cgroup(_) => "cgroup",
        }
    }
}

/// `STATS_SOURCE=cgroup` was set but the cgroup files are not usable: a startup error.
#[derive(Debug)]
pub struct Refused(pub Unavailable);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "STATS_SOURCE=cgroup, but the cgroup files cannot be used: {}; set STATS_SOURCE=auto to fall back to the docker api",
            self.0
        )
    }
}

impl std::error::Error for Refused {}

/// Picks the stats source from the `STATS_SOURCE` setting and the result of [`CgroupSource::detect`]
/// (see the module doc for the policy). On success returns the source and why it was chosen, for the
/// caller's one startup line `stats source: {source.name()} ({why})`, for instance
/// `stats source: docker (cgroup files not visible: …)`.
///
/// With `STATS_SOURCE=docker` the detection result is ignored (the caller may pass any `Err`).
pub fn choose(
    setting: StatsSource,
    detect: Result<CgroupSource, Unavailable>,
) -> Result<(Source, String), Refused> {
    match (setting, detect) {
        (StatsSource::Docker, _) => Ok((Source::Docker, "STATS_SOURCE=docker".to_string())),
        (StatsSource::Auto, Ok(c)) => {
            let why = format!("STATS_SOURCE=auto, {c}");
            Ok((Source::Cgroup(Box::new(c)), why))
        }
        (StatsSource::Auto, Err(u)) => {
            Ok((Source::Docker, format!("cgroup files not visible: {u}")))
        }
        (StatsSource::Cgroup, Ok(c)) => {
            let why = format!("STATS_SOURCE=cgroup, {c}");
            Ok((Source::Cgroup(Box::new(c)), why))
        }
        (StatsSource::Cgroup, Err(u)) => Err(Refused(u)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cgroup")
            .join(name)
    }

    fn missing() -> Result<CgroupSource, Unavailable> {
        CgroupSource::detect(&fixture("does-not-exist"))
    }

    #[test]
    fn auto_takes_cgroup_when_usable_else_docker() {
        let (s, why) = choose(StatsSource::Auto, CgroupSource::detect(&fixture("v1"))).unwrap();
        assert_eq!(s.name(), "cgroup");
        assert!(why.starts_with("STATS_SOURCE=auto, cgroup v1 at "), "{why}");
        let (s, why) = choose(StatsSource::Auto, missing()).unwrap();
        assert_eq!(s.name(), "docker");
        assert!(
            why.starts_with("cgroup files not visible: no cgroup tree at "),
            "{why}"
        );
    }

    #[test]
    fn docker_ignores_detection() {
        for detect in [CgroupSource::detect(&fixture("v1")), missing()] {
            let (s, why) = choose(StatsSource::Docker, detect).unwrap();
            assert!(matches!(s, Source::Docker));
            assert_eq!(why, "STATS_SOURCE=docker");
        }
    }

    #[test]
    fn cgroup_is_a_startup_error_when_unusable() {
        let (s, why) = choose(
            StatsSource::Cgroup,
            CgroupSource::detect(&fixture("v2-systemd")),
        )
        .unwrap();
        assert_eq!(s.name(), "cgroup");
        assert!(
            why.starts_with("STATS_SOURCE=cgroup, cgroup v2 at "),
            "{why}"
        );
        let err = choose(StatsSource::Cgroup, missing()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(
                "STATS_SOURCE=cgroup, but the cgroup files cannot be used: no cgroup tree at "
            ),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }
}
