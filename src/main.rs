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
            let mut out = std::io::stdout().lock();
            exit(modes::run_local(|ex| {
                modes::snapshot::run(ex, window, &mut out)
            }))
        }
        Command::Watch { interval, format } => {
            init_local_logging();
            let mut out = std::io::stdout().lock();
            exit(modes::run_local(|ex| {
                modes::watch::run(ex, interval, format, tty, &mut out)
            }))
        }
        Command::Check => {
            let cfg = load_config();
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
