//! The DockMon agent protocol (its spec sections 1-4 and 9: registration, commands, events, stats).
//!
//! - [`msg`]: message shapes (wire only).
//! - [`register`]: the register frame and the meaning of the answer.
//! - [`session`]: connect, register, serve, back off: a pure state machine that returns actions.
//! - [`timing`]: backoff and keepalive, the session's clocks (time is an argument).
//! - [`command`]: a backend frame → one typed `Command` → Docker calls → the reply.
//! - [`manage`]: the Images, Networks and Volumes pages' commands (list, remove, create, prune).
//! - [`update`]: `update_container`: pull, recreate, health wait, rollback (spec 3.8.1).
//! - [`health`]: agent-side HTTP health checks: configs, scheduler, results (spec 3.6).
//! - [`deploy`], [`stacks`]: compose deployments; scanning and reading compose files (spec 3.8.4, 3.8.5).
//! - [`context`]: what a handler may use: client, configuration, executor, sink, link state.
//! - [`shell`]: the web shell (`shell_session` in, `shell_data` out).
//! - [`error`]: why a connection or registration failed, typed.

pub mod command;
pub mod context;
pub mod deploy;
pub mod error;
pub mod health;
pub mod manage;
pub mod msg;
pub mod register;
pub mod selfupdate;
pub mod session;
pub mod shell;
pub mod stacks;
pub mod timing;
pub mod update;

pub use command::Command;
pub use error::Error;
pub use session::Session;
