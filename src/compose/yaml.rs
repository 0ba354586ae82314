//! A compose file's YAML as a small tree of strings, with every bound checked while the parser's
//! events are pulled (so a hostile file is refused before it costs memory).
//!
//! Read this first: YAML 1.2 via `saphyr-parser`'s pull API. We keep only what compose needs:
//! scalars (as text, with whether they were plain, so `yes`/`null` rules stay the model's job),
//! sequences and mappings with their line numbers. Bounds (`crate::limits`):
//! - input at most `COMPOSE_FILE_MAX_BYTES` (checked before parsing);
//! - nesting at most `COMPOSE_YAML_MAX_DEPTH` (checked on every start event, so the parser's own
//!   state stack never grows past it);
//! - at most `COMPOSE_YAML_MAX_NODES` nodes after alias expansion: an alias costs the size of what
//!   it copies, so a "billion laughs" file stops at the budget instead of expanding.
//!
//! Duplicate keys are refused (compose does the same). The merge key `<<` (a map or a list of
//! maps) is applied: keys already present win, as in YAML 1.1's merge type that compose supports.
//! Only the first document is read; tags other than the core schema's are refused.
use crate::limits::{COMPOSE_FILE_MAX_BYTES, COMPOSE_YAML_MAX_DEPTH, COMPOSE_YAML_MAX_NODES};
use saphyr_parser::{Event, Parser, ScalarStyle};
use std::fmt;

/// One node of the tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A scalar: its text and whether it was written plain (unquoted).
    Scalar(String, bool),
    /// A sequence.
    Seq(Vec<Line<Node>>),
    /// A mapping, in file order, keys unique.
    Map(Vec<(String, Line<Node>)>),
}

/// A value with the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<T> {
    /// The value.
    pub v: T,
    /// 1-based line.
    pub line: u32,
}

/// Why a file is not YAML we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Larger than the cap.
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The cap.
        max: usize,
    },
    /// The parser's own error.
    Syntax {
        /// 1-based line.
        line: u32,
        /// The parser's message.
        message: String,
    },
    /// Nested deeper than the cap.
    TooDeep {
        /// 1-based line.
        line: u32,
    },
    /// More nodes (aliases expanded) than the cap.
    TooManyNodes {
        /// 1-based line.
        line: u32,
    },
    /// Anything else (duplicate key, non-scalar key, unknown alias, tags, empty file).
    Invalid {
        /// 1-based line.
        line: u32,
        /// What.
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooLarge { bytes, max } => {
                write!(f, "compose file is {bytes} bytes, more than {max}")
            }
            Error::Syntax { line, message } => write!(f, "yaml line {line}: {message}"),
            Error::TooDeep { line } => write!(
                f,
                "yaml line {line}: nested deeper than {COMPOSE_YAML_MAX_DEPTH} levels"
            ),
            Error::TooManyNodes { line } => write!(
                f,
                "yaml line {line}: more than {COMPOSE_YAML_MAX_NODES} nodes (aliases expanded); refused"
            ),
            Error::Invalid { line, message } => write!(f, "yaml line {line}: {message}"),
        }
    }
}

enum Open {
    Seq(Vec<Line<Node>>, usize, u32),
    /// Items, the key waiting for its value, anchor, start line, `<<` values (applied at the end,
    /// so explicit keys win wherever they stand).
    Map(
        Vec<(String, Line<Node>)>,
        Option<Line<Node>>,
        usize,
        u32,
        Vec<(Node, u32)>,
    ),
}

fn count(n: &Node) -> usize {
    match n {
        Node::Scalar(..) => 1,
        Node::Seq(items) => 1 + items.iter().map(|i| count(&i.v)).sum::<usize>(),
        Node::Map(items) => 1 + items.iter().map(|(_, v)| count(&v.v)).sum::<usize>(),
    }
}

/// Parses the first document of `text` into a tree (see the module doc for the bounds). An empty
/// document is an empty map.
pub fn parse(text: &str) -> Result<Node, Error> {
    if text.len() > COMPOSE_FILE_MAX_BYTES {
        return Err(Error::TooLarge {
            bytes: text.len(),
            max: COMPOSE_FILE_MAX_BYTES,
        });
    }
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut anchors: Vec<(usize, Node)> = Vec::new();
    let mut nodes = 0usize;
    let mut root: Option<Node> = None;
    let mut seen_doc = false;
    loop {
        let (ev, span) = match parser.next_event() {
            None => break,
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                return Err(Error::Syntax {
                    line: e.marker().line() as u32,
                    message: e.info().to_string(),
                })
            }
        };
        let line = span.start.line() as u32;
        let invalid = |message: String| Error::Invalid { line, message };
        let done: Option<(Node, usize, u32)> = match ev {
            Event::StreamStart | Event::Nothing => None,
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                if seen_doc {
                    break;
                }
                seen_doc = true;
                None
            }
            Event::DocumentEnd => break,
            Event::Alias(id) => {
                let node = anchors
                    .iter()
                    .rev()
                    .find(|(a, _)| *a == id)
                    .map(|(_, n)| n)
                    .ok_or_else(|| invalid("alias to an unknown anchor".into()))?;
                nodes += count(node);
                if nodes > COMPOSE_YAML_MAX_NODES {
                    return Err(Error::TooManyNodes { line });
                }
                Some((node.clone(), 0, line))
            }
            Event::Scalar(text, style, anchor, tag) => {
                if let Some(tag) = tag {
                    if !tag.is_yaml_core_schema() {
                        return Err(invalid(format!(
                            "tag {}{} is not supported",
                            tag.handle, tag.suffix
                        )));
                    }
                }
                nodes += 1;
                if nodes > COMPOSE_YAML_MAX_NODES {
                    return Err(Error::TooManyNodes { line });
                }
                Some((
                    Node::Scalar(text.into_owned(), style == ScalarStyle::Plain),
                    anchor,
                    line,
                ))
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= COMPOSE_YAML_MAX_DEPTH {
                    return Err(Error::TooDeep { line });
                }
                nodes += 1;
                if nodes > COMPOSE_YAML_MAX_NODES {
                    return Err(Error::TooManyNodes { line });
                }
                stack.push(if matches!(ev, Event::SequenceStart(..)) {
                    Open::Seq(Vec::new(), anchor, line)
                } else {
                    Open::Map(Vec::new(), None, anchor, line, Vec::new())
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Open::Seq(items, anchor, start)) => Some((Node::Seq(items), anchor, start)),
                _ => return Err(invalid("unbalanced sequence".into())),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Open::Map(mut items, None, anchor, start, merges)) => {
                    for (m, line) in merges {
                        merge(&mut items, m, line)?;
                    }
                    Some((Node::Map(items), anchor, start))
                }
                _ => return Err(invalid("unbalanced mapping".into())),
            },
        };
        let Some((node, anchor, start_line)) = done else {
            continue;
        };
        if anchor != 0 {
            anchors.push((anchor, node.clone()));
        }
        attach(&mut stack, &mut root, node, start_line)?;
    }
    if !stack.is_empty() {
        return Err(Error::Invalid {
            line: 0,
            message: "unexpected end of input".into(),
        });
    }
    Ok(root.unwrap_or(Node::Map(Vec::new())))
}

fn attach(stack: &mut [Open], root: &mut Option<Node>, node: Node, line: u32) -> Result<(), Error> {
    match stack.last_mut() {
        None => *root = Some(node),
        Some(Open::Seq(items, _, _)) => items.push(Line { v: node, line }),
        Some(Open::Map(items, pending, _, _, merges)) => match pending.take() {
            None => {
                if !matches!(node, Node::Scalar(..)) {
                    return Err(Error::Invalid {
                        line,
                        message: "a mapping key must be a scalar".into(),
                    });
                }
                *pending = Some(Line { v: node, line });
            }
            Some(Line {
                v: Node::Scalar(key, _),
                line: key_line,
            }) => {
                if key == "<<" {
                    merges.push((node, key_line));
                } else {
                    if items.iter().any(|(k, _)| *k == key) {
                        return Err(Error::Invalid {
                            line: key_line,
                            message: format!("duplicate key `{key}`"),
                        });
                    }
                    items.push((
                        key,
                        Line {
                            v: node,
                            line: key_line,
                        },
                    ));
                }
            }
            Some(_) => unreachable!("only scalar keys are kept pending"),
        },
    }
    Ok(())
}

/// YAML merge key: every key of the merged map(s) not already present is added.
fn merge(items: &mut Vec<(String, Line<Node>)>, node: Node, line: u32) -> Result<(), Error> {
    let maps = match node {
        Node::Map(m) => vec![m],
        Node::Seq(list) => {
            let mut maps = Vec::new();
            for l in list {
                match l.v {
                    Node::Map(m) => maps.push(m),
                    _ => {
                        return Err(Error::Invalid {
                            line,
                            message: "`<<` takes a mapping or a list of mappings".into(),
                        })
                    }
                }
            }
            maps
        }
        Node::Scalar(..) => {
            return Err(Error::Invalid {
                line,
                message: "`<<` takes a mapping or a list of mappings".into(),
            })
        }
    };
    for m in maps {
        for (k, v) in m {
            if !items.iter().any(|(have, _)| *have == k) {
                items.push((k, v));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: &str) -> Node {
        Node::Scalar(t.into(), true)
    }

    #[test]
    fn reads_maps_lists_and_lines() {
        let n = parse("a: 1\nb:\n  - x\n  - 'y'\n").unwrap();
        let Node::Map(m) = n else { panic!() };
        assert_eq!(m[0].0, "a");
        assert_eq!(m[0].1.v, s("1"));
        assert_eq!(m[1].1.line, 2);
        let Node::Seq(l) = &m[1].1.v else { panic!() };
        assert_eq!(l[1].v, Node::Scalar("y".into(), false));
    }

    #[test]
    fn empty_is_an_empty_map() {
        assert_eq!(parse("").unwrap(), Node::Map(vec![]));
    }

    #[test]
    fn refuses_duplicates_with_their_line() {
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.to_string(), "yaml line 3: duplicate key `a`");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = parse("services:\n  web:\n    image: [a\n").unwrap_err();
        assert!(matches!(e, Error::Syntax { .. }), "{e}");
        assert!(e.to_string().starts_with("yaml line"), "{e}");
    }

    #[test]
    fn merge_keys_and_aliases() {
        let n = parse("x: &d {a: 1, b: 2}\ny:\n  <<: *d\n  b: 3\n").unwrap();
        let Node::Map(m) = n else { panic!() };
        let Node::Map(y) = &m[1].1.v else { panic!() };
        let keys: Vec<_> = y.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a"]);
        assert_eq!(y[0].1.v, s("3"));
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut t = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
        let mut prev = "a";
        for n in names {
            t.push_str(&format!("{n}: &{n} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
            prev = n;
        }
        let e = parse(&t).unwrap_err();
        assert!(matches!(e, Error::TooManyNodes { .. }), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let t = "[".repeat(COMPOSE_YAML_MAX_DEPTH + 5);
        let e = parse(&t).unwrap_err();
        assert!(
            matches!(e, Error::TooDeep { .. } | Error::Syntax { .. }),
            "{e}"
        );
        let t = "a:\n".to_string()
            + &(1..COMPOSE_YAML_MAX_DEPTH + 3)
                .map(|i| format!("{}k:\n", "  ".repeat(i)))
                .collect::<String>();
        assert!(matches!(parse(&t).unwrap_err(), Error::TooDeep { .. }));
    }

    #[test]
    fn too_large_is_refused_before_parsing() {
        let t = "#".repeat(COMPOSE_FILE_MAX_BYTES + 1);
        assert!(matches!(parse(&t).unwrap_err(), Error::TooLarge { .. }));
    }

    #[test]
    fn custom_tags_are_refused() {
        assert!(parse("a: !custom x\n").is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        for t in [
            "{",
            "]",
            "a: *x",
            "- - - -",
            "? a\n: b",
            "a: |\n  x\n b",
            "&a a: 1",
            "\t",
        ] {
            let _ = parse(t);
        }
    }
}
