//! A backend frame → Docker calls → the reply frame (spec 3.3, 3.4).
//!
//! Every `command` and `container_operation` gets exactly one reply, errors included: silence costs
//! the backend a full timeout and counts against its circuit breaker (spec 2.7). Commands this agent
//! does not implement are answered with an error that says so. Frames of other types (health-check
//! configuration, web shell) carry no ID and get no reply; the caller logs them.
use super::context::Context;
use super::msg::{self, Incoming, OpResult};
use crate::docker::{self, Client};
use crate::rfc3339;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The default `stop`/`restart` grace period (spec 3.4: agent default 10).
pub const STOP_TIMEOUT_DEFAULT_S: u32 = 10;
/// Longest grace period we accept from the backend (its own timeout is `timeout + 20 s`).
pub const STOP_TIMEOUT_MAX_S: u32 = 3600;
/// Default `get_logs` tail (spec 3.4).
pub const LOGS_TAIL_DEFAULT: u32 = 100;
/// Largest tail (the backend clamps to 10000).
pub const LOGS_TAIL_MAX: u32 = 10_000;

/// Commands of spec 3.3 that belong to DockMon's advanced features and are not implemented here.
const UNSUPPORTED_COMMANDS: [&str; 12] = [
    "update_container",
    "self_update",
    "list_images",
    "remove_image",
    "prune_images",
    "list_networks",
    "create_network",
    "delete_network",
    "prune_networks",
    "list_volumes",
    "delete_volume",
    "prune_volumes",
];

/// Frame types the backend sends that need no answer and that this agent does not implement
/// (health-check configuration, spec 3.6.1; the web shell, 3.8.6).
pub const KNOWN_UNANSWERED: [&str; 4] = [
    "health_check_configs_sync",
    "health_check_config",
    "health_check_config_remove",
    "shell_session",
];

/// What a frame asks of the agent.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    /// A `command` or `container_operation` with its reply ID: must be answered.
    Request,
    /// A frame that needs no reply (health-check configs, web shell, unknown types without ID).
    Other,
}

/// Classifies a parsed frame.
pub fn kind(frame: &Incoming<'_>) -> Kind {
    match frame.kind.as_ref() {
        "command" | "container_operation" if frame.reply_id().is_some() => Kind::Request,
        _ => Kind::Other,
    }
}

#[derive(Deserialize)]
struct Operation<'a> {
    #[serde(borrow, default)]
    action: Cow<'a, str>,
    #[serde(borrow, default)]
    container_id: Cow<'a, str>,
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(borrow, default)]
    new_name: Option<Cow<'a, str>>,
    #[serde(default)]
    force: Option<bool>,
    #[serde(default)]
    tail: Option<f64>,
}

#[derive(Deserialize)]
struct InspectTty {
    #[serde(rename = "Config", default)]
    config: Option<TtyConfig>,
}

#[derive(Deserialize)]
struct TtyConfig {
    #[serde(rename = "Tty", default)]
    tty: bool,
}

/// Answers one request frame into `out`. `scratch` is a reusable buffer for Docker bodies.
pub async fn answer(ctx: &Context, frame: &Incoming<'_>, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
    let id = frame.reply_id().unwrap_or("");
    match frame.kind.as_ref() {
        "command" => match frame.command.as_deref() {
            Some("deploy_compose") => {
                super::deploy::deploy_compose(ctx, frame.payload, id, out).await
            }
            Some("scan_compose_dirs") => {
                super::stacks::scan_compose_dirs(ctx, frame.payload, id, out).await
            }
            Some("read_compose_file") => {
                super::stacks::read_compose_file(ctx, frame.payload, id, out).await
            }
            _ => command(&ctx.client, frame, id, out).await,
        },
        _ => operation(&ctx.client, frame.payload, id, scratch, out).await,
    }
}

/// Handles a frame that gets no reply (health-check configuration, spec 3.6.1; the web shell,
/// 3.8.6). Returns false for a type this agent does not know, which the caller logs.
pub fn notice(_ctx: &Context, frame: &Incoming<'_>) -> bool {
    if KNOWN_UNANSWERED.contains(&frame.kind.as_ref()) {
        log::debug!(
            "ignoring a `{}` frame (not implemented by this agent)",
            frame.kind
        );
        return true;
    }
    false
}

async fn command(client: &Client, frame: &Incoming<'_>, id: &str, out: &mut Vec<u8>) {
    let now = stamp();
    let name = frame.command.as_deref().unwrap_or("");
    match name {
        "list_containers" => {
            msg::begin_response(out, id);
            match client.list_for_dockmon(out).await {
                Ok(_) => msg::end_response(out, &now),
                Err(e) => msg::write_response_error(
                    out,
                    id,
                    &format!("failed to list containers: {}", docker_text(&e)),
                    &now,
                ),
            }
        }
        n if UNSUPPORTED_COMMANDS.contains(&n) => msg::write_response_error(
            out,
            id,
            &format!(
                "{n} is not supported by this agent (dockmon-agent {})",
                crate::VERSION
            ),
            &now,
        ),
        n => msg::write_response_error(out, id, &format!("unknown command: {n}"), &now),
    }
}

async fn operation(
    client: &Client,
    payload: Option<&RawValue>,
    id: &str,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) {
    let fail = |out: &mut Vec<u8>, text: &str| {
        msg::write_op_result(
            out,
            &OpResult {
                correlation_id: id,
                error: Some(text),
                ..Default::default()
            },
        )
    };
    // The Go agent stays silent on a payload that is not an object; we answer (spec 9.5).
    let op: Operation = match payload.map(|p| serde_json::from_str::<Operation>(p.get())) {
        Some(Ok(op)) => op,
        Some(Err(e)) => return fail(out, &format!("invalid container_operation payload: {e}")),
        None => return fail(out, "invalid container_operation payload: missing"),
    };
    let cid = op.container_id.as_ref();
    if cid.is_empty() {
        return fail(out, "container_id is required");
    }
    let ok = |out: &mut Vec<u8>, status: &str| {
        msg::write_op_result(
            out,
            &OpResult {
                correlation_id: id,
                success: true,
                container_id: Some(cid),
                status: Some(status),
                ..Default::default()
            },
        )
    };
    let grace = op
        .timeout
        .filter(|t| t.is_finite() && *t >= 0.0)
        .map(|t| (t as u32).min(STOP_TIMEOUT_MAX_S))
        .unwrap_or(STOP_TIMEOUT_DEFAULT_S);
    match op.action.as_ref() {
        "start" => match client.start(cid).await {
            Ok(()) => ok(out, "started"),
            Err(e) => fail(
                out,
                &format!("failed to start container: {}", docker_text(&e)),
            ),
        },
        "stop" => match client.stop(cid, grace).await {
            Ok(()) => ok(out, "stopped"),
            Err(e) => fail(
                out,
                &format!("failed to stop container: {}", docker_text(&e)),
            ),
        },
        "restart" => match client.restart(cid, grace).await {
            Ok(()) => ok(out, "restarted"),
            Err(e) => fail(
                out,
                &format!("failed to restart container: {}", docker_text(&e)),
            ),
        },
        "kill" => match client.kill(cid).await {
            Ok(()) => ok(out, "killed"),
            Err(e) => fail(
                out,
                &format!("failed to kill container: {}", docker_text(&e)),
            ),
        },
        "rename" => match op.new_name.as_deref().filter(|n| !n.is_empty()) {
            None => fail(out, "new_name is required for rename action"),
            Some(new_name) => match client.rename(cid, new_name).await {
                Ok(()) => ok(out, "renamed"),
                Err(e) => fail(
                    out,
                    &format!("failed to rename container: {}", docker_text(&e)),
                ),
            },
        },
        "remove" => match client.remove(cid, op.force.unwrap_or(false)).await {
            Ok(()) => msg::write_op_result(
                out,
                &OpResult {
                    correlation_id: id,
                    success: true,
                    container_id: Some(cid),
                    removed: Some(true),
                    ..Default::default()
                },
            ),
            Err(e) => fail(
                out,
                &format!("failed to remove container: {}", docker_text(&e)),
            ),
        },
        "inspect" => match client.inspect_raw(cid, scratch).await {
            Ok(()) => match serde_json::from_slice::<&RawValue>(scratch) {
                Ok(raw) => msg::write_op_result(
                    out,
                    &OpResult {
                        correlation_id: id,
                        success: true,
                        container: Some(raw),
                        ..Default::default()
                    },
                ),
                Err(e) => fail(out, &format!("failed to inspect container: {e}")),
            },
            Err(e) => fail(
                out,
                &format!("failed to inspect container: {}", docker_text(&e)),
            ),
        },
        "get_logs" => {
            let tail = op
                .tail
                .filter(|t| t.is_finite() && *t >= 1.0)
                .map(|t| (t as u32).min(LOGS_TAIL_MAX))
                .unwrap_or(LOGS_TAIL_DEFAULT);
            // TTY containers have one raw stream; others are multiplexed (spec 3.4).
            let tty = match client.inspect_raw(cid, scratch).await {
                Ok(()) => serde_json::from_slice::<InspectTty>(scratch)
                    .ok()
                    .and_then(|i| i.config)
                    .is_some_and(|c| c.tty),
                Err(e) => return fail(out, &format!("failed to get logs: {}", docker_text(&e))),
            };
            let mut logs = String::new();
            match client.logs(cid, tail, tty, &mut logs).await {
                Ok(()) => msg::write_op_result(
                    out,
                    &OpResult {
                        correlation_id: id,
                        success: true,
                        logs: Some(&logs),
                        ..Default::default()
                    },
                ),
                Err(e) => fail(out, &format!("failed to get logs: {}", docker_text(&e))),
            }
        }
        other => fail(out, &format!("unknown action: {other}")),
    }
}

/// The part of a Docker error the UI should show: Docker's own message for error statuses (as the
/// Go SDK words it), the whole error otherwise.
fn docker_text(e: &docker::Error) -> String {
    match e {
        docker::Error::Status { message, .. } => format!("Error response from daemon: {message}"),
        other => other.to_string(),
    }
}

fn stamp() -> rfc3339::Stamp {
    let (s, n) = rfc3339::now();
    rfc3339::nanos(s, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_told_apart() {
        let f = Incoming::parse(r#"{"type":"command","command":"x","id":"1"}"#).unwrap();
        assert_eq!(kind(&f), Kind::Request);
        let f = Incoming::parse(r#"{"type":"container_operation","correlation_id":"1"}"#).unwrap();
        assert_eq!(kind(&f), Kind::Request);
        let f = Incoming::parse(r#"{"type":"health_check_configs_sync","payload":{}}"#).unwrap();
        assert_eq!(kind(&f), Kind::Other);
        let f = Incoming::parse(r#"{"type":"command","command":"x"}"#).unwrap();
        assert_eq!(kind(&f), Kind::Other, "no id, nobody to answer");
    }
}
