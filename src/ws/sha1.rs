//! SHA-1 (RFC 3174), streaming, for the WebSocket accept value only (RFC 6455 §4.1).
//!
//! SHA-1 is broken for collision resistance; RFC 6455 uses it only to prove the server read the key,
//! which is all it is used for here. Never use this module for integrity or authentication.

/// Digest length in bytes (RFC 3174 §1: a 160-bit message digest).
pub(crate) const DIGEST_BYTES: usize = 20;
/// Block length in bytes (RFC 3174 §4: 512-bit blocks).
const BLOCK_BYTES: usize = 64;

/// A running SHA-1 computation: feed bytes with [`Sha1::update`], then take the digest with
/// [`Sha1::finish`]. Splitting the input across `update` calls does not change the digest.
pub(crate) struct Sha1 {
    h: [u32; 5],
    block: [u8; BLOCK_BYTES],
    /// Bytes buffered in `block`, always < 64 between calls.
    filled: usize,
    /// Total message length in bytes.
    len: u64,
}

impl Sha1 {
    /// The initial state H0..H4 (RFC 3174 §6.1).
    pub(crate) const fn new() -> Sha1 {
        Sha1 {
            h: [
                0x6745_2301,
                0xEFCD_AB89,
                0x98BA_DCFE,
                0x1032_5476,
                0xC3D2_E1F0,
            ],
            block: [0; BLOCK_BYTES],
            filled: 0,
            len: 0,
        }
    }

    /// Appends `data` to the message.
    pub(crate) fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        while !data.is_empty() {
            let take = (BLOCK_BYTES - self.filled).min(data.len());
            self.block[self.filled..self.filled + take].copy_from_slice(&data[..take]);
            self.filled += take;
            data = &data[take..];
            if self.filled == BLOCK_BYTES {
                compress(&mut self.h, &self.block);
                self.filled = 0;
            }
        }
    }

    /// Pads the message (RFC 3174 §4) and returns the digest.
    pub(crate) fn finish(mut self) -> [u8; DIGEST_BYTES] {
        let bit_len = self.len.wrapping_mul(8);
        self.block[self.filled] = 0x80;
        self.block[self.filled + 1..].fill(0);
        if self.filled + 1 > BLOCK_BYTES - 8 {
            compress(&mut self.h, &self.block);
            self.block = [0; BLOCK_BYTES];
        }
        self.block[BLOCK_BYTES - 8..].copy_from_slice(&bit_len.to_be_bytes());
        compress(&mut self.h, &self.block);
        let mut out = [0u8; DIGEST_BYTES];
        for (dst, word) in out.chunks_exact_mut(4).zip(self.h) {
            dst.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

/// One 512-bit block through the 80 rounds (RFC 3174 §6.1, method 1).
fn compress(h: &mut [u32; 5], block: &[u8; BLOCK_BYTES]) {
    let mut w = [0u32; 80];
    for (t, word) in block.chunks_exact(4).enumerate() {
        w[t] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
    }
    for t in 16..80 {
        w[t] = (w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]).rotate_left(1);
    }
    let [mut a, mut b, mut c, mut d, mut e] = *h;
    for (t, &wt) in w.iter().enumerate() {
        let (f, k) = match t {
            0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
            20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
            40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
            _ => (b ^ c ^ d, 0xCA62_C1D6),
        };
        let temp = a
            .rotate_left(5)
            .wrapping_add(f)
            .wrapping_add(e)
            .wrapping_add(wt)
            .wrapping_add(k);
        e = d;
        d = c;
        c = b.rotate_left(30);
        b = a;
        a = temp;
    }
    for (hi, v) in h.iter_mut().zip([a, b, c, d, e]) {
        *hi = hi.wrapping_add(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(digest: [u8; DIGEST_BYTES]) -> String {
        digest.iter().map(|b| format!("{b:02X}")).collect()
    }

    fn digest_of(parts: &[&[u8]], repeat: usize) -> [u8; DIGEST_BYTES] {
        let mut sha = Sha1::new();
        for _ in 0..repeat {
            for part in parts {
                sha.update(part);
            }
        }
        sha.finish()
    }

    /// RFC 3174 §7.3 test vectors (TEST1..TEST4 with their repeat counts), plus the empty message.
    #[test]
    fn rfc3174_vectors() {
        let cases: &[(&[u8], usize, &str)] = &[
            (b"abc", 1, "A9993E364706816ABA3E25717850C26C9CD0D89D"),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                1,
                "84983E441C3BD26EBAAE4AA1F95129E5E54670F1",
            ),
            (b"a", 1_000_000, "34AA973CD4C4DAA4F61EEB2BDBAD27316534016F"),
            (
                b"0123456701234567012345670123456701234567012345670123456701234567",
                10,
                "DEA356A2CDDD90C7A7ECEDC5EBB563934F460452",
            ),
            (b"", 1, "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709"),
        ];
        for (input, repeat, expect) in cases {
            assert_eq!(
                hex(digest_of(&[input], *repeat)),
                *expect,
                "{input:?} x{repeat}"
            );
        }
    }

    /// Messages whose padding lands on each side of the 56-byte boundary, fed whole and split at every
    /// index, give the same digest.
    #[test]
    fn split_updates_and_padding_boundaries_agree() {
        let data: Vec<u8> = (0..130u8).collect();
        for len in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 130] {
            let whole = digest_of(&[&data[..len]], 1);
            for split in 0..=len {
                let parts: [&[u8]; 2] = [&data[..split], &data[split..len]];
                assert_eq!(digest_of(&parts, 1), whole, "len {len} split {split}");
            }
        }
        // 55 bytes of "a" (one block after padding) and 56 (two blocks), known values.
        assert_eq!(
            hex(digest_of(&[&[b'a'; 55]], 1)),
            "C1C8BBDC22796E28C0E15163D20899B65621D65A"
        );
        assert_eq!(
            hex(digest_of(&[&[b'a'; 56]], 1)),
            "C2DB330F6083854C99D4B5BFB6E8F29F201BE699"
        );
    }
}
