//! A tiny JSON writer for the request bodies of a deployment, pure.
//!
//! Why not `serde_json::Value` or derived structs: the create body has some forty optional fields;
//! a `Value` tree allocates a node per field and every `json!` expands into its own code, and a
//! derived `Serialize` emits a call sequence per field too. Here each field is one call to a
//! non-generic function, and the bytes go straight into the body that is sent (issue 16: compose
//! cost 213 KB of the aarch64 binary with `Value` trees).
//!
//! Commas are placed from the last byte written: a value or key that follows `{`, `[` or `:` needs
//! none, anything else gets one. Callers open and close objects and arrays in order; the writer
//! does not check nesting (every body is written by code in this module's crate, never by input).

/// The writer: bytes appended to `out`.
pub struct Json<'a> {
    /// The body being written.
    pub out: &'a mut Vec<u8>,
}

impl<'a> Json<'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Json { out }
    }

    fn sep(&mut self) {
        if !matches!(self.out.last(), None | Some(b'{' | b'[' | b':')) {
            self.out.push(b',');
        }
    }

    fn quoted(&mut self, s: &str) {
        self.out.push(b'"');
        for &b in s.as_bytes() {
            match b {
                b'"' => self.out.extend_from_slice(b"\\\""),
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                b'\n' => self.out.extend_from_slice(b"\\n"),
                b'\r' => self.out.extend_from_slice(b"\\r"),
                b'\t' => self.out.extend_from_slice(b"\\t"),
                0..=0x1f => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    self.out.extend_from_slice(b"\\u00");
                    self.out.push(HEX[usize::from(b >> 4)]);
                    self.out.push(HEX[usize::from(b & 15)]);
                }
                _ => self.out.push(b),
            }
        }
        self.out.push(b'"');
    }

    /// `"k":` (with the comma before it when needed).
    pub fn key(&mut self, k: &str) -> &mut Self {
        self.sep();
        self.quoted(k);
        self.out.push(b':');
        self
    }

    /// A string value (array element or after [`Json::key`]).
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.sep();
        self.quoted(v);
        self
    }

    /// A number, `true`/`false` or other literal text.
    pub fn raw(&mut self, v: &str) -> &mut Self {
        self.sep();
        self.out.extend_from_slice(v.as_bytes());
        self
    }

    /// An integer.
    pub fn int(&mut self, v: i64) -> &mut Self {
        self.raw(&v.to_string())
    }

    /// `{` (after a key, as an element, or at the start).
    pub fn open(&mut self) -> &mut Self {
        self.sep();
        self.out.push(b'{');
        self
    }

    /// `}`.
    pub fn close(&mut self) -> &mut Self {
        self.out.push(b'}');
        self
    }

    /// `[`.
    pub fn open_list(&mut self) -> &mut Self {
        self.sep();
        self.out.push(b'[');
        self
    }

    /// `]`.
    pub fn close_list(&mut self) -> &mut Self {
        self.out.push(b']');
        self
    }

    /// `"k":"v"`.
    pub fn kv(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k).str(v)
    }

    /// `"k":v` for an integer.
    pub fn kv_int(&mut self, k: &str, v: i64) -> &mut Self {
        self.key(k).int(v)
    }

    /// `"k":true|false`.
    pub fn kv_bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k).raw(if v { "true" } else { "false" })
    }

    /// `"k":"v"` when `v` is given.
    pub fn kv_opt(&mut self, k: &str, v: Option<&String>) -> &mut Self {
        if let Some(v) = v {
            self.kv(k, v);
        }
        self
    }

    /// `"k":["a","b"]`.
    pub fn kv_list(&mut self, k: &str, v: &[String]) -> &mut Self {
        self.key(k).open_list();
        for s in v {
            self.str(s);
        }
        self.close_list()
    }

    /// `"k":[…]` only when `v` is not empty.
    pub fn kv_list_nonempty(&mut self, k: &str, v: &[String]) -> &mut Self {
        if !v.is_empty() {
            self.kv_list(k, v);
        }
        self
    }

    /// `"k":{"a":"1",…}` from pairs.
    pub fn kv_map(&mut self, k: &str, v: &[(String, String)]) -> &mut Self {
        self.key(k).open();
        for (a, b) in v {
            self.kv(a, b);
        }
        self.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_nesting_and_escapes() {
        let mut out = Vec::new();
        let mut w = Json::new(&mut out);
        w.open()
            .kv("a", "x\"y\\\n\u{1}é")
            .kv_int("n", -3)
            .kv_bool("b", true);
        w.kv_list("l", &["1".into(), "2".into()]).kv_list("e", &[]);
        w.key("o").open().close().key("m").open();
        w.kv_map("inner", &[("k".into(), "v".into())])
            .close()
            .close();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": "x\"y\\\n\u{1}é", "n": -3, "b": true, "l": ["1", "2"], "e": [], "o": {}, "m": {"inner": {"k": "v"}}})
        );
    }
}
