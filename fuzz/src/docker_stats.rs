//! Docker's stats document (`docker::stats::parse`) and the payload numbers computed from two samples
//! (`stats::compute`). The input is one document, or two separated by a newline (a stream).
//!
//! Checks: online CPUs at least 1; a strict prefix of a parsed document never parses (declared
//! structure honoured); the computed payload is one JSON value with a finite, non-negative CPU %.
use dockmon_agent::docker::stats::parse;
use dockmon_agent::stats::compute;

pub fn run(data: &[u8]) {
    let whole = parse(data);
    if let Ok(s) = &whole {
        assert!(s.online_cpus >= 1);
        let trimmed = data.trim_ascii_end().len();
        if trimmed > 0 {
            assert!(
                parse(&data[..trimmed - 1]).is_err(),
                "a strict prefix parses"
            );
        }
        let c = compute(None, s);
        assert_eq!(c.cpu_percent, 0.0);
        crate::assert_json(&serde_json::to_vec(&c).unwrap());
        let c = compute(Some(s), s);
        assert_eq!(c.cpu_percent, 0.0, "no time passed, no CPU used");
    }
    if let Some(nl) = data.iter().position(|&b| b == b'\n') {
        if let (Ok(a), Ok(b)) = (parse(&data[..nl]), parse(&data[nl + 1..])) {
            let c = compute(Some(&a), &b);
            assert!(
                c.cpu_percent.is_finite() && c.cpu_percent >= 0.0,
                "{}",
                c.cpu_percent
            );
            assert!(c.memory_percent.is_finite() && c.memory_percent >= 0.0);
            crate::assert_json(&serde_json::to_vec(&c).unwrap());
        }
    }
}
