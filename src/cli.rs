//! argv → [`Command`], and the help texts. Pure: no environment, no I/O.
//!
//! Unknown flags, missing values and values out of range are [`Usage`] errors that say what is
//! accepted; `main` prints them with a pointer to `--help` and exits 2.
use std::fmt;
use std::time::Duration;

/// What the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// The DockMon agent (no subcommand, or `run`).
    Run,
    /// One JSON document describing the engine and every container.
    Snapshot {
        /// Time between the two samples that give CPU %.
        window: Duration,
    },
    /// Stats of running containers, every interval.
    Watch {
        /// How often each container is sampled; `None`: the board profile's stats interval.
        interval: Option<Duration>,
        /// NDJSON or a table.
        format: Format,
    },
    /// The preflight: is everything in place for the agent to connect?
    Check,
    /// Exit 0 when a running agent is connected to DockMon (the image's HEALTHCHECK).
    Health,
    /// List the board profiles and say which one is selected and why.
    Boards,
    /// Print version and commit.
    Version,
    /// Print a help text.
    Help(&'static str),
}

/// Output of `watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per container per interval.
    Ndjson,
    /// A refreshed table like `docker stats`.
    Table,
}

/// A command line we cannot run, with what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Top-level help.
pub const HELP: &str = "\
dockmon-agent: a small DockMon agent for Docker hosts (Raspberry Pi to amd64)

USAGE:
    dockmon-agent [run]                 connect to DockMon (configured by environment; see README)
    dockmon-agent check                 check Docker, DATA_PATH, DOCKMON_URL and the token, with fixes
    dockmon-agent health                exit 0 if the running agent is connected to DockMon, else 1
    dockmon-agent boards                list the board profiles (stats budget per board) and which applies
    dockmon-agent snapshot [OPTIONS]    print one JSON document: the engine and every container
    dockmon-agent watch [OPTIONS]       print live stats of running containers, like `docker stats`
    dockmon-agent --version             print version and git commit
    dockmon-agent <command> --help      help for a command

ENVIRONMENT (agent mode; DockMon's names and defaults):
    DOCKMON_URL            the DockMon server, http(s)://host[:port][/prefix] (required)
    REGISTRATION_TOKEN     one-time token from DockMon's UI (first start)
    PERMANENT_TOKEN        overrides $DATA_PATH/permanent_token
    DATA_PATH              where the permanent token is kept (default /data)
    INSECURE_SKIP_VERIFY   true: do not verify the server's certificate (default false)
    SSL_CERT_FILE          PEM file of extra CAs or a self-signed server certificate to trust
    DOCKER_HOST            unix:///path/to/docker.sock (default: the first of /var/run/docker.sock,
                           /run/docker.sock, /run/podman/podman.sock that exists)
    RECONNECT_INITIAL, RECONNECT_MAX   backoff, Go durations (default 1s, 60s)
    AGENT_NAME, FORCE_UNIQUE_REGISTRATION, PROTO_VERSION
    LOG_LEVEL              trace, debug, info, warn or error (default info)
    LOG_JSON               true: one JSON object per log line (default true, as DockMon's agent)
    STATS_SOURCE           auto, docker or cgroup (cgroup files cost dockerd nothing; default auto)
    DOCKMON_BOARD          board profile (see `boards`); STATS_INTERVAL, STATS_CALLS_PER_SEC,
                           STATS_IN_FLIGHT, STATS_CONTAINERS_MAX override single values

EXIT CODES:
    0 success, 1 runtime error (Docker unreachable, engine error), 2 bad command line or configuration
";

/// `snapshot --help`.
pub const SNAPSHOT_HELP: &str = "\
dockmon-agent snapshot: print one JSON document on stdout

    {\"engine\": {id, name, version, api_version, os, kernel, cpus, mem_total},
     \"sampler\": {board, source, interval_ms, calls_per_sec, in_flight, running,
                 capacity_per_interval, shortfall, effective_interval_ms},
     \"containers\": [{id, name, image, state, status, stats?, stats_error?}]}

`stats` is present for running containers: the container_stats fields of the DockMon protocol
(cpu_percent, memory_usage, memory_limit, memory_percent, network_rx, network_tx, disk_read,
disk_write, pids, timestamp), CPU % measured between two samples WINDOW apart. The samples keep
to the board profile's budget (see `dockmon-agent boards`), so with many containers and a low rate
they take longer. `sampler` says whether that budget visits every running container each stats
interval (`shortfall`) and how often each is really sampled (`effective_interval_ms`).

OPTIONS:
    --window SECS    time between the two samples, 0.1 to 60 (default 1)
    -h, --help       this help
";

/// `watch --help`.
pub const WATCH_HELP: &str = "\
dockmon-agent watch: live stats of running containers until interrupted

OPTIONS:
    --interval SECS           how often each container is sampled, 0.5 to 3600 (default: the board
                              profile's stats interval, see `dockmon-agent boards`); the profile's
                              calls/s and in-flight budget apply, so with many containers each may
                              be sampled less often (said once on stderr)
    --format ndjson|table     ndjson: one container_stats object per reading, from a container's
                              second reading on (default when stdout is not a terminal); table: a
                              table like `docker stats`, redrawn every interval with each
                              container's latest reading (default on a terminal)
    -h, --help                this help
";

/// Parses the arguments after the program name. `stdout_is_tty` picks `watch`'s default format.
pub fn parse(args: &[String], stdout_is_tty: bool) -> Result<Command, Usage> {
    let mut it = args.iter().map(String::as_str);
    let Some(first) = it.next() else {
        return Ok(Command::Run);
    };
    let rest: Vec<&str> = it.collect();
    match first {
        "-h" | "--help" | "help" => Ok(Command::Help(HELP)),
        "-V" | "--version" | "version" => no_flags(&rest, Command::Version, HELP),
        "run" => no_flags(&rest, Command::Run, HELP),
        "check" => no_flags(&rest, Command::Check, HELP),
        "health" => no_flags(&rest, Command::Health, HELP),
        "boards" => no_flags(&rest, Command::Boards, HELP),
        "snapshot" => parse_snapshot(&rest),
        "watch" => parse_watch(&rest, stdout_is_tty),
        other if other.starts_with('-') => Err(Usage(format!(
            "unknown option {other:?}; commands are run, check, health, boards, snapshot, watch; see --help"
        ))),
        other => Err(Usage(format!(
            "unknown command {other:?}; commands are run, check, health, boards, snapshot, watch; see --help"
        ))),
    }
}

fn no_flags(rest: &[&str], cmd: Command, help: &'static str) -> Result<Command, Usage> {
    match rest.first() {
        None => Ok(cmd),
        Some(&"-h") | Some(&"--help") => Ok(Command::Help(help)),
        Some(other) => Err(Usage(format!("unexpected argument {other:?}; see --help"))),
    }
}

fn parse_snapshot(rest: &[&str]) -> Result<Command, Usage> {
    let mut window = Duration::from_millis(crate::limits::SNAPSHOT_WINDOW_DEFAULT_MS);
    let mut flags = Flags::new(rest);
    while let Some(flag) = flags.next_flag()? {
        match flag {
            "-h" | "--help" => return Ok(Command::Help(SNAPSHOT_HELP)),
            "--window" => window = seconds(flag, flags.value(flag)?, 0.1, 60.0)?,
            other => {
                return Err(Usage(format!(
                    "snapshot: unknown option {other:?}; accepted: --window SECS, --help"
                )))
            }
        }
    }
    Ok(Command::Snapshot { window })
}

fn parse_watch(rest: &[&str], stdout_is_tty: bool) -> Result<Command, Usage> {
    let mut interval = None;
    let mut format = if stdout_is_tty {
        Format::Table
    } else {
        Format::Ndjson
    };
    let mut flags = Flags::new(rest);
    while let Some(flag) = flags.next_flag()? {
        match flag {
            "-h" | "--help" => return Ok(Command::Help(WATCH_HELP)),
            "--interval" => interval = Some(seconds(flag, flags.value(flag)?, 0.5, 3600.0)?),
            "--format" => {
                format = match flags.value(flag)? {
                    "ndjson" | "json" => Format::Ndjson,
                    "table" => Format::Table,
                    other => {
                        return Err(Usage(format!(
                            "--format: {other:?} is not a format; use ndjson or table"
                        )))
                    }
                }
            }
            other => {
                return Err(Usage(format!(
                    "watch: unknown option {other:?}; accepted: --interval SECS, --format ndjson|table, --help"
                )))
            }
        }
    }
    Ok(Command::Watch { interval, format })
}

/// Walks `--flag value` and `--flag=value` forms.
struct Flags<'a> {
    args: &'a [&'a str],
    pos: usize,
    inline: Option<&'a str>,
}

impl<'a> Flags<'a> {
    fn new(args: &'a [&'a str]) -> Self {
        Flags {
            args,
            pos: 0,
            inline: None,
        }
    }

    fn next_flag(&mut self) -> Result<Option<&'a str>, Usage> {
        if let Some(v) = self.inline.take() {
            return Err(Usage(format!("unexpected value {v:?}")));
        }
        let Some(arg) = self.args.get(self.pos) else {
            return Ok(None);
        };
        self.pos += 1;
        if !arg.starts_with('-') {
            return Err(Usage(format!("unexpected argument {arg:?}; see --help")));
        }
        match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                self.inline = Some(value);
                Ok(Some(flag))
            }
            _ => Ok(Some(arg)),
        }
    }

    fn value(&mut self, flag: &str) -> Result<&'a str, Usage> {
        if let Some(v) = self.inline.take() {
            return Ok(v);
        }
        let v = self
            .args
            .get(self.pos)
            .ok_or_else(|| Usage(format!("{flag} needs a value")))?;
        self.pos += 1;
        Ok(v)
    }
}

fn seconds(flag: &str, value: &str, min: f64, max: f64) -> Result<Duration, Usage> {
    match value.parse::<f64>() {
        Ok(s) if s.is_finite() && (min..=max).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(Usage(format!(
            "{flag}: {value:?} is not a number of seconds from {min} to {max}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, Usage> {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&v, false)
    }

    #[test]
    fn commands() {
        assert_eq!(p(&[]), Ok(Command::Run));
        assert_eq!(p(&["run"]), Ok(Command::Run));
        assert_eq!(p(&["check"]), Ok(Command::Check));
        assert_eq!(p(&["health"]), Ok(Command::Health));
        assert_eq!(p(&["--version"]), Ok(Command::Version));
        assert_eq!(p(&["-V"]), Ok(Command::Version));
        assert_eq!(p(&["--help"]), Ok(Command::Help(HELP)));
        assert_eq!(
            p(&["snapshot"]),
            Ok(Command::Snapshot {
                window: Duration::from_secs(1)
            })
        );
        assert_eq!(
            p(&["snapshot", "--window=0.5"]),
            Ok(Command::Snapshot {
                window: Duration::from_millis(500)
            })
        );
        assert_eq!(p(&["snapshot", "--help"]), Ok(Command::Help(SNAPSHOT_HELP)));
        assert_eq!(
            p(&["watch", "--interval", "5", "--format", "table"]),
            Ok(Command::Watch {
                interval: Some(Duration::from_secs(5)),
                format: Format::Table
            })
        );
        assert_eq!(
            p(&["watch"]),
            Ok(Command::Watch {
                interval: None,
                format: Format::Ndjson
            })
        );
        let tty = parse(&["watch".to_string()], true).unwrap();
        assert!(matches!(
            tty,
            Command::Watch {
                format: Format::Table,
                ..
            }
        ));
        assert_eq!(p(&["watch", "-h"]), Ok(Command::Help(WATCH_HELP)));
    }

    #[test]
    fn errors_say_what_is_accepted() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["frobnicate"],
                "commands are run, check, health, boards, snapshot, watch",
            ),
            (&["--frob"], "unknown option"),
            (&["watch", "--interval"], "needs a value"),
            (&["watch", "--interval", "0"], "from 0.5 to 3600"),
            (&["watch", "--interval", "abc"], "not a number of seconds"),
            (&["watch", "--interval", "NaN"], "not a number of seconds"),
            (&["watch", "--format", "xml"], "use ndjson or table"),
            (&["watch", "--bogus"], "accepted: --interval SECS"),
            (&["snapshot", "--window", "100"], "from 0.1 to 60"),
            (&["snapshot", "extra"], "unexpected argument"),
            (&["--version", "x"], "unexpected argument"),
        ];
        for (args, needle) in cases {
            let err = p(args).unwrap_err();
            assert!(err.0.contains(needle), "{args:?}: {err}");
        }
    }
}
