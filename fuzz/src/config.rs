//! The environment → configuration (`config::from_env`, with the permanent token file), the proxy
//! variables (`proxy::Settings::from_env`, then a proxy choice) and the values parsed on the way
//! (`config::{parse_bool, parse_duration, ws_url, stats_source}`, `LogLevel::parse`). Input:
//! `NAME=value` lines, a NUL, then the token file's content (no NUL: no file).
//!
//! Checks: a token never shows in the configuration's `Debug` text or in an error message (the
//! tokens are `Debug`-redacted; errors name the variable, not the value); a parsed duration written
//! in whole nanoseconds parses back to itself (the round trip).
use dockmon_agent::config::{self, from_env, parse_bool, parse_duration, LogLevel};
use dockmon_agent::proxy::Settings;

pub fn run(data: &[u8]) {
    let [env, token_file] = crate::fields::<2>(data);
    let has_file = data.contains(&0);
    let env = crate::text(env);
    let token_file = crate::text(token_file);
    let vars: Vec<(&str, &str)> = env.lines().filter_map(|l| l.split_once('=')).collect();
    let lookup = |name: &str| {
        vars.iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let read_token = |_: &std::path::Path| Ok(has_file.then(|| token_file.to_string()));
    let secrets: Vec<&str> = ["PERMANENT_TOKEN", "REGISTRATION_TOKEN"]
        .iter()
        .filter_map(|k| vars.iter().rev().find(|(n, _)| n == k).map(|(_, v)| *v))
        .chain(has_file.then_some(&*token_file))
        .map(str::trim)
        // Only a token that is long and appears nowhere else in the input can be told apart.
        .filter(|t| t.len() >= 8 && env.matches(t).count() + token_file.matches(t).count() <= 1)
        .collect();
    let shown = match from_env(lookup, read_token) {
        Ok(c) => format!("{c:?}"),
        Err(e) => format!("{e} {e:?}"),
    };
    for t in &secrets {
        assert!(!shown.contains(t), "a token is shown: {shown}");
    }
    if let Ok(s) = Settings::from_env(lookup) {
        for (secure, host, port) in [(false, "dockmon.lan", 80), (true, "10.0.0.1", 443)] {
            let _ = s.select(secure, host, port);
        }
    }
    for (_, value) in vars.iter().take(32) {
        let _ = parse_bool(value);
        let _ = LogLevel::parse(value);
        let _ = config::stats_source(Some(value));
        let _ = config::ws_url(value);
        if let Ok(d) = parse_duration(value) {
            let written = format!("{}ns", d.as_nanos());
            if let Ok(again) = parse_duration(&written) {
                assert_eq!(again, d, "{value:?} → {written:?}");
            }
        }
    }
}
