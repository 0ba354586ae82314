//! Container logs (`docker::logs`): the multiplexed stream `Demux` and the `Reply` that keeps the
//! newest lines within a cap. The first byte holds the flags (TTY, the cap) and seeds the read sizes.
//!
//! Checks: declared frame lengths are honoured (the data of each stream equals what a reference
//! reading of the 8-byte headers gives, whatever the read sizes) and an unknown stream type is an
//! error in both; for ASCII input the kept text stays within the cap, and from a TTY it is whole
//! lines at the end of the stream.
use dockmon_agent::docker::logs::{Demux, Piece, Reply, Source};

/// The stream's data by source, per the headers, and whether it broke (unknown type) and whether it
/// ended between frames.
fn reference(mut s: &[u8]) -> ([Vec<u8>; 4], bool, bool) {
    let mut out: [Vec<u8>; 4] = Default::default();
    loop {
        if s.is_empty() {
            return (out, false, true);
        }
        if s.len() < 8 {
            return (out, false, false);
        }
        let kind = usize::from(s[0]);
        if kind > 3 {
            return (out, true, false);
        }
        let len = u32::from_be_bytes([s[4], s[5], s[6], s[7]]) as usize;
        let payload = &s[8..];
        let n = len.min(payload.len());
        out[kind].extend_from_slice(&payload[..n]);
        if n < len {
            return (out, false, false);
        }
        s = &payload[n..];
    }
}

fn index(s: Source) -> usize {
    match s {
        Source::Stdin => 0,
        Source::Stdout => 1,
        Source::Stderr => 2,
        Source::System => 3,
    }
}

pub fn run(data: &[u8]) {
    let (flags, body) = crate::split_first(data);
    let (want, want_broken, want_between) = reference(body);
    let mut demux = Demux::new();
    let mut got: [Vec<u8>; 4] = Default::default();
    let mut broken = false;
    'feed: for mut piece in crate::pieces(body, flags) {
        loop {
            match demux.next(piece) {
                Ok((used, Piece::Data(source, r))) => {
                    assert!(r.end == used && used <= piece.len() && !r.is_empty());
                    got[index(source)].extend_from_slice(&piece[r]);
                    piece = &piece[used..];
                }
                Ok((used, Piece::NeedMore)) => {
                    assert_eq!(used, piece.len());
                    break;
                }
                Err(_) => {
                    broken = true;
                    break 'feed;
                }
            }
        }
    }
    assert_eq!(broken, want_broken, "unknown stream type seen differently");
    assert_eq!(
        got, want,
        "demultiplexed data differs from the declared frames"
    );
    if !broken {
        assert_eq!(demux.is_between_frames(), want_between);
    }

    let tty = flags & 1 != 0;
    let cap = [64, 300, 4096, 1 << 20][usize::from(flags >> 1) & 3];
    let piece = [16, 1000][usize::from(flags >> 3) & 1];
    let mut reply = Reply::new(tty, cap, piece);
    for p in crate::pieces(body, flags.rotate_left(4)) {
        if reply.push(p).is_err() {
            return;
        }
    }
    let mut text = String::new();
    if reply.finish(&mut text).is_err() {
        return;
    }
    if body.is_ascii() {
        assert!(text.len() <= cap, "kept {} bytes, cap {cap}", text.len());
        if tty {
            assert!(
                body.ends_with(text.as_bytes()),
                "TTY text is not the end of the stream"
            );
            let start = body.len() - text.len();
            let at_line_start = text.is_empty() || start == 0 || body[start - 1] == b'\n';
            assert!(at_line_start, "TTY text starts mid-line");
        }
    }
}
