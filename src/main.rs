//! Thin entry point: argv → mode; each error class → a documented exit code
//! (0 success, 1 runtime error, 2 bad command line or configuration).
use dockmon_agent::cli::{self, Command};
use dockmon_agent::modes;
use std::io::IsTerminal;
use std::process::ExitCode;

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
            init_logging();
            let mut out = std::io::stdout().lock();
            exit(modes::run_local(|ex| {
                modes::snapshot::run(ex, window, &mut out)
            }))
        }
        Command::Watch { interval, format } => {
            init_logging();
            let mut out = std::io::stdout().lock();
            exit(modes::run_local(|ex| {
                modes::watch::run(ex, interval, format, tty, &mut out)
            }))
        }
        Command::Check | Command::Health | Command::Run => {
            eprintln!("dockmon-agent: agent mode is not available in this build yet; use snapshot or watch");
            ExitCode::from(2)
        }
    }
}

fn exit(result: Result<(), modes::Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dockmon-agent: {e}");
            ExitCode::from(1)
        }
    }
}

/// Text logs on stderr at `LOG_LEVEL` (default info), so stdout carries only the mode's output.
fn init_logging() {
    let level = std::env::var("LOG_LEVEL")
        .ok()
        .and_then(|l| match l.trim().to_ascii_lowercase().as_str() {
            "trace" => Some(log::LevelFilter::Trace),
            "debug" => Some(log::LevelFilter::Debug),
            "info" | "" => Some(log::LevelFilter::Info),
            "warn" | "warning" => Some(log::LevelFilter::Warn),
            "error" | "fatal" | "panic" => Some(log::LevelFilter::Error),
            _ => None,
        })
        .unwrap_or(log::LevelFilter::Info);
    let _ = simple_logger::SimpleLogger::new()
        .with_level(level)
        .with_utc_timestamps()
        .init();
}
