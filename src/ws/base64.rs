//! Base64 encoding with the standard alphabet and padding (RFC 4648 §4), into a caller buffer.
//!
//! Only what the handshake needs: `Sec-WebSocket-Key` (16 bytes → 24 characters) and
//! `Sec-WebSocket-Accept` (a 20-byte SHA-1 digest → 28 characters), RFC 6455 §4.1. Encoding only; the
//! accept value is checked by comparing encodings, so no decoder is needed.

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
}
