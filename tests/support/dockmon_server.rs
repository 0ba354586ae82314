//! A protocol test server that models the DockMon backend's agent endpoint (`/api/agent/ws`).
//!
//! Read this first: the DockMon agent protocol, sections 2, 3 and 7, is the contract
//! modelled here; comments cite them as "spec 2.4/7" (section 2.4, rule 7). Texts the backend sends
//! are those of the HEAD backend sources the spec was written from (`backend/agent/manager.py`,
//! `models.py`, `command_executor.py`, `container_operations.py`) and of pydantic 2.10.
//!
//! What it owns: a listener on `127.0.0.1:<ephemeral>`; one thread per accepted socket (the front
//! door: `GET /health`, HTTP 404 for other paths, the WebSocket upgrade on `/api/agent/ws`, then
//! registration and the receive loop); one backend thread (command timeouts and the
//! `list_containers` poller); and an in-memory "database" (registration tokens, agents, hosts) that
//! survives agent reconnects and [`DockmonServer::restart`].
//!
//! What it must not do: special-case our agent. It is a model of the backend, so it never panics
//! on agent input: a frame the backend cannot handle closes the socket the way the backend does
//! (1011, 1008, 1009). Every blocking call has a deadline; every thread stops when the
//! [`DockmonServer`] is dropped.
//!
//! Layout: `py` (the Python formatting the backend's texts depend on), `schema` (spec 2.4 rules
//! 2-13, pure), `breaker` (spec 2.7, pure, time as an argument), `wire` (raw frame builder for
//! hostile-frame injection), then the in-memory state (rules 14-17, routing 3.2, the executor 3.3/3.4),
//! the socket code and the test-facing API.
//!
//! Capacities and policy when full: the logs of received frames, sent frames and backend log lines
//! keep the newest `*_CAP_COUNT` entries (oldest evicted); an HTTP head is capped at
//! [`HEAD_CAP_BYTES`] (431 beyond); a WebSocket message at [`MAX_MESSAGE_BYTES`] (close 1009, checked
//! on the frame header before the payload is read).
// Each test binary uses a different part of this API. The `unused` group (dead code, unused
// re-exports) rather than `dead_code` alone, so a test file that also puts `#[allow(dead_code)]` on
// its `mod` line does not trip clippy's `duplicated_attributes`.
#![allow(unused)]

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Message, WebSocket};

pub use self::breaker::BreakerState;
pub use self::schema::{check_registration, Registration, Rejection};

/// Poll granularity of a socket thread (its read timeout between looks at the outbox, keepalive
/// and auth deadline) and of the backend thread. 10 ms is far below every timeout modelled.
const POLL: Duration = Duration::from_millis(10);
/// Largest HTTP request head accepted: h11's default `max_incomplete_event_size` (uvicorn).
pub const HEAD_CAP_BYTES: usize = 16 * 1024;
/// Largest WebSocket message: uvicorn's `ws_max_size` default, 16 MiB (spec 2.2).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// A write that blocks longer drops the socket (the agent side uses the same 10 s, spec 2.2).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a client to send a complete HTTP head.
const FRONT_DOOR_DEADLINE: Duration = Duration::from_secs(10);
/// How long the server waits for the peer's close frame after sending its own. websockets waits
/// 10 s; 1 s keeps tests quick and is ample for a peer on loopback.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Close wait when the whole server is being dropped.
const STOP_CLOSE_WAIT: Duration = Duration::from_millis(200);
/// How long `restart` tries to listen on the same port again.
const REBIND_DEADLINE: Duration = Duration::from_secs(5);
/// Received-frame log: newest kept. One agent with ten containers sends ~10 frames a second, so
/// this is hours of a test run.
const FRAMES_CAP_COUNT: usize = 200_000;
/// Sent-frame log: newest kept.
const SENT_CAP_COUNT: usize = 50_000;
/// Backend log lines: newest kept.
const LOG_CAP_COUNT: usize = 10_000;
/// Starlette's `websocket.close(code=1011, reason=...)` in the handler's catch-all (spec 2.2).
const INTERNAL_ERROR: &str = "Internal error";
/// Events the backend dispatches (spec 3.2 rule 6).
const KNOWN_EVENTS: &[&str] = &[
    "container_event",
    "container_stats",
    "health_check_result",
    "update_progress",
    "update_layer_progress",
    "update_complete",
    "selfupdate_progress",
    "deploy_progress",
    "deploy_complete",
    "shell_data",
];
/// Actions the backend inspects before, refusing to act on DockMon itself (spec 3.4).
const SAFETY_CHECKED_ACTIONS: &[&str] = &["stop", "restart", "kill", "rename", "remove"];

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/// Which backend release is modelled; only the registration schema differs (spec 2.4 rules 4, 7
/// and spec 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BackendVersion {
    /// v2.2.0: colons rejected in `token`/`engine_id`; the v2.2.0 key set plus `host_ip`.
    V2_2_0,
    /// v2.2.1: colons allowed; same keys as v2.2.0.
    V2_2_1,
    /// v2.2.11: adds `host_ips`.
    V2_2_11,
    /// v2.4.1 and later (HEAD): adds `hostname_source` and `force_unique_registration`.
    V2_4_1,
}

impl BackendVersion {
    /// The HEAD backend (v2.4.5): same registration schema as v2.4.1.
    pub const HEAD: BackendVersion = BackendVersion::V2_4_1;
}

/// A row of `registration_tokens` (spec 2.4/15).
#[derive(Clone, Debug)]
pub struct RegistrationToken {
    pub token: String,
    /// `None` = unlimited (a multi-use token); the UI's default token has 1.
    pub max_uses: Option<u32>,
    /// `None` = never expires (the real backend always sets 15 minutes).
    pub expires_at: Option<SystemTime>,
}

/// When the container poller sends `list_containers` (spec 2.6/5, 7): the first delay after auth,
/// then the delay after each reply or timeout, each drawn uniformly from its range.
#[derive(Clone, Debug)]
pub struct ListSchedule {
    pub first: (Duration, Duration),
    pub every: (Duration, Duration),
}

impl Default for ListSchedule {
    fn default() -> Self {
        ListSchedule {
            // Observed 0.1-2 s after connect (spec 2.6/5).
            first: (Duration::from_millis(100), Duration::from_secs(2)),
            // "Again at irregular intervals" (spec 7); the real poller follows the UI's polling
            // setting, a few seconds.
            every: (Duration::from_secs(1), Duration::from_secs(5)),
        }
    }
}

/// Server options; `Options::default()` models a HEAD backend with no tokens.
#[derive(Clone, Debug)]
pub struct Options {
    pub tokens: Vec<RegistrationToken>,
    pub version: BackendVersion,
    /// WebSocket ping interval (uvicorn default 20 s, spec 2.2).
    pub ping_interval: Duration,
    /// Pong deadline after each ping (uvicorn default 20 s, spec 2.2).
    pub pong_timeout: Duration,
    /// `None` disables the poller.
    pub list_containers: Option<ListSchedule>,
    /// First frame deadline (30 s, spec 2.4/1).
    pub auth_timeout: Duration,
    /// Multiplies every command reply timeout of the spec 3.3/3.4 tables (1.0 = real values).
    pub timeout_scale: f64,
    /// Circuit breaker failure window (60 s, spec 2.7).
    pub breaker_window: Duration,
    /// How long an open breaker rejects commands (30 s, spec 2.7).
    pub breaker_open: Duration,
    /// Engine IDs of `docker_hosts` rows with `connection_type='local'` (spec 2.4/17).
    pub local_engine_ids: Vec<String>,
    /// Seed for UUIDs, ping payloads and poll intervals; `None` = from the clock (printed at start).
    pub seed: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tokens: Vec::new(),
            version: BackendVersion::HEAD,
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(20),
            list_containers: Some(ListSchedule::default()),
            auth_timeout: Duration::from_secs(30),
            timeout_scale: 1.0,
            breaker_window: Duration::from_secs(60),
            breaker_open: Duration::from_secs(30),
            local_engine_ids: Vec::new(),
            seed: None,
        }
    }
}

impl Options {
    /// Adds a registration token.
    pub fn with_token(
        mut self,
        token: &str,
        max_uses: Option<u32>,
        expires_at: Option<SystemTime>,
    ) -> Self {
        self.tokens.push(RegistrationToken {
            token: token.to_owned(),
            max_uses,
            expires_at,
        });
        self
    }
    pub fn with_version(mut self, version: BackendVersion) -> Self {
        self.version = version;
        self
    }
    pub fn with_keepalive(mut self, ping_interval: Duration, pong_timeout: Duration) -> Self {
        self.ping_interval = ping_interval;
        self.pong_timeout = pong_timeout;
        self
    }
    pub fn with_list_containers(mut self, schedule: Option<ListSchedule>) -> Self {
        self.list_containers = schedule;
        self
    }
    pub fn with_auth_timeout(mut self, timeout: Duration) -> Self {
        self.auth_timeout = timeout;
        self
    }
    pub fn with_timeout_scale(mut self, scale: f64) -> Self {
        self.timeout_scale = scale;
        self
    }
    pub fn with_breaker(mut self, window: Duration, open: Duration) -> Self {
        self.breaker_window = window;
        self.breaker_open = open;
        self
    }
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Records handed to tests
// ---------------------------------------------------------------------------------------------

/// A successful registration (spec 2.5).
#[derive(Clone, Debug)]
pub struct AgentInfo {
    pub agent_id: String,
    pub host_id: String,
    pub permanent_token: String,
    /// The registration frame as the agent sent it.
    pub register: Value,
    /// When `auth_success` was sent.
    pub at: Instant,
    pub connection: u64,
    /// True when the token was a permanent token (spec 2.4/16).
    pub reconnect: bool,
}

/// One WebSocket frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Text(String),
    /// A binary message received, or raw bytes injected by the server.
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

/// How the backend treated a received text frame (spec 3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// The first frame, handled as registration (spec 2.4).
    Auth,
    /// Rule 1: a command reply; `matched` if a pending command had this ID.
    Reply { id: String, matched: bool },
    /// Rule 2: `{"type":"stats"}`.
    HostStats,
    /// Rule 3.
    Progress,
    /// Rule 4.
    ErrorReport,
    /// Rule 5.
    Heartbeat,
    /// Rule 6: `known` if the event name is dispatched, else logged and ignored.
    Event { name: String, known: bool },
    /// Rule 7: logged and ignored.
    Unknown,
    /// The backend could not handle it and closed the socket with 1011.
    Fatal,
}

/// A frame received from a client.
#[derive(Clone, Debug)]
pub struct Received {
    pub connection: u64,
    pub agent_id: Option<String>,
    pub at: Instant,
    pub frame: Frame,
    /// Set for text and binary frames.
    pub route: Option<Route>,
}

/// A frame the server wrote.
#[derive(Clone, Debug)]
pub struct Sent {
    pub connection: u64,
    pub at: Instant,
    pub frame: Frame,
}

/// The server ended a socket: with a close frame (`code`), or by dropping TCP (`None`).
#[derive(Clone, Debug)]
pub struct ServerClose {
    pub connection: u64,
    pub code: Option<u16>,
    pub reason: String,
    pub at: Instant,
}

/// The upgrade request of a WebSocket connection.
#[derive(Clone, Debug)]
pub struct Handshake {
    pub connection: u64,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

/// The result of a command, as the backend's executor sees it (spec 3.2, last paragraph).
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// `payload` if present, else `data`, else the whole reply.
    Success(Value),
    /// Error text: the agent's `error`, an invalid reply, a timeout, an open breaker, a refusal.
    Failed(String),
    /// Still waiting.
    Pending,
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success(_))
    }
}

/// A failed command counted by an agent's circuit breaker (spec 2.7).
#[derive(Clone, Debug)]
pub struct Failure {
    pub agent_id: String,
    pub command: String,
    pub id: String,
    pub error: String,
    pub at: Instant,
}

/// Which received events [`DockmonServer::events`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `event` / `container_event` payloads (spec 3.5.1).
    ContainerEvent,
    /// `event` / `container_stats` payloads (spec 4.2).
    ContainerStats,
    /// The `stats` object of `{"type":"stats"}` frames (spec 4.4).
    HostStats,
}

/// A misbehaviour of the server in answer to the next registration frame, for agent fault tests.
#[derive(Clone, Debug)]
pub enum AuthFault {
    /// Drop TCP without a reply.
    Drop,
    /// Never answer (the auth timeout still applies).
    NoReply,
    /// Write these bytes instead of a reply (then carry on unauthenticated).
    Raw(Vec<u8>),
}

// ---------------------------------------------------------------------------------------------
// Python formatting
// ---------------------------------------------------------------------------------------------

/// The Python behaviour the backend's texts depend on: `str()`, `repr()`, truthiness.
mod py {
    use serde_json::{Number, Value};

    /// `str(x)` of a value decoded by `json.loads` (`None` for a missing key).
    pub fn str_of(v: Option<&Value>) -> String {
        match v {
            None | Some(Value::Null) => "None".to_owned(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => repr(other),
        }
    }

    /// `repr(x)`. Dict keys come out in serde_json's (sorted) order, not insertion order.
    pub fn repr(v: &Value) -> String {
        match v {
            Value::Null => "None".to_owned(),
            Value::Bool(true) => "True".to_owned(),
            Value::Bool(false) => "False".to_owned(),
            Value::Number(n) => number(n),
            Value::String(s) => repr_str(s),
            Value::Array(items) => {
                format!(
                    "[{}]",
                    items.iter().map(repr).collect::<Vec<_>>().join(", ")
                )
            }
            Value::Object(m) => format!(
                "{{{}}}",
                m.iter()
                    .map(|(k, v)| format!("{}: {}", repr_str(k), repr(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// `repr()` of an optional string (`None` when absent).
    pub fn repr_opt(v: Option<&str>) -> String {
        v.map_or_else(|| "None".to_owned(), repr_str)
    }

    pub fn number(n: &Number) -> String {
        if let Some(i) = n.as_i64() {
            return i.to_string();
        }
        if let Some(u) = n.as_u64() {
            return u.to_string();
        }
        float(n.as_f64().unwrap_or(f64::NAN))
    }

    /// `repr(float)`: shortest round trip, `.0` on integral values, exponent form outside
    /// 1e-4..1e16 (`1e+20`).
    pub fn float(f: f64) -> String {
        if f.is_nan() {
            return "nan".to_owned();
        }
        if f.is_infinite() {
            return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
        }
        let a = f.abs();
        if a != 0.0 && !(1e-4..1e16).contains(&a) {
            let s = format!("{f:e}");
            let (mantissa, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
            let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
            return format!("{mantissa}e{sign}{digits:0>2}");
        }
        if f.fract() == 0.0 {
            format!("{f:.1}")
        } else {
            format!("{f}")
        }
    }

    /// `repr(str)`: single quotes unless the text holds `'` and no `"`.
    pub fn repr_str(s: &str) -> String {
        let quote = if s.contains('\'') && !s.contains('"') {
            '"'
        } else {
            '\''
        };
        let mut out = String::with_capacity(s.len() + 2);
        out.push(quote);
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c == quote => {
                    out.push('\\');
                    out.push(c);
                }
                c if !printable(c) => {
                    let n = u32::from(c);
                    if n <= 0xff {
                        out.push_str(&format!("\\x{n:02x}"));
                    } else if n <= 0xffff {
                        out.push_str(&format!("\\u{n:04x}"));
                    } else {
                        out.push_str(&format!("\\U{n:08x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push(quote);
        out
    }

    /// `str.isprintable()` for one character, approximated: controls and separators other than
    /// the ASCII space are not printable. (Python also rejects format and unassigned code points;
    /// std has no table for them.)
    pub fn printable(c: char) -> bool {
        c == ' ' || !(c.is_control() || c.is_whitespace())
    }

    /// Python truthiness.
    pub fn truthy(v: &Value) -> bool {
        match v {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(m) => !m.is_empty(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Registration schema (spec 2.4 rules 2-13)
// ---------------------------------------------------------------------------------------------

/// The registration message checks that need no database: rules 2-13 of spec 2.4, as
/// `AgentRegistrationRequest` (pydantic 2.10, lax mode, `extra='forbid'`) does them. Pure.
///
/// pydantic validates the fields in definition order and only then reports unknown keys (in
/// input order); the backend reports the first error only, so a missing field wins over an
/// unknown key.
pub mod schema {
    use super::{py, BackendVersion};
    use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
    use serde_json::{Map, Value};
    use std::fmt;
    use std::net::{IpAddr, Ipv6Addr};

    /// Why a registration frame was refused.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Rejection {
        /// Close 1011, no `auth_error`: not JSON, or JSON that is not an object (spec 2.4/2).
        Internal,
        /// `auth_error` with this text, then close 1008 (spec 2.5).
        AuthError(String),
    }

    /// A registration message that passed the schema, after the backend's sanitisers (rule 13).
    #[derive(Clone, Debug)]
    pub struct Registration {
        pub token: String,
        pub engine_id: String,
        pub hostname: Option<String>,
        pub hostname_source: Option<String>,
        pub force_unique: bool,
        /// Every model field of the modelled version after validation (`null` for `None`).
        pub fields: Map<String, Value>,
    }

    #[derive(Clone, Copy)]
    enum Clean {
        Keep,
        /// `sanitize_html`: strip `<`/`>` and non-printables, trim.
        Html,
        /// `validate_timestamp`: strip `<`/`>`.
        Timestamp,
    }

    enum Kind {
        Text {
            max: usize,
            required: bool,
            clean: Clean,
        },
        /// `token`/`engine_id`: `str`, max 255, then the ID pattern (rule 7).
        Id,
        /// `Dict[str, bool]` (rule 8).
        Caps,
        /// `Optional[Literal[...]]` (rule 9).
        Source,
        /// `Optional[bool] = False` (rule 10).
        Flag,
        /// `Optional[int]`, `gt=0`, `le=...` (rule 11).
        Count { le: i128 },
        /// `Optional[List[str]]`, `max_length=50`, invalid IPs dropped (rule 12).
        Ips,
    }

    struct Field {
        name: &'static str,
        kind: Kind,
        since: BackendVersion,
    }

    const fn text(name: &'static str, max: usize, required: bool, clean: Clean) -> Field {
        Field {
            name,
            kind: Kind::Text {
                max,
                required,
                clean,
            },
            since: BackendVersion::V2_2_0,
        }
    }

    /// The model's fields in definition order (HEAD `backend/agent/models.py`).
    const FIELDS: &[Field] = &[
        // `type` also has `pattern='^register$'`, always true here: rule 3 runs first.
        text("type", usize::MAX, true, Clean::Keep),
        Field {
            name: "token",
            kind: Kind::Id,
            since: BackendVersion::V2_2_0,
        },
        Field {
            name: "engine_id",
            kind: Kind::Id,
            since: BackendVersion::V2_2_0,
        },
        text("version", 50, true, Clean::Keep),
        text("proto_version", 20, true, Clean::Keep),
        Field {
            name: "capabilities",
            kind: Kind::Caps,
            since: BackendVersion::V2_2_0,
        },
        text("hostname", 255, false, Clean::Html),
        Field {
            name: "hostname_source",
            kind: Kind::Source,
            since: BackendVersion::V2_4_1,
        },
        Field {
            name: "force_unique_registration",
            kind: Kind::Flag,
            since: BackendVersion::V2_4_1,
        },
        text("os_type", 50, false, Clean::Html),
        text("os_version", 500, false, Clean::Html),
        text("kernel_version", 255, false, Clean::Html),
        text("docker_version", 50, false, Clean::Html),
        text("daemon_started_at", 100, false, Clean::Timestamp),
        Field {
            name: "total_memory",
            kind: Kind::Count {
                le: 1_000_000_000_000_000,
            },
            since: BackendVersion::V2_2_0,
        },
        Field {
            name: "num_cpus",
            kind: Kind::Count { le: 10_000 },
            since: BackendVersion::V2_2_0,
        },
        text("agent_os", 20, false, Clean::Html),
        text("agent_arch", 20, false, Clean::Html),
        text("host_ip", 45, false, Clean::Html),
        Field {
            name: "host_ips",
            kind: Kind::Ips,
            since: BackendVersion::V2_2_11,
        },
    ];

    const NOT_STRING: &str = "Input should be a valid string";
    const REQUIRED: &str = "Field required";

    /// Checks a registration frame's text as the backend's handler and model do (spec 2.4 rules
    /// 2-13). Business rules (14-17) need the database and live in the server state.
    pub fn check_registration(
        text: &str,
        version: BackendVersion,
    ) -> Result<Registration, Rejection> {
        // Rule 2: Starlette `receive_json()`, then `message.get(...)` (AttributeError on a list).
        let value: Value = serde_json::from_str(text).map_err(|_| Rejection::Internal)?;
        let Value::Object(obj) = &value else {
            return Err(Rejection::Internal);
        };
        // Rule 3.
        match obj.get("type") {
            Some(Value::String(t)) if t == "register" => {}
            other => {
                return Err(Rejection::AuthError(format!(
                    "Invalid authentication type: {}",
                    py::str_of(other)
                )))
            }
        }
        let ordered = parse_ordered(text).ok_or(Rejection::Internal)?;
        validate(&ordered, version).map_err(Rejection::AuthError)
    }

    /// A JSON object's members in input order, a repeated key keeping its first position and its
    /// last value (as Python's `json.loads` builds a dict). `None` if not a JSON object.
    pub fn parse_ordered(text: &str) -> Option<Vec<(String, Value)>> {
        serde_json::from_str::<Ordered>(text).ok().map(|o| o.0)
    }

    struct Ordered(Vec<(String, Value)>);

    impl<'de> Deserialize<'de> for Ordered {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct OrderedVisitor;
            impl<'de> Visitor<'de> for OrderedVisitor {
                type Value = Ordered;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                    let mut out: Vec<(String, Value)> = Vec::new();
                    while let Some((key, value)) = map.next_entry::<String, Value>()? {
                        match out.iter_mut().find(|(k, _)| *k == key) {
                            Some(slot) => slot.1 = value,
                            None => out.push((key, value)),
                        }
                    }
                    Ok(Ordered(out))
                }
            }
            deserializer.deserialize_map(OrderedVisitor)
        }
    }

    fn invalid(msg: &str, field: &str) -> String {
        format!("Invalid registration data: {msg} (field: {field})")
    }

    fn validate(
        input: &[(String, Value)],
        version: BackendVersion,
    ) -> Result<Registration, String> {
        let model = || FIELDS.iter().filter(|f| f.since <= version);
        let mut fields = Map::new();
        for f in model() {
            let given = input.iter().find(|(k, _)| k == f.name).map(|(_, v)| v);
            let v = check_field(&f.kind, given, version).map_err(|msg| invalid(&msg, f.name))?;
            fields.insert(f.name.to_owned(), v);
        }
        // Rule 4: unknown keys, reported after every field error.
        if let Some((extra, _)) = input.iter().find(|(k, _)| !model().any(|f| f.name == k)) {
            return Err(invalid("Extra inputs are not permitted", extra));
        }
        let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
        Ok(Registration {
            token: text("token").unwrap_or_default(),
            engine_id: text("engine_id").unwrap_or_default(),
            hostname: text("hostname"),
            hostname_source: text("hostname_source"),
            force_unique: fields
                .get("force_unique_registration")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            fields,
        })
    }

    fn check_field(
        kind: &Kind,
        given: Option<&Value>,
        version: BackendVersion,
    ) -> Result<Value, String> {
        match *kind {
            Kind::Text {
                max,
                required,
                clean,
            } => check_text(given, max, required).map(|v| sanitise(v, clean)),
            Kind::Id => {
                let v = check_text(given, 255, true)?;
                check_id(v.as_str().unwrap_or_default(), version)?;
                Ok(v)
            }
            Kind::Caps => match given {
                None => Err(REQUIRED.to_owned()),
                Some(Value::Object(m)) => {
                    let mut out = Map::new();
                    for (k, v) in m {
                        out.insert(k.clone(), Value::Bool(lax_bool(v)?));
                    }
                    Ok(Value::Object(out))
                }
                Some(_) => Err("Input should be a valid dictionary".to_owned()),
            },
            Kind::Source => match given {
                None | Some(Value::Null) => Ok(Value::Null),
                Some(Value::String(s))
                    if ["agent_name", "daemon", "os", "engine_id"].contains(&s.as_str()) =>
                {
                    Ok(Value::String(s.clone()))
                }
                Some(_) => {
                    Err("Input should be 'agent_name', 'daemon', 'os' or 'engine_id'".to_owned())
                }
            },
            Kind::Flag => match given {
                None => Ok(Value::Bool(false)),
                Some(Value::Null) => Ok(Value::Null),
                Some(v) => lax_bool(v).map(Value::Bool),
            },
            Kind::Count { le } => match given {
                None | Some(Value::Null) => Ok(Value::Null),
                Some(v) => {
                    let n = lax_int(v)?;
                    if n <= 0 {
                        Err("Input should be greater than 0".to_owned())
                    } else if n > le {
                        Err(format!("Input should be less than or equal to {le}"))
                    } else {
                        // 0 < n <= 10^15, so it fits.
                        Ok(Value::from(u64::try_from(n).unwrap_or(u64::MAX)))
                    }
                }
            },
            Kind::Ips => check_ips(given),
        }
    }

    fn check_text(given: Option<&Value>, max: usize, required: bool) -> Result<Value, String> {
        match given {
            None if required => Err(REQUIRED.to_owned()),
            None => Ok(Value::Null),
            Some(Value::Null) if !required => Ok(Value::Null),
            Some(Value::String(s)) => {
                if s.chars().count() > max {
                    let plural = if max == 1 { "" } else { "s" };
                    Err(format!(
                        "String should have at most {max} character{plural}"
                    ))
                } else {
                    Ok(Value::String(s.clone()))
                }
            }
            Some(_) => Err(NOT_STRING.to_owned()),
        }
    }

    /// Rule 7: `re.match(r'^[a-zA-Z0-9\-_:]+$', v)`. Python's `$` also matches before a final
    /// newline, so `"abc\n"` passes (and is stored with its newline).
    fn check_id(s: &str, version: BackendVersion) -> Result<(), String> {
        let colons = version >= BackendVersion::V2_2_1;
        let body = s.strip_suffix('\n').unwrap_or(s);
        let ok = !body.is_empty()
            && body
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || (colons && c == ':'));
        if ok {
            Ok(())
        } else if colons {
            Err("Value error, ID must contain only alphanumeric characters, hyphens, underscores, and colons".to_owned())
        } else {
            // v2.2.0's pattern had no colon; its message is reconstructed from the HEAD one.
            Err("Value error, ID must contain only alphanumeric characters, hyphens, and underscores".to_owned())
        }
    }

    fn sanitise(v: Value, clean: Clean) -> Value {
        let Value::String(s) = &v else { return v };
        if s.is_empty() {
            return v;
        }
        let no_tags = s.chars().filter(|c| *c != '<' && *c != '>');
        match clean {
            Clean::Keep => v,
            Clean::Html => {
                let kept: String = no_tags
                    .filter(|c| py::printable(*c) || matches!(c, '\n' | '\r' | '\t'))
                    .collect();
                Value::String(kept.trim().to_owned())
            }
            Clean::Timestamp => Value::String(no_tags.take(100).collect()),
        }
    }

    /// pydantic's lax bool from a Python value.
    fn lax_bool(v: &Value) -> Result<bool, String> {
        const PARSING: &str = "Input should be a valid boolean, unable to interpret input";
        match v {
            Value::Bool(b) => Ok(*b),
            Value::Number(n) => match n.as_f64() {
                Some(0.0) => Ok(false),
                Some(1.0) => Ok(true),
                _ => Err(PARSING.to_owned()),
            },
            Value::String(s) => match s.to_lowercase().as_str() {
                "0" | "off" | "f" | "false" | "n" | "no" => Ok(false),
                "1" | "on" | "t" | "true" | "y" | "yes" => Ok(true),
                _ => Err(PARSING.to_owned()),
            },
            _ => Err("Input should be a valid boolean".to_owned()),
        }
    }

    /// pydantic's lax int from a Python value (bool is an int subclass; integral floats and
    /// numeric strings are coerced).
    fn lax_int(v: &Value) -> Result<i128, String> {
        match v {
            Value::Bool(b) => Ok(i128::from(*b)),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    return Ok(i128::from(i));
                }
                if let Some(u) = n.as_u64() {
                    return Ok(i128::from(u));
                }
                let f = n.as_f64().unwrap_or(f64::NAN);
                if !f.is_finite() {
                    Err("Input should be a finite number".to_owned())
                } else if f.fract() != 0.0 {
                    Err(
                        "Input should be a valid integer, got a number with a fractional part"
                            .to_owned(),
                    )
                } else {
                    // Saturating cast; anything this large fails the `le` bound anyway.
                    Ok(f as i128)
                }
            }
            Value::String(s) => parse_int(s).ok_or_else(|| {
                "Input should be a valid integer, unable to parse string as an integer".to_owned()
            }),
            _ => Err("Input should be a valid integer".to_owned()),
        }
    }

    /// pydantic's `str_as_int`: surrounding whitespace, a sign, `_` between digits, and a
    /// fraction of zeros (`"4.0"`) are accepted.
    fn parse_int(s: &str) -> Option<i128> {
        let t = s.trim();
        let (negative, body) = match t.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let body = match body.split_once('.') {
            Some((int, frac)) if frac.chars().all(|c| c == '0') => int,
            Some(_) => return None,
            None => body,
        };
        if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
            return None;
        }
        let digits: String = body.chars().filter(|c| *c != '_').collect();
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        // More than 38 digits: beyond every bound checked, so saturate.
        let n = digits.parse::<i128>().unwrap_or(i128::MAX);
        Some(if negative { -n } else { n })
    }

    /// Rule 12. pydantic checks the length while iterating and stops at the 51st item, so a
    /// too-long list reports that before any bad item.
    fn check_ips(given: Option<&Value>) -> Result<Value, String> {
        let items = match given {
            None | Some(Value::Null) => return Ok(Value::Null),
            Some(Value::Array(items)) => items,
            Some(_) => return Err("Input should be a valid list".to_owned()),
        };
        if items.len() > 50 {
            return Err(format!(
                "List should have at most 50 items after validation, not {}",
                items.len()
            ));
        }
        let mut kept = Vec::new();
        for item in items {
            let Value::String(s) = item else {
                return Err(NOT_STRING.to_owned());
            };
            if s.is_empty() {
                continue;
            }
            let cleaned: String = s.chars().filter(|c| *c != '<' && *c != '>').collect();
            let cleaned = cleaned.trim();
            if is_ip(cleaned) {
                kept.push(Value::String(cleaned.to_owned()));
            }
        }
        Ok(if kept.is_empty() {
            Value::Null
        } else {
            Value::Array(kept)
        })
    }

    /// `ipaddress.ip_address()`: IPv4 without leading zeros, IPv6 with an optional `%scope`.
    fn is_ip(s: &str) -> bool {
        if s.parse::<IpAddr>().is_ok() {
            return true;
        }
        match s.split_once('%') {
            Some((addr, scope)) => !scope.is_empty() && addr.parse::<Ipv6Addr>().is_ok(),
            None => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Circuit breaker (spec 2.7)
// ---------------------------------------------------------------------------------------------

/// The executor's per-agent circuit breaker (`CircuitBreaker` in `command_executor.py`): 5
/// failures within the window open it; after the open time one probe is let through (half-open);
/// 2 successes close it, a failure reopens it. A success while closed clears the failures. Pure:
/// time is an argument.
mod breaker {
    use std::time::{Duration, Instant};

    const FAILURE_THRESHOLD_COUNT: usize = 5;
    const SUCCESS_THRESHOLD_COUNT: u32 = 2;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum BreakerState {
        Closed,
        Open,
        HalfOpen,
    }

    #[derive(Debug)]
    pub struct Breaker {
        pub state: BreakerState,
        failures: Vec<Instant>,
        successes: u32,
        opened_at: Option<Instant>,
    }

    impl Default for Breaker {
        fn default() -> Self {
            Breaker {
                state: BreakerState::Closed,
                failures: Vec::new(),
                successes: 0,
                opened_at: None,
            }
        }
    }

    impl Breaker {
        /// `should_allow_request`: moves Open to HalfOpen once `open_for` has passed.
        pub fn allow(&mut self, now: Instant, open_for: Duration) -> bool {
            match self.state {
                BreakerState::Closed | BreakerState::HalfOpen => true,
                BreakerState::Open => {
                    let expired = self
                        .opened_at
                        .is_some_and(|t| now.duration_since(t) >= open_for);
                    if expired {
                        self.state = BreakerState::HalfOpen;
                        self.successes = 0;
                        self.opened_at = None;
                    }
                    expired
                }
            }
        }

        pub fn record_success(&mut self) {
            match self.state {
                BreakerState::Closed => self.failures.clear(),
                BreakerState::HalfOpen => {
                    self.successes += 1;
                    if self.successes >= SUCCESS_THRESHOLD_COUNT {
                        *self = Breaker::default();
                    }
                }
                BreakerState::Open => {}
            }
        }

        pub fn record_failure(&mut self, now: Instant, window: Duration) {
            match self.state {
                BreakerState::Closed => {
                    self.failures.push(now);
                    self.failures.retain(|t| now.duration_since(*t) < window);
                    if self.failures.len() >= FAILURE_THRESHOLD_COUNT {
                        self.open(now);
                    }
                }
                BreakerState::HalfOpen => self.open(now),
                BreakerState::Open => {}
            }
        }

        fn open(&mut self, now: Instant) {
            // As the backend: the failure timestamps survive opening.
            self.state = BreakerState::Open;
            self.opened_at = Some(now);
            self.successes = 0;
        }
    }
}

use self::breaker::Breaker;

// ---------------------------------------------------------------------------------------------
// Raw frames
// ---------------------------------------------------------------------------------------------

/// Unmasked server-to-client frames, byte by byte (RFC 6455 §5.2), for hostile-frame injection.
pub mod wire {
    pub const OP_CONTINUATION: u8 = 0x0;
    pub const OP_TEXT: u8 = 0x1;
    pub const OP_BINARY: u8 = 0x2;
    pub const OP_CLOSE: u8 = 0x8;
    pub const OP_PING: u8 = 0x9;
    pub const OP_PONG: u8 = 0xA;

    /// A frame header announcing `len` payload bytes (7-bit, 16-bit or 64-bit length).
    pub fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | (opcode & 0x0f)];
        if len < 126 {
            out.push(len as u8);
        } else if len <= 0xffff {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(127);
            out.extend_from_slice(&len.to_be_bytes());
        }
        out
    }

    /// A whole frame.
    pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = header(fin, opcode, payload.len() as u64);
        out.extend_from_slice(payload);
        out
    }

    /// A close frame with a status code and reason.
    pub fn close(code: u16, reason: &str) -> Vec<u8> {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        frame(true, OP_CLOSE, &payload)
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// splitmix64: UUIDs, ping payloads and poll intervals, reproducible from the printed seed.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn between(&mut self, (lo, hi): (Duration, Duration)) -> Duration {
        if hi <= lo {
            return lo;
        }
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo).mul_f64(unit)
    }

    /// A random (version 4) UUID, as `str(uuid.uuid4())`.
    fn uuid4(&mut self) -> String {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next().to_be_bytes());
        b[8..].copy_from_slice(&self.next().to_be_bytes());
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

/// A JSON object with members in the given order, values already serialised, compact separators:
/// what Starlette's `send_json` (`json.dumps(data, separators=(",", ":"))`) writes for a dict
/// built in that order.
fn py_json(members: &[(&str, String)]) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&json_str(k));
        s.push(':');
        s.push_str(v);
    }
    s.push('}');
    s
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    // Serialising a `&str` cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}

/// A JSON value's text.
fn json_text(v: &Value) -> String {
    // Serialising a `Value` cannot fail: its map keys are strings.
    serde_json::to_string(v).unwrap_or_default()
}

/// `now + secs`, saturating instead of panicking on absurd values.
fn after(now: Instant, secs: f64) -> Instant {
    let d = Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::from_secs(86_400 * 365));
    now.checked_add(d)
        .unwrap_or(now + Duration::from_secs(86_400 * 365))
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn push_capped<T>(log: &mut VecDeque<T>, item: T, cap: usize) {
    if log.len() >= cap {
        log.pop_front();
    }
    log.push_back(item);
}

/// Backend reply timeout of a `command`, in seconds (spec 3.3 table; the executor default 30 s for
/// names not in it). `update_container`'s second wait (300 s for `update_complete`) is not modelled.
fn command_timeout_secs(name: &str) -> f64 {
    match name {
        "update_container" => 180.0,
        "self_update" => 150.0,
        "deploy_compose" => 1800.0,
        "scan_compose_dirs" | "remove_image" | "delete_network" | "prune_networks"
        | "delete_volume" | "prune_volumes" => 60.0,
        "prune_images" => 120.0,
        _ => 30.0,
    }
}

/// Backend reply timeout of a `container_operation`, in seconds (spec 3.4 table).
fn operation_timeout_secs(action: &str, stop_timeout: f64) -> f64 {
    match action {
        "inspect" => 15.0,
        "stop" => stop_timeout + 20.0,
        _ => 30.0,
    }
}

/// The HTTP 403 detail of the REST call refused by the safety check (spec 3.4). The `kill` and
/// `rename` texts follow the `stop`/`restart` pattern (not seen in the sources read).
fn refusal(action: &str) -> String {
    match action {
        "remove" => "Cannot remove DockMon itself.".to_owned(),
        other => format!("Cannot {other} DockMon itself. Please {other} manually via Docker CLI."),
    }
}

/// `_is_dockmon_container` on the inspect result: name `dockmon`/`dockmon-*` (case-insensitive,
/// leading `/` stripped) or label `app=dockmon`. Any shape the Python code would trip over
/// (`AttributeError`, caught) counts as "not DockMon".
fn is_dockmon(result: &Value) -> bool {
    let Some(details) = result.as_object().map(|r| {
        r.get("container")
            .cloned()
            .unwrap_or(Value::Object(Map::new()))
    }) else {
        return false;
    };
    let Value::Object(details) = details else {
        return false;
    };
    let name = match details.get("Name") {
        None => String::new(),
        Some(Value::String(n)) => n.to_lowercase(),
        Some(_) => return false,
    };
    let name = name.trim_start_matches('/');
    if name == "dockmon" || name.starts_with("dockmon-") {
        return true;
    }
    let labels = match details.get("Config") {
        None => return false,
        Some(Value::Object(config)) => config.get("Labels"),
        Some(_) => return false,
    };
    match labels {
        Some(Value::Object(labels)) => {
            labels.get("app") == Some(&Value::String("dockmon".to_owned()))
        }
        _ => false,
    }
}

/// How the executor reads a reply (spec 3.2, last paragraph).
fn interpret(reply: &Map<String, Value>) -> Outcome {
    if let Some(error) = reply.get("error").filter(|e| py::truthy(e)) {
        return Outcome::Failed(py::str_of(Some(error)));
    }
    if !reply.contains_key("success") && !reply.contains_key("payload") {
        return Outcome::Failed(
            "Invalid response: missing 'success' or 'payload' field".to_owned(),
        );
    }
    Outcome::Success(
        reply
            .get("payload")
            .or_else(|| reply.get("data"))
            .cloned()
            .unwrap_or_else(|| Value::Object(reply.clone())),
    )
}

// ---------------------------------------------------------------------------------------------
// State: the database, the connection registry, the executor
// ---------------------------------------------------------------------------------------------

enum Out {
    Text(String),
    Raw(Vec<u8>),
    Close(u16, String),
    Drop,
}

struct TokenRow {
    max_uses: Option<u32>,
    expires_at: Option<SystemTime>,
    use_count: u32,
}

impl TokenRow {
    fn exhausted(&self) -> bool {
        self.max_uses.is_some_and(|m| self.use_count >= m)
    }
    fn expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

struct AgentRow {
    host_id: String,
    engine_id: String,
    force_unique: bool,
    fields: Map<String, Value>,
    online: bool,
    last_seen: Instant,
}

struct HostRow {
    name: String,
    agent_id: String,
}

struct ConnRow {
    tx: Sender<Out>,
    frozen: Arc<AtomicBool>,
    agent_id: Option<String>,
    next_poll: Option<Instant>,
    poll_in_flight: bool,
}

enum Then {
    Nothing,
    /// A poller `list_containers`: schedule the next one.
    Poll {
        conn: u64,
    },
    /// A safety-check `inspect`: then refuse or send the operation.
    Operation(Box<Command>),
}

struct Command {
    id: String,
    agent_id: String,
    label: String,
    /// Members before `id`/`correlation_id`, values as JSON text.
    members: Vec<(&'static str, String)>,
    timeout_secs: f64,
    then: Then,
}

struct Pending {
    agent_id: String,
    label: String,
    timeout_secs: f64,
    deadline: Instant,
    then: Then,
}

struct Done {
    outcome: Outcome,
    reply: Option<Value>,
}

struct State {
    rng: Rng,
    tokens: HashMap<String, TokenRow>,
    agents: HashMap<String, AgentRow>,
    hosts: HashMap<String, HostRow>,
    conns: HashMap<u64, ConnRow>,
    /// agent_id → its registered connection (spec 2.6/2).
    active: HashMap<String, u64>,
    registrations: Vec<AgentInfo>,
    agent_cursor: usize,
    auth_errors: Vec<String>,
    frames: VecDeque<Received>,
    sent: VecDeque<Sent>,
    log: VecDeque<String>,
    pending: HashMap<String, Pending>,
    outcomes: HashMap<String, Done>,
    breakers: HashMap<String, Breaker>,
    failures: Vec<Failure>,
    closes: Vec<ServerClose>,
    handshakes: Vec<Handshake>,
    auth_fault: Option<AuthFault>,
}

impl State {
    fn new(opts: &Options, seed: u64) -> State {
        let tokens = opts
            .tokens
            .iter()
            .map(|t| {
                (
                    t.token.clone(),
                    TokenRow {
                        max_uses: t.max_uses,
                        expires_at: t.expires_at,
                        use_count: 0,
                    },
                )
            })
            .collect();
        State {
            rng: Rng(seed),
            tokens,
            agents: HashMap::new(),
            hosts: HashMap::new(),
            conns: HashMap::new(),
            active: HashMap::new(),
            registrations: Vec::new(),
            agent_cursor: 0,
            auth_errors: Vec::new(),
            frames: VecDeque::new(),
            sent: VecDeque::new(),
            log: VecDeque::new(),
            pending: HashMap::new(),
            outcomes: HashMap::new(),
            breakers: HashMap::new(),
            failures: Vec::new(),
            closes: Vec::new(),
            handshakes: Vec::new(),
            auth_fault: None,
        }
    }

    fn log(&mut self, line: String) {
        push_capped(&mut self.log, line, LOG_CAP_COUNT);
    }

    /// Spec 2.4 rules 14-17 (`AgentManager.register_agent`). Returns (agent_id, host_id, reconnect).
    fn register(
        &mut self,
        reg: &Registration,
        opts: &Options,
        now: SystemTime,
    ) -> Result<(String, String, bool), String> {
        // Rule 14 (unreachable after rule 7, kept as the backend has it).
        if reg.engine_id.is_empty() {
            return Err("engine_id is required".to_owned());
        }
        let hostname: Option<String> = reg.hostname.clone().map(|h| {
            if h.is_empty() {
                h
            } else {
                h.trim().chars().take(255).collect()
            }
        });
        let named = hostname.as_deref().filter(|h| !h.is_empty());

        // Rule 15.
        let permanent = self.agents.contains_key(&reg.token);
        if !permanent {
            match self.tokens.get(&reg.token) {
                None => return Err("Invalid registration token".to_owned()),
                Some(t) if t.exhausted() => {
                    return Err("Registration token has reached maximum uses".to_owned())
                }
                Some(t) if t.expired(now) => {
                    return Err("Registration token has expired".to_owned())
                }
                Some(_) => {}
            }
        }

        // Rule 16.
        if permanent {
            let Some(agent) = self.agents.get_mut(&reg.token) else {
                return Err("Invalid registration token".to_owned());
            };
            if agent.engine_id != reg.engine_id {
                return Err("Permanent token does not match engine_id".to_owned());
            }
            agent.fields = reg.fields.clone();
            let host_id = agent.host_id.clone();
            if let Some(name) = named {
                let taken = self
                    .hosts
                    .iter()
                    .any(|(id, h)| h.name == name && *id != host_id);
                if taken {
                    self.log(format!(
                        "Cannot rename host {host_id} to {}: name already used",
                        py::repr_str(name)
                    ));
                } else if let Some(host) = self.hosts.get_mut(&host_id) {
                    host.name = name.to_owned();
                }
            }
            return Ok((reg.token.clone(), host_id, true));
        }

        // Rule 17.
        if opts.local_engine_ids.contains(&reg.engine_id) {
            return Err("Migration not supported for local Docker connections. Agents are only for remote hosts. \
                        Local Docker monitoring via socket is the preferred method for localhost."
                .to_owned());
        }
        if reg.force_unique {
            if reg.hostname_source.as_deref() != Some("agent_name") {
                return Err(format!(
                    "FORCE_UNIQUE_REGISTRATION=true requires AGENT_NAME to be set on the agent. The agent reported \
                     its hostname source as {}; cloned-VM registration needs AGENT_NAME so each clone has a unique \
                     display name in DockMon.",
                    py::repr_opt(reg.hostname_source.as_deref())
                ));
            }
        } else if self.agents.values().any(|a| a.engine_id == reg.engine_id) {
            return Err("Agent with this engine_id is already registered. If this is a cloned VM, either: (a) delete \
                        /var/lib/docker/engine-id (or /etc/docker/key.json on older systems) and restart Docker to \
                        generate a unique engine ID, then reinstall the agent; or (b) set \
                        FORCE_UNIQUE_REGISTRATION=true and AGENT_NAME=<unique-name> on the agent."
                .to_owned());
        }
        let name = match named {
            Some(n) => n.to_owned(),
            None => format!(
                "Agent-{}",
                reg.engine_id.chars().take(12).collect::<String>()
            ),
        };
        // `docker_hosts.name` is UNIQUE: the host row is flushed first, so this conflict wins.
        if self.hosts.values().any(|h| h.name == name) {
            return Err(format!(
                "A host named {} already exists in DockMon. Set AGENT_NAME to a unique value and retry.",
                py::repr_opt(hostname.as_deref())
            ));
        }
        let agent_id = self.rng.uuid4();
        let host_id = self.rng.uuid4();
        self.hosts.insert(
            host_id.clone(),
            HostRow {
                name,
                agent_id: agent_id.clone(),
            },
        );
        self.agents.insert(
            agent_id.clone(),
            AgentRow {
                host_id: host_id.clone(),
                engine_id: reg.engine_id.clone(),
                force_unique: reg.force_unique,
                fields: reg.fields.clone(),
                online: false,
                last_seen: Instant::now(),
            },
        );
        if let Some(t) = self.tokens.get_mut(&reg.token) {
            t.use_count += 1;
        }
        Ok((agent_id, host_id, false))
    }

    /// The agent commands go to: the newest live registered connection's, else the last one
    /// registered (then "not connected").
    fn current_agent(&self) -> Option<String> {
        self.active
            .iter()
            .max_by_key(|(_, conn)| **conn)
            .map(|(agent, _)| agent.clone())
            .or_else(|| self.registrations.last().map(|r| r.agent_id.clone()))
    }

    /// The socket raw frames go to: the newest live registered connection, else the newest open one.
    fn target_conn(&self) -> Option<&ConnRow> {
        let live = self
            .conns
            .iter()
            .filter(|(c, row)| {
                row.agent_id
                    .as_ref()
                    .is_some_and(|a| self.active.get(a) == Some(c))
            })
            .map(|(c, _)| *c)
            .max();
        live.or_else(|| self.conns.keys().copied().max())
            .and_then(|c| self.conns.get(&c))
    }

    /// `AgentCommandExecutor.execute_command` (spec 2.7, 3.3): breaker, connection, send, wait.
    fn execute(&mut self, opts: &Options, now: Instant, cmd: Command) {
        let Command {
            id,
            agent_id,
            label,
            members,
            timeout_secs,
            then,
        } = cmd;
        let pending = Pending {
            agent_id: agent_id.clone(),
            label,
            timeout_secs,
            deadline: after(now, timeout_secs),
            then,
        };
        if !self
            .breakers
            .entry(agent_id.clone())
            .or_default()
            .allow(now, opts.breaker_open)
        {
            let error = format!("Circuit breaker is open for agent {agent_id}");
            return self.complete(opts, now, id, pending, Outcome::Failed(error), None, false);
        }
        let tx = self
            .active
            .get(&agent_id)
            .and_then(|c| self.conns.get(c))
            .map(|row| row.tx.clone());
        let Some(tx) = tx else {
            let error = format!("Agent {agent_id} is not connected");
            return self.complete(opts, now, id, pending, Outcome::Failed(error), None, true);
        };
        let mut all = members;
        all.push(("id", json_str(&id)));
        all.push(("correlation_id", json_str(&id)));
        if tx.send(Out::Text(py_json(&all))).is_err() {
            let error = format!("Failed to send command to agent {agent_id}");
            return self.complete(opts, now, id, pending, Outcome::Failed(error), None, true);
        }
        self.pending.insert(id, pending);
    }

    /// A command ended: feed the breaker (unless rejected by it), store the outcome, run the
    /// follow-up.
    #[allow(clippy::too_many_arguments)]
    fn complete(
        &mut self,
        opts: &Options,
        now: Instant,
        id: String,
        p: Pending,
        outcome: Outcome,
        reply: Option<Value>,
        record: bool,
    ) {
        if record {
            let breaker = self.breakers.entry(p.agent_id.clone()).or_default();
            match &outcome {
                Outcome::Failed(error) => {
                    breaker.record_failure(now, opts.breaker_window);
                    self.failures.push(Failure {
                        agent_id: p.agent_id.clone(),
                        command: p.label.clone(),
                        id: id.clone(),
                        error: error.clone(),
                        at: now,
                    });
                }
                _ => breaker.record_success(),
            }
        }
        self.outcomes.insert(
            id,
            Done {
                outcome: outcome.clone(),
                reply,
            },
        );
        match p.then {
            Then::Nothing => {}
            Then::Poll { conn } => {
                let delay = opts
                    .list_containers
                    .as_ref()
                    .map(|s| self.rng.between(s.every));
                if let Some(row) = self.conns.get_mut(&conn) {
                    row.poll_in_flight = false;
                    row.next_poll = delay.map(|d| now + d);
                }
            }
            Then::Operation(op) => {
                let refuse = matches!(&outcome, Outcome::Success(v) if is_dockmon(v));
                if refuse {
                    let action = op
                        .label
                        .trim_start_matches("container_operation ")
                        .to_owned();
                    self.outcomes.insert(
                        op.id,
                        Done {
                            outcome: Outcome::Failed(refusal(&action)),
                            reply: None,
                        },
                    );
                } else {
                    // Fail-open as the backend: an inspect error or timeout does not block the action.
                    self.execute(opts, now, *op);
                }
            }
        }
    }

    /// Spec 3.2: how the receive loop treats a text frame after auth.
    fn route_live(&mut self, opts: &Options, now: Instant, agent_id: &str, text: &str) -> Route {
        let Ok(Value::Object(mut msg)) = serde_json::from_str::<Value>(text) else {
            return Route::Fatal;
        };
        let ty = msg.get("type").and_then(Value::as_str).map(str::to_owned);
        // Rule 1.
        if msg.contains_key("correlation_id")
            || (msg.contains_key("id") && ty.as_deref() == Some("response"))
        {
            if !msg.contains_key("correlation_id") {
                let id = msg.get("id").cloned().unwrap_or(Value::Null);
                msg.insert("correlation_id".to_owned(), id);
            }
            let cid = msg.get("correlation_id").cloned().unwrap_or(Value::Null);
            return match cid {
                // A dict lookup with an unhashable key: TypeError, the handler closes 1011.
                Value::Array(_) | Value::Object(_) => Route::Fatal,
                ref v if !py::truthy(v) => {
                    self.log("Received agent message without correlation_id, ignoring".to_owned());
                    Route::Reply {
                        id: String::new(),
                        matched: false,
                    }
                }
                Value::String(id) if self.pending.contains_key(&id) => {
                    if let Some(p) = self.pending.remove(&id) {
                        let outcome = interpret(&msg);
                        self.complete(
                            opts,
                            now,
                            id.clone(),
                            p,
                            outcome,
                            Some(Value::Object(msg)),
                            true,
                        );
                    }
                    Route::Reply { id, matched: true }
                }
                other => {
                    let id = py::str_of(Some(&other));
                    self.log(format!(
                        "Received response for unknown correlation_id: {id}"
                    ));
                    Route::Reply { id, matched: false }
                }
            };
        }
        match ty.as_deref() {
            Some("stats") => Route::HostStats,
            Some("progress") => Route::Progress,
            Some("error") => Route::ErrorReport,
            Some("heartbeat") => {
                if let Some(agent) = self.agents.get_mut(agent_id) {
                    agent.last_seen = now;
                }
                Route::Heartbeat
            }
            Some("event") => {
                let name = py::str_of(msg.get("command"));
                let known = msg
                    .get("command")
                    .and_then(Value::as_str)
                    .is_some_and(|n| KNOWN_EVENTS.contains(&n));
                if known {
                    // `payload = message.get("payload", {})`, then `payload.get(...)`: a null or
                    // non-object payload raises, and the handler closes 1011.
                    if msg.get("payload").is_some_and(|p| !p.is_object()) {
                        return Route::Fatal;
                    }
                } else {
                    self.log(format!("Unknown event type from agent {agent_id}: {name}"));
                }
                Route::Event { name, known }
            }
            _ => {
                self.log(format!(
                    "Unknown message type from agent {agent_id}: {}",
                    py::str_of(msg.get("type"))
                ));
                Route::Unknown
            }
        }
    }

    /// The backend thread's periodic work: command timeouts, then due polls. True if anything changed.
    fn tick(&mut self, opts: &Options, now: Instant) -> bool {
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        let mut changed = !expired.is_empty();
        for id in expired {
            if let Some(p) = self.pending.remove(&id) {
                let error = format!(
                    "Command timeout after {} seconds",
                    py::float(p.timeout_secs)
                );
                self.log(format!(
                    "Command timeout for agent {}, correlation_id: {id}",
                    p.agent_id
                ));
                self.complete(opts, now, id, p, Outcome::Failed(error), None, true);
            }
        }
        if opts.list_containers.is_some() {
            let due: Vec<(u64, String)> = self
                .conns
                .iter()
                .filter_map(|(c, row)| match (&row.agent_id, row.next_poll) {
                    (Some(agent), Some(t))
                        if !row.poll_in_flight && t <= now && self.active.get(agent) == Some(c) =>
                    {
                        Some((*c, agent.clone()))
                    }
                    _ => None,
                })
                .collect();
            for (conn, agent_id) in due {
                if let Some(row) = self.conns.get_mut(&conn) {
                    row.poll_in_flight = true;
                    row.next_poll = None;
                }
                let id = self.rng.uuid4();
                let cmd = Command {
                    id,
                    agent_id,
                    label: "list_containers".to_owned(),
                    members: vec![
                        ("type", json_str("command")),
                        ("command", json_str("list_containers")),
                    ],
                    timeout_secs: 30.0 * opts.timeout_scale,
                    then: Then::Poll { conn },
                };
                self.execute(opts, now, cmd);
                changed = true;
            }
        }
        changed
    }

    /// The backend process restarted: in-memory executor state is gone (pending commands, circuit
    /// breakers); the database (tokens, agents, hosts) stays.
    fn restarted(&mut self) {
        for (id, p) in std::mem::take(&mut self.pending) {
            let lost = || Done {
                outcome: Outcome::Failed("server restarted".to_owned()),
                reply: None,
            };
            if let Then::Operation(op) = p.then {
                self.outcomes.insert(op.id, lost());
            }
            self.outcomes.insert(id, lost());
        }
        self.breakers.clear();
        for agent in self.agents.values_mut() {
            agent.online = false;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sockets
// ---------------------------------------------------------------------------------------------

struct Shared {
    opts: Options,
    port: u16,
    seed: u64,
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
    next_conn: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    /// The state; a panic elsewhere while holding it does not make the server unusable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        self.changed.notify_all();
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig {
        max_message_size: Some(MAX_MESSAGE_BYTES),
        max_frame_size: Some(MAX_MESSAGE_BYTES),
        write_buffer_size: 0,
        ..WebSocketConfig::default()
    }
}

fn respond(stream: &mut TcpStream, status: u16, reason: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nserver: uvicorn\r\ncontent-length: {}\r\ncontent-type: application/json\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
    // Read what the client still sends (briefly), so closing does not reset the connection and
    // destroy the response in flight.
    let deadline = Instant::now() + Duration::from_millis(200);
    let mut sink = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if would_block(&e) => {}
            Err(_) => break,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The HTTP side (spec 2.1): `GET /health` → 200, `/api/agent/ws` upgrade → WebSocket, anything
/// else → 404 (FastAPI's body). The head is peeked, not read, so tungstenite sees it whole.
fn front_door(
    shared: &Shared,
    conn: u64,
    mut stream: TcpStream,
) -> Option<(WebSocket<TcpStream>, Handshake)> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(POLL)).ok()?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT)).ok()?;
    let _ = stream.set_nodelay(true);
    let deadline = Instant::now() + FRONT_DOOR_DEADLINE;
    let mut buf = vec![0u8; HEAD_CAP_BYTES];
    let head_len = loop {
        if shared.stopping() || Instant::now() >= deadline {
            return None;
        }
        match stream.peek(&mut buf) {
            Ok(0) => return None,
            Ok(n) => {
                if let Some(end) = find(&buf[..n], b"\r\n\r\n") {
                    break end + 4;
                }
                if n == buf.len() {
                    respond(&mut stream, 431, "Request Header Fields Too Large", "");
                    return None;
                }
                thread::sleep(Duration::from_millis(2));
            }
            Err(e) if would_block(&e) => {}
            Err(_) => return None,
        }
    };
    let parsed = {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..head_len]) {
            Ok(httparse::Status::Complete(_)) => Some((
                req.method.unwrap_or("").to_owned(),
                req.path.unwrap_or("").to_owned(),
                req.headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_owned(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect::<Vec<_>>(),
            )),
            _ => None,
        }
    };
    // The head is in the buffer already: consume it unless tungstenite is to read it.
    let consume = |stream: &mut TcpStream| {
        let mut sink = vec![0u8; head_len];
        let _ = stream.read_exact(&mut sink);
    };
    let Some((method, path, headers)) = parsed else {
        consume(&mut stream);
        respond(&mut stream, 400, "Bad Request", "");
        return None;
    };
    let upgrade = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("upgrade") && v.to_ascii_lowercase().contains("websocket")
    });
    let route = path.split('?').next().unwrap_or("");
    match (method.as_str(), route, upgrade) {
        (_, "/api/agent/ws", true) => {
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
            let ws = tungstenite::accept_with_config(stream, Some(ws_config())).ok()?;
            ws.get_ref().set_read_timeout(Some(POLL)).ok()?;
            Some((
                ws,
                Handshake {
                    connection: conn,
                    path,
                    headers,
                },
            ))
        }
        ("GET", "/health", false) => {
            consume(&mut stream);
            respond(&mut stream, 200, "OK", r#"{"status":"healthy"}"#);
            None
        }
        (_, "/health", false) => {
            consume(&mut stream);
            respond(
                &mut stream,
                405,
                "Method Not Allowed",
                r#"{"detail":"Method Not Allowed"}"#,
            );
            None
        }
        _ => {
            consume(&mut stream);
            respond(&mut stream, 404, "Not Found", r#"{"detail":"Not Found"}"#);
            None
        }
    }
}

/// The server's WebSocket keepalive (websockets' `keepalive_ping`, spec 2.2): wait the interval,
/// ping, wait for the matching pong at most the timeout, repeat. Pure: time is an argument.
struct Keepalive {
    interval: Duration,
    timeout: Duration,
    next_ping: Instant,
    outstanding: Option<(Vec<u8>, Instant)>,
}

enum Beat {
    Idle,
    Ping,
    Expired,
}

impl Keepalive {
    fn new(now: Instant, interval: Duration, timeout: Duration) -> Keepalive {
        Keepalive {
            interval,
            timeout,
            next_ping: now + interval,
            outstanding: None,
        }
    }
    fn reset(&mut self, now: Instant) {
        self.next_ping = now + self.interval;
        self.outstanding = None;
    }
    fn poll(&self, now: Instant) -> Beat {
        match &self.outstanding {
            Some((_, sent)) if now.duration_since(*sent) >= self.timeout => Beat::Expired,
            Some(_) => Beat::Idle,
            None if now >= self.next_ping => Beat::Ping,
            None => Beat::Idle,
        }
    }
    fn sent(&mut self, payload: Vec<u8>, now: Instant) {
        self.outstanding = Some((payload, now));
    }
    /// A pong for the outstanding ping clears it; an unsolicited pong is ignored.
    fn pong(&mut self, payload: &[u8], now: Instant) {
        if self.outstanding.as_ref().is_some_and(|(p, _)| p == payload) {
            self.outstanding = None;
            self.next_ping = now + self.interval;
        }
    }
}

enum Phase {
    Auth { deadline: Instant },
    Live { agent_id: String },
}

/// One WebSocket connection: registration, then the receive loop; writes come from the outbox.
struct Socket {
    shared: Arc<Shared>,
    ws: WebSocket<TcpStream>,
    conn: u64,
    rx: Receiver<Out>,
    frozen: Arc<AtomicBool>,
    phase: Phase,
    keepalive: Keepalive,
    rng: Rng,
}

fn serve(shared: Arc<Shared>, stream: TcpStream, conn: u64) {
    let Some((ws, handshake)) = front_door(&shared, conn, stream) else {
        return;
    };
    let (tx, rx) = mpsc::channel();
    let frozen = Arc::new(AtomicBool::new(false));
    let now = Instant::now();
    {
        let mut st = shared.lock();
        st.handshakes.push(handshake);
        st.conns.insert(
            conn,
            ConnRow {
                tx,
                frozen: frozen.clone(),
                agent_id: None,
                next_poll: None,
                poll_in_flight: false,
            },
        );
    }
    shared.notify();
    let opts = &shared.opts;
    let mut socket = Socket {
        phase: Phase::Auth {
            deadline: now + opts.auth_timeout,
        },
        keepalive: Keepalive::new(now, opts.ping_interval, opts.pong_timeout),
        rng: Rng(shared.seed ^ conn.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        shared: shared.clone(),
        ws,
        conn,
        rx,
        frozen,
    };
    socket.run();
    let _ = socket.ws.get_mut().shutdown(Shutdown::Both);
    {
        let mut st = shared.lock();
        if let Some(agent_id) = st.conns.remove(&conn).and_then(|row| row.agent_id) {
            // Spec 2.6: offline only if this socket is still the agent's active one.
            if st.active.get(&agent_id) == Some(&conn) {
                st.active.remove(&agent_id);
                if let Some(agent) = st.agents.get_mut(&agent_id) {
                    agent.online = false;
                }
            }
        }
    }
    shared.notify();
}

impl Socket {
    fn agent_id(&self) -> Option<String> {
        match &self.phase {
            Phase::Live { agent_id } => Some(agent_id.clone()),
            Phase::Auth { .. } => None,
        }
    }

    fn record(&self, frame: Frame, route: Option<Route>) {
        let item = Received {
            connection: self.conn,
            agent_id: self.agent_id(),
            at: Instant::now(),
            frame,
            route,
        };
        push_capped(&mut self.shared.lock().frames, item, FRAMES_CAP_COUNT);
        self.shared.notify();
    }

    fn record_sent(&self, frame: Frame) {
        let item = Sent {
            connection: self.conn,
            at: Instant::now(),
            frame,
        };
        push_capped(&mut self.shared.lock().sent, item, SENT_CAP_COUNT);
        self.shared.notify();
    }

    fn run(&mut self) {
        let mut was_frozen = false;
        loop {
            if self.shared.stopping() {
                // uvicorn's shutdown closes every WebSocket with 1012 (service restart).
                self.close_within(1012, "", STOP_CLOSE_WAIT);
                return;
            }
            while let Ok(out) = self.rx.try_recv() {
                if !self.apply(out) {
                    return;
                }
            }
            if self.frozen.load(Ordering::SeqCst) {
                was_frozen = true;
                thread::sleep(POLL);
                continue;
            }
            let now = Instant::now();
            if was_frozen {
                was_frozen = false;
                self.keepalive.reset(now);
            }
            if let Phase::Auth { deadline } = self.phase {
                if now >= deadline {
                    // Spec 2.4/1.
                    self.shared
                        .lock()
                        .auth_errors
                        .push("Authentication timeout".to_owned());
                    self.send_text(auth_error("Authentication timeout"));
                    self.close(1008, "Authentication timeout");
                    return;
                }
            }
            match self.keepalive.poll(now) {
                Beat::Idle => {}
                Beat::Ping => {
                    let payload = self.rng.next().to_be_bytes()[..4].to_vec();
                    self.record_sent(Frame::Ping(payload.clone()));
                    if self.ws.send(Message::Ping(payload.clone())).is_err() {
                        self.drop_tcp();
                        return;
                    }
                    self.keepalive.sent(payload, now);
                }
                Beat::Expired => {
                    self.close(1011, "keepalive ping timeout");
                    return;
                }
            }
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    if !self.on_text(text) {
                        return;
                    }
                }
                Ok(Message::Binary(data)) => {
                    // Spec 2.2: `receive_json()` on a binary frame raises; the handler closes 1011.
                    self.record(Frame::Binary(data), Some(Route::Fatal));
                    self.close(1011, INTERNAL_ERROR);
                    return;
                }
                Ok(Message::Ping(p)) => self.record(Frame::Ping(p), None),
                Ok(Message::Pong(p)) => {
                    self.keepalive.pong(&p, Instant::now());
                    self.record(Frame::Pong(p), None);
                }
                Ok(Message::Close(cf)) => {
                    // tungstenite queued the reply; the next read sends it and ends the socket.
                    self.record(
                        Frame::Close(cf.map(|c| (u16::from(c.code), c.reason.into_owned()))),
                        None,
                    );
                }
                Ok(Message::Frame(_)) => {}
                Err(tungstenite::Error::Io(e)) if would_block(&e) => {}
                Err(tungstenite::Error::Capacity(_)) => {
                    self.close(1009, "message too big");
                    return;
                }
                Err(tungstenite::Error::Utf8) => {
                    self.close(1007, "invalid UTF-8");
                    return;
                }
                Err(tungstenite::Error::Protocol(_)) => {
                    self.close(1002, "protocol error");
                    return;
                }
                Err(_) => {
                    self.drop_tcp();
                    return;
                }
            }
        }
    }

    /// Carries out an outbox item; false when the socket is finished.
    fn apply(&mut self, out: Out) -> bool {
        let frozen = self.frozen.load(Ordering::SeqCst);
        match out {
            // A half-open link loses what is sent into it.
            Out::Text(_) | Out::Raw(_) if frozen => true,
            Out::Text(text) => self.send_text(text),
            Out::Raw(bytes) => {
                self.record_sent(Frame::Binary(bytes.clone()));
                self.ws.flush().is_ok() && {
                    let stream = self.ws.get_mut();
                    stream
                        .write_all(&bytes)
                        .and_then(|()| stream.flush())
                        .is_ok()
                }
            }
            Out::Close(code, reason) => {
                self.close(code, &reason);
                false
            }
            Out::Drop => {
                self.drop_tcp();
                false
            }
        }
    }

    /// Logs, then writes (logging first means a client that received a frame finds it in
    /// `sent()`); a failed write drops the socket.
    fn send_text(&mut self, text: String) -> bool {
        self.record_sent(Frame::Text(text.clone()));
        if self.ws.send(Message::Text(text)).is_err() {
            self.drop_tcp();
            return false;
        }
        true
    }

    fn drop_tcp(&mut self) {
        self.shared.lock().closes.push(ServerClose {
            connection: self.conn,
            code: None,
            reason: String::new(),
            at: Instant::now(),
        });
        let _ = self.ws.get_mut().shutdown(Shutdown::Both);
        self.shared.notify();
    }

    fn close(&mut self, code: u16, reason: &str) {
        self.close_within(code, reason, CLOSE_WAIT);
    }

    /// Sends a close frame, waits for the peer's at most `wait` (discarding data, RFC 6455
    /// §5.5.1), then closes TCP. On a frozen (half-open) socket only TCP is dropped.
    fn close_within(&mut self, code: u16, reason: &str, wait: Duration) {
        if self.frozen.load(Ordering::SeqCst) {
            self.drop_tcp();
            return;
        }
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_owned().into(),
        };
        self.shared.lock().closes.push(ServerClose {
            connection: self.conn,
            code: Some(code),
            reason: reason.to_owned(),
            at: Instant::now(),
        });
        self.record_sent(Frame::Close(Some((code, reason.to_owned()))));
        if self.ws.close(Some(frame)).is_ok() {
            let deadline = Instant::now() + wait;
            while Instant::now() < deadline {
                match self.ws.read() {
                    Ok(Message::Close(cf)) => self.record(
                        Frame::Close(cf.map(|c| (u16::from(c.code), c.reason.into_owned()))),
                        None,
                    ),
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e)) if would_block(&e) => {}
                    Err(_) => break,
                }
            }
        }
        let _ = self.ws.get_mut().shutdown(Shutdown::Both);
    }

    /// A text frame; false when the socket is finished.
    fn on_text(&mut self, text: String) -> bool {
        let Phase::Live { agent_id } = &self.phase else {
            return self.on_register(text);
        };
        let agent_id = agent_id.clone();
        let now = Instant::now();
        let fatal = {
            let mut st = self.shared.lock();
            let route = st.route_live(&self.shared.opts, now, &agent_id, &text);
            let fatal = route == Route::Fatal;
            let item = Received {
                connection: self.conn,
                agent_id: Some(agent_id),
                at: now,
                frame: Frame::Text(text),
                route: Some(route),
            };
            push_capped(&mut st.frames, item, FRAMES_CAP_COUNT);
            fatal
        };
        self.shared.notify();
        if fatal {
            self.close(1011, INTERNAL_ERROR);
            return false;
        }
        true
    }

    /// The first text frame (spec 2.4, 2.5, 2.6).
    fn on_register(&mut self, text: String) -> bool {
        let shared = self.shared.clone();
        let opts = &shared.opts;
        let fault = self.shared.lock().auth_fault.clone();
        if let Some(fault) = fault {
            self.record(Frame::Text(text), Some(Route::Auth));
            return match fault {
                AuthFault::Drop => {
                    self.drop_tcp();
                    false
                }
                AuthFault::NoReply => true,
                AuthFault::Raw(bytes) => self.apply(Out::Raw(bytes)),
            };
        }
        let checked = schema::check_registration(&text, opts.version);
        let register = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
        let result = {
            let mut st = self.shared.lock();
            let route = if matches!(checked, Err(Rejection::Internal)) {
                Route::Fatal
            } else {
                Route::Auth
            };
            let item = Received {
                connection: self.conn,
                agent_id: None,
                at: Instant::now(),
                frame: Frame::Text(text),
                route: Some(route),
            };
            push_capped(&mut st.frames, item, FRAMES_CAP_COUNT);
            match checked {
                Err(Rejection::Internal) => None,
                Err(Rejection::AuthError(e)) => Some(Err(e)),
                Ok(reg) => Some(st.register(&reg, opts, SystemTime::now())),
            }
        };
        self.shared.notify();
        match result {
            None => {
                self.close(1011, INTERNAL_ERROR);
                false
            }
            Some(Err(error)) => {
                self.shared.lock().auth_errors.push(error.clone());
                self.send_text(auth_error(&error));
                self.close(1008, "Authentication failed");
                false
            }
            Some(Ok((agent_id, host_id, reconnect))) => {
                let reply = py_json(&[
                    ("type", json_str("auth_success")),
                    ("agent_id", json_str(&agent_id)),
                    ("host_id", json_str(&host_id)),
                    ("permanent_token", json_str(&agent_id)),
                ]);
                // The state is updated before `auth_success` is written, so a client acting on
                // it finds this socket registered; the wire order stays the backend's: commands
                // queue behind `auth_success` on this thread, and the previous socket is closed
                // after it (spec 2.6 steps 1-2).
                let now = Instant::now();
                let old = {
                    let mut st = self.shared.lock();
                    let old = st
                        .active
                        .insert(agent_id.clone(), self.conn)
                        .filter(|c| *c != self.conn);
                    let first = opts
                        .list_containers
                        .as_ref()
                        .map(|s| now + st.rng.between(s.first));
                    if let Some(row) = st.conns.get_mut(&self.conn) {
                        row.agent_id = Some(agent_id.clone());
                        row.next_poll = first;
                    }
                    if let Some(agent) = st.agents.get_mut(&agent_id) {
                        agent.online = true;
                        agent.last_seen = now;
                    }
                    st.registrations.push(AgentInfo {
                        agent_id: agent_id.clone(),
                        host_id,
                        permanent_token: agent_id.clone(),
                        register,
                        at: now,
                        connection: self.conn,
                        reconnect,
                    });
                    old.and_then(|c| st.conns.get(&c)).map(|row| row.tx.clone())
                };
                self.phase = Phase::Live { agent_id };
                let sent = self.send_text(reply);
                if let Some(tx) = old {
                    let _ = tx.send(Out::Close(1000, "New connection established".to_owned()));
                }
                self.shared.notify();
                sent
            }
        }
    }
}

fn auth_error(error: &str) -> String {
    py_json(&[("type", json_str("auth_error")), ("error", json_str(error))])
}

struct Listening {
    run: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

fn spawn_accept(shared: &Arc<Shared>, listener: TcpListener) -> Listening {
    let run = Arc::new(AtomicBool::new(true));
    let (shared, flag) = (shared.clone(), run.clone());
    let thread = thread::Builder::new()
        .name("dockmon-accept".to_owned())
        .spawn(move || accept_loop(&shared, &listener, &flag))
        .expect("spawn the DockMon test server's accept thread");
    Listening { run, thread }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener, run: &AtomicBool) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    while run.load(Ordering::SeqCst) && !shared.stopping() {
        match listener.accept() {
            Ok((stream, _)) => {
                let conn = shared.next_conn.fetch_add(1, Ordering::SeqCst);
                let s = shared.clone();
                let spawned = thread::Builder::new()
                    .name(format!("dockmon-conn-{conn}"))
                    .spawn(move || serve(s, stream, conn));
                if let Ok(handle) = spawned {
                    let mut threads = shared
                        .threads
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    threads.retain(|t| !t.is_finished());
                    threads.push(handle);
                }
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn backend_loop(shared: &Shared) {
    while !shared.stopping() {
        thread::sleep(POLL);
        let changed = shared.lock().tick(&shared.opts, Instant::now());
        if changed {
            shared.notify();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The test-facing API
// ---------------------------------------------------------------------------------------------

/// A running model of the DockMon backend. Dropping it closes every socket (1012) and joins every
/// thread.
pub struct DockmonServer {
    shared: Arc<Shared>,
    listening: Mutex<Option<Listening>>,
    backend: Option<JoinHandle<()>>,
}

impl DockmonServer {
    /// Listens on `127.0.0.1:0` and starts serving. Prints the port and seed to stderr (shown when
    /// a test fails).
    pub fn start(options: Options) -> DockmonServer {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 for the DockMon test server");
        let port = listener
            .local_addr()
            .expect("local address of the DockMon test server")
            .port();
        let seed = options.seed.unwrap_or_else(|| {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ u64::from(port)
        });
        eprintln!(
            "dockmon test server: 127.0.0.1:{port}, {:?}, seed {seed}",
            options.version
        );
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(&options, seed)),
            opts: options,
            port,
            seed,
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            next_conn: AtomicU64::new(1),
            threads: Mutex::new(Vec::new()),
        });
        let listening = spawn_accept(&shared, listener);
        let s = shared.clone();
        let backend = thread::Builder::new()
            .name("dockmon-backend".to_owned())
            .spawn(move || backend_loop(&s))
            .expect("spawn the DockMon test server's backend thread");
        DockmonServer {
            shared,
            listening: Mutex::new(Some(listening)),
            backend: Some(backend),
        }
    }

    /// `http://127.0.0.1:PORT`, what `DOCKMON_URL` is set to.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.shared.port)
    }

    /// `ws://127.0.0.1:PORT/api/agent/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/api/agent/ws", self.shared.port)
    }

    pub fn port(&self) -> u16 {
        self.shared.port
    }

    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    pub fn options(&self) -> &Options {
        &self.shared.opts
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// Waits until `f` returns `Some`, re-evaluating on every state change; `None` on timeout.
    fn wait_state<R>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&mut State) -> Option<R>,
    ) -> Option<R> {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if let Some(r) = f(&mut st) {
                return Some(r);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Polls `f` every 10 ms until it is true; false on timeout.
    pub fn wait_until(&self, timeout: Duration, mut f: impl FnMut(&DockmonServer) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if f(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    // --- registration ---

    /// The next successful registration not yet returned by this method (the first call returns
    /// the first one, the second call the second, ...). Panics on timeout, listing the auth errors.
    pub fn wait_for_agent(&self, timeout: Duration) -> AgentInfo {
        self.try_wait_for_agent(timeout).unwrap_or_else(|| {
            panic!(
                "no agent registered within {timeout:?}; auth errors so far: {:?}",
                self.auth_errors()
            )
        })
    }

    /// As [`wait_for_agent`](Self::wait_for_agent), `None` on timeout.
    pub fn try_wait_for_agent(&self, timeout: Duration) -> Option<AgentInfo> {
        self.wait_state(timeout, |st| {
            let info = st.registrations.get(st.agent_cursor).cloned()?;
            st.agent_cursor += 1;
            Some(info)
        })
    }

    /// Every successful registration so far.
    pub fn registrations(&self) -> Vec<AgentInfo> {
        self.lock().registrations.clone()
    }

    /// Every `auth_error` text sent so far.
    pub fn auth_errors(&self) -> Vec<String> {
        self.lock().auth_errors.clone()
    }

    /// Adds a registration token at run time.
    pub fn add_token(&self, token: &str, max_uses: Option<u32>, expires_at: Option<SystemTime>) {
        self.lock().tokens.insert(
            token.to_owned(),
            TokenRow {
                max_uses,
                expires_at,
                use_count: 0,
            },
        );
    }

    /// How many agents registered with this token.
    pub fn token_uses(&self, token: &str) -> Option<u32> {
        self.lock().tokens.get(token).map(|t| t.use_count)
    }

    /// The DockMon host name of an agent's host.
    pub fn host_name(&self, agent_id: &str) -> Option<String> {
        let st = self.lock();
        let host_id = &st.agents.get(agent_id)?.host_id;
        st.hosts.get(host_id).map(|h| h.name.clone())
    }

    /// The validated registration fields stored for an agent (latest registration).
    pub fn agent_fields(&self, agent_id: &str) -> Option<Map<String, Value>> {
        self.lock().agents.get(agent_id).map(|a| a.fields.clone())
    }

    pub fn agent_online(&self, agent_id: &str) -> bool {
        self.lock().agents.get(agent_id).is_some_and(|a| a.online)
    }

    /// Deletes an agent host as the UI does (spec 2.10): the rows go, the socket stays open.
    pub fn delete_agent(&self, agent_id: &str) -> bool {
        let mut st = self.lock();
        let Some(agent) = st.agents.remove(agent_id) else {
            return false;
        };
        st.hosts.remove(&agent.host_id);
        st.active.remove(agent_id);
        true
    }

    /// Makes the server misbehave in answer to registration frames until reset with `None`.
    pub fn set_auth_fault(&self, fault: Option<AuthFault>) {
        self.lock().auth_fault = fault;
    }

    // --- commands ---

    /// Sends `{"type":"command","command":name,"payload":payload,"id":…,"correlation_id":…}` to
    /// the current agent (`payload` omitted when null) through the executor model: breaker, reply
    /// timeout of spec 3.3 (scaled). Returns the correlation ID.
    pub fn send_command(&self, name: &str, payload: Value) -> String {
        let agent = self.lock().current_agent();
        self.command_to(agent, name, payload)
    }

    /// As [`send_command`](Self::send_command), to a given agent.
    pub fn send_command_to(&self, agent_id: &str, name: &str, payload: Value) -> String {
        self.command_to(Some(agent_id.to_owned()), name, payload)
    }

    fn command_to(&self, agent_id: Option<String>, name: &str, payload: Value) -> String {
        let opts = &self.shared.opts;
        let mut st = self.lock();
        let id = st.rng.uuid4();
        let Some(agent_id) = agent_id else {
            st.outcomes.insert(
                id.clone(),
                Done {
                    outcome: Outcome::Failed("No agent registered".to_owned()),
                    reply: None,
                },
            );
            return id;
        };
        let mut members = vec![("type", json_str("command")), ("command", json_str(name))];
        if !payload.is_null() {
            members.push(("payload", json_text(&payload)));
        }
        let cmd = Command {
            id: id.clone(),
            agent_id,
            label: name.to_owned(),
            members,
            timeout_secs: command_timeout_secs(name) * opts.timeout_scale,
            then: Then::Nothing,
        };
        st.execute(opts, Instant::now(), cmd);
        drop(st);
        self.shared.notify();
        id
    }

    /// A container action as the backend's REST layer sends it (spec 3.4): `stop` gets `timeout`
    /// (default 10), `remove` gets `force` (default false), `get_logs` gets `tail` clamped to
    /// 1-10000 (default 100); other `extra` members follow. `stop`, `restart`, `kill`, `rename`
    /// and `remove` are preceded by an `inspect`, and refused if the container is DockMon itself.
    /// Returns the operation's correlation ID (the inspect has its own).
    pub fn container_operation(&self, action: &str, container_id: &str, extra: Value) -> String {
        let agent = self.lock().current_agent();
        self.operation_on(agent, action, container_id, extra)
    }

    /// As [`container_operation`](Self::container_operation), on a given agent.
    pub fn container_operation_on(
        &self,
        agent_id: &str,
        action: &str,
        container_id: &str,
        extra: Value,
    ) -> String {
        self.operation_on(Some(agent_id.to_owned()), action, container_id, extra)
    }

    fn operation_on(
        &self,
        agent_id: Option<String>,
        action: &str,
        container_id: &str,
        extra: Value,
    ) -> String {
        let opts = &self.shared.opts;
        let extra = extra.as_object().cloned().unwrap_or_default();
        let mut payload: Vec<(&str, String)> = vec![
            ("action", json_str(action)),
            ("container_id", json_str(container_id)),
        ];
        let mut stop_timeout = 10.0;
        match action {
            "stop" => {
                let t = extra.get("timeout").cloned().unwrap_or(Value::from(10));
                stop_timeout = t.as_f64().unwrap_or(10.0);
                payload.push(("timeout", json_text(&t)));
            }
            "remove" => payload.push((
                "force",
                json_text(extra.get("force").unwrap_or(&Value::Bool(false))),
            )),
            "get_logs" => {
                let tail = extra
                    .get("tail")
                    .and_then(Value::as_i64)
                    .unwrap_or(100)
                    .clamp(1, 10_000);
                payload.push(("tail", tail.to_string()));
            }
            _ => {}
        }
        let mut body = py_json(&payload);
        let extras: Vec<(String, String)> = extra
            .iter()
            .filter(|(k, _)| !payload.iter().any(|(p, _)| p == k))
            .map(|(k, v)| (k.clone(), json_text(v)))
            .collect();
        if !extras.is_empty() {
            let mut all: Vec<(&str, String)> = payload.clone();
            all.extend(extras.iter().map(|(k, v)| (k.as_str(), v.clone())));
            body = py_json(&all);
        }

        let mut st = self.lock();
        let op_id = st.rng.uuid4();
        let Some(agent_id) = agent_id else {
            let outcome = Outcome::Failed("No agent registered for host".to_owned());
            st.outcomes.insert(
                op_id.clone(),
                Done {
                    outcome,
                    reply: None,
                },
            );
            return op_id;
        };
        let op = Command {
            id: op_id.clone(),
            agent_id: agent_id.clone(),
            label: format!("container_operation {action}"),
            members: vec![("type", json_str("container_operation")), ("payload", body)],
            timeout_secs: operation_timeout_secs(action, stop_timeout) * opts.timeout_scale,
            then: Then::Nothing,
        };
        let now = Instant::now();
        if SAFETY_CHECKED_ACTIONS.contains(&action) {
            let inspect_payload = py_json(&[
                ("action", json_str("inspect")),
                ("container_id", json_str(container_id)),
            ]);
            let inspect = Command {
                id: st.rng.uuid4(),
                agent_id,
                label: "container_operation inspect".to_owned(),
                members: vec![
                    ("type", json_str("container_operation")),
                    ("payload", inspect_payload),
                ],
                timeout_secs: operation_timeout_secs("inspect", 0.0) * opts.timeout_scale,
                then: Then::Operation(Box::new(op)),
            };
            st.execute(opts, now, inspect);
        } else {
            st.execute(opts, now, op);
        }
        drop(st);
        self.shared.notify();
        op_id
    }

    /// The outcome of a command now (`Pending` if unknown or still waiting).
    pub fn outcome(&self, id: &str) -> Outcome {
        self.lock()
            .outcomes
            .get(id)
            .map_or(Outcome::Pending, |d| d.outcome.clone())
    }

    /// Waits for a command's outcome; `Pending` if it is still open after `timeout`.
    pub fn wait_outcome(&self, id: &str, timeout: Duration) -> Outcome {
        self.wait_state(timeout, |st| st.outcomes.get(id).map(|d| d.outcome.clone()))
            .unwrap_or(Outcome::Pending)
    }

    /// Sends a command the agent runs detached (`update_container`, `deploy_compose`) and checks
    /// that its immediate reply (within 20 s) says `{"status": status}`; panics with the reply
    /// otherwise. What the command does afterwards arrives as events.
    pub fn start_detached(&self, command: &str, payload: Value, status: &str) {
        let id = self.send_command(command, payload);
        let reply = self.wait_reply(&id, Duration::from_secs(20));
        assert_eq!(
            reply["payload"],
            serde_json::json!({ "status": status }),
            "{command}: {reply}"
        );
    }

    /// Waits for the reply frame the agent sent for a command (as received, with `correlation_id`
    /// added when the agent used `id`). Panics if none arrives within `timeout` or the command
    /// ended without one (backend timeout, open breaker, refusal, not connected).
    pub fn wait_reply(&self, id: &str, timeout: Duration) -> Value {
        let done = self.wait_state(timeout, |st| {
            st.outcomes
                .get(id)
                .map(|d| (d.outcome.clone(), d.reply.clone()))
        });
        match done {
            Some((_, Some(reply))) => reply,
            Some((outcome, None)) => panic!("command {id} ended without a reply: {outcome:?}"),
            None => panic!("no reply to command {id} within {timeout:?}"),
        }
    }

    /// Every command failure the agents' circuit breakers counted (timeouts and error replies;
    /// not the rejections of an open breaker, not safety refusals).
    pub fn breaker_failures(&self) -> Vec<Failure> {
        self.lock().failures.clone()
    }

    /// An agent's circuit breaker state (Closed if it never had a command). An open breaker whose
    /// time is up still reads Open until the next command probes it, as in the backend.
    pub fn breaker_state(&self, agent_id: &str) -> BreakerState {
        self.lock()
            .breakers
            .get(agent_id)
            .map_or(BreakerState::Closed, |b| b.state)
    }

    // --- what arrived ---

    /// Payloads of the events of one kind received so far, oldest first.
    pub fn events(&self, kind: EventKind) -> Vec<Value> {
        let st = self.lock();
        st.frames
            .iter()
            .filter_map(|f| {
                let Frame::Text(text) = &f.frame else {
                    return None;
                };
                let key = match (&f.route, kind) {
                    (Some(Route::Event { name, .. }), EventKind::ContainerEvent)
                        if name == "container_event" =>
                    {
                        "payload"
                    }
                    (Some(Route::Event { name, .. }), EventKind::ContainerStats)
                        if name == "container_stats" =>
                    {
                        "payload"
                    }
                    (Some(Route::HostStats), EventKind::HostStats) => "stats",
                    _ => return None,
                };
                Some(
                    serde_json::from_str::<Value>(text)
                        .ok()?
                        .get(key)
                        .cloned()
                        .unwrap_or(Value::Null),
                )
            })
            .collect()
    }

    /// Payloads of the events named `name` (any `"command"` of an event frame: `update_progress`,
    /// `deploy_complete`, …) received so far, oldest first.
    pub fn event_payloads(&self, name: &str) -> Vec<Value> {
        let st = self.lock();
        st.frames
            .iter()
            .filter_map(|f| match (&f.route, &f.frame) {
                (Some(Route::Event { name: n, .. }), Frame::Text(t)) if n == name => {
                    serde_json::from_str::<Value>(t)
                        .ok()?
                        .get("payload")
                        .cloned()
                }
                _ => None,
            })
            .collect()
    }

    /// Waits until at least `count` events of a kind have arrived; returns them all (possibly
    /// fewer on timeout).
    pub fn wait_events(&self, kind: EventKind, count: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let events = self.events(kind);
            if events.len() >= count || Instant::now() >= deadline {
                return events;
            }
            let _ = self.wait_state(POLL * 5, |_| None::<()>);
        }
    }

    /// Every frame received so far (newest `FRAMES_CAP_COUNT`), with arrival time and route.
    pub fn frames(&self) -> Vec<Received> {
        self.lock().frames.iter().cloned().collect()
    }

    /// Every frame the server wrote so far (newest `SENT_CAP_COUNT`).
    pub fn sent(&self) -> Vec<Sent> {
        self.lock().sent.iter().cloned().collect()
    }

    /// Texts of the commands sent (`command` and `container_operation` frames).
    pub fn commands_sent(&self) -> Vec<Value> {
        self.sent()
            .into_iter()
            .filter_map(|s| match s.frame {
                Frame::Text(t) => serde_json::from_str::<Value>(&t).ok(),
                _ => None,
            })
            .filter(|v| {
                matches!(
                    v.get("type").and_then(Value::as_str),
                    Some("command" | "container_operation")
                )
            })
            .collect()
    }

    /// The backend's log lines (unknown correlation IDs, unknown events and types, timeouts).
    pub fn log(&self) -> Vec<String> {
        self.lock().log.iter().cloned().collect()
    }

    /// Every socket the server ended, with its close code.
    pub fn server_closes(&self) -> Vec<ServerClose> {
        self.lock().closes.clone()
    }

    /// The upgrade requests of all WebSocket connections.
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.lock().handshakes.clone()
    }

    // --- connections ---

    /// Open WebSocket connections (registered or not).
    pub fn connections(&self) -> usize {
        self.lock().conns.len()
    }

    /// Waits until exactly `n` WebSocket connections are open.
    pub fn wait_connections(&self, n: usize, timeout: Duration) -> bool {
        self.wait_state(timeout, |st| (st.conns.len() == n).then_some(()))
            .is_some()
    }

    fn broadcast(&self, out: impl Fn() -> Out) {
        let txs: Vec<Sender<Out>> = self.lock().conns.values().map(|r| r.tx.clone()).collect();
        for tx in txs {
            let _ = tx.send(out());
        }
    }

    /// Drops every socket's TCP connection without a close frame (a network failure).
    pub fn disconnect_all(&self) {
        self.broadcast(|| Out::Drop);
        self.wait_connections(0, Duration::from_secs(3));
    }

    /// Closes every socket with a close frame.
    pub fn close_all(&self, code: u16, reason: &str) {
        self.broadcast(|| Out::Close(code, reason.to_owned()));
        self.wait_connections(0, Duration::from_secs(3));
    }

    /// [`restart_after`](Self::restart_after) with a 500 ms pause.
    pub fn restart(&self) {
        self.restart_after(Duration::from_millis(500));
    }

    /// A backend restart: stop listening, close every socket with 1012 (uvicorn's shutdown),
    /// forget in-memory executor state (pending commands end as "server restarted", breakers
    /// reset), stay down for `pause`, then listen on the same port with the same database.
    pub fn restart_after(&self, pause: Duration) {
        let mut slot = self
            .listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(listening) = slot.take() {
            listening.run.store(false, Ordering::SeqCst);
            let _ = listening.thread.join();
        }
        self.broadcast(|| Out::Close(1012, String::new()));
        self.wait_connections(0, Duration::from_secs(3));
        self.lock().restarted();
        self.shared.notify();
        thread::sleep(pause);
        let port = self.shared.port;
        let deadline = Instant::now() + REBIND_DEADLINE;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => break l,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("cannot listen again on 127.0.0.1:{port} after restart: {e}"),
            }
        };
        *slot = Some(spawn_accept(&self.shared, listener));
    }

    /// Half-open: the server keeps every current TCP connection but stops reading, answering
    /// pings and sending on them (what it would send is lost). Connections made later are
    /// normal. `false` resumes the frozen connections.
    pub fn set_half_open(&self, on: bool) {
        for row in self.lock().conns.values() {
            row.frozen.store(on, Ordering::SeqCst);
        }
    }

    // --- hostile frames, on the newest registered socket (else the newest open one) ---

    /// Writes raw bytes on the socket. False if there is none.
    pub fn send_raw(&self, bytes: Vec<u8>) -> bool {
        let tx = self.lock().target_conn().map(|r| r.tx.clone());
        tx.is_some_and(|tx| tx.send(Out::Raw(bytes)).is_ok())
    }

    /// A well-formed text frame with any content.
    pub fn send_text(&self, text: &str) -> bool {
        let tx = self.lock().target_conn().map(|r| r.tx.clone());
        tx.is_some_and(|tx| tx.send(Out::Text(text.to_owned())).is_ok())
    }

    /// A binary frame holding a valid command's JSON.
    pub fn send_binary_frame(&self) -> bool {
        let body = br#"{"type":"command","command":"list_containers","id":"bin-1","correlation_id":"bin-1"}"#;
        self.send_raw(wire::frame(true, wire::OP_BINARY, body))
    }

    /// A text frame header announcing 20 MiB, followed by 64 KiB of payload only.
    pub fn send_oversized_text_frame(&self) -> bool {
        let mut bytes = wire::header(true, wire::OP_TEXT, 20 << 20);
        bytes.extend(std::iter::repeat(b'x').take(64 * 1024));
        self.send_raw(bytes)
    }

    /// A text frame whose payload is not UTF-8.
    pub fn send_invalid_utf8_text(&self) -> bool {
        self.send_raw(wire::frame(true, wire::OP_TEXT, b"{\"type\":\"\xff\xfe\"}"))
    }

    /// A text frame that is not complete JSON.
    pub fn send_bad_json(&self) -> bool {
        self.send_raw(wire::frame(
            true,
            wire::OP_TEXT,
            br#"{"type":"command","command":"#,
        ))
    }

    /// A JSON frame with a `type` no agent knows.
    pub fn send_unknown_type(&self) -> bool {
        self.send_raw(wire::frame(
            true,
            wire::OP_TEXT,
            br#"{"type":"no_such_type","payload":{}}"#,
        ))
    }

    /// A text message in two fragments with a close frame (1000) between them (a control frame
    /// may interleave, RFC 6455 §5.4; nothing may follow a close, §5.5.1).
    pub fn send_fragmented_text_with_close(&self) -> bool {
        let mut bytes = wire::frame(false, wire::OP_TEXT, br#"{"type":"command","#);
        bytes.extend(wire::close(1000, "bye"));
        bytes.extend(wire::frame(
            true,
            wire::OP_CONTINUATION,
            br#""command":"list_containers","id":"f-1"}"#,
        ));
        self.send_raw(bytes)
    }

    /// A ping with a payload (at most 125 bytes, RFC 6455 §5.5), to be echoed in the pong.
    pub fn send_ping_with_payload(&self, payload: &[u8]) -> bool {
        self.send_raw(wire::frame(
            true,
            wire::OP_PING,
            &payload[..payload.len().min(125)],
        ))
    }
}

impl Drop for DockmonServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.notify();
        if let Some(listening) = self
            .listening
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            listening.run.store(false, Ordering::SeqCst);
            let _ = listening.thread.join();
        }
        if let Some(backend) = self.backend.take() {
            let _ = backend.join();
        }
        let threads = std::mem::take(
            &mut *self
                .shared
                .threads
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for t in threads {
            let _ = t.join();
        }
    }
}
