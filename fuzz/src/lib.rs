//! The bodies of the fuzz targets, one module per parser, so that the same code runs under libFuzzer
//! (`fuzz_targets/*.rs`, nightly, `cargo fuzz run`) and under a stable `#[test]` that replays the seeds
//! and any corpus on disk (`cargo test --lib` here).
//!
//! Every target feeds its bytes to the parser and checks what it promises beyond "no panic": a
//! parse-emit-parse round trip where the crate also writes the format, declared lengths honoured,
//! the same answer whether the input arrives whole or in pieces, and results inside the capacities of
//! `limits.rs`. A failed check is a crash like a panic is.

pub mod board;
pub mod cgroup;
pub mod compose_interp;
pub mod compose_yaml;
pub mod config;
pub mod dns_answer;
pub mod dns_conf;
pub mod docker_events;
pub mod docker_list;
pub mod docker_logs;
pub mod docker_stats;
pub mod dockmon_message;
pub mod dockmon_payload;
pub mod health;
pub mod http_chunked;
pub mod http_head;
pub mod procfs;
pub mod shell;
pub mod ws_frame;
pub mod ws_handshake;

/// Every target by name, as `fuzz_targets/<name>.rs` and `corpus/<name>/` call it.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("board", board::run),
    ("cgroup", cgroup::run),
    ("compose_interp", compose_interp::run),
    ("compose_yaml", compose_yaml::run),
    ("config", config::run),
    ("dns_answer", dns_answer::run),
    ("dns_conf", dns_conf::run),
    ("docker_events", docker_events::run),
    ("docker_list", docker_list::run),
    ("docker_logs", docker_logs::run),
    ("docker_stats", docker_stats::run),
    ("dockmon_message", dockmon_message::run),
    ("dockmon_payload", dockmon_payload::run),
    ("health", health::run),
    ("http_chunked", http_chunked::run),
    ("http_head", http_head::run),
    ("procfs", procfs::run),
    ("shell", shell::run),
    ("ws_frame", ws_frame::run),
    ("ws_handshake", ws_handshake::run),
];

/// Cuts `data` into consecutive pieces of 1 to 64 bytes whose sizes follow a small generator seeded
/// by `seed`, so a target can feed a streaming parser the way reads would: the fuzzer picks the seed
/// together with the bytes, and so the split points.
pub fn pieces(data: &[u8], seed: u8) -> Pieces<'_> {
    Pieces {
        rest: data,
        state: u32::from(seed) | 0x100,
    }
}

/// The iterator of [`pieces`].
pub struct Pieces<'a> {
    rest: &'a [u8],
    state: u32,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        // A 32-bit LCG (Numerical Recipes constants); the top bits pick a size of 1..=64.
        self.state = self
            .state
            .wrapping_mul(1_664_525)
            .wrapping_add(1_013_904_223);
        let n = ((self.state >> 26) as usize + 1).min(self.rest.len());
        let (piece, rest) = self.rest.split_at(n);
        self.rest = rest;
        Some(piece)
    }
}

/// The first byte (a selector or flags, 0 when empty) and the rest.
pub fn split_first(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (b, rest),
        None => (0, data),
    }
}

/// Splits `data` at NUL bytes into at most `N` fields (the last field keeps any further NULs).
pub fn fields<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut out = [&data[..0]; N];
    let mut rest = data;
    for (i, slot) in out.iter_mut().enumerate() {
        if i + 1 == N {
            *slot = rest;
            break;
        }
        match rest.iter().position(|&b| b == 0) {
            Some(at) => {
                *slot = &rest[..at];
                rest = &rest[at + 1..];
            }
            None => {
                *slot = rest;
                rest = &rest[rest.len()..];
            }
        }
    }
    out
}

/// `bytes` as text, invalid UTF-8 replaced (the parsers that take `&str` get text from `read_to_string`
/// or serde, so they never see invalid UTF-8 themselves).
pub fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Asserts that `bytes` is one JSON value (what every frame or body we write must be).
pub fn assert_json(bytes: &[u8]) {
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        panic!(
            "written JSON does not parse ({e}): {}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[cfg(test)]
mod replay {
    //! Stable replay: every seed under `seeds/<target>/` and every file under `corpus/<target>/` and
    //! `artifacts/<target>/` (when present) through its target, so CI covers them without nightly.
    use super::TARGETS;
    use std::path::Path;

    #[test]
    fn every_seed_and_corpus_file_passes_its_target() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut total = 0;
        for (name, run) in TARGETS {
            for dir in ["seeds", "corpus", "artifacts"] {
                let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    if !path.is_file() {
                        continue;
                    }
                    let data = std::fs::read(&path).unwrap();
                    run(&data);
                    total += 1;
                }
            }
        }
        assert!(total > 0, "no seeds found: run scripts/fuzz --seeds first");
    }

    #[test]
    fn pieces_cover_the_input_in_order() {
        let data: Vec<u8> = (0..=255).collect();
        for seed in [0, 1, 77, 255] {
            let joined: Vec<u8> = super::pieces(&data, seed).flatten().copied().collect();
            assert_eq!(joined, data);
        }
    }

    #[test]
    fn fields_split_at_nul() {
        let [a, b, c] = super::fields::<3>(b"x\0y\0z\0w");
        assert_eq!((a, b, c), (&b"x"[..], &b"y"[..], &b"z\0w"[..]));
        let [a, b] = super::fields::<2>(b"only");
        assert_eq!((a, b), (&b"only"[..], &b""[..]));
    }
}
