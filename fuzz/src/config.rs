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

/// What the user may see of a configuration: its `Debug` text, or the error's message and `Debug`.
fn show(vars: &[(&str, &str)], token_file: Option<&str>) -> String {
    let lookup = |name: &str| {
        vars.iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let read_token = |_: &std::path::Path| Ok(token_file.map(str::to_string));
    match from_env(lookup, read_token) {
        Ok(c) => format!("{c:?}"),
        Err(e) => format!("{e} {e:?}"),
    }
}

/// `v` with letters and digits replaced by others of their class (`a`→`z`, `Z`→`Q`, `7`→`3`...),
/// so that a token check sees the same kind of value.
fn mask(v: &str) -> String {
    v.chars()
        .map(|c| match c {
            'a'..='y' => 'z',
            'z' => 'y',
            'A'..='P' => 'Q',
            'Q'..='Z' => 'P',
            '0'..='8' => '9',
            '9' => '8',
            c => c,
        })
        .collect()
}

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
    let secrets: Vec<&str> = ["PERMANENT_TOKEN", "REGISTRATION_TOKEN"]
        .iter()
        .filter_map(|k| vars.iter().rev().find(|(n, _)| n == k).map(|(_, v)| *v))
        .chain(has_file.then_some(&*token_file))
        .map(str::trim)
        // Only a token that is long and appears nowhere else in the input can be told apart.
        .filter(|t| t.len() >= 8 && env.matches(t).count() + token_file.matches(t).count() <= 1)
        .collect();
    let shown = show(&vars, has_file.then_some(&*token_file));
    for t in &secrets {
        if shown.contains(t) {
            // The same input with every token masked (same length and character classes, so the
            // same checks pass or fail): if the text is still there, it is the message's own words.
            let masked: Vec<(&str, String)> = vars
                .iter()
                .map(|(k, v)| match *k {
                    "PERMANENT_TOKEN" | "REGISTRATION_TOKEN" => (*k, mask(v)),
                    _ => (*k, v.to_string()),
                })
                .collect();
            let masked_vars: Vec<(&str, &str)> =
                masked.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let masked_file = mask(&token_file);
            let baseline = show(&masked_vars, has_file.then_some(&*masked_file));
            assert!(baseline.contains(t), "a token is shown: {shown}");
        }
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
