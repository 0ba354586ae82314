//! DockMon's `list_containers` reply payload (spec 3.7.1): Docker's own `GET /containers/json?all=1`
//! objects, passed through byte for byte, each with three keys spliced in before its closing brace:
//! `RepoDigests` (always; `[]` when unknown), `StartedAt` and `Env` (each left out when unknown).
//!
//! No `serde_json::Value` tree, and Docker's answer is never held whole: [`super::array`] cuts it into
//! elements as it arrives, each is handled at once (a small borrowed struct reads its `Id` and
//! `ImageID`) and [`splice`] (pure) writes its text with the keys added straight into the reply;
//! strings are written by serde_json, so escaping is Docker's JSON rules. The heap a reply needs is
//! the reply itself plus one element.
//!
//! Calls per reply, one after another: the list, one image inspect per distinct `ImageID`
//! (deduplicated within the call, nothing kept across calls) and one container inspect per container.
//! Unlike the Go agent we keep no cache of start times and environments: an inspect costs dockerd about
//! a millisecond, and a cache filled from events would be a second source of truth to keep right. An
//! inspect or image inspect that fails leaves its keys out (`RepoDigests` becomes `[]`); after a
//! failure other than an HTTP status (a timeout, a lost socket) no more of them are made for this
//! reply, so a stalled engine costs one deadline, not one per container.
//!
//! Policy when full: the keys added to one reply may take `LIST_EXTRAS_MAX_BYTES` beyond the 16 bytes
//! of `"RepoDigests":[]` that every element gets. An element whose keys do not fit the rest of that
//! budget is written without `Env`, then also without `StartedAt`, then with `"RepoDigests":[]` only.
//! So a reply is at most the list answer (`LIST_BODY_MAX_BYTES`) plus that budget plus 18 bytes per
//! element. Should Docker's objects ever carry one of our keys, ours comes last, and JSON readers
//! (DockMon's Python) keep the last.
use super::array::Elements;
use super::client::UnixConn;
use super::{Client, Error};
use crate::http::conn::Deadline;
use crate::limits::*;
use serde::Deserialize;
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};

thread_local! {
    /// Bytes of the last `list_containers` payload, to size the next one (the agent has one thread).
    static LAST_REPLY_BYTES: Cell<usize> = const { Cell::new(0) };
}

/// The keys added to one list element.
#[derive(Debug, Clone, Copy)]
pub struct Extras<'a> {
    /// The image's `RepoDigests` as JSON array text (`[]` when unknown).
    pub repo_digests: &'a [u8],
    /// `State.StartedAt` of the container's inspect, `None` when unknown or never started.
    pub started_at: Option<&'a str>,
    /// `Config.Env` of the container's inspect (`KEY=value` entries), `None` when unknown.
    pub env: Option<&'a [Cow<'a, str>]>,
}

/// A list element that is not a JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAnObject;

/// `"RepoDigests":[]`: written for every element whatever the budget, so not charged to it.
const MIN_EXTRAS: &[u8] = b"\"RepoDigests\":[]";

/// Writes `element` (the text of one object of Docker's list) with `extras` spliced in before its
/// closing brace, as much of them as `budget` allows (see the module doc); `budget` is lowered by
/// what was charged. On error nothing was written.
pub fn splice(
    out: &mut Vec<u8>,
    element: &str,
    extras: &Extras,
    budget: &mut usize,
) -> Result<(), NotAnObject> {
    let element = element.trim();
    if !element.starts_with('{') || !element.ends_with('}') {
        return Err(NotAnObject);
    }
    // The object without its closing brace; `{` alone when it is empty.
    let open = &element[..element.len() - 1];
    out.extend_from_slice(open.as_bytes());
    if open.trim_end() != "{" {
        out.push(b',');
    }
    let start = out.len();
    let attempts = [
        *extras,
        Extras {
            env: None,
            ..*extras
        },
        Extras {
            env: None,
            started_at: None,
            ..*extras
        },
    ];
    let mut fitted = false;
    for attempt in &attempts {
        out.truncate(start);
        emit_extras(out, attempt);
        let cost = (out.len() - start).saturating_sub(MIN_EXTRAS.len());
        if cost <= *budget {
            *budget -= cost;
            fitted = true;
            break;
        }
    }
    if !fitted {
        out.truncate(start);
        out.extend_from_slice(MIN_EXTRAS);
    }
    out.push(b'}');
    Ok(())
}

/// `"RepoDigests":[…],"StartedAt":"…","Env":{…}`, the optional keys only when known.
fn emit_extras(out: &mut Vec<u8>, extras: &Extras) {
    out.extend_from_slice(b"\"RepoDigests\":");
    out.extend_from_slice(extras.repo_digests);
    if let Some(started) = extras.started_at {
        out.extend_from_slice(b",\"StartedAt\":");
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, started);
    }
    if let Some(env) = extras.env {
        out.extend_from_slice(b",\"Env\":");
        // Writing a map of strs into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &env_map(env));
    }
}

/// `Config.Env` as DockMon reads it (spec 3.7.1): `KEY=value` entries split at the first `=`; entries
/// without `=` or with an empty key skipped; a repeated key keeps its last value; keys sorted (the Go
/// agent's map, as Go's encoder writes it).
pub fn env_map<'e>(env: &'e [Cow<'e, str>]) -> BTreeMap<&'e str, &'e str> {
    env.iter()
        .filter_map(|entry| entry.split_once('='))
        .filter(|(key, _)| !key.is_empty())
        .collect()
}

/// `State.StartedAt` unless the container never started (Go's zero time, `0001-01-01T00:00:00Z`).
pub fn started_at(raw: &str) -> Option<&str> {
    if raw.is_empty() || raw.starts_with("0001-01-01") {
        None
    } else {
        Some(raw)
    }
}

/// The two fields of a list element we read.
#[derive(Deserialize)]
struct Summary<'a> {
    #[serde(rename = "Id", borrow, default)]
    id: Cow<'a, str>,
    #[serde(rename = "ImageID", borrow, default)]
    image_id: Cow<'a, str>,
}

/// The fields of a container inspect we read.
#[derive(Deserialize)]
struct Inspect<'a> {
    #[serde(rename = "State", borrow, default)]
    state: Option<State<'a>>,
    #[serde(rename = "Config", borrow, default)]
    config: Option<Config<'a>>,
}

#[derive(Deserialize)]
struct State<'a> {
    #[serde(rename = "StartedAt", borrow, default)]
    started_at: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Config<'a> {
    #[serde(rename = "Env", borrow, default)]
    env: Option<Vec<Cow<'a, str>>>,
}

impl Client {
    /// Appends the payload of DockMon's `list_containers` reply to `out` (after the response's
    /// opening, so the list is never copied): a JSON array of Docker's list objects with
    /// `RepoDigests`, `StartedAt` and `Env` added (see the module doc). Returns the number of
    /// elements. Fails only when the list itself fails (`out` then holds part of a payload: the
    /// caller answers with an error instead); inspect failures leave keys out.
    pub async fn list_for_dockmon(&self, out: &mut Vec<u8>) -> Result<usize, Error> {
        let mut list = self.list_reader(true, LIST_CALL_TIMEOUT_MS).await?;
        let mut extras = ExtrasState {
            digests: HashMap::new(),
            buf: Vec::new(),
            engine_ok: true,
            budget: LIST_EXTRAS_MAX_BYTES,
        };
        let mut count = 0usize;
        let start = out.len();
        // Sized once for a list like the last one: a reply is mostly what the previous one was
        // (DockMon asks every few seconds), so it is rarely grown, and at its largest it holds
        // at most `LIST_REPLY_GUESS_SLACK_BYTES` unused instead of up to a growth step (issue 14:
        // the reply's peak is the heap's high-water mark at 100 containers).
        let guess = LAST_REPLY_BYTES.with(Cell::get);
        if guess > 0 {
            out.reserve_exact(guess + LIST_REPLY_GUESS_SLACK_BYTES);
        }
        out.push(b'[');
        // Each element is handled as soon as it is complete (its inspects go over other
        // connections), so Docker's answer is never held whole next to the reply.
        while let Some(element) = list.next().await? {
            // The reply grows in steps, not by doubling: 130 KB of list would otherwise sit in a
            // 256 KB buffer at the heap's high-water mark (issue 18).
            let room = element.len() + LIST_REPLY_ELEMENT_EXTRA_BYTES;
            if out.capacity() - out.len() < room {
                out.reserve_exact(room + LIST_REPLY_GROW_BYTES);
            }
            if count > 0 {
                out.push(b',');
            }
            self.add_element(element, count, &mut extras, out).await?;
            count += 1;
        }
        out.push(b']');
        LAST_REPLY_BYTES.with(|c| c.set(out.len() - start));
        Ok(count)
    }

    /// `GET /containers/json` (`all`: with stopped containers), read one element at a time within
    /// `timeout_ms` for the whole list.
    pub async fn list_reader(&self, all: bool, timeout_ms: u64) -> Result<ListReader<'_>, Error> {
        let target = if all {
            "/containers/json?all=1"
        } else {
            "/containers/json"
        };
        let deadline = Deadline::after_ms(timeout_ms);
        let (conn, _) = self
            .open(LIST_CALL, "GET", target, true, None, &[], deadline)
            .await?;
        Ok(ListReader {
            client: self,
            conn: Some(conn),
            elements: Elements::new(LIST_ELEMENT_MAX_BYTES),
            carry: Vec::new(),
            read: 0,
            deadline,
        })
    }

    /// Writes list element `i` (Docker's text) with its extras spliced in.
    async fn add_element(
        &self,
        element: &[u8],
        i: usize,
        st: &mut ExtrasState,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let element = std::str::from_utf8(element).map_err(|_| Error::Json {
            call: LIST_CALL.to_string(),
            message: format!("element {i} is not UTF-8"),
        })?;
        let summary: Summary = serde_json::from_str(element).map_err(|e| json(LIST_CALL, e))?;

        if !st.digests.contains_key(summary.image_id.as_ref()) {
            let text = if st.engine_ok && !summary.image_id.is_empty() {
                match self
                    .image_repo_digests(&summary.image_id, &mut st.buf)
                    .await
                {
                    // Serializing strings into a Vec cannot fail.
                    Ok(list) => serde_json::to_vec(&list).unwrap_or_else(|_| b"[]".to_vec()),
                    Err(e) => {
                        log::debug!("list: image {}: {e}", summary.image_id);
                        st.engine_ok &= matches!(e, Error::Status { .. });
                        b"[]".to_vec()
                    }
                }
            } else {
                b"[]".to_vec()
            };
            st.digests.insert(summary.image_id.to_string(), text);
        }

        let mut inspected = false;
        if st.engine_ok && !summary.id.is_empty() {
            match self.inspect_raw(&summary.id, &mut st.buf).await {
                Ok(()) => inspected = true,
                Err(e) => {
                    log::debug!("list: inspect {}: {e}", summary.id);
                    st.engine_ok &= matches!(e, Error::Status { .. });
                }
            }
        }
        let inspect: Option<Inspect> = if inspected {
            serde_json::from_slice(&st.buf)
                .map_err(|e| log::debug!("list: inspect {}: {e}", summary.id))
                .ok()
        } else {
            None
        };
        let extras = Extras {
            repo_digests: st
                .digests
                .get(summary.image_id.as_ref())
                .map_or(b"[]".as_slice(), Vec::as_slice),
            started_at: inspect
                .as_ref()
                .and_then(|i| i.state.as_ref())
                .and_then(|s| started_at(&s.started_at)),
            env: inspect.as_ref().map(|i| {
                i.config
                    .as_ref()
                    .and_then(|c| c.env.as_deref())
                    .unwrap_or(&[])
            }),
        };
        splice(out, element, &extras, &mut st.budget).map_err(|NotAnObject| Error::Json {
            call: LIST_CALL.to_string(),
            message: format!("element {i} is not an object"),
        })
    }
}

const LIST_CALL: &str = "GET /containers/json";

/// Docker's container list as it arrives, one element at a time ([`Client::list_reader`]): the
/// answer is never held whole, only the element being handled and what is left of one read.
pub struct ListReader<'c> {
    client: &'c Client,
    /// `None` once the answer has ended (the connection went back to the pool).
    conn: Option<UnixConn>,
    elements: Elements,
    /// Bytes of the last read after the element it completed (at most one read's worth).
    carry: Vec<u8>,
    read: usize,
    deadline: Deadline,
}

impl ListReader<'_> {
    /// The next element's JSON text (an object), `None` after the last. Borrowed until the next call.
    pub async fn next(&mut self) -> Result<Option<&[u8]>, Error> {
        let http = |source| Error::Http {
            call: LIST_CALL.to_string(),
            source,
        };
        loop {
            if !self.carry.is_empty() {
                let (used, done) = self
                    .elements
                    .feed(&self.carry)
                    .map_err(|e| array_error(&e))?;
                self.carry.drain(..used);
                if done {
                    return Ok(Some(self.elements.element()));
                }
                continue;
            }
            let Some(conn) = self.conn.as_mut() else {
                return Ok(None);
            };
            match conn
                .read_body_slice(Some(self.deadline))
                .await
                .map_err(http)?
            {
                Some(slice) => {
                    self.read += slice.len();
                    if self.read > LIST_BODY_MAX_BYTES {
                        return Err(http(crate::http::Error::BodyTooLarge {
                            len: self.read as u64,
                            max: LIST_BODY_MAX_BYTES,
                        }));
                    }
                    let (used, done) = self.elements.feed(slice).map_err(|e| array_error(&e))?;
                    if done {
                        self.carry.extend_from_slice(&slice[used..]);
                        return Ok(Some(self.elements.element()));
                    }
                }
                None => {
                    self.elements.finish().map_err(|e| array_error(&e))?;
                    if let Some(conn) = self.conn.take() {
                        self.client.give_back(conn);
                    }
                    return Ok(None);
                }
            }
        }
    }
}

/// What one reply's elements share: image digests by image ID (each image inspected once per
/// reply), the inspect buffer, whether the engine still answers inspects, the extras budget left.
struct ExtrasState {
    digests: HashMap<String, Vec<u8>>,
    buf: Vec<u8>,
    engine_ok: bool,
    budget: usize,
}

fn array_error(e: &super::array::Error) -> Error {
    Error::Json {
        call: LIST_CALL.to_string(),
        message: e.to_string(),
    }
}

fn json(call: &str, e: serde_json::Error) -> Error {
    Error::Json {
        call: call.to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    // Recorded from Docker 20.10.24 (API 1.41, cgroup v1): see tests/fixtures/docker/README.md.
    const LIST: &str = include_str!("../../tests/fixtures/docker/list-four.json");
    const INSPECT_ENV: &[u8] = include_bytes!("../../tests/fixtures/docker/inspect-env.json");
    const INSPECT_CREATED: &[u8] =
        include_bytes!("../../tests/fixtures/docker/inspect-created.json");

    fn splice_one(element: &str, extras: &Extras, budget: usize) -> (String, usize) {
        let mut out = Vec::new();
        let mut budget = budget;
        splice(&mut out, element, extras, &mut budget).unwrap();
        (String::from_utf8(out).unwrap(), budget)
    }

    const NONE: Extras = Extras {
        repo_digests: b"[]",
        started_at: None,
        env: None,
    };

    #[test]
    fn splices_into_empty_and_full_objects() {
        let env = [Cow::Borrowed("A=1")];
        let all = Extras {
            repo_digests: br#"["nginx@sha256:0123"]"#,
            started_at: Some("2026-11-29T03:42:15.628164811Z"),
            env: Some(&env),
        };
        let cases: &[(&str, Extras, &str)] = &[
            ("{}", NONE, r#"{"RepoDigests":[]}"#),
            ("{ }", NONE, r#"{ "RepoDigests":[]}"#),
            (r#"{"Id":"x"}"#, NONE, r#"{"Id":"x","RepoDigests":[]}"#),
            ("{\"Id\":\"x\" }\n", NONE, r#"{"Id":"x" ,"RepoDigests":[]}"#),
            (
                r#"{"Labels":{}}"#,
                all,
                r#"{"Labels":{},"RepoDigests":["nginx@sha256:0123"],"StartedAt":"2026-11-29T03:42:15.628164811Z","Env":{"A":"1"}}"#,
            ),
            (
                "{}",
                Extras {
                    env: Some(&[]),
                    ..NONE
                },
                r#"{"RepoDigests":[],"Env":{}}"#,
            ),
        ];
        for (element, extras, want) in cases {
            let (got, _) = splice_one(element, extras, usize::MAX);
            assert_eq!(got, *want);
            serde_json::from_str::<Value>(&got).unwrap();
        }
        for bad in ["[]", "\"x\"", "", "{", "1"] {
            let mut out = Vec::new();
            assert_eq!(
                splice(&mut out, bad, &NONE, &mut 0),
                Err(NotAnObject),
                "{bad:?}"
            );
            assert!(out.is_empty());
        }
    }

    #[test]
    fn escapes_started_at_and_env_like_json() {
        let env = [
            Cow::Borrowed("Q=say \"hi\"\n\\"),
            Cow::Borrowed("U=\u{e9}\u{1}"),
        ];
        let extras = Extras {
            started_at: Some("odd\"time"),
            env: Some(&env),
            ..NONE
        };
        let (got, _) = splice_one("{}", &extras, usize::MAX);
        let v: Value = serde_json::from_str(&got).unwrap();
        assert_eq!(v["StartedAt"], "odd\"time");
        assert_eq!(v["Env"]["Q"], "say \"hi\"\n\\");
        assert_eq!(v["Env"]["U"], "\u{e9}\u{1}");
    }

    #[test]
    fn env_rules_of_the_spec() {
        let inspect: Inspect = serde_json::from_slice(INSPECT_ENV).unwrap();
        let env = inspect.config.unwrap().env.unwrap();
        assert_eq!(
            env,
            [
                "A=1",
                "NOEQ",
                "B=x=y",
                "UNI=\u{e9}",
                "A=2",
                "EMPTY=",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ]
        );
        let map: Vec<(&str, &str)> = env_map(&env).into_iter().collect();
        assert_eq!(
            map,
            [
                ("A", "2"),
                ("B", "x=y"),
                ("EMPTY", ""),
                (
                    "PATH",
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                ),
                ("UNI", "\u{e9}")
            ]
        );
        // Docker refuses `=x` at create; an engine that had one still gets it skipped.
        let odd = [Cow::Borrowed("=x"), Cow::Borrowed("K=v")];
        assert_eq!(env_map(&odd).into_iter().collect::<Vec<_>>(), [("K", "v")]);
    }

    #[test]
    fn started_at_is_left_out_for_never_started_containers() {
        let created: Inspect = serde_json::from_slice(INSPECT_CREATED).unwrap();
        assert_eq!(started_at(&created.state.unwrap().started_at), None);
        let running: Inspect = serde_json::from_slice(INSPECT_ENV).unwrap();
        assert_eq!(
            started_at(&running.state.unwrap().started_at),
            Some("2026-11-29T03:42:15.628164811Z")
        );
        assert_eq!(started_at(""), None);
    }

    #[test]
    fn splices_every_element_of_a_recorded_list() {
        let elements: Vec<&serde_json::value::RawValue> = serde_json::from_str(LIST).unwrap();
        let env_inspect: Inspect = serde_json::from_slice(INSPECT_ENV).unwrap();
        let env = env_inspect.config.unwrap().env.unwrap();
        let mut out = b"[".to_vec();
        let mut budget = LIST_EXTRAS_MAX_BYTES;
        for (i, element) in elements.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let summary: Summary = serde_json::from_str(element.get()).unwrap();
            assert_eq!(summary.id.len(), 64);
            assert!(summary.image_id.starts_with("sha256:"));
            let extras = Extras {
                repo_digests: br#"["dmtest/busybox@sha256:00"]"#,
                started_at: (i % 2 == 0).then_some("2026-11-29T03:42:15.628164811Z"),
                env: (i != 3).then_some(env.as_slice()),
            };
            splice(&mut out, element.get(), &extras, &mut budget).unwrap();
        }
        out.push(b']');

        let original: Value = serde_json::from_str(LIST).unwrap();
        let spliced: Value = serde_json::from_slice(&out).unwrap();
        let (original, spliced) = (original.as_array().unwrap(), spliced.as_array().unwrap());
        assert_eq!(original.len(), 4);
        assert_eq!(spliced.len(), 4);
        for (i, (o, s)) in original.iter().zip(spliced).enumerate() {
            let mut s = s.as_object().unwrap().clone();
            assert_eq!(
                s["RepoDigests"],
                serde_json::json!(["dmtest/busybox@sha256:00"])
            );
            assert_eq!(s.contains_key("StartedAt"), i % 2 == 0);
            assert_eq!(s.contains_key("Env"), i != 3);
            if i != 3 {
                assert_eq!(s["Env"]["A"], "2");
                assert_eq!(s["Env"].as_object().unwrap().len(), 5);
            }
            s.remove("RepoDigests");
            s.remove("StartedAt");
            s.remove("Env");
            assert_eq!(&Value::Object(s), o, "element {i} otherwise unchanged");
        }
        // Docker's text itself is passed through byte for byte.
        let text = String::from_utf8(out).unwrap();
        for element in &elements {
            let raw = element.get();
            assert!(text.contains(&raw[..raw.len() - 1]));
        }
    }

    #[test]
    fn a_spent_budget_drops_env_then_started_at_then_digests() {
        let env = [Cow::Borrowed("KEY=a long enough value")];
        let extras = Extras {
            repo_digests: br#"["img@sha256:0123"]"#,
            started_at: Some("2026-11-29T03:42:15.628164811Z"),
            env: Some(&env),
        };
        let (full, left) = splice_one("{}", &extras, usize::MAX);
        let full_cost = full.len() - "{}".len() - MIN_EXTRAS.len();
        assert_eq!(left, usize::MAX - full_cost);
        let (exact, left) = splice_one("{}", &extras, full_cost);
        assert_eq!((exact.as_str(), left), (full.as_str(), 0));

        let (no_env, _) = splice_one("{}", &extras, full_cost - 1);
        assert_eq!(
            no_env,
            r#"{"RepoDigests":["img@sha256:0123"],"StartedAt":"2026-11-29T03:42:15.628164811Z"}"#
        );
        let digests_only_cost = r#""RepoDigests":["img@sha256:0123"]"#.len() - MIN_EXTRAS.len();
        let (digests_only, left) = splice_one("{}", &extras, digests_only_cost);
        assert_eq!(digests_only, r#"{"RepoDigests":["img@sha256:0123"]}"#);
        assert_eq!(left, 0);
        let (bare, left) = splice_one(r#"{"Id":"x"}"#, &extras, digests_only_cost - 1);
        assert_eq!(bare, r#"{"Id":"x","RepoDigests":[]}"#);
        assert_eq!(left, digests_only_cost - 1);
        let (bare, _) = splice_one("{}", &extras, 0);
        assert_eq!(bare, r#"{"RepoDigests":[]}"#);
    }
}
