//! Log output to stderr, so stdout stays free for the local modes' output. Two line formats:
//! - text (the default), the layout simple_logger wrote before this module replaced it:
//!   `2026-11-29T00:14:00.123Z INFO  [dockmon_agent::modes::agent] message` (UTC, milliseconds,
//!   level padded to five columns, then the log target);
//! - JSON (`LOG_JSON=true`, the Go agent's default): one object per line with `time`, `level` and
//!   `msg` first, as DockMon's log tooling expects (logrus: `2006-01-02T15:04:05.000Z07:00`, UTC
//!   here).
//!
//! Both take the time from `rfc3339`. Tokens are never passed to the logger by any module.
use log::{Level, LevelFilter, Log, Metadata, Record};
use serde::Serialize;
use std::fmt;
use std::io::Write;

/// Installs the logger. Only the first call has an effect.
pub fn init(level: LevelFilter, json: bool) {
    let logger: &'static Logger = if json { &JSON } else { &TEXT };
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

static TEXT: Logger = Logger { json: false };
static JSON: Logger = Logger { json: true };

/// One logger for both formats: they differ only in how a line is laid out.
struct Logger {
    json: bool,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let (secs, nanos) = crate::rfc3339::now();
        let time = millis_stamp(secs, nanos);
        let line = if self.json {
            match json_line(&time, record) {
                Some(line) => line,
                None => return,
            }
        } else {
            let target = match record.target() {
                "" => record.module_path().unwrap_or(""),
                t => t,
            };
            text_line(&time, record.level(), target, record.args()).into_bytes()
        };
        let _ = std::io::stderr().lock().write_all(&line);
    }

    fn flush(&self) {}
}

/// One text line, newline included.
fn text_line(time: &str, level: Level, target: &str, msg: &fmt::Arguments) -> String {
    format!("{time} {:<5} [{target}] {msg}\n", level.as_str())
}

#[derive(Serialize)]
struct Line<'a> {
    time: &'a str,
    level: &'static str,
    msg: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    module: &'a str,
}

/// One JSON line, newline included.
fn json_line(time: &str, record: &Record) -> Option<Vec<u8>> {
    let line = Line {
        time,
        level: match record.level() {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        },
        msg: record.args().to_string(),
        module: if record.level() >= Level::Debug {
            record.module_path().unwrap_or("")
        } else {
            ""
        },
    };
    let mut buf = Vec::with_capacity(160);
    serde_json::to_writer(&mut buf, &line).ok()?;
    buf.push(b'\n');
    Some(buf)
}

/// `2026-11-29T00:14:00.123Z`: logrus' layout with milliseconds.
fn millis_stamp(secs: i64, nanos: u32) -> String {
    let full = crate::rfc3339::nanos(secs, nanos);
    // `YYYY-MM-DDTHH:MM:SS.` is 20 bytes; keep three digits of the fraction.
    format!("{}Z", &full[..23])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_keep_simple_loggers_layout() {
        let time = "2026-11-29T00:14:00.123Z";
        let line =
            |level, msg: fmt::Arguments| text_line(time, level, "dockmon_agent::modes", &msg);
        assert_eq!(
            line(Level::Info, format_args!("connected to {}", "wss://d.lan")),
            "2026-11-29T00:14:00.123Z INFO  [dockmon_agent::modes] connected to wss://d.lan\n"
        );
        assert_eq!(
            line(Level::Error, format_args!("x")),
            "2026-11-29T00:14:00.123Z ERROR [dockmon_agent::modes] x\n"
        );
    }

    #[test]
    fn millisecond_stamps() {
        assert_eq!(
            millis_stamp(1_795_911_240, 123_456_789),
            "2026-11-29T00:14:00.123Z"
        );
        assert_eq!(millis_stamp(0, 0), "1970-01-01T00:00:00.000Z");
    }
}
