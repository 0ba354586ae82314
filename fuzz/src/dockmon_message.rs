//! Frames from the DockMon backend (`dockmon::command::parse`: `msg::Incoming` → `Frame`, with the
//! `container_operation` payload read on the way). The input is the frame's text.
//!
//! Checks: a request always has a non-empty reply ID (spec 2.7: every request gets a reply); its byte
//! estimate covers its ID; clamped operation values stay within their caps.
use dockmon_agent::dockmon::command::{parse, Command, Frame};
use dockmon_agent::dockmon::msg::Incoming;
use dockmon_agent::limits::{LOGS_TAIL_MAX_LINES, STOP_TIMEOUT_MAX_S};

pub fn run(data: &[u8]) {
    let text = crate::text(data);
    if let Ok(incoming) = Incoming::parse(&text) {
        if let Some(id) = incoming.reply_id() {
            assert!(!id.is_empty());
        }
    }
    match parse(&text) {
        Ok(Frame::Request(req)) => {
            assert!(!req.id.is_empty(), "a request without reply ID");
            assert!(req.bytes() >= req.id.len());
            if let Command::Operation(op) = &req.command {
                assert!(op.grace_s <= STOP_TIMEOUT_MAX_S);
                assert!((1..=LOGS_TAIL_MAX_LINES).contains(&op.tail));
            }
        }
        Ok(Frame::Notice(_)) | Err(_) => {}
    }
}
