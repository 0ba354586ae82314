//! Base64 encoding with the standard alphabet and padding (RFC 4648 §4), into a caller buffer.
//!
//! Only what the handshake needs: `Sec-WebSocket-Key` (16 bytes → 24 characters) and
//! `Sec-WebSocket-Accept` (a 20-byte SHA-1 digest → 28 characters), RFC 6455 §4.1. The accept value is
//! checked by comparing encodings. The web shell (spec 3.8.6) also encodes TTY output and decodes the
//! browser's keystrokes with [`decode`].

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Length of the padded encoding of `n` input bytes: 4 characters per started 3-byte group.
pub(crate) const fn encoded_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Writes the padded base64 encoding of `input` at the start of `out` and returns its length, or `None`
/// (writing nothing) when `out` is shorter than [`encoded_len`]`(input.len())`. The output is ASCII.
pub(crate) fn encode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let len = encoded_len(input.len());
    let out = out.get_mut(..len)?;
    for (group, dst) in input.chunks(3).zip(out.chunks_mut(4)) {
        let b0 = group[0];
        let b1 = group.get(1).copied().unwrap_or(0);
        let b2 = group.get(2).copied().unwrap_or(0);
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        dst[0] = ALPHABET[(n >> 18) as usize & 63];
        dst[1] = ALPHABET[(n >> 12) as usize & 63];
        dst[2] = if group.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63]
        } else {
            b'='
        };
        dst[3] = if group.len() > 2 {
            ALPHABET[n as usize & 63]
        } else {
            b'='
        };
    }
    Some(len)
}

/// Why a base64 text could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// A byte outside the alphabet (and not padding) at this offset.
    Byte(usize),
    /// The length is not a multiple of 4, or padding is misplaced.
    Length,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Byte(at) => write!(f, "invalid base64 byte at offset {at}"),
            DecodeError::Length => f.write_str("invalid base64 length or padding"),
        }
    }
}

fn value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Appends the bytes that the padded base64 text `input` encodes (RFC 4648 §4) to `out`, which grows
/// by at most `input.len() / 4 * 3`. On error `out` is left as it was.
pub(crate) fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
    if input.len() % 4 != 0 {
        return Err(DecodeError::Length);
    }
    let before = out.len();
    out.reserve(input.len() / 4 * 3);
    let groups = input.len() / 4;
    for (g, quad) in input.chunks(4).enumerate() {
        let last = g + 1 == groups;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            out.truncate(before);
            return Err(DecodeError::Length);
        }
        let mut n = 0u32;
        for (i, &c) in quad[..4 - pad].iter().enumerate() {
            match value(c) {
                Some(v) => n |= v << (18 - 6 * i),
                None => {
                    out.truncate(before);
                    return Err(DecodeError::Byte(g * 4 + i));
                }
            }
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_section10_vectors() {
        let cases: &[(&[u8], &str)] = &[
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (input, expect) in cases {
            let mut out = [0u8; 16];
            let n = encode(input, &mut out).expect("16 bytes hold 8 characters");
            assert_eq!(&out[..n], expect.as_bytes(), "input {input:?}");
            assert_eq!(n, encoded_len(input.len()));
        }
    }

    #[test]
    fn all_byte_values_use_the_whole_alphabet() {
        // 0x00..=0xff: every 6-bit group value appears; compare with a known encoding prefix and length.
        let input: Vec<u8> = (0..=255u8).collect();
        let mut out = [0u8; 344];
        let n = encode(&input, &mut out).expect("344 = encoded_len(256)");
        assert_eq!(n, 344);
        assert!(out[..n]
            .starts_with(b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v"));
        assert!(out[..n].ends_with(b"+fr7/P3+/w=="));
    }

    #[test]
    fn short_output_is_refused_without_writing() {
        let mut out = [b'x'; 7];
        assert_eq!(encode(b"foobar", &mut out), None);
        assert_eq!(out, [b'x'; 7]);
        let mut exact = [0u8; 8];
        assert_eq!(encode(b"foobar", &mut exact), Some(8));
    }

    #[test]
    fn decode_inverts_encode_and_refuses_garbage() {
        let input: Vec<u8> = (0..=255u8).collect();
        for len in 0..input.len() {
            let mut text = [0u8; 344];
            let n = encode(&input[..len], &mut text).unwrap();
            let mut back = vec![7u8];
            decode(&text[..n], &mut back).unwrap();
            assert_eq!(&back[1..], &input[..len], "len {len}");
        }
        let mut out = vec![1u8];
        assert_eq!(decode(b"Zm9", &mut out), Err(DecodeError::Length));
        assert_eq!(decode(b"Zm9v!A==", &mut out), Err(DecodeError::Byte(4)));
        assert_eq!(decode(b"Zg==Zm9v", &mut out), Err(DecodeError::Length));
        assert_eq!(decode(b"Z===", &mut out), Err(DecodeError::Length));
        assert_eq!(out, [1u8], "left as it was");
    }
}
