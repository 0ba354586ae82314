//! Compose variable interpolation in one string (compose-spec "Interpolation"), pure.
//!
//! `$$` is a literal `$`; `$VAR` and `${VAR}` are replaced by the value (empty when unset, as
//! compose does after a warning); `${VAR:-default}` / `${VAR-default}` use the default when the
//! variable is unset or empty / unset; `${VAR:?message}` / `${VAR?message}` fail the deployment
//! with the message; `${VAR:+alt}` / `${VAR+alt}` give `alt` when set (and non-empty). Defaults
//! and messages may themselves hold interpolations. Nesting is bounded by
//! `COMPOSE_YAML_MAX_DEPTH` like the YAML itself.
use crate::limits::COMPOSE_YAML_MAX_DEPTH;
use std::fmt;

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// `${VAR:?message}` with `VAR` unset (or empty).
    Required {
        /// The variable.
        var: String,
        /// The file's message.
        message: String,
    },
    /// A `${` without its `}`, an empty or invalid name, or a nesting too deep.
    Syntax(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Required { var, message } if message.is_empty() => {
                write!(f, "required variable {var} is missing a value")
            }
            Error::Required { var, message } => {
                write!(f, "required variable {var} is missing a value: {message}")
            }
            Error::Syntax(s) => write!(f, "invalid interpolation format for {s:?}"),
        }
    }
}

fn is_name(c: char, first: bool) -> bool {
    c == '_' || c.is_ascii_alphabetic() || (!first && c.is_ascii_digit())
}

/// Interpolates `text`, looking variables up with `get` (`None` = unset).
pub fn interpolate(text: &str, get: &dyn Fn(&str) -> Option<String>) -> Result<String, Error> {
    expand(text, get, 0)
}

fn expand(text: &str, get: &dyn Fn(&str) -> Option<String>, depth: usize) -> Result<String, Error> {
    if depth > COMPOSE_YAML_MAX_DEPTH {
        return Err(Error::Syntax(text.into()));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(inner) = after.strip_prefix('{') {
            // Find the matching brace, counting nested `${`.
            let mut level = 1;
            let mut end = None;
            let bytes = inner.as_bytes();
            let mut j = 0;
            while j < bytes.len() {
                match bytes[j] {
                    b'{' => level += 1,
                    b'}' => {
                        level -= 1;
                        if level == 0 {
                            end = Some(j);
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            let end = end.ok_or_else(|| Error::Syntax(text.into()))?;
            out.push_str(&braced(&inner[..end], text, get, depth)?);
            rest = &inner[end + 1..];
        } else {
            let n = after
                .char_indices()
                .take_while(|(k, c)| is_name(*c, *k == 0))
                .map(|(k, c)| k + c.len_utf8())
                .last()
                .unwrap_or(0);
            if n == 0 {
                // A lone `$` (compose refuses it).
                return Err(Error::Syntax(text.into()));
            }
            out.push_str(&get(&after[..n]).unwrap_or_default());
            rest = &after[n..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn braced(
    body: &str,
    whole: &str,
    get: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, Error> {
    let n = body
        .char_indices()
        .take_while(|(k, c)| is_name(*c, *k == 0))
        .map(|(k, c)| k + c.len_utf8())
        .last()
        .unwrap_or(0);
    if n == 0 {
        return Err(Error::Syntax(whole.into()));
    }
    let (name, op) = body.split_at(n);
    let value = get(name);
    let set = value.is_some();
    let nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let arg = |skip: usize| expand(&op[skip..], get, depth + 1);
    match op.as_bytes() {
        [] => Ok(value.unwrap_or_default()),
        [b':', b'-', ..] => {
            if nonempty {
                Ok(value.unwrap_or_default())
            } else {
                arg(2)
            }
        }
        [b'-', ..] => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                arg(1)
            }
        }
        [b':', b'?', ..] | [b'?', ..] => {
            let colon = op.starts_with(':');
            if (colon && nonempty) || (!colon && set) {
                Ok(value.unwrap_or_default())
            } else {
                Err(Error::Required {
                    var: name.into(),
                    message: arg(if colon { 2 } else { 1 })?,
                })
            }
        }
        [b':', b'+', ..] => {
            if nonempty {
                arg(2)
            } else {
                Ok(String::new())
            }
        }
        [b'+', ..] => {
            if set {
                arg(1)
            } else {
                Ok(String::new())
            }
        }
        _ => Err(Error::Syntax(whole.into())),
    }
}

/// Parses an env file (`KEY=VALUE` lines, `#` comments, optional `export `, single or double
/// quotes around the value) into pairs, in file order. Values are taken literally, except that a
/// double-quoted value understands `\n` and `\"`. Lines without `=` name a variable with no value,
/// which is skipped. Returns the 1-based line of the first line that is not valid.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, usize> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        if k.is_empty()
            || !k
                .chars()
                .enumerate()
                .all(|(j, c)| is_name(c, j == 0) || c == '.' || c == '-')
        {
            return Err(i + 1);
        }
        let v = v.trim_start();
        let v = if let Some(q) = v.strip_prefix('"') {
            let end = q.rfind('"').ok_or(i + 1)?;
            q[..end].replace("\\n", "\n").replace("\\\"", "\"")
        } else if let Some(q) = v.strip_prefix('\'') {
            let end = q.rfind('\'').ok_or(i + 1)?;
            q[..end].to_string()
        } else {
            // An unquoted value ends at ` #` (an inline comment).
            match v.find(" #") {
                Some(c) => v[..c].trim_end().to_string(),
                None => v.trim_end().to_string(),
            }
        };
        out.retain(|(have, _)| have != k);
        out.push((k.to_string(), v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("1".into()),
            "E" => Some(String::new()),
            "B_2" => Some("two".into()),
            _ => None,
        }
    }

    #[test]
    fn table() {
        let ok = [
            ("plain", "plain"),
            ("$A", "1"),
            ("${A}", "1"),
            ("x${A}y$B_2.z", "x1ytwo.z"),
            ("$$A", "$A"),
            ("$${A}", "${A}"),
            ("${U:-d}", "d"),
            ("${E:-d}", "d"),
            ("${E-d}", ""),
            ("${U-d}", "d"),
            ("${A:-d}", "1"),
            ("${U:-${A}x}", "1x"),
            ("${A:+alt}", "alt"),
            ("${U:+alt}", ""),
            ("${E+alt}", "alt"),
            ("${U}", ""),
            ("${A:?boom}", "1"),
            ("${U:-}", ""),
        ];
        for (input, want) in ok {
            assert_eq!(interpolate(input, &env).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn errors() {
        assert_eq!(
            interpolate("${U:?set U please}", &env)
                .unwrap_err()
                .to_string(),
            "required variable U is missing a value: set U please"
        );
        assert!(matches!(
            interpolate("${E:?x}", &env),
            Err(Error::Required { .. })
        ));
        assert!(interpolate("${E?x}", &env).is_ok());
        for bad in ["${A", "${}", "${-x}", "a $ b", "${A!x}"] {
            assert!(
                matches!(interpolate(bad, &env), Err(Error::Syntax(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn env_files() {
        let t = "# c\nA=1\nexport B = two \nC=\"x\\ny\"\nD='$lit'\nE=v # comment\nNOVALUE\nA=3\n";
        let got = parse_env_file(t).unwrap();
        let want: Vec<(String, String)> = [
            ("B", "two"),
            ("C", "x\ny"),
            ("D", "$lit"),
            ("E", "v"),
            ("A", "3"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
        assert_eq!(parse_env_file("ok=1\nbad key=2\n"), Err(2));
    }
}
