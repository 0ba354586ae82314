//! Docker's container list (`GET /containers/json`): the array splitter `docker::array::Elements`
//! fed in pieces, each element read as `types::ContainerSummary` and given DockMon's extra keys with
//! `docker::list::splice`. The first byte seeds the read sizes and the element cap.
//!
//! Checks: an element never passes the cap; whenever serde_json reads the body as an array of
//! objects and arrays (each within the cap), the splitter yields exactly those elements and the array
//! ends; a spliced object is still one JSON value and the budget only goes down.
use dockmon_agent::docker::array::Elements;
use dockmon_agent::docker::list::{env_map, splice, started_at, Extras};
use dockmon_agent::docker::types::ContainerSummary;
use serde_json::value::RawValue;
use std::borrow::Cow;

pub fn run(data: &[u8]) {
    let (seed, body) = crate::split_first(data);
    let max = if seed & 0x80 == 0 { 256 } else { 64 * 1024 };
    let mut elements = Elements::new(max);
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut failed = false;
    'feed: for mut piece in crate::pieces(body, seed) {
        while !piece.is_empty() {
            match elements.feed(piece) {
                Ok((used, done)) => {
                    assert!(used <= piece.len() && (done || used == piece.len()));
                    if done {
                        let element = elements.element();
                        assert!(element.len() <= max, "element of {} > {max}", element.len());
                        got.push(element.to_vec());
                    }
                    piece = &piece[used..];
                }
                Err(_) => {
                    failed = true;
                    break 'feed;
                }
            }
        }
    }
    let complete = !failed && elements.finish().is_ok();
    if let Ok(values) = serde_json::from_slice::<Vec<&RawValue>>(body) {
        let containers = values.iter().all(|v| {
            let t = v.get();
            (t.starts_with('{') || t.starts_with('[')) && t.len() <= max
        });
        if containers {
            assert!(
                complete,
                "serde_json reads the array, the splitter does not"
            );
            let texts: Vec<&[u8]> = values.iter().map(|v| v.get().as_bytes()).collect();
            assert_eq!(
                got, texts,
                "the splitter's elements differ from serde_json's"
            );
        }
    }
    let env: Vec<Cow<str>> = vec![
        Cow::Borrowed("A=1"),
        Cow::Borrowed("B=x=y"),
        Cow::Borrowed("NOEQ"),
    ];
    for element in &got {
        let Ok(text) = std::str::from_utf8(element) else {
            continue;
        };
        if let Ok(summary) = serde_json::from_str::<ContainerSummary>(text) {
            let _ = summary.name();
            let _ = env_map(&summary.names);
            let _ = started_at(&summary.status);
        }
        let valid = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
        for budget_start in [0, 40, 10_000] {
            let extras = Extras {
                repo_digests: b"[\"x@sha256:00\"]",
                started_at: Some("2026-12-06T23:00:00.000000000Z"),
                env: Some(&env),
            };
            let mut out = Vec::new();
            let mut budget = budget_start;
            if splice(&mut out, text, &extras, &mut budget).is_ok() {
                assert!(budget <= budget_start);
                if valid {
                    crate::assert_json(&out);
                }
            } else {
                assert!(out.is_empty(), "written although not an object");
            }
        }
    }
}
