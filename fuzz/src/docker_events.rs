//! Newline-delimited JSON from Docker (`/events`, streamed stats, pull progress): the line splitter
//! `docker::lines::Lines` fed in pieces, each line read as `types::Event`, as a stats document and
//! as a pull progress line. The first byte seeds the read sizes and picks the line cap.
//!
//! Checks: no line passes the cap; the lines equal the input's lines that are not blank (without `\r`)
//! whatever the read sizes, as long as none is too long.
use dockmon_agent::docker::lines::Lines;
use dockmon_agent::docker::types::Event;
use dockmon_agent::docker::{pull, stats};

pub fn run(data: &[u8]) {
    let (seed, body) = crate::split_first(data);
    let max = if seed & 1 == 0 { 32 } else { 16 * 1024 };
    let mut lines = Lines::new(max);
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut too_long = false;
    'feed: for piece in crate::pieces(body, seed) {
        if lines.push(piece).is_err() {
            too_long = true;
            break;
        }
        loop {
            match lines.next_line() {
                Ok(Some(line)) => {
                    assert!(line.len() <= max, "line of {} > {max}", line.len());
                    assert!(!line.trim_ascii().is_empty() && !line.contains(&b'\n'));
                    got.push(line.to_vec());
                }
                Ok(None) => break,
                Err(_) => {
                    too_long = true;
                    break 'feed;
                }
            }
        }
    }
    // The complete lines of the input, as the splitter should give them.
    let mut want: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    want.pop(); // after the last newline: unfinished
    let want: Vec<&[u8]> = want
        .into_iter()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.trim_ascii().is_empty())
        .collect();
    let unfinished = body.len() - body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let fits = body.split(|&b| b == b'\n').all(|l| l.len() <= max) && unfinished <= max;
    if fits {
        assert!(!too_long, "a line within the cap refused");
        assert_eq!(got, want, "lines differ");
    }
    for line in &got {
        if let Ok(e) = serde_json::from_slice::<Event>(line) {
            let _ = (
                e.kind.len(),
                e.action.len(),
                e.actor.id.len(),
                e.time,
                e.time_nano,
            );
        }
        let _ = stats::parse(line);
        let _ = pull::parse_line(line);
    }
}
