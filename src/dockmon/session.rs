//! The DockMon session: connect, register, serve, back off, reconnect (spec 2.5, 2.7, 2.8), as a pure
//! state machine in the style of ntpd-rs's protocol core. Read spec section 2 first.
//!
//! The agent (`modes::agent`) feeds [`Event`]s in, with `now` and a random number for jitter, and
//! executes the [`Action`]s that come out (gather the engine facts, open the connection, send a frame,
//! close, wait until, store the token, run a command, log, exit). No socket, clock, task or log call
//! here; every protocol decision is: the refused-key retry, `auth_success` and the permanent token,
//! keepalive and the read deadline, the backoff with jitter, close codes.
//!
//! Policy (issue 11 D1): the backoff starts over only after a registered connection stayed up for
//! `HEALTHY_SESSION_MS`; a shorter one is followed by the next backoff delay, and never less than
//! `RECONNECT_MIN_GAP_MS` after the previous connection started. When the server closes us with
//! 1000 `New connection established` (spec 2.6: another socket registered as this agent), the agent
//! says so once and waits the longest delay. Issue 11 D3: DockMon is never dialled before the
//! engine facts (`GET /info`) are read; they are retried with their own backoff.
use super::command::{self, Frame, Notice, Request};
use super::error::{Ended, Error, Io, Rejection};
use super::msg::Incoming;
use super::register::{self, Dropped, Registration};
use super::timing::{Backoff, Keep, Keepalive};
use crate::docker;
use crate::limits::{
    AUTH_REPLY_TIMEOUT_MS, FACTS_RETRY_INITIAL_MS, FACTS_RETRY_MAX_MS, HEALTHY_SESSION_MS,
    RECONNECT_MIN_GAP_MS,
};
use crate::ws::conn::Error as WsError;
use log::Level;
use std::time::{Duration, Instant};

/// The close reason DockMon gives the older socket when the same agent registers again (spec 2.6).
pub const DISPLACED_REASON: &str = "New connection established";

/// What the session is told.
#[derive(Debug)]
pub enum Event<'a> {
    /// The agent started (Docker is reachable).
    Start,
    /// The answer to [`Action::GatherFacts`].
    Facts(Result<Box<Registration>, docker::Error>),
    /// [`Action::Connect`] succeeded: transport and WebSocket upgrade are up.
    Connected,
    /// [`Action::Connect`] failed.
    ConnectFailed(Error),
    /// An [`Action::Send`] finished.
    Sent,
    /// An [`Action::Send`] failed or timed out.
    SendFailed(Io),
    /// A text frame arrived.
    Text(&'a str),
    /// A pong arrived.
    Pong,
    /// A binary frame of this many bytes arrived (DockMon never sends one).
    Binary(usize),
    /// The server sent a close frame.
    Closed {
        /// The code, if any.
        code: Option<u16>,
        /// The reason.
        reason: String,
    },
    /// Reading the socket failed.
    ReadFailed(WsError),
    /// Writing a queued frame failed (the agent's writer).
    WriteFailed(Io),
    /// An [`Action::Ping`] failed.
    PingFailed(Io),
    /// The time of the last [`Action::WaitUntil`] came.
    Timer,
    /// SIGTERM or SIGINT.
    Signal,
}

/// What the agent must do, in order.
#[derive(Debug)]
pub enum Action {
    /// Read the registration facts from the engine; answer with [`Event::Facts`].
    GatherFacts,
    /// Open the transport and upgrade; answer with [`Event::Connected`] or [`Event::ConnectFailed`].
    Connect,
    /// Write this text frame (within the write deadline); answer with `Sent` or `SendFailed`.
    Send(Vec<u8>),
    /// Write a ping; answer with `PingFailed` only when it fails.
    Ping,
    /// Send a close frame (best effort, within the close deadline).
    Close {
        /// The close code (RFC 6455 §7.4).
        code: u16,
        /// The reason.
        reason: &'static str,
    },
    /// Drop the connection.
    Disconnect,
    /// A registered connection is up: start per-connection work (events, stats, the writer).
    Up,
    /// The connection ended: stop per-connection work.
    Down,
    /// Send [`Event::Timer`] at this time (replaces the previous one).
    WaitUntil(Instant),
    /// Persist the permanent token (spec 2.5, 9.2).
    StoreToken(String),
    /// Answer this request (spec 3.3, 3.4).
    Run(Request),
    /// Hand this no-reply frame to its handler.
    Notice(Notice),
    /// Log this line for the user.
    Log(Level, String),
    /// Stop the agent: `None` exit 0, `Some` a configuration error.
    Exit(Option<String>),
}

/// The actions of one step. Eight is the most one event yields (a signal while serving: 6).
pub type Actions = heapless::Vec<Action, 8>;

/// What the session needs to know from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The DockMon URL as shown in log lines.
    pub url: String,
    /// The token to register with first.
    pub token: String,
    /// Whether `token` is the permanent one (spec 2.5).
    pub permanent: bool,
    /// `RECONNECT_INITIAL`.
    pub reconnect_initial: Duration,
    /// `RECONNECT_MAX`.
    pub reconnect_max: Duration,
    /// Where the permanent token is kept, for the hint when it is no longer known.
    pub token_file: String,
}

#[derive(Debug)]
enum State {
    Idle,
    Gathering,
    FactsWait {
        until: Instant,
    },
    Connecting,
    Registering {
        deadline: Instant,
    },
    Serving {
        since: Instant,
        keepalive: Keepalive,
    },
    Waiting {
        until: Instant,
    },
    Done,
}

/// The session. See the module doc.
#[derive(Debug)]
pub struct Session {
    settings: Settings,
    state: State,
    token: String,
    permanent: bool,
    dropped: Dropped,
    backoff: Backoff,
    facts_backoff: Backoff,
    facts_failing: bool,
    registration: Option<Registration>,
    /// When the last registered connection started (for `RECONNECT_MIN_GAP_MS`).
    last_up: Option<Instant>,
    last_failure: String,
    displaced_said: bool,
}

impl Session {
    /// A session that has not started.
    pub fn new(settings: Settings) -> Session {
        Session {
            token: settings.token.clone(),
            permanent: settings.permanent,
            backoff: Backoff::new(settings.reconnect_initial, settings.reconnect_max),
            facts_backoff: Backoff::new(
                Duration::from_millis(FACTS_RETRY_INITIAL_MS),
                Duration::from_millis(FACTS_RETRY_MAX_MS),
            ),
            settings,
            state: State::Idle,
            dropped: Dropped::new(),
            facts_failing: false,
            registration: None,
            last_up: None,
            last_failure: String::new(),
            displaced_said: false,
        }
    }

    /// Whether a registered connection is up.
    pub fn is_serving(&self) -> bool {
        matches!(self.state, State::Serving { .. })
    }

    /// Whether the session reads frames from a connection (registering or serving).
    pub fn is_reading(&self) -> bool {
        matches!(
            self.state,
            State::Registering { .. } | State::Serving { .. }
        )
    }

    /// Whether the token in use is the permanent one.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// One step: `event` at `now`; `random` in `[0, 1)` spreads the backoff.
    pub fn handle(&mut self, now: Instant, event: Event<'_>, random: f64) -> Actions {
        let mut out = Actions::new();
        if let Event::Signal = event {
            self.signal(&mut out);
            return out;
        }
        let state = std::mem::replace(&mut self.state, State::Done);
        self.state = match (state, event) {
            (State::Idle, Event::Start) => {
                push(&mut out, Action::GatherFacts);
                State::Gathering
            }
            (State::Gathering, Event::Facts(Ok(reg))) => {
                if self.facts_failing {
                    self.facts_failing = false;
                    self.facts_backoff.reset();
                    log(
                        &mut out,
                        Level::Info,
                        "engine facts read; connecting to DockMon",
                    );
                }
                self.registration = Some(*reg);
                push(&mut out, Action::Connect);
                State::Connecting
            }
            (State::Gathering, Event::Facts(Err(e))) => {
                let delay = self.facts_backoff.next_delay(random);
                if !self.facts_failing {
                    self.facts_failing = true;
                    log(
                        &mut out,
                        Level::Warn,
                        format!(
                            "cannot read the engine facts for the registration: {e}; DockMon is not contacted until Docker answers (retrying with backoff, next in {:.1} s)",
                            delay.as_secs_f64()
                        ),
                    );
                }
                push(&mut out, Action::WaitUntil(now + delay));
                State::FactsWait { until: now + delay }
            }
            (State::FactsWait { until }, Event::Timer) if now >= until => {
                push(&mut out, Action::GatherFacts);
                State::Gathering
            }
            (State::Connecting, Event::Connected) => {
                let mut frame = Vec::with_capacity(1024);
                if let Some(reg) = &self.registration {
                    register::write(&mut frame, reg, &self.token, &self.dropped);
                }
                push(&mut out, Action::Send(frame));
                let deadline = now + Duration::from_millis(AUTH_REPLY_TIMEOUT_MS);
                push(&mut out, Action::WaitUntil(deadline));
                State::Registering { deadline }
            }
            (State::Connecting, Event::ConnectFailed(e)) => self.failed(now, e, random, &mut out),
            (State::Registering { .. }, Event::SendFailed(e)) => {
                self.failed(now, Error::SendRegistration(e), random, &mut out)
            }
            (State::Registering { .. }, Event::Text(text)) => {
                self.answer(now, text, random, &mut out)
            }
            (State::Registering { deadline }, Event::Timer) if now >= deadline => {
                self.failed(now, Error::AuthTimeout, random, &mut out)
            }
            (State::Registering { .. }, Event::ReadFailed(e)) => {
                self.failed(now, Error::Registration(e), random, &mut out)
            }
            (State::Registering { .. }, Event::Closed { code, reason }) => self.failed(
                now,
                Error::ClosedDuringRegistration {
                    code: code.unwrap_or(1005),
                    reason,
                },
                random,
                &mut out,
            ),
            (
                State::Serving {
                    since,
                    mut keepalive,
                },
                event,
            ) => self.serve(now, since, &mut keepalive, event, random, &mut out),
            (State::Waiting { until }, Event::Timer) if now >= until => {
                push(&mut out, Action::GatherFacts);
                State::Gathering
            }
            // Anything else changes nothing: a timer that fired early, a pong while registering, a
            // `Sent`, a frame after the connection was given up.
            (state, _) => state,
        };
        out
    }

    fn signal(&mut self, out: &mut Actions) {
        if self.is_serving() {
            log(out, Level::Info, "signal received; closing the connection");
            push(
                out,
                Action::Close {
                    code: 1000,
                    reason: "agent shutting down",
                },
            );
            push(out, Action::Disconnect);
            push(out, Action::Down);
            log(out, Level::Info, "shut down cleanly");
        } else {
            log(
                out,
                Level::Info,
                "signal received before the connection was up; exiting",
            );
            push(out, Action::Disconnect);
        }
        push(out, Action::Exit(None));
        self.state = State::Done;
    }

    /// The answer to the register frame (spec 2.5).
    fn answer(&mut self, now: Instant, text: &str, random: f64, out: &mut Actions) -> State {
        let reply = match Incoming::parse(text) {
            Ok(r) => r,
            Err(e) => return self.failed(now, Error::AnswerNotJson(e), random, out),
        };
        if reply.kind == "auth_error" {
            let error = reply.error.as_deref().unwrap_or("(no reason given)");
            let kind = Rejection::of(error);
            if let Rejection::RefusedKey(key) = kind {
                push(out, Action::Disconnect);
                log(out, Level::Info, format!("this DockMon server does not know the registration key `{key}`; registering without it"));
                if self.dropped.push(key).is_err() {
                    push(
                        out,
                        Action::Exit(Some("the server refuses every optional key".into())),
                    );
                    return State::Done;
                }
                // Part of the same registration: retried at once.
                push(out, Action::GatherFacts);
                return State::Gathering;
            }
            let error = error.to_string();
            return self.failed(now, Error::Rejected { error, kind }, random, out);
        }
        // Like the Go agent: any other answer with agent_id and host_id is success.
        if reply.agent_id.is_none() || reply.host_id.is_none() {
            return self.failed(now, Error::AnswerIncomplete, random, out);
        }
        // The agent ID is the permanent token (spec 2.5): never logged.
        log(
            out,
            Level::Info,
            format!(
                "registered with DockMon at {} as host {}",
                self.settings.url,
                reply.host_id.as_deref().unwrap_or("")
            ),
        );
        self.last_failure.clear();
        if let Some(p) = reply.permanent_token.as_deref().filter(|t| !t.is_empty()) {
            if p != self.token || !self.permanent {
                self.token = p.to_string();
                self.permanent = true;
            }
            push(out, Action::StoreToken(self.token.clone()));
        }
        self.last_up = Some(now);
        push(out, Action::Up);
        let mut keepalive = Keepalive::new(now);
        if let Keep::Wait(at) = keepalive.poll(now) {
            push(out, Action::WaitUntil(at));
        }
        State::Serving {
            since: now,
            keepalive,
        }
    }

    /// A registered connection.
    fn serve(
        &mut self,
        now: Instant,
        since: Instant,
        keepalive: &mut Keepalive,
        event: Event<'_>,
        random: f64,
        out: &mut Actions,
    ) -> State {
        let serving = |keepalive: &Keepalive| State::Serving {
            since,
            keepalive: keepalive.clone(),
        };
        match event {
            Event::Text(text) => {
                keepalive.received(now);
                match command::parse(text) {
                    Ok(Frame::Request(r)) => push(out, Action::Run(r)),
                    Ok(Frame::Notice(n)) => push(out, Action::Notice(n)),
                    Err(e) => log(
                        out,
                        Level::Warn,
                        format!("ignoring a frame from DockMon that is not a JSON object: {e}"),
                    ),
                }
                serving(keepalive)
            }
            Event::Pong => {
                keepalive.received(now);
                serving(keepalive)
            }
            Event::Binary(n) => {
                log(
                    out,
                    Level::Warn,
                    format!("ignoring a binary frame from DockMon ({n} bytes): the protocol is JSON text"),
                );
                serving(keepalive)
            }
            Event::Timer => match keepalive.poll(now) {
                Keep::Dead => self.ended(now, since, Ended::Silent, random, out),
                Keep::Ping => {
                    push(out, Action::Ping);
                    if let Keep::Wait(at) = keepalive.poll(now) {
                        push(out, Action::WaitUntil(at));
                    }
                    serving(keepalive)
                }
                Keep::Wait(at) => {
                    push(out, Action::WaitUntil(at));
                    serving(keepalive)
                }
            },
            Event::Closed { code, reason } => {
                let code = code.unwrap_or(1005);
                if code == 1000 && reason == DISPLACED_REASON {
                    return self.displaced(now, since, random, out);
                }
                let why = Ended::Closed { code, reason };
                self.ended(now, since, why, random, out)
            }
            Event::ReadFailed(e) => {
                // Fail the connection the RFC 6455 way (§7.1.7) when the server broke the
                // protocol: a close frame with the code that says why.
                if let WsError::Wire(w) = &e {
                    if let Some(code) = w.close_code() {
                        push(out, Action::Close { code, reason: "" });
                    }
                }
                self.ended(now, since, Ended::Read(e), random, out)
            }
            Event::WriteFailed(e) => self.ended(now, since, Ended::Write(e), random, out),
            Event::PingFailed(e) => self.ended(now, since, Ended::Ping(e), random, out),
            _ => serving(keepalive),
        }
    }

    /// Another socket registered as this agent (spec 2.6): say so once, wait the longest delay.
    fn displaced(&mut self, now: Instant, since: Instant, random: f64, out: &mut Actions) -> State {
        if !self.displaced_said {
            self.displaced_said = true;
            log(
                out,
                Level::Error,
                format!(
                    "another agent is using this agent's identity: DockMon closed this connection because a newer one registered with the same token ({DISPLACED_REASON}); two agents share one data directory or permanent token ({}). This agent now reconnects at most every {} s; give each agent its own DATA_PATH and registration token",
                    self.settings.token_file,
                    self.settings.reconnect_max.as_secs()
                ),
            );
        }
        self.backoff.saturate();
        let why = Ended::Closed {
            code: 1000,
            reason: DISPLACED_REASON.to_string(),
        };
        self.ended(now, since, why, random, out)
    }

    /// A registered connection ended: tear down, then reconnect at once after a healthy one, else
    /// after the next backoff delay (and at least `RECONNECT_MIN_GAP_MS` after it started).
    fn ended(
        &mut self,
        now: Instant,
        since: Instant,
        why: Ended,
        random: f64,
        out: &mut Actions,
    ) -> State {
        push(out, Action::Disconnect);
        push(out, Action::Down);
        log(
            out,
            Level::Warn,
            format!("connection to DockMon lost: {why}; reconnecting"),
        );
        let healthy =
            now.saturating_duration_since(since) >= Duration::from_millis(HEALTHY_SESSION_MS);
        let delay = if healthy {
            self.backoff.reset();
            Duration::ZERO
        } else {
            let gap = (since + Duration::from_millis(RECONNECT_MIN_GAP_MS))
                .saturating_duration_since(now);
            self.backoff.next_delay(random).max(gap)
        };
        if delay.is_zero() {
            push(out, Action::GatherFacts);
            return State::Gathering;
        }
        log(
            out,
            Level::Info,
            format!("retrying in {:.1} s", delay.as_secs_f64()),
        );
        push(out, Action::WaitUntil(now + delay));
        State::Waiting { until: now + delay }
    }

    /// An attempt failed (spec 2.5: counts for the backoff).
    fn failed(&mut self, now: Instant, e: Error, random: f64, out: &mut Actions) -> State {
        push(out, Action::Disconnect);
        let text = match &e {
            Error::Rejected { error, .. } => format!(
                "DockMon at {} rejected the registration: {error}",
                self.settings.url
            ),
            other => format!(
                "cannot connect to DockMon at {}: {other}",
                self.settings.url
            ),
        };
        if text != self.last_failure {
            log(out, Level::Error, text.clone());
            if let Error::Rejected {
                kind: Rejection::InvalidToken,
                ..
            } = e
            {
                if self.permanent {
                    log(out, Level::Error, format!("the permanent token in {} is no longer known to DockMon (was the host deleted?); delete that file and set a new REGISTRATION_TOKEN", self.settings.token_file));
                }
            }
            self.last_failure = text;
        }
        // A refused permanent token stays refused (the host was deleted): waiting the longest
        // delay from the first refusal, as for a displaced identity, instead of the short doubling
        // backoff meant for a network error (issue 17, fault matrix).
        if self.permanent
            && matches!(
                &e,
                Error::Rejected {
                    kind: Rejection::InvalidToken,
                    ..
                }
            )
        {
            self.backoff.saturate();
        }
        let delay = self.backoff.next_delay(random);
        log(
            out,
            Level::Info,
            format!("retrying in {:.1} s", delay.as_secs_f64()),
        );
        push(out, Action::WaitUntil(now + delay));
        State::Waiting { until: now + delay }
    }
}

fn push(out: &mut Actions, action: Action) {
    // Capacity 8 is above the longest step (see `Actions`); a test walks every step.
    let pushed = out.push(action);
    debug_assert!(pushed.is_ok(), "more than 8 actions in one step");
}

fn log(out: &mut Actions, level: Level, text: impl Into<String>) {
    push(out, Action::Log(level, text.into()));
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
