//! The web shell (spec 3.8.6): `shell_session` payloads (`dockmon::shell::parse`) and the exec's
//! output stream: the first line kept for errors (`shell::remember`), the base64 text of each read,
//! and the `shell_data` frame carrying it. The first byte picks the side.
//!
//! Checks: keystrokes decode to what their base64 says (decode ∘ encode is the identity, both ways
//! where the text is canonical); the kept first line fits its capacity and is a piece of the output;
//! every `shell_data` frame is one JSON value.
use dockmon_agent::dockmon::shell::{parse, write_shell_data, Action};
use dockmon_agent::fuzzing::{base64_decode, base64_encode, base64_encoded_len, shell_remember};

pub fn run(data: &[u8]) {
    let (selector, rest) = crate::split_first(data);
    if selector & 1 == 0 {
        let text = crate::text(rest);
        if let Ok(Action::Data { bytes, .. }) = parse(&text) {
            let mut enc = vec![0u8; base64_encoded_len(bytes.len())];
            let n = base64_encode(&bytes, &mut enc).expect("sized by encoded_len");
            let mut back = Vec::new();
            base64_decode(&enc[..n], &mut back).expect("our own encoding does not decode");
            assert_eq!(back, bytes);
        }
        return;
    }
    // The exec's output: read by read, as the session does.
    let mut first = heapless::String::<200>::new();
    let mut text = vec![0u8; base64_encoded_len(64)];
    let mut frame = Vec::new();
    for read in crate::pieces(rest, selector) {
        shell_remember(read, &mut first);
        let n = base64_encode(read, &mut text).expect("a read fits its text buffer");
        let mut back = Vec::new();
        base64_decode(&text[..n], &mut back).expect("our own encoding does not decode");
        assert_eq!(back, read, "base64 round trip");
        let data = std::str::from_utf8(&text[..n]).expect("base64 is ASCII");
        write_shell_data(&mut frame, "s-1", "data", Some(data), None);
        crate::assert_json(&frame);
    }
    let lossy = String::from_utf8_lossy(rest);
    if !first.contains('\u{FFFD}') {
        assert!(
            lossy.contains(first.as_str()),
            "the kept line is not from the output"
        );
    }
    write_shell_data(&mut frame, "s-1", "error", None, Some(&first));
    crate::assert_json(&frame);
}
