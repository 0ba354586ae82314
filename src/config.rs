//! Environment → [`Config`] for the agent mode. Read DockMon spec §1.1 first: names and defaults follow
//! it exactly.
//!
//! Pure: the variables come through a lookup function and the persisted token through an injected
//! reader, so this module touches no environment, file or clock and every rule is unit-tested.
//!
//! Parsing rules (spec §1.1): a variable that is unset or empty takes its default; booleans follow Go
//! `strconv.ParseBool`, durations Go `time.ParseDuration`. Unlike the Go agent, which silently falls
//! back to the default, a value that does not parse is an error naming the variable, the value and the
//! accepted form.
//!
//! Validation order (spec §1.1, with our extra checks slotted in without reordering the Go ones):
//! `DOCKMON_URL` empty, then its form ([`ws_url`]) → `AGENT_NAME` over 255 bytes →
//! `FORCE_UNIQUE_REGISTRATION` without `AGENT_NAME` → the other variables in table order
//! (`INSECURE_SKIP_VERIFY`, `PROTO_VERSION`, `RECONNECT_INITIAL`, `RECONNECT_MAX` and their relation,
//! `DATA_PATH`, `LOG_LEVEL`, `LOG_JSON`, `SSL_CERT_FILE`, `STATS_SOURCE`) → the form of the tokens in
//! the environment → the token file, read only when `PERMANENT_TOKEN` is unset → neither token.
//!
//! Secrets: tokens live in [`Token`], whose `Debug` is redacted and which has no `Display`; no
//! [`Error`] carries a token, and URL errors never echo the URL (it could carry credentials).
//!
//! Field limits stay here rather than in `limits`: they are the DockMon backend's own (spec 2.4),
//! checked where the fields are read.
use std::fmt;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

// ---- Capacities and defaults (to move into `crate::limits`) -----------------------------------------

/// Longest `AGENT_NAME` after trimming: the Go agent refuses more at startup (spec §1.1) and the backend
/// cuts `hostname` at 255 characters (spec §2.4 rules 6 and 14).
pub const AGENT_NAME_MAX_BYTES: usize = 255;
/// Longest token: the backend's `token` field allows 255 characters (spec §2.4 rule 6).
pub const TOKEN_MAX_BYTES: usize = 255;
/// Longest `PROTO_VERSION`: the backend's `proto_version` field allows 20 characters (spec §2.4 rule 6).
pub const PROTO_VERSION_MAX_BYTES: usize = 20;
/// Longest slice of a refused value quoted back in an error, so a pasted blob stays one short line.
const ECHO_MAX_CHARS: usize = 64;

/// `DATA_PATH` default (spec §1.1).
pub const DATA_PATH_DEFAULT: &str = "/data";
/// The persisted permanent token, inside `DATA_PATH` (spec §1.2).
pub const TOKEN_FILE_NAME: &str = "permanent_token";
/// `RECONNECT_INITIAL` default (spec §1.1, §2.8).
pub const RECONNECT_INITIAL_DEFAULT_MS: u64 = 1_000;
/// `RECONNECT_MAX` default (spec §1.1, §2.8).
pub const RECONNECT_MAX_DEFAULT_MS: u64 = 60_000;
/// `PROTO_VERSION` default at HEAD (spec §1.1; `1.0` at v2.2.0).
pub const PROTO_VERSION_DEFAULT: &str = "1.1";
/// The main agent socket, appended to `DOCKMON_URL` (spec §2.1).
pub const AGENT_WS_PATH: &str = "/api/agent/ws";
/// The stats-service ingest socket (ADV, spec §2.1, §4.5).
pub const STATS_INGEST_WS_PATH: &str = "/api/stats/ws/ingest";

const BOOL_FORM: &str =
    "is not a boolean; use one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False";
const LOG_LEVEL_FORM: &str =
    "is not a log level; use one of trace, debug, info, warn, warning, error, fatal, panic";
const STATS_SOURCE_FORM: &str = "is not a stats source; use auto, docker or cgroup";

/// Everything the agent mode reads from its environment, validated.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// `DOCKMON_URL` as given (checked: no user info, query or fragment, so nothing secret).
    pub dockmon_url: String,
    /// The main socket's URL derived from `DOCKMON_URL` ([`ws_url`]).
    pub ws_url: WsUrl,
    /// `REGISTRATION_TOKEN`, if set.
    pub registration_token: Option<Token>,
    /// `PERMANENT_TOKEN`, or else the content of the token file, if either is set.
    pub permanent_token: Option<Token>,
    /// Whether `permanent_token` came from the token file rather than the environment.
    pub permanent_token_from_file: bool,
    /// `$DATA_PATH/permanent_token`: read at startup, rewritten after every registration (spec §1.2).
    pub token_file: PathBuf,
    /// `DATA_PATH`, default `/data`.
    pub data_path: PathBuf,
    /// `INSECURE_SKIP_VERIFY`, default false: no TLS certificate check (spec §2.9).
    pub insecure_skip_verify: bool,
    /// `DOCKER_HOST` as given; `None` lets the Docker layer probe for a socket (spec §1.1, §1.4).
    pub docker_host: Option<String>,
    /// `RECONNECT_INITIAL`, default 1 s; never zero, never above `reconnect_max`.
    pub reconnect_initial: Duration,
    /// `RECONNECT_MAX`, default 60 s.
    pub reconnect_max: Duration,
    /// `AGENT_NAME`, whitespace-trimmed; `None` when unset or blank.
    pub agent_name: Option<String>,
    /// `FORCE_UNIQUE_REGISTRATION`, default false; true only with an `agent_name`.
    pub force_unique_registration: bool,
    /// `PROTO_VERSION`, default `1.1`, sent verbatim at registration.
    pub proto_version: String,
    /// `LOG_LEVEL`, default info.
    pub log_level: LogLevel,
    /// `LOG_JSON`, default **true** as in the Go agent (JSON lines, spec §1.1); set false for text.
    pub log_json: bool,
    /// `SSL_CERT_FILE`: extra trusted roots for `wss://` (the Go runtime's variable, spec §1.1, §2.9).
    pub ssl_cert_file: Option<PathBuf>,
    /// `STATS_SOURCE` (ours, not the Go agent's): where container stats come from, default auto.
    pub stats_source: StatsSource,
    /// `AGENT_STACKS_DIR`, default `$DATA_PATH/stacks`: where `deploy_compose` writes projects
    /// (spec §1.1, §1.2).
    pub stacks_dir: PathBuf,
    /// `HOST_STACKS_DIR`: the host's path of `stacks_dir` when the agent runs in a container, so
    /// relative bind mounts name host paths (spec §1.1). `None`: the same path.
    pub host_stacks_dir: Option<PathBuf>,
    /// `SELF_UPDATE_URL` (ours): the folder of release files the native self-update downloads from
    /// (`dockmon::selfupdate::native`); `{version}` in it stands for the version asked for. `None`:
    /// this project's GitHub release of that version, or the latest one.
    pub self_update_url: Option<String>,
}

impl fmt::Debug for Config {
    /// Every field, tokens redacted (see [`Token`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("dockmon_url", &self.dockmon_url)
            .field("ws_url", &self.ws_url)
            .field("registration_token", &self.registration_token)
            .field("permanent_token", &self.permanent_token)
            .field("permanent_token_from_file", &self.permanent_token_from_file)
            .field("token_file", &self.token_file)
            .field("data_path", &self.data_path)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("docker_host", &self.docker_host)
            .field("reconnect_initial", &self.reconnect_initial)
            .field("reconnect_max", &self.reconnect_max)
            .field("agent_name", &self.agent_name)
            .field("force_unique_registration", &self.force_unique_registration)
            .field("proto_version", &self.proto_version)
            .field("log_level", &self.log_level)
            .field("log_json", &self.log_json)
            .field("ssl_cert_file", &self.ssl_cert_file)
            .field("stats_source", &self.stats_source)
            .field("stacks_dir", &self.stacks_dir)
            .field("host_stacks_dir", &self.host_stacks_dir)
            .field("self_update_url", &self.self_update_url)
            .finish()
    }
}

/// A registration or permanent token. Checked against what the backend accepts (spec §2.4 rules 6 and
/// 7: 1 to 255 characters of `A-Z a-z 0-9 - _ :`), which also keeps it safe in an HTTP header.
///
/// `Debug` prints `Token(<redacted>)` and there is no `Display`: the value leaves only through
/// [`Token::expose`], at the two places that send it (the register message, the ingest `Authorization`
/// header) and the one that persists it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Checks `value`; `source` names where it came from for the error (a variable, a file, a message).
    pub fn new(source: &str, value: &str) -> Result<Token, Error> {
        if value.len() > TOKEN_MAX_BYTES {
            return Err(Error::TokenTooLong {
                source: source.to_string(),
                len: value.len(),
                max: TOKEN_MAX_BYTES,
            });
        }
        let problem = if value.is_empty() {
            Some("is empty")
        } else if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'))
        {
            Some("has characters other than letters, digits, '-', '_' and ':'")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(Error::InvalidToken {
                source: source.to_string(),
                problem,
            }),
            None => Ok(Token(value.to_string())),
        }
    }

    /// The token itself. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// `LOG_LEVEL`: the logrus level names (spec §1.1), matched case-insensitively as logrus does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// `trace`
    Trace,
    /// `debug`
    Debug,
    /// `info` (default)
    Info,
    /// `warn` or `warning`
    Warn,
    /// `error`
    Error,
    /// `fatal`: only fatal messages in logrus; the `log` crate has no such level, so errors.
    Fatal,
    /// `panic`: like `fatal` here.
    Panic,
}

impl LogLevel {
    /// The `log` crate filter for this level; `fatal` and `panic` map to errors only.
    pub fn filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Trace => log::LevelFilter::Trace,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Error | LogLevel::Fatal | LogLevel::Panic => log::LevelFilter::Error,
        }
    }

    /// A logrus level name, any case (`warning` = `warn`); `None` for anything else.
    pub fn parse(value: &str) -> Option<LogLevel> {
        let levels = [
            ("trace", LogLevel::Trace),
            ("debug", LogLevel::Debug),
            ("info", LogLevel::Info),
            ("warn", LogLevel::Warn),
            ("warning", LogLevel::Warn),
            ("error", LogLevel::Error),
            ("fatal", LogLevel::Fatal),
            ("panic", LogLevel::Panic),
        ];
        levels
            .iter()
            .find(|(name, _)| value.eq_ignore_ascii_case(name))
            .map(|(_, level)| *level)
    }
}

/// `STATS_SOURCE`: where container stats come from (matched case-insensitively).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsSource {
    /// `auto` (default): the sampler picks (cgroup files when it can read them, else the Docker API).
    Auto,
    /// `docker`: the Docker stats endpoint only.
    Docker,
    /// `cgroup`: the cgroup files only.
    Cgroup,
}

impl StatsSource {
    fn parse(value: &str) -> Option<StatsSource> {
        let sources = [
            ("auto", StatsSource::Auto),
            ("docker", StatsSource::Docker),
            ("cgroup", StatsSource::Cgroup),
        ];
        sources
            .iter()
            .find(|(name, _)| value.eq_ignore_ascii_case(name))
            .map(|(_, s)| *s)
    }
}

/// A WebSocket endpoint on the DockMon server, split for connecting and for the upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// `wss` (TLS) rather than `ws`.
    pub secure: bool,
    /// Host name or IP literal, without the brackets of an IPv6 literal.
    pub host: String,
    /// TCP port; 80 or 443 when the URL names none.
    pub port: u16,
    /// Path, starting with `/` (the base URL's path prefix, then the endpoint).
    pub path: String,
}

impl WsUrl {
    /// The scheme's default port: 443 for `wss`, 80 for `ws`.
    pub fn default_port(&self) -> u16 {
        if self.secure {
            443
        } else {
            80
        }
    }

    /// The `Host` header value (RFC 9110 §7.2): the host, bracketed if IPv6, with `:port` unless it
    /// is the default.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for WsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.secure { "wss" } else { "ws" };
        write!(f, "{scheme}://{}{}", self.authority(), self.path)
    }
}

/// Everything that can be wrong with the environment. Every message names the variable.
#[derive(Debug)]
pub enum Error {
    /// `DOCKMON_URL` is unset or empty.
    MissingUrl,
    /// `DOCKMON_URL` has a scheme other than http, https, ws or wss.
    UrlScheme {
        /// The scheme as written (only echoed when it consists of scheme characters).
        scheme: String,
    },
    /// `DOCKMON_URL` is malformed; the text says how. The URL itself is not echoed.
    Url(&'static str),
    /// `AGENT_NAME` is longer than [`AGENT_NAME_MAX_BYTES`] after trimming.
    AgentNameTooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `FORCE_UNIQUE_REGISTRATION` is true but `AGENT_NAME` is empty.
    ForceUniqueWithoutName,
    /// A value that does not parse.
    Invalid {
        /// The variable.
        var: &'static str,
        /// The value (never a token), cut to a few dozen characters.
        value: String,
        /// What is wrong and the accepted form.
        problem: &'static str,
    },
    /// A value longer than its limit.
    TooLong {
        /// The variable.
        var: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `RECONNECT_INITIAL` is zero: the reconnect loop would spin.
    ZeroReconnectInitial,
    /// `RECONNECT_INITIAL` is above `RECONNECT_MAX`.
    ReconnectOrder {
        /// `RECONNECT_INITIAL`.
        initial: Duration,
        /// `RECONNECT_MAX`.
        max: Duration,
    },
    /// A token that the backend would refuse; the token is not echoed.
    InvalidToken {
        /// Where it came from: a variable name or the token file's path.
        source: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A token longer than [`TOKEN_MAX_BYTES`]; the token is not echoed.
    TokenTooLong {
        /// Where it came from: a variable name or the token file's path.
        source: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The token file exists but cannot be read (a missing file is not an error).
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// Neither `REGISTRATION_TOKEN` nor a permanent token (variable or file) is available.
    NoToken,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingUrl => {
                f.write_str("DOCKMON_URL is required (the base url of the dockmon server)")
            }
            Error::UrlScheme { scheme } => {
                write!(
                    f,
                    "DOCKMON_URL: scheme {scheme:?} is not supported; use http, https, ws or wss"
                )
            }
            Error::Url(problem) => write!(f, "DOCKMON_URL: {problem}"),
            Error::AgentNameTooLong { len, max } => {
                write!(
                    f,
                    "AGENT_NAME is {len} bytes long; the limit is {max} bytes"
                )
            }
            Error::ForceUniqueWithoutName => {
                f.write_str("FORCE_UNIQUE_REGISTRATION=true requires AGENT_NAME to be set")
            }
            Error::Invalid {
                var,
                value,
                problem,
            } => write!(f, "{var}: {value:?} {problem}"),
            Error::TooLong { var, len, max } => {
                write!(f, "{var} is {len} bytes long; the limit is {max} bytes")
            }
            Error::ZeroReconnectInitial => f.write_str(
                "RECONNECT_INITIAL must be greater than zero; use a duration such as 1s",
            ),
            Error::ReconnectOrder { initial, max } => write!(
                f,
                "RECONNECT_INITIAL ({initial:?}) must not be greater than RECONNECT_MAX ({max:?})"
            ),
            Error::InvalidToken { source, problem } => write!(f, "token from {source} {problem}"),
            Error::TokenTooLong { source, len, max } => {
                write!(
                    f,
                    "token from {source} is {len} bytes long; the limit is {max} bytes"
                )
            }
            Error::TokenFile { path, error } => {
                write!(
                    f,
                    "cannot read the permanent token file {}: {error}",
                    path.display()
                )
            }
            Error::NoToken => {
                f.write_str("either REGISTRATION_TOKEN or PERMANENT_TOKEN is required")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::TokenFile { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Builds the configuration. `get` looks a variable up (`|k| std::env::var(k).ok()` in `main`);
/// `read_token_file` reads the persisted token and answers `Ok(None)` when the file does not exist
/// (it is called at most once, with `$DATA_PATH/permanent_token`, and only when `PERMANENT_TOKEN` is
/// unset). See the module doc for the rules and the order of the checks.
pub fn from_env(
    get: impl Fn(&str) -> Option<String>,
    read_token_file: impl FnOnce(&Path) -> Result<Option<String>, std::io::Error>,
) -> Result<Config, Error> {
    // Spec §1.1: unset or empty takes the default.
    let var = |name: &str| get(name).filter(|v| !v.is_empty());

    let dockmon_url = var("DOCKMON_URL").ok_or(Error::MissingUrl)?;
    let ws_url = ws_url(&dockmon_url)?;

    let agent_name = var("AGENT_NAME")
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    if let Some(name) = &agent_name {
        if name.len() > AGENT_NAME_MAX_BYTES {
            return Err(Error::AgentNameTooLong {
                len: name.len(),
                max: AGENT_NAME_MAX_BYTES,
            });
        }
    }
    let force_unique_registration = bool_var(&var, "FORCE_UNIQUE_REGISTRATION", false)?;
    if force_unique_registration && agent_name.is_none() {
        return Err(Error::ForceUniqueWithoutName);
    }

    let insecure_skip_verify = bool_var(&var, "INSECURE_SKIP_VERIFY", false)?;
    let docker_host = var("DOCKER_HOST");
    let proto_version = var("PROTO_VERSION").unwrap_or_else(|| PROTO_VERSION_DEFAULT.to_string());
    if proto_version.len() > PROTO_VERSION_MAX_BYTES {
        return Err(Error::TooLong {
            var: "PROTO_VERSION",
            len: proto_version.len(),
            max: PROTO_VERSION_MAX_BYTES,
        });
    }
    let reconnect_initial = duration_var(
        &var,
        "RECONNECT_INITIAL",
        Duration::from_millis(RECONNECT_INITIAL_DEFAULT_MS),
    )?;
    let reconnect_max = duration_var(
        &var,
        "RECONNECT_MAX",
        Duration::from_millis(RECONNECT_MAX_DEFAULT_MS),
    )?;
    if reconnect_initial.is_zero() {
        return Err(Error::ZeroReconnectInitial);
    }
    if reconnect_initial > reconnect_max {
        return Err(Error::ReconnectOrder {
            initial: reconnect_initial,
            max: reconnect_max,
        });
    }
    let data_path =
        PathBuf::from(var("DATA_PATH").unwrap_or_else(|| DATA_PATH_DEFAULT.to_string()));
    let log_level = match var("LOG_LEVEL") {
        None => LogLevel::Info,
        Some(v) => LogLevel::parse(&v).ok_or_else(|| invalid("LOG_LEVEL", &v, LOG_LEVEL_FORM))?,
    };
    let log_json = bool_var(&var, "LOG_JSON", true)?;
    let ssl_cert_file = var("SSL_CERT_FILE").map(PathBuf::from);
    let stats_source = stats_source(var("STATS_SOURCE").as_deref())?;
    let stacks_dir = var("AGENT_STACKS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_path.join("stacks"));
    let host_stacks_dir = var("HOST_STACKS_DIR").map(PathBuf::from);
    let self_update_url = var("SELF_UPDATE_URL")
        .map(|v| self_update_url(v.trim()))
        .transpose()?;

    let registration_token = var("REGISTRATION_TOKEN")
        .map(|v| Token::new("REGISTRATION_TOKEN", &v))
        .transpose()?;
    let env_permanent = var("PERMANENT_TOKEN")
        .map(|v| Token::new("PERMANENT_TOKEN", &v))
        .transpose()?;
    let token_file = data_path.join(TOKEN_FILE_NAME);
    let (permanent_token, permanent_token_from_file) = match env_permanent {
        Some(token) => (Some(token), false),
        // Spec §1.2: read at startup, whitespace-trimmed, only when PERMANENT_TOKEN is unset.
        None => match read_token_file(&token_file) {
            Ok(Some(text)) if !text.trim().is_empty() => {
                let source = token_file.display().to_string();
                (Some(Token::new(&source, text.trim())?), true)
            }
            Ok(_) => (None, false),
            Err(error) => {
                return Err(Error::TokenFile {
                    path: token_file,
                    error,
                })
            }
        },
    };
    if registration_token.is_none() && permanent_token.is_none() {
        return Err(Error::NoToken);
    }

    Ok(Config {
        dockmon_url,
        ws_url,
        registration_token,
        permanent_token,
        permanent_token_from_file,
        token_file,
        data_path,
        insecure_skip_verify,
        docker_host,
        reconnect_initial,
        reconnect_max,
        agent_name,
        force_unique_registration,
        proto_version,
        log_level,
        log_json,
        ssl_cert_file,
        stats_source,
        stacks_dir,
        host_stacks_dir,
        self_update_url,
    })
}

const SELF_UPDATE_URL_FORM: &str =
    "is not a release folder URL; use https://host/path (http:// only on \
     127.0.0.1, localhost or [::1]), without user:password@";

/// `SELF_UPDATE_URL`: https, or http on loopback only (the binary and its `SHA256SUMS` come from the same
/// place, so only TLS authenticates them; install.sh's `DOCKMON_AGENT_BASE_URL` has the same rule).
fn self_update_url(v: &str) -> Result<String, Error> {
    let lower = v.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| {
            ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                .iter()
                .find(|p| {
                    lower.starts_with(*p)
                        && matches!(lower.as_bytes().get(p.len()), None | Some(b':' | b'/'))
                })
                .map(|_| &lower[7..])
        })
        .ok_or_else(|| invalid("SELF_UPDATE_URL", v, SELF_UPDATE_URL_FORM))?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || v.bytes().any(|b| b <= b' ' || b >= 0x7f)
    {
        return Err(Error::Invalid {
            var: "SELF_UPDATE_URL",
            value: "(not shown)".into(),
            problem: SELF_UPDATE_URL_FORM,
        });
    }
    Ok(v.trim_end_matches('/').to_string())
}

/// `STATS_SOURCE` alone (unset: `auto`), for the local modes, which read no DockMon settings.
pub fn stats_source(value: Option<&str>) -> Result<StatsSource, Error> {
    match value {
        None => Ok(StatsSource::Auto),
        Some(v) => {
            StatsSource::parse(v).ok_or_else(|| invalid("STATS_SOURCE", v, STATS_SOURCE_FORM))
        }
    }
}

fn invalid(var: &'static str, value: &str, problem: &'static str) -> Error {
    let mut shown: String = value.chars().take(ECHO_MAX_CHARS).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    Error::Invalid {
        var,
        value: shown,
        problem,
    }
}

fn bool_var(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, Error> {
    match var(name) {
        None => Ok(default),
        Some(v) => parse_bool(&v).ok_or_else(|| invalid(name, &v, BOOL_FORM)),
    }
}

fn duration_var(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Duration,
) -> Result<Duration, Error> {
    match var(name) {
        None => Ok(default),
        Some(v) => parse_duration(&v).map_err(|e| invalid(name, &v, e.problem())),
    }
}

/// Go `strconv.ParseBool`: `1 t T TRUE true True` are true, `0 f F FALSE false False` false, anything
/// else (including surrounding spaces) `None`.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Why [`parse_duration`] refused a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    /// Not Go duration syntax (no unit, unknown unit, stray characters, empty).
    Syntax,
    /// A valid Go duration below zero, which `std::time::Duration` cannot hold and no delay wants.
    Negative,
    /// Beyond Go's range (2⁶³−1 ns, about 292 years).
    OutOfRange,
}

impl DurationError {
    /// The error text after the quoted value.
    fn problem(self) -> &'static str {
        match self {
            DurationError::Syntax => {
                "is not a duration; use Go duration syntax such as 30s, 1m, 1h30m"
            }
            DurationError::Negative => {
                "is negative; use a positive Go duration such as 30s, 1m, 1h30m"
            }
            DurationError::OutOfRange => {
                "is out of range; use Go duration syntax such as 30s, 1m, 1h30m (at most 2562047h)"
            }
        }
    }
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.problem())
    }
}

/// Go `time.ParseDuration`: an optional sign, then one or more decimal numbers, each with an optional
/// fraction and a unit (`ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`), e.g. `300ms`, `1.5h`, `2h45m`.
/// A bare `0` (signed or not) is zero. Follows Go's algorithm step by step, including its float
/// arithmetic for fractions, so the same text gives the same nanoseconds; negative results other than
/// zero are refused because a delay cannot be negative.
pub fn parse_duration(value: &str) -> Result<Duration, DurationError> {
    /// Go accumulates in uint64 and allows up to 1<<63 before the final sign check.
    const LIMIT: u64 = 1 << 63;
    let (negative, mut rest) = match value.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    if rest == b"0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(DurationError::Syntax);
    }
    let mut total: u64 = 0;
    while let [first, ..] = rest {
        if !(*first == b'.' || first.is_ascii_digit()) {
            return Err(DurationError::Syntax);
        }
        // Integer part: [0-9]*, overflow is an error (Go's leadingInt).
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let mut whole: u64 = 0;
        for &b in &rest[..digits] {
            if whole > LIMIT / 10 {
                return Err(DurationError::OutOfRange);
            }
            whole = whole * 10 + u64::from(b - b'0');
            if whole > LIMIT {
                return Err(DurationError::OutOfRange);
            }
        }
        rest = &rest[digits..];
        // Fraction: (\.[0-9]*)?, precision simply stops when it would overflow (Go's leadingFraction).
        let (mut fraction, mut scale, mut fraction_digits) = (0u64, 1f64, 0usize);
        if let [b'.', after @ ..] = rest {
            rest = after;
            fraction_digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let mut overflow = false;
            for &b in &rest[..fraction_digits] {
                if overflow {
                    continue;
                }
                if fraction > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let next = fraction * 10 + u64::from(b - b'0');
                if next > LIMIT {
                    overflow = true;
                    continue;
                }
                fraction = next;
                scale *= 10.0;
            }
            rest = &rest[fraction_digits..];
        }
        if digits == 0 && fraction_digits == 0 {
            // ".s" or "-.s": no digits at all.
            return Err(DurationError::Syntax);
        }
        // Unit: everything up to the next digit or dot.
        let unit_len = rest
            .iter()
            .take_while(|&&b| b != b'.' && !b.is_ascii_digit())
            .count();
        let unit: u64 = match &rest[..unit_len] {
            b"ns" => 1,
            b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60 * 1_000_000_000,
            b"h" => 3_600 * 1_000_000_000,
            _ => return Err(DurationError::Syntax),
        };
        rest = &rest[unit_len..];
        if whole > LIMIT / unit {
            return Err(DurationError::OutOfRange);
        }
        let mut v = whole * unit;
        if fraction > 0 {
            // As Go: float64 keeps fractions of hours nanosecond-accurate; the cast truncates.
            v += (fraction as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(DurationError::OutOfRange);
            }
        }
        total = total
            .checked_add(v)
            .filter(|t| *t <= LIMIT)
            .ok_or(DurationError::OutOfRange)?;
    }
    if negative {
        return if total == 0 {
            Ok(Duration::ZERO)
        } else {
            Err(DurationError::Negative)
        };
    }
    if total > LIMIT - 1 {
        return Err(DurationError::OutOfRange);
    }
    Ok(Duration::from_nanos(total))
}

/// The main agent socket for `dockmon_url`: [`ws_url_for`] with [`AGENT_WS_PATH`].
pub fn ws_url(dockmon_url: &str) -> Result<WsUrl, Error> {
    ws_url_for(dockmon_url, AGENT_WS_PATH)
}

/// The WebSocket URL of `endpoint` (a path starting with `/`) on the server at `dockmon_url`.
///
/// `http` becomes `ws` and `https` `wss`; `ws` and `wss` stay (scheme case-insensitive, RFC 3986
/// §3.1). The base's path prefix is kept and `endpoint` appended after removing trailing slashes, so
/// `https://h/` gives `wss://h/api/agent/ws` (the Go agent would send `//api/agent/ws`). The port
/// defaults to 80 or 443; an IPv6 literal is written in brackets (`http://[::1]:8080`). Refused: another
/// scheme, user info, a query, a fragment, an empty host, a host with characters outside letters,
/// digits, `-`, `.`, `_`, `~` (non-ASCII names must be given in punycode), a port that is not
/// 1–65535, and spaces, control or non-ASCII bytes in the path.
pub fn ws_url_for(dockmon_url: &str, endpoint: &str) -> Result<WsUrl, Error> {
    let Some((scheme, rest)) = dockmon_url.split_once("://") else {
        return Err(Error::Url(
            "must start with http://, https://, ws:// or wss://",
        ));
    };
    let secure = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => false,
        "https" | "wss" => true,
        _ => {
            // RFC 3986 §3.1 scheme characters only; anything else is not worth echoing.
            let is_scheme = !scheme.is_empty()
                && scheme.len() <= 16
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
            return Err(if is_scheme {
                Error::UrlScheme {
                    scheme: scheme.to_string(),
                }
            } else {
                Error::Url("must start with http://, https://, ws:// or wss://")
            });
        }
    };
    if rest.contains('#') {
        return Err(Error::Url("must not contain a fragment (#...)"));
    }
    if rest.contains('?') {
        return Err(Error::Url(
            "must not contain a query (?...); give the server's base url",
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(Error::Url(
            "must not contain user info (user@ or user:password@)",
        ));
    }
    let (host, port) = split_host_port(authority)?;
    let port = match port {
        None | Some("") => {
            if secure {
                443
            } else {
                80
            }
        }
        Some(digits) => {
            let ok = !digits.is_empty()
                && digits.len() <= 5
                && digits.bytes().all(|b| b.is_ascii_digit());
            match digits.parse::<u16>() {
                Ok(port) if ok && port != 0 => port,
                _ => {
                    return Err(Error::Url(
                        "has an invalid port; use a number from 1 to 65535",
                    ))
                }
            }
        }
    };
    if !path.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
        return Err(Error::Url(
            "path has a space, control or non-ascii character; percent-encode it",
        ));
    }
    Ok(WsUrl {
        secure,
        host: host.to_string(),
        port,
        path: format!("{}{endpoint}", path.trim_end_matches('/')),
    })
}

/// Splits `host[:port]` or `[v6][:port]`; the port text is returned unchecked.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), Error> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((literal, tail)) = bracketed.split_once(']') else {
            return Err(Error::Url("has an ipv6 literal without its closing ]"));
        };
        if literal.parse::<Ipv6Addr>().is_err() {
            return Err(Error::Url(
                "has an invalid ipv6 literal (zones are not supported)",
            ));
        }
        return match tail {
            "" => Ok((literal, None)),
            _ => match tail.strip_prefix(':') {
                Some(port) => Ok((literal, Some(port))),
                None => Err(Error::Url(
                    "has text after the ipv6 literal; expected :port",
                )),
            },
        };
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    if host.is_empty() {
        return Err(Error::Url("has no host"));
    }
    if port.is_some_and(|p| p.contains(':')) {
        return Err(Error::Url(
            "has an ipv6 address without brackets; write http://[::1]:8080",
        ));
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        return Err(Error::Url(
            "host has characters other than letters, digits, '-', '.', '_' and '~' (use punycode for non-ascii names)",
        ));
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::collections::HashMap;
    use std::io;

    const REG: &str = "3f2a9c1e-reg-token";
    const PERM: &str = "c2c5e9b1-e4d7-4a8a-8838-32f5f0b6c195";

    /// What the injected file reader answers.
    #[derive(Clone, Copy)]
    enum File {
        Missing,
        Holds(&'static str),
        Unreadable,
    }

    /// Runs `from_env` over `vars`; also reports whether the token file was read and from which path.
    fn load(vars: &[(&str, &str)], file: File) -> (Result<Config, Error>, Option<PathBuf>) {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let read_from = Cell::new(None);
        let result = from_env(
            |k| map.get(k).cloned(),
            |path| {
                read_from.set(Some(path.to_path_buf()));
                match file {
                    File::Missing => Ok(None),
                    File::Holds(text) => Ok(Some(text.to_string())),
                    File::Unreadable => Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        "permission denied",
                    )),
                }
            },
        );
        (result, read_from.take())
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("DOCKMON_URL", "https://dockmon.lan"),
            ("REGISTRATION_TOKEN", REG),
        ]
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut vars = base();
        vars.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        vars.extend_from_slice(extra);
        vars
    }

    #[test]
    fn self_update_url_is_https_or_loopback_http() {
        let (c, _) = load(&base(), File::Missing);
        assert_eq!(c.unwrap().self_update_url, None);
        for (v, want) in [
            (
                "https://mirror.lan/agent/v{version}/",
                "https://mirror.lan/agent/v{version}",
            ),
            ("http://127.0.0.1:8080/rel", "http://127.0.0.1:8080/rel"),
            ("http://localhost/x", "http://localhost/x"),
        ] {
            let (c, _) = load(&with(&[("SELF_UPDATE_URL", v)]), File::Missing);
            assert_eq!(c.unwrap().self_update_url.as_deref(), Some(want), "{v}");
        }
        for v in [
            "http://mirror.lan/x",
            "http://127.0.0.1.evil/x",
            "ftp://h/x",
            "https://user:pw@h/x",
            "https:///x",
        ] {
            let (c, _) = load(&with(&[("SELF_UPDATE_URL", v)]), File::Missing);
            let e = c.unwrap_err().to_string();
            assert!(e.contains("SELF_UPDATE_URL"), "{v}: {e}");
            assert!(!e.contains("pw@"), "{e}");
        }
    }

    #[test]
    fn defaults_follow_spec_1_1() {
        let (config, read) = load(&base(), File::Missing);
        let config = config.expect("valid");
        assert_eq!(read, Some(PathBuf::from("/data/permanent_token")));
        assert_eq!(config.dockmon_url, "https://dockmon.lan");
        assert_eq!(config.ws_url.to_string(), "wss://dockmon.lan/api/agent/ws");
        assert_eq!(
            config.registration_token.as_ref().map(Token::expose),
            Some(REG)
        );
        assert_eq!(config.permanent_token, None);
        assert!(!config.permanent_token_from_file);
        assert_eq!(config.token_file, PathBuf::from("/data/permanent_token"));
        assert_eq!(config.data_path, PathBuf::from("/data"));
        assert_eq!(config.stacks_dir, PathBuf::from("/data/stacks"));
        assert_eq!(config.host_stacks_dir, None);
        assert!(!config.insecure_skip_verify);
        assert_eq!(config.docker_host, None);
        assert_eq!(config.reconnect_initial, Duration::from_secs(1));
        assert_eq!(config.reconnect_max, Duration::from_secs(60));
        assert_eq!(config.agent_name, None);
        assert!(!config.force_unique_registration);
        assert_eq!(config.proto_version, "1.1");
        assert_eq!(config.log_level, LogLevel::Info);
        assert!(
            config.log_json,
            "LOG_JSON defaults to true, as in the Go agent"
        );
        assert_eq!(config.ssl_cert_file, None);
        assert_eq!(config.stats_source, StatsSource::Auto);
    }

    #[test]
    fn empty_values_take_defaults() {
        let empties = [
            "DATA_PATH",
            "INSECURE_SKIP_VERIFY",
            "DOCKER_HOST",
            "RECONNECT_INITIAL",
            "RECONNECT_MAX",
            "AGENT_NAME",
            "FORCE_UNIQUE_REGISTRATION",
            "PROTO_VERSION",
            "LOG_LEVEL",
            "LOG_JSON",
            "SSL_CERT_FILE",
            "STATS_SOURCE",
            "PERMANENT_TOKEN",
        ];
        let mut vars = base();
        vars.extend(empties.iter().map(|k| (*k, "")));
        let (with_empties, _) = load(&vars, File::Missing);
        let (plain, _) = load(&base(), File::Missing);
        assert_eq!(with_empties.expect("valid"), plain.expect("valid"));
    }

    #[test]
    fn every_variable_set() {
        let vars = [
            ("DOCKMON_URL", "http://10.0.0.5:8080/dockmon/"),
            ("REGISTRATION_TOKEN", REG),
            ("PERMANENT_TOKEN", PERM),
            ("DATA_PATH", "/var/lib/dockmon-agent"),
            ("INSECURE_SKIP_VERIFY", "true"),
            ("DOCKER_HOST", "unix:///run/podman/podman.sock"),
            ("RECONNECT_INITIAL", "500ms"),
            ("RECONNECT_MAX", "1h30m"),
            ("AGENT_NAME", "  pi-zero  \n"),
            ("FORCE_UNIQUE_REGISTRATION", "1"),
            ("PROTO_VERSION", "1.0"),
            ("LOG_LEVEL", "WARNING"),
            ("LOG_JSON", "F"),
            ("SSL_CERT_FILE", "/etc/ssl/dockmon-ca.pem"),
            ("STATS_SOURCE", "cgroup"),
            ("AGENT_STACKS_DIR", "/srv/stacks"),
            ("HOST_STACKS_DIR", "/host/stacks"),
        ];
        let (config, read) = load(&vars, File::Holds("file-token"));
        let config = config.expect("valid");
        assert_eq!(config.stacks_dir, PathBuf::from("/srv/stacks"));
        assert_eq!(config.host_stacks_dir, Some(PathBuf::from("/host/stacks")));
        assert_eq!(
            read, None,
            "PERMANENT_TOKEN set: the token file is not read"
        );
        assert_eq!(
            config.ws_url.to_string(),
            "ws://10.0.0.5:8080/dockmon/api/agent/ws"
        );
        assert_eq!(
            config.permanent_token.as_ref().map(Token::expose),
            Some(PERM)
        );
        assert!(!config.permanent_token_from_file);
        assert_eq!(
            config.token_file,
            PathBuf::from("/var/lib/dockmon-agent/permanent_token")
        );
        assert!(config.insecure_skip_verify);
        assert_eq!(
            config.docker_host.as_deref(),
            Some("unix:///run/podman/podman.sock")
        );
        assert_eq!(config.reconnect_initial, Duration::from_millis(500));
        assert_eq!(config.reconnect_max, Duration::from_secs(5400));
        assert_eq!(config.agent_name.as_deref(), Some("pi-zero"));
        assert!(config.force_unique_registration);
        assert_eq!(config.proto_version, "1.0");
        assert_eq!(config.log_level, LogLevel::Warn);
        assert!(!config.log_json);
        assert_eq!(
            config.ssl_cert_file,
            Some(PathBuf::from("/etc/ssl/dockmon-ca.pem"))
        );
        assert_eq!(config.stats_source, StatsSource::Cgroup);
    }

    #[test]
    fn token_sources() {
        // (name, extra vars, file, expected permanent token, from file, expected registration token or error)
        type Case = (
            &'static str,
            Vec<(&'static str, &'static str)>,
            File,
            Result<(Option<&'static str>, bool, bool), &'static str>,
        );
        let no_reg = |extra: &[(&'static str, &'static str)]| {
            let mut v = vec![("DOCKMON_URL", "https://dockmon.lan")];
            v.extend_from_slice(extra);
            v
        };
        let cases: Vec<Case> = vec![
            ("registration only, no file", base(), File::Missing, Ok((None, false, true))),
            ("file token, trimmed", base(), File::Holds(" c2c5e9b1\n"), Ok((Some("c2c5e9b1"), true, true))),
            ("file token alone", no_reg(&[]), File::Holds(PERM), Ok((Some(PERM), true, false))),
            ("blank file is no token", base(), File::Holds(" \n\t"), Ok((None, false, true))),
            ("blank file, no registration", no_reg(&[]), File::Holds("\n"), Err("either REGISTRATION_TOKEN or PERMANENT_TOKEN is required")),
            ("env permanent wins over file", no_reg(&[("PERMANENT_TOKEN", PERM)]), File::Holds("other"), Ok((Some(PERM), false, false))),
            ("nothing at all", no_reg(&[]), File::Missing, Err("either REGISTRATION_TOKEN or PERMANENT_TOKEN is required")),
            (
                "unreadable file",
                base(),
                File::Unreadable,
                Err("cannot read the permanent token file /data/permanent_token: permission denied"),
            ),
            (
                "bad file token",
                base(),
                File::Holds("not a token"),
                Err("token from /data/permanent_token has characters other than letters, digits, '-', '_' and ':'"),
            ),
            (
                "env permanent with a newline",
                no_reg(&[("PERMANENT_TOKEN", "abc\n")]),
                File::Missing,
                Err("token from PERMANENT_TOKEN has characters other than letters, digits, '-', '_' and ':'"),
            ),
        ];
        for (name, vars, file, expect) in cases {
            let (result, _) = load(&vars, file);
            match (result, expect) {
                (Ok(config), Ok((permanent, from_file, has_reg))) => {
                    assert_eq!(
                        config.permanent_token.as_ref().map(Token::expose),
                        permanent,
                        "{name}"
                    );
                    assert_eq!(config.permanent_token_from_file, from_file, "{name}");
                    assert_eq!(config.registration_token.is_some(), has_reg, "{name}");
                }
                (Err(e), Err(text)) => assert_eq!(e.to_string(), text, "{name}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn errors_table() {
        let long_name: &'static str = Box::leak("n".repeat(256).into_boxed_str());
        let just_fits: &'static str =
            Box::leak(format!("  {}  ", "n".repeat(255)).into_boxed_str());
        let long_token: &'static str = Box::leak("t".repeat(256).into_boxed_str());
        let long_value: &'static str = Box::leak("x".repeat(100).into_boxed_str());
        /// (name, variables, expected error text)
        type Case = (
            &'static str,
            Vec<(&'static str, &'static str)>,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            ("url unset", vec![("REGISTRATION_TOKEN", REG)], "DOCKMON_URL is required (the base url of the dockmon server)"),
            ("url empty", with(&[("DOCKMON_URL", "")]), "DOCKMON_URL is required (the base url of the dockmon server)"),
            ("url scheme", with(&[("DOCKMON_URL", "ftp://h")]), "DOCKMON_URL: scheme \"ftp\" is not supported; use http, https, ws or wss"),
            ("agent name 256", with(&[("AGENT_NAME", long_name)]), "AGENT_NAME is 256 bytes long; the limit is 255 bytes"),
            ("force unique without name", with(&[("FORCE_UNIQUE_REGISTRATION", "true")]), "FORCE_UNIQUE_REGISTRATION=true requires AGENT_NAME to be set"),
            ("force unique with blank name", with(&[("FORCE_UNIQUE_REGISTRATION", "T"), ("AGENT_NAME", "  ")]), "FORCE_UNIQUE_REGISTRATION=true requires AGENT_NAME to be set"),
            ("force unique not a bool", with(&[("FORCE_UNIQUE_REGISTRATION", "yes")]), "FORCE_UNIQUE_REGISTRATION: \"yes\" is not a boolean; use one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False"),
            ("insecure not a bool", with(&[("INSECURE_SKIP_VERIFY", "on")]), "INSECURE_SKIP_VERIFY: \"on\" is not a boolean; use one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False"),
            ("log json not a bool", with(&[("LOG_JSON", " true")]), "LOG_JSON: \" true\" is not a boolean; use one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False"),
            ("proto version too long", with(&[("PROTO_VERSION", "1.1.1.1.1.1.1.1.1.1.1")]), "PROTO_VERSION is 21 bytes long; the limit is 20 bytes"),
            ("reconnect max words", with(&[("RECONNECT_MAX", "sixty")]), "RECONNECT_MAX: \"sixty\" is not a duration; use Go duration syntax such as 30s, 1m, 1h30m"),
            ("reconnect initial no unit", with(&[("RECONNECT_INITIAL", "5")]), "RECONNECT_INITIAL: \"5\" is not a duration; use Go duration syntax such as 30s, 1m, 1h30m"),
            ("reconnect initial negative", with(&[("RECONNECT_INITIAL", "-1s")]), "RECONNECT_INITIAL: \"-1s\" is negative; use a positive Go duration such as 30s, 1m, 1h30m"),
            ("reconnect max huge", with(&[("RECONNECT_MAX", "3000000h")]), "RECONNECT_MAX: \"3000000h\" is out of range; use Go duration syntax such as 30s, 1m, 1h30m (at most 2562047h)"),
            ("reconnect initial zero", with(&[("RECONNECT_INITIAL", "0")]), "RECONNECT_INITIAL must be greater than zero; use a duration such as 1s"),
            ("reconnect initial 0s", with(&[("RECONNECT_INITIAL", "0s")]), "RECONNECT_INITIAL must be greater than zero; use a duration such as 1s"),
            ("reconnect order", with(&[("RECONNECT_INITIAL", "2m"), ("RECONNECT_MAX", "90s")]), "RECONNECT_INITIAL (120s) must not be greater than RECONNECT_MAX (90s)"),
            ("initial above default max", with(&[("RECONNECT_INITIAL", "61s")]), "RECONNECT_INITIAL (61s) must not be greater than RECONNECT_MAX (60s)"),
            ("log level", with(&[("LOG_LEVEL", "verbose")]), "LOG_LEVEL: \"verbose\" is not a log level; use one of trace, debug, info, warn, warning, error, fatal, panic"),
            ("stats source", with(&[("STATS_SOURCE", "proc")]), "STATS_SOURCE: \"proc\" is not a stats source; use auto, docker or cgroup"),
            ("long value cut", with(&[("LOG_LEVEL", long_value)]), "LOG_LEVEL: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…\" is not a log level; use one of trace, debug, info, warn, warning, error, fatal, panic"),
            ("control characters stay on one line", with(&[("LOG_JSON", "tr\nue")]), "LOG_JSON: \"tr\\nue\" is not a boolean; use one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False"),
            ("registration token too long", with(&[("REGISTRATION_TOKEN", long_token)]), "token from REGISTRATION_TOKEN is 256 bytes long; the limit is 255 bytes"),
            ("registration token with space", with(&[("REGISTRATION_TOKEN", "abc def")]), "token from REGISTRATION_TOKEN has characters other than letters, digits, '-', '_' and ':'"),
        ];
        for (name, vars, expect) in cases {
            let (result, _) = load(&vars, File::Missing);
            match result {
                Err(e) => {
                    let text = e.to_string();
                    assert_eq!(text, expect, "{name}");
                    assert!(!text.contains('\n'), "{name}: one line");
                }
                Ok(config) => panic!("{name}: accepted {config:?}"),
            }
        }
        // 255 bytes after trimming is fine.
        let (ok, _) = load(&with(&[("AGENT_NAME", just_fits)]), File::Missing);
        assert_eq!(
            ok.expect("255 bytes").agent_name.map(|n| n.len()),
            Some(255)
        );
    }

    /// Several faults at once: the first in spec order wins, and the token file is not read before
    /// everything else has passed.
    #[test]
    fn validation_order() {
        let all_bad = [
            ("DOCKMON_URL", "gopher://h"),
            (
                "AGENT_NAME",
                Box::leak("n".repeat(300).into_boxed_str()) as &str,
            ),
            ("FORCE_UNIQUE_REGISTRATION", "true"),
            ("INSECURE_SKIP_VERIFY", "maybe"),
            ("RECONNECT_INITIAL", "soon"),
        ];
        let steps = [
            "DOCKMON_URL: scheme \"gopher\"",
            "AGENT_NAME is 300 bytes",
            "FORCE_UNIQUE_REGISTRATION=true requires",
            "INSECURE_SKIP_VERIFY: \"maybe\"",
            "RECONNECT_INITIAL: \"soon\"",
            "cannot read the permanent token file",
        ];
        for (fixed, step) in steps.iter().enumerate() {
            // Faults 0..fixed are repaired; the first remaining one is reported.
            let mut vars: Vec<(&str, &str)> = vec![("REGISTRATION_TOKEN", REG)];
            for (i, (k, v)) in all_bad.iter().enumerate() {
                let value = if i < fixed {
                    match *k {
                        "DOCKMON_URL" => "https://h",
                        "AGENT_NAME" => "",
                        "FORCE_UNIQUE_REGISTRATION" => "false",
                        "INSECURE_SKIP_VERIFY" => "0",
                        _ => "1s",
                    }
                } else {
                    v
                };
                vars.push((k, value));
            }
            let (result, read) = load(&vars, File::Unreadable);
            let text = result.expect_err("still one fault").to_string();
            assert!(text.starts_with(step), "step {fixed}: {text}");
            assert_eq!(
                read.is_some(),
                fixed == steps.len() - 1,
                "step {fixed}: file read only last"
            );
        }
        // The NoToken check comes after the file: a missing file with no tokens reports NoToken.
        let (result, read) = load(&[("DOCKMON_URL", "http://h")], File::Missing);
        assert!(matches!(result, Err(Error::NoToken)));
        assert!(read.is_some());
    }

    #[test]
    fn tokens_never_in_debug_or_errors() {
        let vars = with(&[("PERMANENT_TOKEN", PERM)]);
        let (config, _) = load(&vars, File::Missing);
        let config = config.expect("valid");
        let debug = format!("{config:?} {config:#?}");
        assert!(!debug.contains(PERM) && !debug.contains(REG), "{debug}");
        assert!(debug.contains("Token(<redacted>)"));
        // Errors about tokens name the source, not the value.
        for bad in ["abc def!", "sécret-token"] {
            let vars = with(&[("PERMANENT_TOKEN", bad)]);
            let e = load(&vars, File::Missing).0.expect_err("bad token");
            assert!(!e.to_string().contains(bad) && !format!("{e:?}").contains(bad));
        }
        let e = load(&base(), File::Holds("bad token!"))
            .0
            .expect_err("bad file token");
        assert!(!e.to_string().contains("bad token!") && !format!("{e:?}").contains("bad token!"));
    }

    #[test]
    fn bool_table() {
        for v in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(v), Some(true), "{v}");
        }
        for v in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(v), Some(false), "{v}");
        }
        for v in [
            "", "yes", "no", "on", "off", "tRUE", "fALSE", " true", "true ", "2", "y", "TrUe",
        ] {
            assert_eq!(parse_bool(v), None, "{v}");
        }
    }

    #[test]
    fn log_levels() {
        let cases = [
            ("trace", LogLevel::Trace, log::LevelFilter::Trace),
            ("debug", LogLevel::Debug, log::LevelFilter::Debug),
            ("info", LogLevel::Info, log::LevelFilter::Info),
            ("INFO", LogLevel::Info, log::LevelFilter::Info),
            ("warn", LogLevel::Warn, log::LevelFilter::Warn),
            ("warning", LogLevel::Warn, log::LevelFilter::Warn),
            ("error", LogLevel::Error, log::LevelFilter::Error),
            ("fatal", LogLevel::Fatal, log::LevelFilter::Error),
            ("Panic", LogLevel::Panic, log::LevelFilter::Error),
        ];
        for (text, level, filter) in cases {
            assert_eq!(LogLevel::parse(text), Some(level), "{text}");
            assert_eq!(level.filter(), filter, "{text}");
        }
        assert_eq!(LogLevel::parse("verbose"), None);
        assert_eq!(StatsSource::parse("Docker"), Some(StatsSource::Docker));
        assert_eq!(StatsSource::parse("auto"), Some(StatsSource::Auto));
        assert_eq!(StatsSource::parse("cgroups"), None);
    }

    /// Go's own `time.ParseDuration` test table (time_test.go, parseDurationTests and
    /// parseDurationErrorTests), with negative results moved to the error side.
    #[test]
    fn go_duration_table() {
        const NS: u64 = 1;
        const US: u64 = 1_000;
        const MS: u64 = 1_000_000;
        const S: u64 = 1_000_000_000;
        const M: u64 = 60 * S;
        const H: u64 = 60 * M;
        let ok: &[(&str, u64)] = &[
            ("0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("+5s", 5 * S),
            ("-0", 0),
            ("+0", 0),
            ("-0s", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600 * MS),
            ("5.s", 5 * S),
            (".5s", 500 * MS),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4 * MS),
            ("1.0040s", S + 4 * MS),
            ("100.00100s", 100 * S + MS),
            ("10ns", 10 * NS),
            ("11us", 11 * US),
            ("12µs", 12 * US),
            ("12μs", 12 * US),
            ("13ms", 13 * MS),
            ("14s", 14 * S),
            ("15m", 15 * M),
            ("16h", 16 * H),
            ("3h30m", 3 * H + 30 * M),
            ("10.5s4m", 4 * M + 10 * S + 500 * MS),
            (
                "1h2m3s4ms5us6ns",
                H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS,
            ),
            ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * M),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", (1 << 63) - 1),
            ("9223372036854775.807us", (1 << 63) - 1),
            ("9223372036s854ms775us807ns", (1 << 63) - 1),
            ("0.100000000000000000000h", 6 * M),
            ("0.830103483285477580700h", 49 * M + 48 * S + 372_539_827),
            ("1.5h", 90 * M),
            ("500ms", 500 * MS),
        ];
        for (text, nanos) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_nanos(*nanos)),
                "{text}"
            );
        }
        let errors: &[(&str, DurationError)] = &[
            ("", DurationError::Syntax),
            ("3", DurationError::Syntax),
            ("-", DurationError::Syntax),
            ("s", DurationError::Syntax),
            (".", DurationError::Syntax),
            ("-.", DurationError::Syntax),
            (".s", DurationError::Syntax),
            ("+.s", DurationError::Syntax),
            ("1d", DurationError::Syntax),
            ("1 s", DurationError::Syntax),
            ("1s ", DurationError::Syntax),
            (" 1s", DurationError::Syntax),
            ("1S", DurationError::Syntax),
            ("1.5", DurationError::Syntax),
            ("--1s", DurationError::Syntax),
            ("sixty", DurationError::Syntax),
            ("-5s", DurationError::Negative),
            ("-2m3.4s", DurationError::Negative),
            ("-9223372036854775808ns", DurationError::Negative),
            ("9223372036854775808ns", DurationError::OutOfRange),
            ("9223372036854775.808us", DurationError::OutOfRange),
            ("9223372036s854ms775us808ns", DurationError::OutOfRange),
            ("99999999999999999999ns", DurationError::OutOfRange),
            ("3000000h", DurationError::OutOfRange),
            ("2562047h47m16.854775808s", DurationError::OutOfRange),
        ];
        for (text, error) in errors {
            assert_eq!(parse_duration(text), Err(*error), "{text}");
        }
        assert_eq!(
            parse_duration("2562047h47m16.854775807s"),
            Ok(Duration::from_nanos((1 << 63) - 1))
        );
    }

    #[test]
    fn ws_url_table() {
        // (input, Ok((secure, host, port, path, display)) or Err(display))
        type Expect = Result<(bool, &'static str, u16, &'static str, &'static str), &'static str>;
        let cases: Vec<(&str, Expect)> = vec![
            ("https://dockmon.lan", Ok((true, "dockmon.lan", 443, "/api/agent/ws", "wss://dockmon.lan/api/agent/ws"))),
            ("http://dockmon.lan", Ok((false, "dockmon.lan", 80, "/api/agent/ws", "ws://dockmon.lan/api/agent/ws"))),
            ("wss://dockmon.lan", Ok((true, "dockmon.lan", 443, "/api/agent/ws", "wss://dockmon.lan/api/agent/ws"))),
            ("ws://dockmon.lan", Ok((false, "dockmon.lan", 80, "/api/agent/ws", "ws://dockmon.lan/api/agent/ws"))),
            ("HTTPS://DockMon.lan", Ok((true, "DockMon.lan", 443, "/api/agent/ws", "wss://DockMon.lan/api/agent/ws"))),
            ("https://h/", Ok((true, "h", 443, "/api/agent/ws", "wss://h/api/agent/ws"))),
            ("https://h//", Ok((true, "h", 443, "/api/agent/ws", "wss://h/api/agent/ws"))),
            ("https://h/dockmon", Ok((true, "h", 443, "/dockmon/api/agent/ws", "wss://h/dockmon/api/agent/ws"))),
            ("https://h/dockmon/", Ok((true, "h", 443, "/dockmon/api/agent/ws", "wss://h/dockmon/api/agent/ws"))),
            ("https://h/a%20b/", Ok((true, "h", 443, "/a%20b/api/agent/ws", "wss://h/a%20b/api/agent/ws"))),
            ("http://192.168.1.10:8080", Ok((false, "192.168.1.10", 8080, "/api/agent/ws", "ws://192.168.1.10:8080/api/agent/ws"))),
            ("https://h:443", Ok((true, "h", 443, "/api/agent/ws", "wss://h/api/agent/ws"))),
            ("https://h:80", Ok((true, "h", 80, "/api/agent/ws", "wss://h:80/api/agent/ws"))),
            ("http://h:", Ok((false, "h", 80, "/api/agent/ws", "ws://h/api/agent/ws"))),
            ("http://[::1]:8080", Ok((false, "::1", 8080, "/api/agent/ws", "ws://[::1]:8080/api/agent/ws"))),
            ("https://[2001:db8::2]/dm", Ok((true, "2001:db8::2", 443, "/dm/api/agent/ws", "wss://[2001:db8::2]/dm/api/agent/ws"))),
            ("http://h:65535", Ok((false, "h", 65535, "/api/agent/ws", "ws://h:65535/api/agent/ws"))),
            ("ftp://h", Err("DOCKMON_URL: scheme \"ftp\" is not supported; use http, https, ws or wss")),
            ("dockmon.lan", Err("DOCKMON_URL: must start with http://, https://, ws:// or wss://")),
            ("dockmon.lan:8080", Err("DOCKMON_URL: must start with http://, https://, ws:// or wss://")),
            ("://h", Err("DOCKMON_URL: must start with http://, https://, ws:// or wss://")),
            ("user:pa ss://h", Err("DOCKMON_URL: must start with http://, https://, ws:// or wss://")),
            ("https://", Err("DOCKMON_URL: has no host")),
            ("https:///path", Err("DOCKMON_URL: has no host")),
            ("https://:8080", Err("DOCKMON_URL: has no host")),
            ("https://admin:hunter2@h", Err("DOCKMON_URL: must not contain user info (user@ or user:password@)")),
            ("https://admin@h/", Err("DOCKMON_URL: must not contain user info (user@ or user:password@)")),
            ("https://h/?token=abc", Err("DOCKMON_URL: must not contain a query (?...); give the server's base url")),
            ("https://h?x", Err("DOCKMON_URL: must not contain a query (?...); give the server's base url")),
            ("https://h/#top", Err("DOCKMON_URL: must not contain a fragment (#...)")),
            ("http://h:0", Err("DOCKMON_URL: has an invalid port; use a number from 1 to 65535")),
            ("http://h:65536", Err("DOCKMON_URL: has an invalid port; use a number from 1 to 65535")),
            ("http://h:+80", Err("DOCKMON_URL: has an invalid port; use a number from 1 to 65535")),
            ("http://h:http", Err("DOCKMON_URL: has an invalid port; use a number from 1 to 65535")),
            ("http://h:000080", Err("DOCKMON_URL: has an invalid port; use a number from 1 to 65535")),
            ("http://::1:8080", Err("DOCKMON_URL: has no host")),
            ("http://fe80::1", Err("DOCKMON_URL: has an ipv6 address without brackets; write http://[::1]:8080")),
            ("http://[::1", Err("DOCKMON_URL: has an ipv6 literal without its closing ]")),
            ("http://[::g]:80", Err("DOCKMON_URL: has an invalid ipv6 literal (zones are not supported)")),
            ("http://[fe80::1%25eth0]", Err("DOCKMON_URL: has an invalid ipv6 literal (zones are not supported)")),
            ("http://[::1]x", Err("DOCKMON_URL: has text after the ipv6 literal; expected :port")),
            ("http://dock mon", Err("DOCKMON_URL: host has characters other than letters, digits, '-', '.', '_' and '~' (use punycode for non-ascii names)")),
            ("http://dockmön.lan", Err("DOCKMON_URL: host has characters other than letters, digits, '-', '.', '_' and '~' (use punycode for non-ascii names)")),
            ("https://h ", Err("DOCKMON_URL: host has characters other than letters, digits, '-', '.', '_' and '~' (use punycode for non-ascii names)")),
            ("https://h/a b", Err("DOCKMON_URL: path has a space, control or non-ascii character; percent-encode it")),
            ("https://h/é", Err("DOCKMON_URL: path has a space, control or non-ascii character; percent-encode it")),
            ("https://h/\n", Err("DOCKMON_URL: path has a space, control or non-ascii character; percent-encode it")),
        ];
        for (input, expect) in cases {
            match (ws_url(input), expect) {
                (Ok(url), Ok((secure, host, port, path, display))) => {
                    assert_eq!(
                        (url.secure, url.host.as_str(), url.port, url.path.as_str()),
                        (secure, host, port, path),
                        "{input}"
                    );
                    assert_eq!(url.to_string(), display, "{input}");
                }
                (Err(e), Err(text)) => {
                    assert_eq!(e.to_string(), text, "{input}");
                    assert!(
                        !text.contains("hunter2") && !format!("{e:?}").contains("hunter2"),
                        "{input}"
                    );
                }
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn authority_is_the_host_header() {
        let cases = [
            ("https://h", "h"),
            ("https://h:8443/x", "h:8443"),
            ("http://h:80", "h"),
            ("http://h:443", "h:443"),
            ("http://[::1]", "[::1]"),
            ("https://[::1]:9443", "[::1]:9443"),
        ];
        for (input, authority) in cases {
            assert_eq!(
                ws_url(input).expect(input).authority(),
                authority,
                "{input}"
            );
        }
        let ingest = ws_url_for("https://h/dockmon/", STATS_INGEST_WS_PATH).expect("valid");
        assert_eq!(ingest.to_string(), "wss://h/dockmon/api/stats/ws/ingest");
    }

    #[test]
    fn token_rules() {
        assert_eq!(
            Token::new("t", PERM).map(|t| t.expose().to_string()).ok(),
            Some(PERM.to_string())
        );
        assert!(Token::new("t", "IFO2:3MUH_a-b").is_ok());
        assert!(Token::new("t", &"a".repeat(255)).is_ok());
        for bad in ["", "a b", "a\r\nb", "é", "a/b", &"a".repeat(256)] {
            assert!(
                matches!(
                    Token::new("t", bad),
                    Err(Error::InvalidToken { .. } | Error::TokenTooLong { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            format!("{:?}", Token::new("t", "secret").ok()),
            "Some(Token(<redacted>))"
        );
    }
}
