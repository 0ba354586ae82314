//! The DockMon agent protocol. Read `../shared/spec/dockmon-protocol.md` (sections 1-4 and 9) first.
//!
//! - [`msg`]: message shapes (wire only).
//! - [`register`]: the register frame and the meaning of the answer.
//! - [`session`]: backoff and keepalive as pure state machines.
//! - [`command`]: a backend frame → Docker calls → the reply.
//! - [`context`]: what a handler may use: client, configuration, executor, sink, link state.

pub mod command;
pub mod context;
pub mod deploy;
pub mod msg;
pub mod register;
pub mod session;
pub mod stacks;
