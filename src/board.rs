//! Board profiles: the container-stats budget and the memory figures for each target board, which
//! profile applies to this machine, and the text of `dockmon-agent boards`. Read `boards/README.md`
//! first: it gives the reasoning behind every number.
//!
//! Owns:
//! - the profiles, compiled in from `boards/<name>.json` with `include_str!` and parsed with serde on
//!   first use ([`profiles`], [`Board::profile`]);
//! - [`detect`]: which board this is, a pure function over the text of four system files;
//! - [`read_system`]: reads those four files under a root directory (tests point it at fixture trees);
//! - [`select`]: `DOCKMON_BOARD` or the detection, then single-value overrides from the environment
//!   (pure: the environment comes through a lookup function);
//! - [`describe`]: the table printed by `dockmon-agent boards`.
//!
//! Must not: log (the mode logs [`Selected::warnings`] once at startup), read a clock, read files
//! anywhere but in [`read_system`].
//!
//! Invariants:
//! - every compiled-in profile parses, its `name` is its file name and its [`Board`] name, and its
//!   values lie inside the `BOARD_*` ceilings of [`crate::limits`] (unit tests; a build whose profile
//!   does not parse fails the first test, so the parse at first use cannot fail in a tested build);
//! - every value of a [`Selected`] profile lies inside those ceilings: a value past one (from the
//!   environment) is clamped to it and one warning per value lands in [`Selected::warnings`];
//! - detection always names a board: when nothing is recognised it falls back by architecture.
//!
//! Detection order, first match wins (each step's reason is kept for `dockmon-agent boards`):
//! 1. `/proc/device-tree/model` names a Raspberry Pi (the file ends with a NUL byte);
//! 2. the `Model` line of `/proc/cpuinfo` names one: Raspberry Pi kernels print it, and it is the only
//!    trace of the board inside a container, where Docker masks `/sys/firmware` and with it the device
//!    tree;
//! 3. DMI: `sys_vendor` `Amazon EC2` with a Graviton instance type as `product_name` (`m6g.large`), or
//!    a Raspberry Pi `product_name` (a Pi booted through UEFI firmware has DMI and no device tree);
//! 4. the `CPU part` lines of `/proc/cpuinfo` for Arm Ltd cores (implementer `0x41`): the strongest
//!    core known, so a big.LITTLE board counts as its big cores;
//! 5. the architecture: `x86_64` is amd64; anything else unrecognised gets a conservative profile.
//!
//! File caps stay here rather than in `limits`: they bound the detection reads of this module only; the
//! budget ceilings are in `limits::BOARD_*`.

use std::fmt::{self, Write as _};
use std::num::IntErrorKind;
use std::path::Path;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::config::{parse_duration, DurationError};
use crate::limits::{
    BOARD_CONTAINERS_MAX_COUNT, BOARD_HEAP_CEILING_MAX_KIB, BOARD_OUTBOX_EVENTS_MAX_COUNT,
    BOARD_OUTBOX_STATS_MAX_COUNT, BOARD_RSS_CEILING_MAX_KIB, BOARD_STATS_CALLS_PER_SEC_MAX,
    BOARD_STATS_INTERVAL_MIN_MS, BOARD_STATS_IN_FLIGHT_MAX_COUNT,
};

/// Most bytes read from `/proc/cpuinfo`. A Pi's is about 1 KiB with the `Model` line last; an x86
/// server's grows by about 1.5 KiB per CPU (the `flags` line), and there only the first block matters.
/// A cut read is trimmed back to its last newline, so a cut line never reaches the parser.
pub const CPUINFO_READ_MAX_BYTES: usize = 64 * 1024;
/// Most bytes read from the device-tree model and the two DMI strings. They are 10 to 40 bytes
/// (`Raspberry Pi 3 Model B Plus Rev 1.3`, `Amazon EC2`); anything longer is cut.
pub const SYSTEM_STRING_MAX_BYTES: usize = 256;
/// Longest slice of a refused value quoted back in an error or warning.
const ECHO_MAX_CHARS: usize = 64;

/// The variable that picks a profile by name.
pub const BOARD_VAR: &str = "DOCKMON_BOARD";
/// Overrides the stats interval (Go duration syntax).
pub const STATS_INTERVAL_VAR: &str = "STATS_INTERVAL";
/// Overrides the stats calls started per second.
pub const STATS_CALLS_PER_SEC_VAR: &str = "STATS_CALLS_PER_SEC";
/// Overrides the stats calls in flight at once.
pub const STATS_IN_FLIGHT_VAR: &str = "STATS_IN_FLIGHT";
/// Overrides the container table capacity.
pub const STATS_CONTAINERS_MAX_VAR: &str = "STATS_CONTAINERS_MAX";

// ---- Profiles --------------------------------------------------------------------------------------

/// The one table of boards: each row gives the variant of [`Board`], its doc, and its name (the `name`
/// field and the file under `boards/`, compiled in). Rows are in budget order, smallest first. Adding a
/// board is one row here and one file in `boards/`.
macro_rules! boards {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, )*) => {
        /// A board we have a profile for. The order (and `Ord`) is the budget order, smallest first.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Board {
            $( $(#[$doc])* $variant, )*
        }

        /// Each board, its name and its profile file, in [`Board`] order.
        const TABLE: &[(Board, &str, &str)] = &[
            $( (Board::$variant, $name, include_str!(concat!("../boards/", $name, ".json"))), )*
        ];

        impl Board {
            /// Every board, in budget order.
            pub const ALL: [Board; TABLE.len()] = [$( Board::$variant, )*];
        }
    };
}

boards! {
    /// Raspberry Pi Zero 2 W (and the other 512 MB Pis).
    RpiZero2w => "rpi-zero-2w",
    /// Raspberry Pi 3 (and Pi 2; the default for unknown aarch64).
    Rpi3 => "rpi3",
    /// Raspberry Pi 4, 400, CM4.
    Rpi4 => "rpi4",
    /// Raspberry Pi 5, 500, CM5.
    Rpi5 => "rpi5",
    /// AWS Graviton2 (and Graviton1, Neoverse N1/N2 servers).
    Graviton2 => "graviton2",
    /// AWS Graviton3 (and Graviton4/5 as the nearest profile).
    Graviton3 => "graviton3",
    /// A generic x86_64 host.
    Amd64 => "amd64",
}

impl Board {
    /// The profile name: the `name` field and the file name under `boards/`.
    pub fn name(self) -> &'static str {
        // In range: the macro makes one variant per row, in row order.
        TABLE[self as usize].1
    }

    /// The board called `name` (ASCII case and surrounding whitespace ignored).
    pub fn from_name(name: &str) -> Option<Board> {
        let name = name.trim();
        Board::ALL
            .into_iter()
            .find(|board| board.name().eq_ignore_ascii_case(name))
    }

    /// This board's compiled-in profile.
    pub fn profile(self) -> &'static Profile {
        &profiles()[self as usize]
    }
}

impl fmt::Display for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One board's budget, as in `boards/<name>.json` (every field is documented with its reasoning in
/// `boards/README.md`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The profile name, equal to the file name and to [`Board::name`].
    pub name: String,
    /// One line: the boards it is for and why.
    pub description: String,
    /// Each container is sampled at most once per this many milliseconds, when the budget allows.
    pub stats_interval_ms: u64,
    /// Stats calls started per second, at most (the token rate of the sampler's budget).
    pub stats_calls_per_sec: u32,
    /// Stats calls in flight at once, at most.
    pub stats_in_flight: usize,
    /// Rows of the fixed container table the agent allocates once at startup.
    pub containers_max: usize,
    /// Stats frames the outbox holds before dropping the oldest.
    pub outbox_stats_max: usize,
    /// Event frames the outbox holds before dropping the oldest.
    pub outbox_events_max: usize,
    /// The resident set size the agent must stay under on this board, in KiB.
    pub rss_ceiling_kib: u64,
    /// The heap in use the agent must stay under on this board, in KiB.
    pub heap_ceiling_kib: u64,
}

/// Every compiled-in profile, in [`Board`] order; parsed on first use.
pub fn profiles() -> &'static [Profile] {
    static PROFILES: OnceLock<Vec<Profile>> = OnceLock::new();
    PROFILES.get_or_init(|| {
        TABLE
            .iter()
            .map(|&(board, _, json)| match parse_profile(board, json) {
                Ok(profile) => profile,
                // Cannot happen in a tested build: `every_profile_parses_under_its_own_name` parses
                // exactly these texts, which are compiled into the binary.
                Err(problem) => panic!("boards/{board}.json: {problem}"),
            })
            .collect()
    })
}

/// Parses one profile file and checks that its `name` is `board`'s.
fn parse_profile(board: Board, json: &str) -> Result<Profile, String> {
    let profile: Profile = serde_json::from_str(json).map_err(|e| e.to_string())?;
    if profile.name != board.name() {
        return Err(format!(
            "name {:?} does not match the file name {:?}",
            profile.name,
            board.name()
        ));
    }
    Ok(profile)
}

// ---- Detection -------------------------------------------------------------------------------------

/// Which board this machine is, and why we think so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The profile that fits (its name: `board.name()`).
    pub board: Board,
    /// One line naming the file and the value that decided, e.g.
    /// `device tree model "Raspberry Pi 4 Model B Rev 1.4"`.
    pub reason: String,
}

/// Arm Ltd cores (`CPU implementer : 0x41`) by `CPU part`, with the profile whose budget suits them.
/// Part numbers as in the Arm technical reference manuals (MIDR_EL1.PartNum) and util-linux's
/// `lscpu-arm.c`. Little cores get the smallest profile: a board of only those is a small board.
const ARM_CORES: [(u16, &str, Board); 15] = [
    (0xd03, "Cortex-A53", Board::RpiZero2w),
    (0xd04, "Cortex-A35", Board::RpiZero2w),
    (0xd05, "Cortex-A55", Board::RpiZero2w),
    (0xd07, "Cortex-A57", Board::Rpi3),
    (0xd08, "Cortex-A72", Board::Rpi4),
    (0xd09, "Cortex-A73", Board::Rpi4),
    (0xd0a, "Cortex-A75", Board::Rpi4),
    (0xd0b, "Cortex-A76", Board::Rpi5),
    (0xd0d, "Cortex-A77", Board::Rpi5),
    (0xd41, "Cortex-A78", Board::Rpi5),
    (0xd0c, "Neoverse N1", Board::Graviton2),
    (0xd49, "Neoverse N2", Board::Graviton2),
    (0xd40, "Neoverse V1", Board::Graviton3),
    (0xd4f, "Neoverse V2", Board::Graviton3),
    (0xd84, "Neoverse V3", Board::Graviton3),
];

/// The DMI `sys_vendor` of every EC2 instance on the Nitro system (Graviton instances all are).
const EC2_VENDOR: &str = "Amazon EC2";

/// Decides the board from the text of `/proc/device-tree/model`, `/sys/class/dmi/id/product_name`,
/// `/sys/class/dmi/id/sys_vendor` (each `None` when absent), `/proc/cpuinfo` (empty when absent) and
/// the architecture (`std::env::consts::ARCH`: `x86_64`, `aarch64`, `arm`, ...). Pure; never fails.
/// Trailing NUL bytes and surrounding whitespace of the three strings are ignored. See the module
/// documentation for the order of the steps.
pub fn detect(
    device_tree_model: Option<&str>,
    dmi_product_name: Option<&str>,
    dmi_sys_vendor: Option<&str>,
    cpuinfo: &str,
    arch: &str,
) -> Detection {
    let model = device_tree_model.map(clean).filter(|s| !s.is_empty());
    let product = dmi_product_name.map(clean).filter(|s| !s.is_empty());
    let vendor = dmi_sys_vendor.map(clean).filter(|s| !s.is_empty());
    let cpuinfo_model = cpuinfo_value(cpuinfo, "Model");
    // A Raspberry Pi model we do not know (a future one) is noted and detection goes on by CPU.
    let mut unknown_pi = None;

    // 1 and 2: a Raspberry Pi by name.
    for (source, text) in [
        ("device tree model", model),
        ("/proc/cpuinfo Model", cpuinfo_model),
    ] {
        let Some(text) = text else { continue };
        match pi_board(text) {
            PiMatch::Known(board, note) => {
                return Detection {
                    board,
                    reason: format!("{source} {text:?}{note}"),
                }
            }
            PiMatch::Unknown => {
                unknown_pi.get_or_insert(format!("{source} {text:?}"));
            }
            PiMatch::NotAPi => {}
        }
    }

    // 3: DMI. EC2 names the instance type; a Pi on UEFI firmware names its model.
    if let Some(product) = product {
        if vendor == Some(EC2_VENDOR) {
            if let Some(generation) = graviton_generation(product) {
                let (board, note) = match generation {
                    1 => (
                        Board::Graviton2,
                        "; graviton2 is the nearest profile (Cortex-A72 server cores)",
                    ),
                    2 => (Board::Graviton2, ""),
                    3 => (Board::Graviton3, ""),
                    _ => (
                        Board::Graviton3,
                        "; graviton3 is the nearest profile (newer cores are faster, so its budget is safe)",
                    ),
                };
                return Detection {
                    board,
                    reason: format!(
                        "DMI {EC2_VENDOR:?} instance type {product:?}: Graviton{generation}{note}"
                    ),
                };
            }
        }
        match pi_board(product) {
            PiMatch::Known(board, note) => {
                return Detection {
                    board,
                    reason: format!("DMI product name {product:?}{note}"),
                }
            }
            PiMatch::Unknown => {
                unknown_pi.get_or_insert(format!("DMI product name {product:?}"));
            }
            PiMatch::NotAPi => {}
        }
    }
    let unknown_note = unknown_pi
        .map(|what| format!(" ({what} is not a Raspberry Pi we know)"))
        .unwrap_or_default();

    // 4: the strongest Arm core listed.
    if let Some((part, core, board)) = strongest_arm_core(cpuinfo) {
        return Detection {
            board,
            reason: format!("/proc/cpuinfo CPU part {part:#05x} ({core}){unknown_note}"),
        };
    }

    // 5: the architecture.
    let (board, reason) = match arch {
        "x86_64" => (Board::Amd64, format!("architecture x86_64{unknown_note}")),
        "aarch64" => (
            Board::Rpi3,
            format!(
                "architecture aarch64 with no known board or core{unknown_note}: rpi3, the \
                 conservative default (a 1 GB Cortex-A53 budget)"
            ),
        ),
        "arm" => (
            Board::RpiZero2w,
            format!(
                "architecture arm (32-bit) with no known board or core{unknown_note}: \
                 rpi-zero-2w, the smallest budget"
            ),
        ),
        other => (
            Board::Rpi3,
            format!(
                "architecture {other} has no profile{unknown_note}: rpi3, the conservative default"
            ),
        ),
    };
    Detection { board, reason }
}

/// What a model string says about a Raspberry Pi.
enum PiMatch {
    /// A Pi we have a profile for; the note explains a mapping that is not by name.
    Known(Board, &'static str),
    /// Starts with `Raspberry Pi` but is no model we know.
    Unknown,
    /// Not a Raspberry Pi.
    NotAPi,
}

/// Maps a Raspberry Pi model string (device tree, cpuinfo `Model` or DMI product name) to a board.
/// Model strings as the Raspberry Pi device trees spell them: `Raspberry Pi 4 Model B Rev 1.4`,
/// `Raspberry Pi 400 Rev 1.0`, `Raspberry Pi Compute Module 4 Rev 1.0`, `Raspberry Pi Zero 2 W Rev 1.0`.
fn pi_board(model: &str) -> PiMatch {
    let Some(rest) = model.strip_prefix("Raspberry Pi ") else {
        return PiMatch::NotAPi;
    };
    let known = |board| PiMatch::Known(board, "");
    if rest.starts_with("Zero 2") {
        return known(Board::RpiZero2w);
    }
    if rest.starts_with("Zero") || rest.starts_with("Model") {
        // Pi Zero, Zero W and Pi 1 (`Raspberry Pi Model B Plus Rev 1.2`): ARMv6, 256-512 MB.
        return PiMatch::Known(
            Board::RpiZero2w,
            "; a 512 MB ARMv6 Pi gets the smallest profile",
        );
    }
    if let Some(module) = rest.strip_prefix("Compute Module ") {
        return match module.chars().next() {
            Some('5') => known(Board::Rpi5),
            Some('4') => known(Board::Rpi4),
            Some('3') => known(Board::Rpi3),
            // CM1 is `Raspberry Pi Compute Module Rev 1.0`: a Pi 1 on a module.
            Some('R') => PiMatch::Known(
                Board::RpiZero2w,
                "; a 512 MB ARMv6 Pi gets the smallest profile",
            ),
            _ => PiMatch::Unknown,
        };
    }
    let generation = rest.split(' ').next().unwrap_or("").trim_end_matches('+');
    match generation {
        "5" | "500" => known(Board::Rpi5),
        "4" | "400" => known(Board::Rpi4),
        "3" if rest.contains("Model A") => {
            PiMatch::Known(Board::RpiZero2w, "; the 3 A+ has 512 MB, like the Zero 2 W")
        }
        "3" => known(Board::Rpi3),
        "2" => PiMatch::Known(Board::Rpi3, "; a Pi 2 has 1 GB like the Pi 3"),
        _ => PiMatch::Unknown,
    }
}

/// The Graviton generation of an EC2 instance type, or `None` for other processors. The family is the
/// part before the dot; after its generation digit, the attribute `g` (first when present) marks a
/// Graviton: `m6g`, `c6gn`, `t4g`, `x2gd`, `im4gn`, `g5g` (Graviton2), `c7g`, `hpc7g` (Graviton3),
/// `r8g` (Graviton4), `m9g` (Graviton5). `a1` is Graviton (1). The generation digit gives the chip:
/// 6 and below Graviton2, 7 Graviton3, 8 Graviton4, 9 Graviton5.
fn graviton_generation(instance_type: &str) -> Option<u32> {
    let family = instance_type.split('.').next()?;
    if family == "a1" {
        return Some(1);
    }
    let digit_at = family.find(|c: char| c.is_ascii_digit())?;
    let generation = family[digit_at..].chars().next()?.to_digit(10)?;
    if !family[digit_at + 1..].starts_with('g') {
        return None;
    }
    Some(match generation {
        0..=6 => 2,
        7 => 3,
        8 => 4,
        _ => 5,
    })
}

/// The Arm Ltd core in `cpuinfo` whose profile is largest: `(part, name, board)`. A `CPU part` counts
/// only after a `CPU implementer : 0x41` of the same processor block.
fn strongest_arm_core(cpuinfo: &str) -> Option<(u16, &'static str, Board)> {
    let mut implementer = None;
    let mut best: Option<(u16, &'static str, Board)> = None;
    for (key, value) in cpuinfo_pairs(cpuinfo) {
        match key {
            "processor" => implementer = None,
            "CPU implementer" => implementer = parse_hex(value),
            "CPU part" if implementer == Some(0x41) => {
                let Some(part) = parse_hex(value) else {
                    continue;
                };
                let Some(&(part, core, board)) = ARM_CORES.iter().find(|(p, ..)| *p == part) else {
                    continue;
                };
                let stronger = match best {
                    Some((_, _, current)) => board > current,
                    None => true,
                };
                if stronger {
                    best = Some((part, core, board));
                }
            }
            _ => {}
        }
    }
    best
}

/// `0xd0c` → 0xd0c; `None` for anything else.
fn parse_hex(value: &str) -> Option<u16> {
    let digits = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))?;
    u16::from_str_radix(digits, 16).ok()
}

/// The `key : value` lines of a cpuinfo text, both trimmed (keys are padded with tabs).
fn cpuinfo_pairs(cpuinfo: &str) -> impl Iterator<Item = (&str, &str)> {
    cpuinfo.lines().filter_map(|line| {
        let (key, value) = line.split_once(':')?;
        Some((key.trim(), value.trim()))
    })
}

/// The first non-empty value of `key` in a cpuinfo text.
fn cpuinfo_value<'a>(cpuinfo: &'a str, key: &str) -> Option<&'a str> {
    cpuinfo_pairs(cpuinfo)
        .find(|(k, v)| *k == key && !v.is_empty())
        .map(|(_, v)| v)
}

/// A system string without its trailing NULs (device-tree strings end with one) and whitespace.
fn clean(text: &str) -> &str {
    text.trim_matches(|c: char| c == '\0' || c.is_whitespace())
}

/// Reads, under `root`, `proc/device-tree/model`, `sys/class/dmi/id/product_name`,
/// `sys/class/dmi/id/sys_vendor` and `proc/cpuinfo`, in that order, for [`detect`]. A file that is
/// missing or unreadable gives `None` (an empty string for cpuinfo); the texts are returned as read
/// (NUL and newline included), invalid UTF-8 replaced. Reads stop at [`SYSTEM_STRING_MAX_BYTES`] and
/// [`CPUINFO_READ_MAX_BYTES`]; a cut cpuinfo is trimmed back to its last complete line.
pub fn read_system(root: &Path) -> (Option<String>, Option<String>, Option<String>, String) {
    let short = |path: &str| read_capped(&root.join(path), SYSTEM_STRING_MAX_BYTES);
    (
        short("proc/device-tree/model"),
        short("sys/class/dmi/id/product_name"),
        short("sys/class/dmi/id/sys_vendor"),
        read_capped(&root.join("proc/cpuinfo"), CPUINFO_READ_MAX_BYTES).unwrap_or_default(),
    )
}

/// Up to `max` bytes of the file at `path`; a cut read ends at its last newline when it has one.
fn read_capped(path: &Path, max: usize) -> Option<String> {
    let mut bytes = Vec::new();
    let whole = crate::procfs::read_capped(path, &mut bytes, max).ok()?;
    if !whole {
        if let Some(last_newline) = bytes.iter().rposition(|&b| b == b'\n') {
            bytes.truncate(last_newline + 1);
        }
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

// ---- Selection -------------------------------------------------------------------------------------

/// The profile in effect: the chosen board's, with the environment's overrides, inside the ceilings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// The values in effect (`name` is the chosen board's).
    pub profile: Profile,
    /// The board whose profile was the starting point.
    pub board: Board,
    /// How the board was chosen.
    pub source: Source,
    /// What detection found (kept when `DOCKMON_BOARD` overrode it, for `dockmon-agent boards`).
    pub detection: Detection,
    /// The variables that changed single values, in the order applied.
    pub overrides: Vec<Override>,
    /// One line per value clamped to a ceiling; the mode logs each once at startup.
    pub warnings: Vec<String>,
}

/// How the board was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `DOCKMON_BOARD` named it.
    Env,
    /// [`detect`] found it.
    Detected,
}

/// One environment variable that changed one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The variable.
    pub var: &'static str,
    /// Its value as given (trimmed; a long one is cut).
    pub value: String,
}

/// A refused board selection: the variable, the value and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// `DOCKMON_BOARD` names no profile.
    UnknownBoard {
        /// The value given (cut to 64 characters).
        value: String,
    },
    /// A value override does not parse.
    Invalid {
        /// The variable.
        var: &'static str,
        /// The value given (cut to 64 characters).
        value: String,
        /// What is wrong with it.
        problem: Problem,
    },
}

/// What is wrong with an override value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// `STATS_INTERVAL` is not a usable Go duration.
    Duration(DurationError),
    /// `STATS_INTERVAL` is zero.
    ZeroDuration,
    /// A count is not a decimal integer.
    NotCount,
    /// A count is zero.
    ZeroCount,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownBoard { value } => {
                write!(
                    f,
                    "{BOARD_VAR}: {value:?} is not a board profile; use one of "
                )?;
                for (i, board) in Board::ALL.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(board.name())?;
                }
                f.write_str(" (`dockmon-agent boards` shows them)")
            }
            Error::Invalid {
                var,
                value,
                problem,
            } => {
                write!(f, "{var}: {value:?} ")?;
                match problem {
                    Problem::Duration(error) => write!(f, "{error}"),
                    Problem::ZeroDuration => {
                        f.write_str("is zero; use a Go duration of at least 1s such as 10s")
                    }
                    Problem::NotCount => write!(
                        f,
                        "is not a whole number; use a positive integer such as {}",
                        count_example(var)
                    ),
                    Problem::ZeroCount => write!(
                        f,
                        "is zero; use a positive integer such as {}",
                        count_example(var)
                    ),
                }
            }
        }
    }
}

impl std::error::Error for Error {}

/// A sensible value of each count variable, for error texts.
fn count_example(var: &str) -> u32 {
    match var {
        STATS_CALLS_PER_SEC_VAR => 5,
        STATS_CONTAINERS_MAX_VAR => 256,
        _ => 4,
    }
}

/// Chooses the profile: `DOCKMON_BOARD` if set (an unknown name is an error listing the valid ones),
/// else `detection`; then `STATS_INTERVAL` (Go duration syntax), `STATS_CALLS_PER_SEC`,
/// `STATS_IN_FLIGHT` and `STATS_CONTAINERS_MAX` (positive integers) replace single values. An unset or
/// blank variable counts as absent (as in `config`). A value that does not parse, or is zero, is an
/// error naming the variable and the accepted form; a value past its ceiling in [`crate::limits`] is
/// clamped to it with one warning in [`Selected::warnings`]. Pure.
pub fn select(
    env: impl Fn(&str) -> Option<String>,
    detection: Detection,
) -> Result<Selected, Error> {
    let var = |name: &str| {
        env(name)
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty())
    };
    let (board, source) = match var(BOARD_VAR) {
        Some(value) => match Board::from_name(&value) {
            Some(board) => (board, Source::Env),
            None => {
                return Err(Error::UnknownBoard {
                    value: echo(&value),
                })
            }
        },
        None => (detection.board, Source::Detected),
    };
    let mut profile = board.profile().clone();
    let mut overrides = Vec::new();

    if let Some(value) = var(STATS_INTERVAL_VAR) {
        let invalid = |problem| Error::Invalid {
            var: STATS_INTERVAL_VAR,
            value: echo(&value),
            problem,
        };
        let interval = parse_duration(&value).map_err(|e| invalid(Problem::Duration(e)))?;
        if interval.is_zero() {
            return Err(invalid(Problem::ZeroDuration));
        }
        profile.stats_interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        overrides.push(Override {
            var: STATS_INTERVAL_VAR,
            value: echo(&value),
        });
    }
    if let Some(value) = var(STATS_CALLS_PER_SEC_VAR) {
        let count = parse_count(STATS_CALLS_PER_SEC_VAR, &value)?;
        profile.stats_calls_per_sec = u32::try_from(count).unwrap_or(u32::MAX);
        overrides.push(Override {
            var: STATS_CALLS_PER_SEC_VAR,
            value: echo(&value),
        });
    }
    if let Some(value) = var(STATS_IN_FLIGHT_VAR) {
        let count = parse_count(STATS_IN_FLIGHT_VAR, &value)?;
        profile.stats_in_flight = usize::try_from(count).unwrap_or(usize::MAX);
        overrides.push(Override {
            var: STATS_IN_FLIGHT_VAR,
            value: echo(&value),
        });
    }
    if let Some(value) = var(STATS_CONTAINERS_MAX_VAR) {
        let count = parse_count(STATS_CONTAINERS_MAX_VAR, &value)?;
        profile.containers_max = usize::try_from(count).unwrap_or(usize::MAX);
        overrides.push(Override {
            var: STATS_CONTAINERS_MAX_VAR,
            value: echo(&value),
        });
    }

    let warnings = clamp(&mut profile, &overrides);
    Ok(Selected {
        profile,
        board,
        source,
        detection,
        overrides,
        warnings,
    })
}

/// A positive decimal integer; one too large for `u64` counts as `u64::MAX` (the clamp catches it).
fn parse_count(var: &'static str, value: &str) -> Result<u64, Error> {
    let invalid = |problem| Error::Invalid {
        var,
        value: echo(value),
        problem,
    };
    let count = match value.parse::<u64>() {
        Ok(count) => count,
        Err(e) if *e.kind() == IntErrorKind::PosOverflow => u64::MAX,
        Err(_) => return Err(invalid(Problem::NotCount)),
    };
    if count == 0 {
        return Err(invalid(Problem::ZeroCount));
    }
    Ok(count)
}

/// Brings every value of `profile` inside the ceilings of [`crate::limits`], returning one warning per
/// value changed. A value set by an override is named by its variable, any other by its field.
fn clamp(profile: &mut Profile, overrides: &[Override]) -> Vec<String> {
    let mut warnings = Vec::new();
    let name = profile.name.clone();
    let label = |var: Option<&str>, field: &str, shown: String| match var
        .and_then(|var| overrides.iter().find(|o| o.var == var))
    {
        Some(o) => format!("{}={}", o.var, o.value),
        None => format!("profile {name}: {field} {shown}"),
    };

    if profile.stats_interval_ms < BOARD_STATS_INTERVAL_MIN_MS {
        let what = label(
            Some(STATS_INTERVAL_VAR),
            "stats_interval_ms",
            profile.stats_interval_ms.to_string(),
        );
        warnings.push(format!(
            "{what} is below the floor of {} (Docker collects stats once a second); using {}",
            fmt_ms(BOARD_STATS_INTERVAL_MIN_MS),
            fmt_ms(BOARD_STATS_INTERVAL_MIN_MS)
        ));
        profile.stats_interval_ms = BOARD_STATS_INTERVAL_MIN_MS;
    }
    let mut cap = |value: &mut u64, ceiling: u64, var: Option<&str>, field: &str, unit: &str| {
        if *value > ceiling {
            let what = label(var, field, value.to_string());
            warnings.push(format!(
                "{what} is above the ceiling of {ceiling}{unit}; using {ceiling}"
            ));
            *value = ceiling;
        } else if *value == 0 {
            let what = label(var, field, value.to_string());
            warnings.push(format!("{what} is zero; using 1"));
            *value = 1;
        }
    };
    // The casts widen (u32 and usize into u64) and narrow back only values at or under a ceiling that
    // came from the narrower type, so none can truncate.
    let mut calls = u64::from(profile.stats_calls_per_sec);
    cap(
        &mut calls,
        u64::from(BOARD_STATS_CALLS_PER_SEC_MAX),
        Some(STATS_CALLS_PER_SEC_VAR),
        "stats_calls_per_sec",
        " calls/s",
    );
    profile.stats_calls_per_sec = calls as u32;
    for (value, ceiling, var, field, unit) in [
        (
            &mut profile.stats_in_flight,
            BOARD_STATS_IN_FLIGHT_MAX_COUNT,
            Some(STATS_IN_FLIGHT_VAR),
            "stats_in_flight",
            " calls in flight",
        ),
        (
            &mut profile.containers_max,
            BOARD_CONTAINERS_MAX_COUNT,
            Some(STATS_CONTAINERS_MAX_VAR),
            "containers_max",
            " containers",
        ),
        (
            &mut profile.outbox_stats_max,
            BOARD_OUTBOX_STATS_MAX_COUNT,
            None,
            "outbox_stats_max",
            " frames",
        ),
        (
            &mut profile.outbox_events_max,
            BOARD_OUTBOX_EVENTS_MAX_COUNT,
            None,
            "outbox_events_max",
            " frames",
        ),
    ] {
        let mut wide = *value as u64;
        cap(&mut wide, ceiling as u64, var, field, unit);
        *value = wide as usize;
    }
    cap(
        &mut profile.rss_ceiling_kib,
        BOARD_RSS_CEILING_MAX_KIB,
        None,
        "rss_ceiling_kib",
        " KiB",
    );
    cap(
        &mut profile.heap_ceiling_kib,
        BOARD_HEAP_CEILING_MAX_KIB,
        None,
        "heap_ceiling_kib",
        " KiB",
    );
    warnings
}

/// `value`, cut to [`ECHO_MAX_CHARS`] characters with `…` when longer.
fn echo(value: &str) -> String {
    let mut shown: String = value.chars().take(ECHO_MAX_CHARS).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    shown
}

// ---- `dockmon-agent boards` -------------------------------------------------------------------------

/// The text of `dockmon-agent boards`: a table of `all` profiles (name, interval, calls/s, in flight,
/// containers, RSS ceiling) with the selected one marked `*`, then which profile is in effect and why
/// (`DOCKMON_BOARD` or the detection reason), the overrides with the values in effect, and the warnings.
pub fn describe(selected: &Selected, all: &[Profile]) -> String {
    let headers = [
        "board",
        "interval",
        "calls/s",
        "in flight",
        "containers",
        "rss ceiling",
    ];
    let rows: Vec<[String; 6]> = all.iter().map(row).collect();
    let mut widths = headers.map(str::len);
    for cells in &rows {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }

    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored for that reason.
    let line = |out: &mut String, mark: char, cells: &[&str]| {
        let _ = write!(out, "{mark} ");
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                let _ = write!(out, "{cell}");
            } else {
                let _ = write!(out, "{cell:<width$}  ");
            }
        }
        out.push('\n');
    };
    line(&mut out, ' ', &headers);
    for (profile, cells) in all.iter().zip(&rows) {
        let mark = if profile.name == selected.board.name() {
            '*'
        } else {
            ' '
        };
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        line(&mut out, mark, &cells);
    }
    out.push('\n');

    let board = selected.board;
    match selected.source {
        Source::Env => {
            let _ = writeln!(out, "selected: {board}, from {BOARD_VAR}={board}");
            let _ = writeln!(
                out,
                "detected: {} ({})",
                selected.detection.board, selected.detection.reason
            );
        }
        Source::Detected => {
            let _ = writeln!(
                out,
                "selected: {board}, detected from {}",
                selected.detection.reason
            );
        }
    }
    if !selected.overrides.is_empty() {
        let _ = write!(out, "overrides:");
        for o in &selected.overrides {
            let _ = write!(out, " {}={}", o.var, o.value);
        }
        out.push('\n');
        let [_, interval, calls, in_flight, containers, rss] = row(&selected.profile);
        let _ = writeln!(
            out,
            "in effect: interval {interval}, {calls} calls/s, {in_flight} in flight, {containers} \
             containers, rss ceiling {rss}"
        );
    }
    for warning in &selected.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    let _ = writeln!(
        out,
        "\n{BOARD_VAR}=<board> picks a profile; {STATS_INTERVAL_VAR}, {STATS_CALLS_PER_SEC_VAR}, \
         {STATS_IN_FLIGHT_VAR} and {STATS_CONTAINERS_MAX_VAR} change one value."
    );
    out
}

/// One table row of a profile.
fn row(profile: &Profile) -> [String; 6] {
    [
        profile.name.clone(),
        fmt_ms(profile.stats_interval_ms),
        profile.stats_calls_per_sec.to_string(),
        profile.stats_in_flight.to_string(),
        profile.containers_max.to_string(),
        fmt_kib(profile.rss_ceiling_kib),
    ]
}

/// Milliseconds in Go duration style: `10s`, `1.5s`, `1m30s`, `2h`.
fn fmt_ms(ms: u64) -> String {
    let (secs, rest_ms) = (ms / 1000, ms % 1000);
    if rest_ms != 0 {
        let fraction = format!("{rest_ms:03}");
        return format!("{secs}.{}s", fraction.trim_end_matches('0'));
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if s > 0 || out.is_empty() {
        out += &format!("{s}s");
    }
    out
}

/// KiB as `6 MiB`, `6.5 MiB` or, when not a tenth of a MiB, `6100 KiB`.
fn fmt_kib(kib: u64) -> String {
    let (whole, rest) = (kib / 1024, kib % 1024);
    if rest == 0 {
        format!("{whole} MiB")
    } else if rest * 10 % 1024 == 0 {
        format!("{whole}.{} MiB", rest * 10 / 1024)
    } else {
        format!("{kib} KiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/boards")
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn detected(board: Board) -> Detection {
        Detection {
            board,
            reason: "test".to_string(),
        }
    }

    fn select_with(pairs: &[(&str, &str)], board: Board) -> Result<Selected, Error> {
        select(env_of(pairs), detected(board))
    }

    // ---- Profiles ----------------------------------------------------------------------------------

    #[test]
    fn every_profile_parses_under_its_own_name() {
        for (i, &(board, _, json)) in TABLE.iter().enumerate() {
            assert_eq!(board, Board::ALL[i], "TABLE is in Board order");
            assert_eq!(board as usize, i);
            let profile = parse_profile(board, json).unwrap_or_else(|e| panic!("{board}: {e}"));
            assert_eq!(profile.name, board.name());
            assert_eq!(Board::from_name(&profile.name), Some(board));
            assert_eq!(board.profile(), &profile);
            assert!(!profile.description.is_empty(), "{board}: description");
        }
        assert_eq!(profiles().len(), Board::ALL.len());
    }

    #[test]
    fn profile_names_are_unique_and_match_the_files_in_boards() {
        let mut names: Vec<&str> = Board::ALL.iter().map(|b| b.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Board::ALL.len(), "duplicate names");

        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("boards");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("boards/ exists")
            .map(|entry| entry.expect("readable entry").file_name())
            .filter_map(|name| name.to_str()?.strip_suffix(".json").map(str::to_string))
            .collect();
        files.sort_unstable();
        assert_eq!(
            files, names,
            "every boards/*.json is compiled in, and only those"
        );
    }

    #[test]
    fn a_profile_with_the_wrong_name_or_an_unknown_field_is_refused() {
        let json = TABLE[0].2;
        let renamed = json.replace("\"rpi-zero-2w\"", "\"rpi0\"");
        assert_eq!(
            parse_profile(Board::RpiZero2w, &renamed).unwrap_err(),
            "name \"rpi0\" does not match the file name \"rpi-zero-2w\""
        );
        let extra = json.replacen('{', "{\"stats_interval\": 5,", 1);
        assert!(parse_profile(Board::RpiZero2w, &extra)
            .unwrap_err()
            .contains("unknown field `stats_interval`"));
        let missing = json.replace("\"heap_ceiling_kib\": 2048", "\"x\": 1");
        assert!(parse_profile(Board::RpiZero2w, &missing).is_err());
    }

    #[test]
    fn every_profile_is_within_the_ceilings() {
        for p in profiles() {
            let n = &p.name;
            assert!(
                p.stats_interval_ms >= BOARD_STATS_INTERVAL_MIN_MS,
                "{n} interval"
            );
            assert!(
                (1..=BOARD_STATS_CALLS_PER_SEC_MAX).contains(&p.stats_calls_per_sec),
                "{n} calls/s"
            );
            assert!(
                (1..=BOARD_STATS_IN_FLIGHT_MAX_COUNT).contains(&p.stats_in_flight),
                "{n}"
            );
            assert!(
                (1..=BOARD_CONTAINERS_MAX_COUNT).contains(&p.containers_max),
                "{n}"
            );
            assert!(
                (1..=BOARD_OUTBOX_STATS_MAX_COUNT).contains(&p.outbox_stats_max),
                "{n}"
            );
            assert!(
                (1..=BOARD_OUTBOX_EVENTS_MAX_COUNT).contains(&p.outbox_events_max),
                "{n}"
            );
            assert!(
                (1..=BOARD_RSS_CEILING_MAX_KIB).contains(&p.rss_ceiling_kib),
                "{n}"
            );
            assert!(
                (1..=BOARD_HEAP_CEILING_MAX_KIB).contains(&p.heap_ceiling_kib),
                "{n}"
            );
            // Clamping a compiled-in profile changes nothing.
            let mut clamped = p.clone();
            assert!(clamp(&mut clamped, &[]).is_empty(), "{n}");
            assert_eq!(&clamped, p);
        }
    }

    /// The sizing rules of `boards/README.md` that hold for every profile.
    #[test]
    fn every_profile_follows_the_sizing_rules() {
        for p in profiles() {
            let n = &p.name;
            assert!(
                p.heap_ceiling_kib < p.rss_ceiling_kib,
                "{n}: heap under rss"
            );
            // One full round of samples fits in the outbox.
            assert!(p.outbox_stats_max >= p.containers_max, "{n}: outbox round");
            // No more calls in flight than are started in a second.
            assert!(
                p.stats_in_flight as u64 <= u64::from(p.stats_calls_per_sec),
                "{n}"
            );
            // The heap formula: 1 MiB base, 2 KiB per container, 40 KiB per call in flight, 0.5 KiB
            // per queued stats frame, 2 KiB per queued event, plus a quarter.
            let estimate = 1024
                + 2 * p.containers_max as u64
                + 40 * p.stats_in_flight as u64
                + p.outbox_stats_max as u64 / 2
                + 2 * p.outbox_events_max as u64;
            assert!(
                p.heap_ceiling_kib * 4 >= estimate * 5,
                "{n}: heap {estimate} KiB + 25 %"
            );
            assert!(
                p.rss_ceiling_kib >= p.heap_ceiling_kib + 4096,
                "{n}: 4 MiB beside the heap"
            );
        }
    }

    /// A larger board never gets a smaller budget than a smaller one.
    #[test]
    fn budgets_grow_with_the_board() {
        for pair in profiles().windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert!(
                a.stats_interval_ms >= b.stats_interval_ms,
                "{} → {}",
                a.name,
                b.name
            );
            assert!(
                a.stats_calls_per_sec <= b.stats_calls_per_sec,
                "{} → {}",
                a.name,
                b.name
            );
            assert!(
                a.stats_in_flight <= b.stats_in_flight,
                "{} → {}",
                a.name,
                b.name
            );
            assert!(
                a.containers_max <= b.containers_max,
                "{} → {}",
                a.name,
                b.name
            );
        }
    }

    #[test]
    fn the_two_anchor_profiles_have_the_agreed_budgets() {
        let zero = Board::RpiZero2w.profile();
        assert_eq!(
            (
                zero.stats_interval_ms,
                zero.stats_calls_per_sec,
                zero.stats_in_flight
            ),
            (10_000, 2, 2)
        );
        assert_eq!(zero.containers_max, 64);
        let amd64 = Board::Amd64.profile();
        assert_eq!(
            (
                amd64.stats_interval_ms,
                amd64.stats_calls_per_sec,
                amd64.stats_in_flight
            ),
            (5_000, 20, 8)
        );
        assert_eq!(amd64.containers_max, 512);
    }

    #[test]
    fn board_names_parse_back() {
        for board in Board::ALL {
            assert_eq!(Board::from_name(board.name()), Some(board));
            assert_eq!(board.to_string(), board.name());
        }
        assert_eq!(Board::from_name(" RPI4 \n"), Some(Board::Rpi4));
        assert_eq!(Board::from_name("rpi"), None);
        assert_eq!(Board::from_name(""), None);
    }

    // ---- Detection over recorded and written fixture trees ------------------------------------------

    /// Each fixture tree under `tests/fixtures/boards/` (its README says where each came from) with the
    /// architecture its machine reports, the board expected and the start of the reason.
    #[test]
    fn fixture_trees_detect_their_board() {
        let table: [(&str, &str, Board, &str); 11] = [
            (
                "rpi-zero-2w",
                "aarch64",
                Board::RpiZero2w,
                "device tree model \"Raspberry Pi Zero 2 W Rev 1.0\"",
            ),
            (
                "rpi3",
                "arm",
                Board::Rpi3,
                "device tree model \"Raspberry Pi 3 Model B Rev 1.2\"",
            ),
            (
                "rpi4",
                "aarch64",
                Board::Rpi4,
                "device tree model \"Raspberry Pi 4 Model B Rev 1.4\"",
            ),
            (
                "rpi5",
                "aarch64",
                Board::Rpi5,
                "device tree model \"Raspberry Pi 5 Model B Rev 1.0\"",
            ),
            (
                "rpi-cm4-container",
                "aarch64",
                Board::Rpi4,
                "/proc/cpuinfo Model \"Raspberry Pi Compute Module 4 Rev 1.0\"",
            ),
            (
                "graviton2",
                "aarch64",
                Board::Graviton2,
                "DMI \"Amazon EC2\" instance type \"m6g.large\": Graviton2",
            ),
            (
                "graviton3",
                "aarch64",
                Board::Graviton3,
                "DMI \"Amazon EC2\" instance type \"c7g.xlarge\": Graviton3",
            ),
            (
                "graviton4",
                "aarch64",
                Board::Graviton3,
                "DMI \"Amazon EC2\" instance type \"r8g.large\": Graviton4; graviton3 is the nearest",
            ),
            (
                "rk3588",
                "aarch64",
                Board::Rpi5,
                "/proc/cpuinfo CPU part 0xd0b (Cortex-A76)",
            ),
            ("amd64", "x86_64", Board::Amd64, "architecture x86_64"),
            // A root with none of the files: the architecture alone.
            (
                "no-such-tree",
                "aarch64",
                Board::Rpi3,
                "architecture aarch64 with no known board or core: rpi3",
            ),
        ];
        for (tree, arch, board, reason) in table {
            let (model, product, vendor, cpuinfo) = read_system(&fixtures().join(tree));
            let detection = detect(
                model.as_deref(),
                product.as_deref(),
                vendor.as_deref(),
                &cpuinfo,
                arch,
            );
            assert_eq!(detection.board, board, "{tree}: {}", detection.reason);
            assert!(
                detection.reason.starts_with(reason),
                "{tree}: {:?} does not start with {reason:?}",
                detection.reason
            );
        }
    }

    /// The DMI-less view of the Graviton trees (a container without `/sys/class/dmi`, or an Ampere
    /// server) still lands on the right profile through the CPU part.
    #[test]
    fn graviton_fixtures_without_dmi_detect_by_cpu_part() {
        for (tree, board, part) in [
            ("graviton2", Board::Graviton2, "0xd0c (Neoverse N1)"),
            ("graviton3", Board::Graviton3, "0xd40 (Neoverse V1)"),
            ("graviton4", Board::Graviton3, "0xd4f (Neoverse V2)"),
        ] {
            let (_, _, _, cpuinfo) = read_system(&fixtures().join(tree));
            let d = detect(None, None, None, &cpuinfo, "aarch64");
            assert_eq!(d.board, board, "{tree}");
            assert_eq!(d.reason, format!("/proc/cpuinfo CPU part {part}"));
        }
    }

    #[test]
    fn read_system_returns_the_files_as_recorded() {
        let (model, product, vendor, cpuinfo) = read_system(&fixtures().join("rpi5"));
        assert_eq!(model.as_deref(), Some("Raspberry Pi 5 Model B Rev 1.0\0"));
        assert_eq!((product, vendor), (None, None));
        assert!(cpuinfo.ends_with("Model\t\t: Raspberry Pi 5 Model B Rev 1.0\n"));

        let (model, product, vendor, cpuinfo) = read_system(&fixtures().join("graviton3"));
        assert_eq!(model, None);
        assert_eq!(product.as_deref(), Some("c7g.xlarge\n"));
        assert_eq!(vendor.as_deref(), Some("Amazon EC2\n"));
        assert_eq!(cpuinfo.matches("CPU part\t: 0xd40").count(), 4);

        // The recorded amd64 VM (Firecracker) has no device tree and no DMI at all.
        let (model, product, vendor, cpuinfo) = read_system(&fixtures().join("amd64"));
        assert_eq!((model, product, vendor), (None, None, None));
        assert!(cpuinfo.starts_with("processor\t: 0\nvendor_id\t: AuthenticAMD\n"));

        let (model, product, vendor, cpuinfo) = read_system(&fixtures().join("no-such-tree"));
        assert_eq!(
            (model, product, vendor, cpuinfo.as_str()),
            (None, None, None, "")
        );
    }

    #[test]
    fn read_system_cuts_a_long_cpuinfo_at_its_last_whole_line() {
        let root = std::env::temp_dir().join(format!("dockmon-board-{}", std::process::id()));
        std::fs::create_dir_all(root.join("proc")).expect("temp dir");
        // 1000 lines of 100 bytes: well past the cap, which falls inside a line.
        let line = format!(
            "{:<99}\n",
            "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep"
        );
        std::fs::write(root.join("proc/cpuinfo"), line.repeat(1000)).expect("write");
        let (_, _, _, cpuinfo) = read_system(&root);
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(cpuinfo.len(), CPUINFO_READ_MAX_BYTES / 100 * 100);
        assert!(cpuinfo.ends_with('\n'));
    }

    /// Every prefix of every fixture's cpuinfo, with and without the other files, gives a board and
    /// never panics (reads are capped, and the kernel may change the files between reads).
    #[test]
    fn every_truncation_of_a_fixture_detects_without_panicking() {
        for entry in std::fs::read_dir(fixtures()).expect("fixtures") {
            let tree = entry.expect("entry").path();
            if !tree.is_dir() {
                continue;
            }
            let (model, product, vendor, cpuinfo) = read_system(&tree);
            for end in (0..=cpuinfo.len()).filter(|&i| cpuinfo.is_char_boundary(i)) {
                let cut = &cpuinfo[..end];
                let full = detect(
                    model.as_deref(),
                    product.as_deref(),
                    vendor.as_deref(),
                    cut,
                    "aarch64",
                );
                assert!(!full.reason.is_empty());
                assert!(!detect(None, None, None, cut, "arm").reason.is_empty());
            }
        }
    }

    // ---- Detection from text -----------------------------------------------------------------------

    #[test]
    fn raspberry_pi_models_map_to_their_profiles() {
        let table: [(&str, Board); 21] = [
            ("Raspberry Pi Zero 2 W Rev 1.0\0", Board::RpiZero2w),
            ("Raspberry Pi Zero W Rev 1.1\0", Board::RpiZero2w),
            ("Raspberry Pi Zero Rev 1.3\0", Board::RpiZero2w),
            ("Raspberry Pi Model B Rev 2\0", Board::RpiZero2w),
            ("Raspberry Pi Model B Plus Rev 1.2\0", Board::RpiZero2w),
            ("Raspberry Pi Compute Module Rev 1.0\0", Board::RpiZero2w),
            ("Raspberry Pi 2 Model B Rev 1.1\0", Board::Rpi3),
            ("Raspberry Pi 3 Model B Rev 1.2\0", Board::Rpi3),
            ("Raspberry Pi 3 Model B Plus Rev 1.3\0", Board::Rpi3),
            ("Raspberry Pi 3 Model A Plus Rev 1.0\0", Board::RpiZero2w),
            ("Raspberry Pi Compute Module 3 Rev 1.0\0", Board::Rpi3),
            ("Raspberry Pi Compute Module 3 Plus Rev 1.0\0", Board::Rpi3),
            ("Raspberry Pi 4 Model B Rev 1.4\0", Board::Rpi4),
            ("Raspberry Pi 4 Model B Rev 1.5\n", Board::Rpi4),
            ("Raspberry Pi 400 Rev 1.0\0", Board::Rpi4),
            ("Raspberry Pi Compute Module 4 Rev 1.0\0", Board::Rpi4),
            ("Raspberry Pi Compute Module 4S Rev 1.0\0", Board::Rpi4),
            ("Raspberry Pi 5 Model B Rev 1.0\0", Board::Rpi5),
            ("Raspberry Pi 500 Rev 1.0\0", Board::Rpi5),
            ("Raspberry Pi Compute Module 5 Rev 1.0\0", Board::Rpi5),
            ("Raspberry Pi Compute Module 5 Lite Rev 1.0\0", Board::Rpi5),
        ];
        for (model, board) in table {
            // From the device tree, with an x86_64 arch to show that the model decides first.
            let d = detect(Some(model), None, None, "", "x86_64");
            assert_eq!(d.board, board, "{model:?}: {}", d.reason);
            // The same string as the cpuinfo Model line (no device tree, e.g. in a container).
            let name = model.trim_end_matches(['\0', '\n']);
            let cpuinfo = format!("Revision\t: c03114\nModel\t\t: {name}\n");
            let d = detect(None, None, None, &cpuinfo, "aarch64");
            assert_eq!(d.board, board, "cpuinfo {name:?}: {}", d.reason);
            assert!(
                d.reason.starts_with("/proc/cpuinfo Model \""),
                "{}",
                d.reason
            );
        }
    }

    #[test]
    fn mappings_that_are_not_by_name_say_why() {
        let d = detect(
            Some("Raspberry Pi 3 Model A Plus Rev 1.0\0"),
            None,
            None,
            "",
            "aarch64",
        );
        assert_eq!(
            d.reason,
            "device tree model \"Raspberry Pi 3 Model A Plus Rev 1.0\"; the 3 A+ has 512 MB, like \
             the Zero 2 W"
        );
        let d = detect(Some("Raspberry Pi Zero W Rev 1.1\0"), None, None, "", "arm");
        assert_eq!(
            d.reason,
            "device tree model \"Raspberry Pi Zero W Rev 1.1\"; a 512 MB ARMv6 Pi gets the smallest \
             profile"
        );
    }

    #[test]
    fn an_unknown_raspberry_pi_falls_back_to_its_cores_and_says_so() {
        let cpuinfo = "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n";
        let model = Some("Raspberry Pi 6 Model B Rev 1.0\0");
        let d = detect(model, None, None, cpuinfo, "aarch64");
        assert_eq!(d.board, Board::Rpi5);
        assert_eq!(
            d.reason,
            "/proc/cpuinfo CPU part 0xd0b (Cortex-A76) (device tree model \"Raspberry Pi 6 Model B \
             Rev 1.0\" is not a Raspberry Pi we know)"
        );
        let d = detect(model, None, None, "", "aarch64");
        assert_eq!(d.board, Board::Rpi3);
        assert!(
            d.reason.contains("is not a Raspberry Pi we know): rpi3"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn a_device_tree_that_is_not_a_pi_is_ignored() {
        let d = detect(
            Some("Hardkernel ODROID-N2Plus\0"),
            None,
            None,
            "",
            "aarch64",
        );
        assert_eq!(d.board, Board::Rpi3);
        let d = detect(Some("\0"), None, None, "", "x86_64");
        assert_eq!(
            (d.board, d.reason.as_str()),
            (Board::Amd64, "architecture x86_64")
        );
    }

    #[test]
    fn ec2_instance_types_map_to_graviton_profiles() {
        let table: [(&str, Option<(Board, u32)>); 18] = [
            ("m6g.large", Some((Board::Graviton2, 2))),
            ("m6gd.metal", Some((Board::Graviton2, 2))),
            ("c6gn.16xlarge", Some((Board::Graviton2, 2))),
            ("t4g.nano", Some((Board::Graviton2, 2))),
            ("x2gd.xlarge", Some((Board::Graviton2, 2))),
            ("im4gn.large", Some((Board::Graviton2, 2))),
            ("is4gen.medium", Some((Board::Graviton2, 2))),
            ("g5g.xlarge", Some((Board::Graviton2, 2))),
            ("a1.medium", Some((Board::Graviton2, 1))),
            ("c7g.xlarge", Some((Board::Graviton3, 3))),
            ("hpc7g.16xlarge", Some((Board::Graviton3, 3))),
            ("c7gn.large", Some((Board::Graviton3, 3))),
            ("r8g.large", Some((Board::Graviton3, 4))),
            ("m9g.large", Some((Board::Graviton3, 5))),
            ("m6i.large", None),
            ("c5.large", None),
            ("g4dn.xlarge", None),
            ("mac2-m2pro.metal", None),
        ];
        for (instance_type, expected) in table {
            let d = detect(
                None,
                Some(instance_type),
                Some("Amazon EC2\n"),
                "",
                "x86_64",
            );
            match expected {
                Some((board, generation)) => {
                    assert_eq!(d.board, board, "{instance_type}: {}", d.reason);
                    let graviton = format!("Graviton{generation}");
                    assert!(
                        d.reason.contains(&graviton),
                        "{instance_type}: {}",
                        d.reason
                    );
                }
                None => assert_eq!(d.board, Board::Amd64, "{instance_type}: {}", d.reason),
            }
        }
    }

    #[test]
    fn a_graviton_instance_type_needs_the_ec2_vendor() {
        let cpuinfo = "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n";
        let d = detect(None, Some("c7g.large"), Some("QEMU"), cpuinfo, "aarch64");
        assert_eq!(d.board, Board::Rpi4, "{}", d.reason);
        let d = detect(None, Some("c7g.large"), None, "", "aarch64");
        assert_eq!(d.board, Board::Rpi3, "{}", d.reason);
    }

    #[test]
    fn dmi_wins_over_the_cpu_part_on_graviton1() {
        // a1 instances have Cortex-A72 cores, the Pi 4's (0xd08): DMI must decide first.
        let cpuinfo = "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n";
        let d = detect(
            None,
            Some("a1.large\n"),
            Some("Amazon EC2\n"),
            cpuinfo,
            "aarch64",
        );
        assert_eq!(d.board, Board::Graviton2);
        assert_eq!(
            d.reason,
            "DMI \"Amazon EC2\" instance type \"a1.large\": Graviton1; graviton2 is the nearest \
             profile (Cortex-A72 server cores)"
        );
    }

    #[test]
    fn a_pi_on_uefi_firmware_is_found_by_its_dmi_product_name() {
        let d = detect(
            None,
            Some("Raspberry Pi 5 Model B Rev 1.0\n"),
            Some("Raspberry Pi Ltd\n"),
            "",
            "aarch64",
        );
        assert_eq!(d.board, Board::Rpi5);
        assert_eq!(
            d.reason,
            "DMI product name \"Raspberry Pi 5 Model B Rev 1.0\""
        );
    }

    #[test]
    fn cpu_parts_map_to_profiles() {
        let block = |implementer: &str, part: &str| {
            format!(
                "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: {implementer}\nCPU \
                 architecture: 8\nCPU variant\t: 0x0\nCPU part\t: {part}\nCPU revision\t: 0\n\n"
            )
        };
        let table: [(&str, Board, &str); 10] = [
            ("0xd03", Board::RpiZero2w, "Cortex-A53"),
            ("0xd05", Board::RpiZero2w, "Cortex-A55"),
            ("0xd07", Board::Rpi3, "Cortex-A57"),
            ("0xd08", Board::Rpi4, "Cortex-A72"),
            ("0xd0b", Board::Rpi5, "Cortex-A76"),
            ("0xd0c", Board::Graviton2, "Neoverse N1"),
            ("0xd49", Board::Graviton2, "Neoverse N2"),
            ("0xd40", Board::Graviton3, "Neoverse V1"),
            ("0xd4f", Board::Graviton3, "Neoverse V2"),
            ("0xD84", Board::Graviton3, "Neoverse V3"),
        ];
        for (part, board, core) in table {
            let d = detect(None, None, None, &block("0x41", part), "aarch64");
            assert_eq!(d.board, board, "{part}: {}", d.reason);
            let expected = format!("/proc/cpuinfo CPU part {} ({core})", part.to_lowercase());
            assert_eq!(d.reason, expected);
        }
        // Part numbers belong to their implementer: Apple's (0x61) 0xd0c is no Neoverse N1, and a
        // part before any implementer line counts for nothing.
        let d = detect(None, None, None, &block("0x61", "0xd0c"), "aarch64");
        assert_eq!(d.board, Board::Rpi3, "{}", d.reason);
        let d = detect(None, None, None, "CPU part\t: 0xd0c\n", "aarch64");
        assert_eq!(d.board, Board::Rpi3, "{}", d.reason);
        // An unknown Arm part falls through to the architecture.
        let d = detect(None, None, None, &block("0x41", "0xfff"), "arm");
        assert_eq!(d.board, Board::RpiZero2w, "{}", d.reason);
    }

    #[test]
    fn big_little_boards_count_as_their_big_cores() {
        let cpuinfo = "processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd03\n\n\
                       processor\t: 4\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n\n\
                       processor\t: 5\nCPU implementer\t: 0x41\nCPU part\t: 0xd03\n";
        let d = detect(None, None, None, cpuinfo, "aarch64");
        assert_eq!(d.board, Board::Rpi4);
        assert_eq!(d.reason, "/proc/cpuinfo CPU part 0xd08 (Cortex-A72)");
    }

    #[test]
    fn the_architecture_decides_last() {
        let table: [(&str, Board, &str); 4] = [
            ("x86_64", Board::Amd64, "architecture x86_64"),
            (
                "aarch64",
                Board::Rpi3,
                "architecture aarch64 with no known board or core: rpi3, the conservative default \
                 (a 1 GB Cortex-A53 budget)",
            ),
            (
                "arm",
                Board::RpiZero2w,
                "architecture arm (32-bit) with no known board or core: rpi-zero-2w, the smallest \
                 budget",
            ),
            (
                "riscv64",
                Board::Rpi3,
                "architecture riscv64 has no profile: rpi3, the conservative default",
            ),
        ];
        for (arch, board, reason) in table {
            let d = detect(None, None, None, "", arch);
            assert_eq!((d.board, d.reason.as_str()), (board, reason));
        }
    }

    #[test]
    fn odd_text_gives_a_clean_answer() {
        let odd = [
            "",
            ":",
            ":::\n::",
            "CPU part : 0x\nCPU implementer : 0x41\nCPU part : 0x\n",
            "CPU implementer : 0x41\nCPU part : zz\n",
            "CPU implementer : 0x41\nCPU part : 0xd0c0c0c0c\n",
            "Model :\nModel : \u{fffd}\u{0}\n",
            "Model\t\t: Raspberry Pi ",
        ];
        for text in odd {
            for arch in ["x86_64", "aarch64", ""] {
                let d = detect(Some(text), Some(text), Some(text), text, arch);
                assert!(!d.reason.is_empty(), "{text:?}");
            }
        }
    }

    // ---- Selection ---------------------------------------------------------------------------------

    #[test]
    fn without_variables_the_detection_decides() {
        let detection = Detection {
            board: Board::Rpi4,
            reason: "device tree model \"Raspberry Pi 4 Model B Rev 1.4\"".to_string(),
        };
        let selected = select(env_of(&[]), detection.clone()).expect("selects");
        assert_eq!(selected.board, Board::Rpi4);
        assert_eq!(selected.source, Source::Detected);
        assert_eq!(&selected.profile, Board::Rpi4.profile());
        assert_eq!(selected.detection, detection);
        assert!(selected.overrides.is_empty() && selected.warnings.is_empty());
    }

    #[test]
    fn dockmon_board_wins_over_the_detection() {
        let selected = select_with(&[("DOCKMON_BOARD", " Graviton3 ")], Board::Rpi4).expect("ok");
        assert_eq!(selected.board, Board::Graviton3);
        assert_eq!(selected.source, Source::Env);
        assert_eq!(&selected.profile, Board::Graviton3.profile());
        assert_eq!(selected.detection.board, Board::Rpi4, "kept for `boards`");

        // Blank counts as unset (as everywhere in config).
        let selected = select_with(&[("DOCKMON_BOARD", "  ")], Board::Rpi4).expect("ok");
        assert_eq!(
            (selected.board, selected.source),
            (Board::Rpi4, Source::Detected)
        );
    }

    #[test]
    fn an_unknown_board_name_lists_the_valid_ones() {
        let error = select_with(&[("DOCKMON_BOARD", "rpi6")], Board::Rpi4).unwrap_err();
        assert_eq!(
            error.to_string(),
            "DOCKMON_BOARD: \"rpi6\" is not a board profile; use one of rpi-zero-2w, rpi3, rpi4, \
             rpi5, graviton2, graviton3, amd64 (`dockmon-agent boards` shows them)"
        );
        let long = "x".repeat(100);
        let error = select_with(&[("DOCKMON_BOARD", &long)], Board::Rpi4).unwrap_err();
        assert_eq!(
            error,
            Error::UnknownBoard {
                value: format!("{}…", "x".repeat(64))
            }
        );
    }

    #[test]
    fn each_variable_overrides_one_value() {
        let selected = select_with(
            &[
                ("STATS_INTERVAL", "30s"),
                ("STATS_CALLS_PER_SEC", "4"),
                ("STATS_IN_FLIGHT", " 3 "),
                ("STATS_CONTAINERS_MAX", "100"),
            ],
            Board::Rpi5,
        )
        .expect("ok");
        let expected = Profile {
            stats_interval_ms: 30_000,
            stats_calls_per_sec: 4,
            stats_in_flight: 3,
            containers_max: 100,
            ..Board::Rpi5.profile().clone()
        };
        assert_eq!(selected.profile, expected);
        assert_eq!(selected.board, Board::Rpi5);
        let vars: Vec<(&str, &str)> = selected
            .overrides
            .iter()
            .map(|o| (o.var, o.value.as_str()))
            .collect();
        assert_eq!(
            vars,
            [
                ("STATS_INTERVAL", "30s"),
                ("STATS_CALLS_PER_SEC", "4"),
                ("STATS_IN_FLIGHT", "3"),
                ("STATS_CONTAINERS_MAX", "100"),
            ]
        );
        assert!(selected.warnings.is_empty());

        // Go duration syntax, fractions and compound units included.
        for (text, ms) in [("1m30s", 90_000), ("2.5s", 2_500), ("1h", 3_600_000)] {
            let selected = select_with(&[("STATS_INTERVAL", text)], Board::Amd64).expect(text);
            assert_eq!(selected.profile.stats_interval_ms, ms, "{text}");
        }
    }

    #[test]
    fn overrides_apply_on_top_of_dockmon_board() {
        let selected = select_with(
            &[
                ("DOCKMON_BOARD", "rpi-zero-2w"),
                ("STATS_CONTAINERS_MAX", "32"),
            ],
            Board::Amd64,
        )
        .expect("ok");
        assert_eq!(selected.board, Board::RpiZero2w);
        assert_eq!(selected.profile.containers_max, 32);
        assert_eq!(selected.profile.stats_interval_ms, 10_000);
    }

    #[test]
    fn bad_values_name_the_variable_and_the_accepted_form() {
        let table: [(&str, &str, &str); 10] = [
            (
                "STATS_INTERVAL",
                "10",
                "STATS_INTERVAL: \"10\" is not a duration; use Go duration syntax such as 30s, 1m, \
                 1h30m",
            ),
            (
                "STATS_INTERVAL",
                "-5s",
                "STATS_INTERVAL: \"-5s\" is negative; use a positive Go duration such as 30s, 1m, \
                 1h30m",
            ),
            (
                "STATS_INTERVAL",
                "0s",
                "STATS_INTERVAL: \"0s\" is zero; use a Go duration of at least 1s such as 10s",
            ),
            (
                "STATS_INTERVAL",
                "0",
                "STATS_INTERVAL: \"0\" is zero; use a Go duration of at least 1s such as 10s",
            ),
            (
                "STATS_CALLS_PER_SEC",
                "2.5",
                "STATS_CALLS_PER_SEC: \"2.5\" is not a whole number; use a positive integer such \
                 as 5",
            ),
            (
                "STATS_CALLS_PER_SEC",
                "0",
                "STATS_CALLS_PER_SEC: \"0\" is zero; use a positive integer such as 5",
            ),
            (
                "STATS_IN_FLIGHT",
                "four",
                "STATS_IN_FLIGHT: \"four\" is not a whole number; use a positive integer such as 4",
            ),
            (
                "STATS_IN_FLIGHT",
                "-1",
                "STATS_IN_FLIGHT: \"-1\" is not a whole number; use a positive integer such as 4",
            ),
            (
                "STATS_CONTAINERS_MAX",
                "0",
                "STATS_CONTAINERS_MAX: \"0\" is zero; use a positive integer such as 256",
            ),
            (
                "STATS_CONTAINERS_MAX",
                "1e3",
                "STATS_CONTAINERS_MAX: \"1e3\" is not a whole number; use a positive integer such \
                 as 256",
            ),
        ];
        for (var, value, text) in table {
            let error = select_with(&[(var, value)], Board::Rpi4).unwrap_err();
            assert_eq!(error.to_string(), text);
        }
    }

    #[test]
    fn values_past_a_ceiling_are_clamped_with_one_warning_each() {
        let selected = select_with(
            &[
                ("STATS_INTERVAL", "250ms"),
                ("STATS_CALLS_PER_SEC", "500"),
                ("STATS_IN_FLIGHT", "64"),
                ("STATS_CONTAINERS_MAX", "99999999999999999999999"),
            ],
            Board::Amd64,
        )
        .expect("clamping is not an error");
        assert_eq!(
            selected.profile.stats_interval_ms,
            BOARD_STATS_INTERVAL_MIN_MS
        );
        assert_eq!(
            selected.profile.stats_calls_per_sec,
            BOARD_STATS_CALLS_PER_SEC_MAX
        );
        assert_eq!(
            selected.profile.stats_in_flight,
            BOARD_STATS_IN_FLIGHT_MAX_COUNT
        );
        assert_eq!(selected.profile.containers_max, BOARD_CONTAINERS_MAX_COUNT);
        assert_eq!(
            selected.warnings,
            [
                "STATS_INTERVAL=250ms is below the floor of 1s (Docker collects stats once a \
                 second); using 1s",
                "STATS_CALLS_PER_SEC=500 is above the ceiling of 50 calls/s; using 50",
                "STATS_IN_FLIGHT=64 is above the ceiling of 16 calls in flight; using 16",
                "STATS_CONTAINERS_MAX=99999999999999999999999 is above the ceiling of 1024 \
                 containers; using 1024",
            ]
        );
    }

    #[test]
    fn a_profile_value_past_a_ceiling_is_named_by_its_field() {
        let mut profile = Profile {
            outbox_events_max: BOARD_OUTBOX_EVENTS_MAX_COUNT + 1,
            heap_ceiling_kib: 0,
            ..Board::Rpi4.profile().clone()
        };
        let warnings = clamp(&mut profile, &[]);
        assert_eq!(
            warnings,
            [
                "profile rpi4: outbox_events_max 1025 is above the ceiling of 1024 frames; using \
                 1024",
                "profile rpi4: heap_ceiling_kib 0 is zero; using 1",
            ]
        );
        assert_eq!(profile.outbox_events_max, BOARD_OUTBOX_EVENTS_MAX_COUNT);
        assert_eq!(profile.heap_ceiling_kib, 1);
    }

    // ---- `dockmon-agent boards` --------------------------------------------------------------------

    #[test]
    fn describe_shows_the_table_the_choice_and_its_reason() {
        let detection = Detection {
            board: Board::Rpi4,
            reason: "device tree model \"Raspberry Pi 4 Model B Rev 1.4\"".to_string(),
        };
        let selected = select(env_of(&[]), detection).expect("ok");
        let expected = "  board        interval  calls/s  in flight  containers  rss ceiling
  rpi-zero-2w  10s       2        2          64          6 MiB
  rpi3         10s       3        3          128         6.5 MiB
* rpi4         5s        6        6          256         7 MiB
  rpi5         5s        10       8          384         10 MiB
  graviton2    5s        16       8          512         8 MiB
  graviton3    5s        20       8          512         8 MiB
  amd64        5s        20       8          512         8 MiB

selected: rpi4, detected from device tree model \"Raspberry Pi 4 Model B Rev 1.4\"

DOCKMON_BOARD=<board> picks a profile; STATS_INTERVAL, STATS_CALLS_PER_SEC, STATS_IN_FLIGHT and \
STATS_CONTAINERS_MAX change one value.
";
        assert_eq!(describe(&selected, profiles()), expected);
    }

    #[test]
    fn describe_shows_dockmon_board_overrides_and_warnings() {
        let detection = Detection {
            board: Board::Amd64,
            reason: "architecture x86_64".to_string(),
        };
        let env = env_of(&[
            ("DOCKMON_BOARD", "rpi-zero-2w"),
            ("STATS_INTERVAL", "1m30s"),
            ("STATS_IN_FLIGHT", "40"),
        ]);
        let selected = select(env, detection).expect("ok");
        let text = describe(&selected, profiles());
        assert!(text.contains("\n* rpi-zero-2w  10s "), "{text}");
        assert!(text.contains("\n  amd64 "), "{text}");
        let tail = text.split("\n\n").nth(1).expect("a second paragraph");
        assert_eq!(
            tail,
            "selected: rpi-zero-2w, from DOCKMON_BOARD=rpi-zero-2w\n\
             detected: amd64 (architecture x86_64)\n\
             overrides: STATS_INTERVAL=1m30s STATS_IN_FLIGHT=40\n\
             in effect: interval 1m30s, 2 calls/s, 16 in flight, 64 containers, rss ceiling 6 MiB\n\
             warning: STATS_IN_FLIGHT=40 is above the ceiling of 16 calls in flight; using 16"
        );
    }

    #[test]
    fn durations_and_sizes_print_in_short_forms() {
        let ms = [
            (1_000, "1s"),
            (1_500, "1.5s"),
            (1_250, "1.25s"),
            (10_000, "10s"),
            (90_000, "1m30s"),
            (3_600_000, "1h"),
            (3_660_000, "1h1m"),
            (0, "0s"),
        ];
        for (value, text) in ms {
            assert_eq!(fmt_ms(value), text);
        }
        let kib = [
            (6144, "6 MiB"),
            (6656, "6.5 MiB"),
            (6100, "6100 KiB"),
            (512, "0.5 MiB"),
        ];
        for (value, text) in kib {
            assert_eq!(fmt_kib(value), text);
        }
    }
}
