//! Entry points for the cargo-fuzz crate in `fuzz/` (feature `fuzzing`, never in the binary): thin
//! wrappers around the few crate-private parsers and codecs a fuzz target needs, so their own
//! visibility stays as it is. Everything else the targets call is public already.

/// [`crate::ws::base64::encode`]: the padded encoding of `input` into `out`, or `None` when too short.
pub fn base64_encode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    crate::ws::base64::encode(input, out)
}

/// [`crate::ws::base64::encoded_len`].
pub fn base64_encoded_len(n: usize) -> usize {
    crate::ws::base64::encoded_len(n)
}

/// [`crate::ws::base64::decode`], with the error as its message.
pub fn base64_decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    crate::ws::base64::decode(input, out).map_err(|e| e.to_string())
}

/// The web shell's first-line capture of an exec's output (`dockmon::shell`).
pub fn shell_remember(bytes: &[u8], first_line: &mut heapless::String<200>) {
    crate::dockmon::shell::remember(bytes, first_line)
}
