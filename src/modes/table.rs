//! The `watch --format table` view, formatted like `docker stats`. Pure: rows in, text out.
//!
//! Memory uses binary units with four significant digits (`1.5MiB`), network and block I/O decimal
//! units with three (`1.2kB`), as the docker CLI does (go-units `BytesSize` / `HumanSizeWithPrecision`).
use crate::stats::Computed;
use std::fmt::Write;

/// The header line.
pub const HEADER: &str = "CONTAINER ID   NAME                 CPU %     MEM USAGE / LIMIT     MEM %     NET I/O           BLOCK I/O         PIDS";

/// Appends one row.
pub fn push_row(out: &mut String, id: &str, name: &str, c: &Computed) {
    let short = &id[..id.len().min(12)];
    let name: String = name.chars().take(20).collect();
    let mem = format!("{} / {}", binary(c.memory_usage), binary(c.memory_limit));
    let net = format!("{} / {}", decimal(c.network_rx), decimal(c.network_tx));
    let blk = format!("{} / {}", decimal(c.disk_read), decimal(c.disk_write));
    let _ = writeln!(
        out,
        "{short:<12}   {name:<20} {:<9} {mem:<21} {:<9} {net:<17} {blk:<17} {}",
        format!("{:.2}%", c.cpu_percent),
        format!("{:.2}%", c.memory_percent),
        c.pids
    );
}

/// Binary units, 4 significant digits: `572B`, `1.5MiB`, `23.54GiB`.
pub fn binary(n: u64) -> String {
    scaled(n, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"], 4)
}

/// Decimal units, 3 significant digits: `0B`, `1.2kB`, `52.4MB`.
pub fn decimal(n: u64) -> String {
    scaled(n, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"], 3)
}

fn scaled(n: u64, base: f64, units: &[&str], digits: i32) -> String {
    let mut v = n as f64;
    let mut unit = 0;
    while v >= base && unit + 1 < units.len() {
        v /= base;
        unit += 1;
    }
    // %g with `digits` significant digits: as many decimals as the integer part leaves, zeros trimmed.
    let int_digits = if v < 1.0 {
        1
    } else {
        v.log10().floor() as i32 + 1
    };
    let decimals = (digits - int_digits).max(0) as usize;
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s.push_str(units[unit]);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_like_the_docker_cli() {
        assert_eq!(binary(0), "0B");
        assert_eq!(binary(572), "572B");
        assert_eq!(binary(1_572_864), "1.5MiB");
        assert_eq!(binary(25_276_502_016), "23.54GiB");
        assert_eq!(decimal(0), "0B");
        assert_eq!(decimal(1_234), "1.23kB");
        assert_eq!(decimal(52_400_000), "52.4MB");
        assert_eq!(decimal(999), "999B");
    }

    #[test]
    fn a_row_has_every_column() {
        let mut s = String::new();
        let c = Computed {
            cpu_percent: 50.04,
            memory_usage: 1_572_864,
            memory_limit: 25_276_502_016,
            memory_percent: 0.0,
            network_rx: 572,
            network_tx: 0,
            disk_read: 0,
            disk_write: 8_388_608,
            pids: 3,
        };
        push_row(&mut s, &"ab".repeat(32), "burner", &c);
        assert!(s.starts_with("abababababab   burner "), "{s}");
        for part in [
            "50.04%",
            "1.5MiB / 23.54GiB",
            "572B / 0B",
            "0B / 8.39MB",
            " 3\n",
        ] {
            assert!(s.contains(part), "{part} in {s}");
        }
    }
}
