//! A JSON array arriving in slices, cut into its elements as each completes. The container list is
//! read this way so the agent never holds Docker's whole answer next to the reply it builds from it:
//! at 100 containers that answer is about 80 KiB, and holding both doubled the heap a
//! `list_containers` needs. Pure: bytes in, element boundaries out.
//!
//! Only the array's structure is checked here (brackets, commas, strings and their escapes); each
//! element's own JSON is checked by whoever parses it. Elements must be objects or arrays, which is
//! all Docker's lists hold.
//!
//! Policy when full: an element longer than the splitter's `max` is [`Error::ElementTooLarge`], and
//! the caller gives up on the list; nothing grows past `max`.
use std::fmt;

/// Where the splitter is in the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before `[`.
    Start,
    /// After `[` or `,`: an element or (only right after `[`) `]`.
    Element { first: bool },
    /// Inside an element: bracket depth, inside a string, after a backslash in one.
    Inside {
        depth: u32,
        string: bool,
        escaped: bool,
    },
    /// After an element: `,` or `]`.
    After,
    /// After `]`: only whitespace may follow.
    End,
}

/// What is wrong with the array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Something other than whitespace where the array, an element, `,` or `]` should be.
    Unexpected {
        /// The byte found.
        byte: u8,
        /// Its offset from the start of the input.
        at: u64,
    },
    /// An element that is not an object or an array.
    NotAContainer {
        /// Offset of the element's first byte.
        at: u64,
    },
    /// One element longer than the cap.
    ElementTooLarge {
        /// The cap.
        max: usize,
    },
    /// The input ended inside the array.
    Truncated,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unexpected { byte, at } => {
                write!(
                    f,
                    "unexpected {:?} at byte {at} of the array",
                    char::from(*byte)
                )
            }
            Error::NotAContainer { at } => {
                write!(f, "the element at byte {at} is not an object")
            }
            Error::ElementTooLarge { max } => write!(f, "an element is longer than {max} bytes"),
            Error::Truncated => write!(f, "the array ends early"),
        }
    }
}

/// The splitter: feed it slices with [`Elements::feed`]; take each completed element with
/// [`Elements::element`] before feeding on.
#[derive(Debug)]
pub struct Elements {
    state: State,
    element: Vec<u8>,
    max: usize,
    /// Bytes fed so far (for messages).
    seen: u64,
}

impl Elements {
    /// A splitter keeping elements of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Elements {
            state: State::Start,
            element: Vec::new(),
            max,
            seen: 0,
        }
    }

    /// Consumes `bytes` up to the end of the next element, or all of them. Returns how many were
    /// consumed and whether an element is complete (then read it with [`Elements::element`]; the
    /// next call starts a new one).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(usize, bool), Error> {
        for (i, &b) in bytes.iter().enumerate() {
            let at = self.seen + i as u64;
            match self.state {
                State::Start => match b {
                    b'[' => self.state = State::Element { first: true },
                    b if b.is_ascii_whitespace() => {}
                    byte => return Err(Error::Unexpected { byte, at }),
                },
                State::Element { first } => match b {
                    b'{' | b'[' => {
                        self.element.clear();
                        self.push(b)?;
                        self.state = State::Inside {
                            depth: 1,
                            string: false,
                            escaped: false,
                        };
                    }
                    b']' if first => self.state = State::End,
                    b if b.is_ascii_whitespace() => {}
                    b']' | b',' => return Err(Error::Unexpected { byte: b, at }),
                    _ => return Err(Error::NotAContainer { at }),
                },
                State::Inside {
                    depth,
                    string,
                    escaped,
                } => {
                    self.push(b)?;
                    self.state = match (string, escaped, b) {
                        (true, true, _) => State::Inside {
                            depth,
                            string: true,
                            escaped: false,
                        },
                        (true, false, b'\\') => State::Inside {
                            depth,
                            string: true,
                            escaped: true,
                        },
                        (true, false, b'"') => State::Inside {
                            depth,
                            string: false,
                            escaped: false,
                        },
                        (true, false, _) => self.state,
                        (false, _, b'"') => State::Inside {
                            depth,
                            string: true,
                            escaped: false,
                        },
                        (false, _, b'{' | b'[') => State::Inside {
                            depth: depth + 1,
                            string: false,
                            escaped: false,
                        },
                        (false, _, b'}' | b']') if depth == 1 => {
                            self.state = State::After;
                            self.seen += i as u64 + 1;
                            return Ok((i + 1, true));
                        }
                        (false, _, b'}' | b']') => State::Inside {
                            depth: depth - 1,
                            string: false,
                            escaped: false,
                        },
                        (false, _, _) => self.state,
                    };
                }
                State::After => match b {
                    b',' => self.state = State::Element { first: false },
                    b']' => self.state = State::End,
                    b if b.is_ascii_whitespace() => {}
                    byte => return Err(Error::Unexpected { byte, at }),
                },
                State::End => {
                    if !b.is_ascii_whitespace() {
                        return Err(Error::Unexpected { byte: b, at });
                    }
                }
            }
        }
        self.seen += bytes.len() as u64;
        Ok((bytes.len(), false))
    }

    /// The element [`Elements::feed`] just completed.
    pub fn element(&self) -> &[u8] {
        &self.element
    }

    /// Call at the end of the input: whether the array was complete.
    pub fn finish(&self) -> Result<(), Error> {
        match self.state {
            State::End => Ok(()),
            _ => Err(Error::Truncated),
        }
    }

    fn push(&mut self, b: u8) -> Result<(), Error> {
        if self.element.len() >= self.max {
            return Err(Error::ElementTooLarge { max: self.max });
        }
        self.element.push(b);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes and collects the elements.
    fn split(input: &[u8], step: usize, max: usize) -> Result<Vec<String>, Error> {
        let mut s = Elements::new(max);
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            let mut rest = piece;
            while !rest.is_empty() {
                let (used, done) = s.feed(rest)?;
                rest = &rest[used..];
                if done {
                    out.push(String::from_utf8(s.element().to_vec()).unwrap());
                }
            }
        }
        s.finish()?;
        Ok(out)
    }

    const LIST: &str = r#" [ {"Id":"a","Names":["/x"],"Labels":{"k":"v}]\"{["}} ,
        {"Id":"b","Ports":[{"P":1},{"P":2}],"S":"\\"} ,{}]
    "#;

    #[test]
    fn elements_at_every_split_point_and_slice_size() {
        let want = [
            r#"{"Id":"a","Names":["/x"],"Labels":{"k":"v}]\"{["}}"#,
            r#"{"Id":"b","Ports":[{"P":1},{"P":2}],"S":"\\"}"#,
            "{}",
        ];
        for step in 1..=LIST.len() {
            assert_eq!(
                split(LIST.as_bytes(), step, 1024).unwrap(),
                want,
                "step {step}"
            );
        }
        // Each element is valid JSON on its own.
        for e in want {
            serde_json::from_str::<serde_json::Value>(e).unwrap();
        }
    }

    #[test]
    fn empty_and_whitespace_arrays() {
        for input in ["[]", " [ ] ", "[\n]\n"] {
            assert_eq!(
                split(input.as_bytes(), 1, 16).unwrap(),
                Vec::<String>::new()
            );
        }
    }

    #[test]
    fn broken_arrays_are_errors() {
        let cases: &[(&str, Error)] = &[
            ("", Error::Truncated),
            ("[", Error::Truncated),
            (r#"[{"a":1}"#, Error::Truncated),
            (r#"[{"a":"}"#, Error::Truncated),
            (r#"[{"a":1},"#, Error::Truncated),
            ("{}", Error::Unexpected { byte: b'{', at: 0 }),
            ("[,{}]", Error::Unexpected { byte: b',', at: 1 }),
            ("[{},]", Error::Unexpected { byte: b']', at: 4 }),
            ("[{} {}]", Error::Unexpected { byte: b'{', at: 4 }),
            ("[]x", Error::Unexpected { byte: b'x', at: 2 }),
            ("[1]", Error::NotAContainer { at: 1 }),
            (r#"["s"]"#, Error::NotAContainer { at: 1 }),
        ];
        for (input, want) in cases {
            for step in [1, 3, 100] {
                assert_eq!(
                    &split(input.as_bytes(), step, 64).unwrap_err(),
                    want,
                    "{input:?}"
                );
            }
        }
    }

    #[test]
    fn an_element_past_the_cap_is_refused() {
        let input = format!(r#"[{{"a":"{}"}}]"#, "x".repeat(100));
        assert_eq!(
            split(input.as_bytes(), 7, 64).unwrap_err(),
            Error::ElementTooLarge { max: 64 }
        );
        assert_eq!(split(input.as_bytes(), 7, 200).unwrap().len(), 1);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..2000 {
            let len = (x % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b"[]{},\" \\ab"[(x % 10) as usize]
                })
                .collect();
            let _ = split(&bytes, (x % 5) as usize + 1, 32);
        }
    }
}
