//! Newline-delimited JSON streams (`/events`, `/containers/{id}/stats?stream=1`) cut into lines.
//!
//! The buffer holds at most one unfinished line of `max` bytes plus the slice being added; a line
//! longer than `max` is an error, never a bigger buffer. Pure: bytes in, lines out.
use std::ops::Range;

/// A line splitter with a fixed ceiling.
#[derive(Debug)]
pub struct Lines {
    buf: Vec<u8>,
    start: usize,
    max: usize,
}

/// A line without its newline was longer than the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

impl Lines {
    /// A splitter whose lines may be at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Lines {
            buf: Vec::new(),
            start: 0,
            max,
        }
    }

    /// Adds stream bytes. Fails when the unfinished line would exceed the cap.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), TooLong> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        // Only the bytes after the last newline form the unfinished line.
        let tail = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(i) => bytes.len() - i - 1,
            None => self.buf.len() + bytes.len(),
        };
        if tail > self.max {
            return Err(TooLong);
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// The next complete line, without its `\n` (and `\r`), skipping empty lines. Each line must also
    /// fit the cap: a long line followed by its newline in the same push is caught here.
    pub fn next_line(&mut self) -> Result<Option<&[u8]>, TooLong> {
        Ok(self.next_range()?.map(|r| &self.buf[r]))
    }

    /// [`Lines::next_line`] as a range for [`Lines::get`], so a caller can return the line from a loop
    /// that also pushes.
    pub fn next_range(&mut self) -> Result<Option<Range<usize>>, TooLong> {
        loop {
            let rest = &self.buf[self.start..];
            let Some(i) = rest.iter().position(|&b| b == b'\n') else {
                return Ok(None);
            };
            let line_start = self.start;
            self.start += i + 1;
            let mut end = line_start + i;
            if end > line_start && self.buf[end - 1] == b'\r' {
                end -= 1;
            }
            if end - line_start > self.max {
                return Err(TooLong);
            }
            if !self.buf[line_start..end].trim_ascii().is_empty() {
                return Ok(Some(line_start..end));
            }
        }
    }

    /// The bytes of a range from [`Lines::next_range`], valid until the next push.
    pub fn get(&self, r: Range<usize>) -> &[u8] {
        &self.buf[r]
    }

    /// Forgets everything buffered (after a reconnect).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(l: &mut Lines) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(line) = l.next_line().unwrap() {
            v.push(String::from_utf8(line.to_vec()).unwrap());
        }
        v
    }

    #[test]
    fn splits_at_any_point() {
        let input = b"{\"a\":1}\n{\"b\":2}\r\n\n{\"c\":3}\n";
        for cut in 0..=input.len() {
            let mut l = Lines::new(64);
            let mut got = Vec::new();
            l.push(&input[..cut]).unwrap();
            got.extend(all(&mut l));
            l.push(&input[cut..]).unwrap();
            got.extend(all(&mut l));
            assert_eq!(got, ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"], "cut {cut}");
        }
    }

    #[test]
    fn caps_unfinished_and_finished_lines() {
        let mut l = Lines::new(4);
        assert_eq!(l.push(b"12345"), Err(TooLong));
        let mut l = Lines::new(4);
        l.push(b"123").unwrap();
        assert_eq!(l.push(b"45"), Err(TooLong));
        let mut l = Lines::new(4);
        l.push(b"123456\nab").unwrap();
        assert_eq!(l.next_line(), Err(TooLong));
    }

    #[test]
    fn memory_stays_bounded_over_a_long_stream() {
        let mut l = Lines::new(32);
        for _ in 0..10_000 {
            l.push(b"{\"x\":1}\n{\"y\"").unwrap();
            while l.next_line().unwrap().is_some() {}
            l.push(b":2}\n").unwrap();
            while l.next_line().unwrap().is_some() {}
        }
        assert!(l.buf.capacity() < 128);
    }
}
