//! Thin entry point: argv → mode; each error class → a documented exit code
//! (0 success, 1 runtime error, 2 bad command line or configuration).
use dockmon_agent::cli::{self, Command};
use dockmon_agent::{config, logging, modes};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

#[cfg(feature = "count-alloc")]
#[global_allocator]
static ALLOC: dockmon_agent::alloc::Counting = dockmon_agent::alloc::Counting;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tty = std::io::stdout().is_terminal();
    let command = match cli::parse(&args, tty) {
        Ok(c) => c,
        Err(usage) => {
            eprintln!("dockmon-agent: {usage}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!(
                "dockmon-agent {} ({})",
                dockmon_agent::VERSION,
                dockmon_agent::COMMIT
            );
            ExitCode::SUCCESS
        }
        Command::Snapshot { window } => {
            init_local_logging();
            if let Err(code) = drop_root(None, false) {
                return code;
            }
            let mut out = std::io::stdout().lock();
            exit(modes::run_local(|ex| {
                modes::snapshot::run(ex, window, &mut out)
            }))
        }
        Command::Watch { interval, format } => {
            init_local_logging();
            if let Err(code) = drop_root(None, false) {
                return code;
            }
            let mut out = std::io::stdout().lock();
            exit(modes::run_local(|ex| {
                modes::watch::run(ex, interval, format, tty, &mut out)
            }))
        }
        Command::Check => {
            let cfg = load_config();
            let data = cfg.as_ref().ok().map(|c| c.data_path.clone());
            if let Err(code) = drop_root(data.as_deref(), false) {
                return code;
            }
            let mut out = std::io::stdout().lock();
            if modes::run_local(|_| modes::check::run(cfg, &mut out)) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Command::Health => health(),
        Command::Boards => match modes::select_board() {
            Ok(selected) => {
                print!(
                    "{}",
                    dockmon_agent::board::describe(&selected, dockmon_agent::board::profiles())
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("dockmon-agent: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run => {
            let cfg = match load_config() {
                Ok(c) => c,
                Err(e) => {
                    // Before logging is set up: the Go agent prints the same prefix.
                    eprintln!("Failed to load configuration: {e}");
                    return ExitCode::from(2);
                }
            };
            logging::init(cfg.log_level.filter(), cfg.log_json);
            log::info!(
                "dockmon-agent {} ({}) starting; DockMon at {}",
                dockmon_agent::VERSION,
                dockmon_agent::COMMIT,
                cfg.ws_url
            );
            if let Err(code) = drop_root(Some(&cfg.data_path), true) {
                return code;
            }
            // A staged native self-update: re-exec into the new binary (before any thread exists).
            dockmon_agent::dockmon::selfupdate::native::at_startup(&cfg.data_path);
            exit(modes::run_local(|ex| modes::agent::run(ex, cfg)))
        }
    }
}

fn load_config() -> Result<config::Config, config::Error> {
    config::from_env(
        |name| std::env::var(name).ok(),
        |path: &Path| match std::fs::read_to_string(path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        },
    )
}

/// Drops root as `AGENT_UID` asks (src/privilege.rs), before the executor exists: async-io starts
/// its reactor thread on first use, and set*id acts on the calling thread only. `data` is handed to
/// the new uid first. The agent logs what it did; local modes only say so when it fails.
fn drop_root(data: Option<&Path>, log_it: bool) -> Result<(), ExitCode> {
    use dockmon_agent::privilege::{self, Plan};
    let socket = docker_socket().and_then(|p| privilege::owner_of(&p));
    let agent_uid = std::env::var("AGENT_UID").ok();
    let euid = rustix::process::geteuid().as_raw();
    let plan = match privilege::plan(euid, agent_uid.as_deref(), socket) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("dockmon-agent: {e}");
            return Err(ExitCode::from(2));
        }
    };
    match privilege::apply(&plan, data) {
        Err(e) => {
            log::error!("{e}");
            eprintln!("dockmon-agent: {e}");
            Err(ExitCode::from(1))
        }
        Ok(applied) => {
            if let Some(why) = &applied.data_problem {
                log::warn!("DATA_PATH could not be wholly handed to the agent's uid: {why}");
            }
            if !log_it {
                return Ok(());
            }
            match &plan {
                Plan::NotRoot => {}
                Plan::StayRoot(why) => log::info!("running as root ({why})"),
                Plan::Drop { uid, gid, groups } => log::info!(
                    "dropped root: running as uid {uid}, gid {gid}, supplementary groups {groups:?} (the Docker socket's group); {} entries of DATA_PATH taken over",
                    applied.taken_over
                ),
            }
            Ok(())
        }
    }
}

/// The engine's unix socket path, if `DOCKER_HOST` (or the usual paths) name one.
fn docker_socket() -> Option<std::path::PathBuf> {
    dockmon_agent::docker::endpoint::from_env()
        .ok()?
        .unix_path()
        .map(Path::to_path_buf)
}

/// `health`: asks the running agent over its abstract socket (`modes::health` says which).
fn health() -> ExitCode {
    let data_path = std::env::var_os("DATA_PATH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| config::DATA_PATH_DEFAULT.into());
    match modes::health::ask(&data_path) {
        Ok(text) if text == "connected" => {
            println!("connected");
            ExitCode::SUCCESS
        }
        Ok(text) => {
            println!("{text}");
            ExitCode::from(1)
        }
        Err(e) => {
            println!("no running agent answers ({e})");
            ExitCode::from(1)
        }
    }
}

fn exit(result: Result<(), modes::Error>) -> ExitCode {
    #[cfg(feature = "count-alloc")]
    eprintln!(
        "dockmon-agent: heap in use {} bytes, high-water {} bytes",
        dockmon_agent::alloc::in_use(),
        dockmon_agent::alloc::high_water()
    );
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(modes::Error::Config(e)) => {
            eprintln!("dockmon-agent: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("dockmon-agent: {e}");
            ExitCode::from(1)
        }
    }
}

/// Text logs on stderr at `LOG_LEVEL` (default info), so stdout carries only the mode's output.
fn init_local_logging() {
    let level = std::env::var("LOG_LEVEL")
        .ok()
        .and_then(|l| config::LogLevel::parse(l.trim()))
        .map_or(log::LevelFilter::Info, config::LogLevel::filter);
    logging::init(level, false);
}
