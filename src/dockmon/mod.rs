//! The DockMon agent protocol (read `../shared/spec/dockmon-protocol.md` first): message shapes now,
//! registration, commands and the session to follow.
pub mod msg;
