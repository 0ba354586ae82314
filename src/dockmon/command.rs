//! A backend frame → one typed [`Command`] → Docker calls → the reply frame (spec 3.3, 3.4).
//!
//! Every frame is parsed once, by [`parse`], into an owned [`Frame`]: a [`Request`] (a `command` or
//! `container_operation` with its reply ID) or a [`Notice`] (a frame that gets no reply). The owned
//! form lets the frame's text go as soon as it is parsed, and the handler task keep only what it
//! needs. [`answer`] is the one place that maps a command to its handler; [`notice`] the one place
//! for frames without reply.
//!
//! Every `command` and `container_operation` gets exactly one reply, errors included: silence costs
//! the backend a full timeout and counts against its circuit breaker (spec 2.7). Commands this agent
//! does not implement are answered with an error that says so.
//!
//! Adding a command: a variant of [`Command`], an arm in [`Command::from_name`], an arm in [`answer`]
//! that calls the handler `module::handler(ctx, payload, id, out)` (see CONTRIBUTING.md).
use super::context::Context;
use super::error::docker_text;
use super::manage;
use super::msg::{self, Incoming, OpResult};
use crate::docker::Client;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

use crate::limits::{
    LOGS_TAIL_DEFAULT_LINES, LOGS_TAIL_MAX_LINES, STOP_TIMEOUT_DEFAULT_S, STOP_TIMEOUT_MAX_S,
};

/// A command's arguments, kept raw (owned) until its handler parses them into its own types.
pub type Payload = Option<Box<RawValue>>;

/// What a `command` or `container_operation` asks (spec 3.3, 3.4).
#[derive(Debug)]
pub enum Command {
    /// `list_containers` (CORE).
    ListContainers,
    /// A `container_operation` (CORE) whose payload was read.
    Operation(Operation),
    /// A `container_operation` whose payload is missing or not the expected object: answered with
    /// this text (the Go agent stays silent; we answer, spec 9.5).
    InvalidOperation(String),
    /// `update_container` (ADV, spec 3.8.1).
    UpdateContainer(Payload),
    /// `self_update` (ADV, spec 3.8.3).
    SelfUpdate(Payload),
    /// `deploy_compose` (ADV, spec 3.8.4).
    DeployCompose(Payload),
    /// `scan_compose_dirs` (ADV, spec 3.8.5).
    ScanComposeDirs(Payload),
    /// `read_compose_file` (ADV, spec 3.8.5).
    ReadComposeFile(Payload),
    /// `list_images` (ADV).
    ListImages(Payload),
    /// `remove_image` (ADV).
    RemoveImage(Payload),
    /// `prune_images` (ADV).
    PruneImages(Payload),
    /// `list_networks` (ADV).
    ListNetworks(Payload),
    /// `create_network` (ADV).
    CreateNetwork(Payload),
    /// `delete_network` (ADV).
    DeleteNetwork(Payload),
    /// `prune_networks` (ADV).
    PruneNetworks(Payload),
    /// `list_volumes` (ADV).
    ListVolumes(Payload),
    /// `delete_volume` (ADV).
    DeleteVolume(Payload),
    /// `prune_volumes` (ADV).
    PruneVolumes(Payload),
    /// A command name this agent does not know: `unknown command: <name>` (spec 3.3).
    Unsupported {
        /// The name as sent.
        name: String,
    },
}

impl Command {
    /// The `command` frame named `name` with its payload.
    pub fn from_name(name: &str, payload: Payload) -> Command {
        match name {
            "list_containers" => Command::ListContainers,
            "update_container" => Command::UpdateContainer(payload),
            "self_update" => Command::SelfUpdate(payload),
            "deploy_compose" => Command::DeployCompose(payload),
            "scan_compose_dirs" => Command::ScanComposeDirs(payload),
            "read_compose_file" => Command::ReadComposeFile(payload),
            "list_images" => Command::ListImages(payload),
            "remove_image" => Command::RemoveImage(payload),
            "prune_images" => Command::PruneImages(payload),
            "list_networks" => Command::ListNetworks(payload),
            "create_network" => Command::CreateNetwork(payload),
            "delete_network" => Command::DeleteNetwork(payload),
            "prune_networks" => Command::PruneNetworks(payload),
            "list_volumes" => Command::ListVolumes(payload),
            "delete_volume" => Command::DeleteVolume(payload),
            "prune_volumes" => Command::PruneVolumes(payload),
            other => Command::Unsupported {
                name: other.to_string(),
            },
        }
    }

    /// Whether the reply may be large (the container list: about 1.6 KiB per container), so the
    /// agent builds few of them at once (issue 11 D2).
    pub fn is_large_reply(&self) -> bool {
        matches!(self, Command::ListContainers)
    }
}

/// What a `container_operation` asks (spec 3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `start`.
    Start,
    /// `stop` with the grace period.
    Stop,
    /// `restart` with the grace period.
    Restart,
    /// `kill` (SIGKILL).
    Kill,
    /// `rename` to `new_name`.
    Rename,
    /// `remove`, with `force`.
    Remove,
    /// `inspect`.
    Inspect,
    /// `get_logs` with `tail`.
    GetLogs,
    /// Anything else: `unknown action: <name>`.
    Unknown(String),
}

impl Action {
    fn of(name: &str) -> Action {
        match name {
            "start" => Action::Start,
            "stop" => Action::Stop,
            "restart" => Action::Restart,
            "kill" => Action::Kill,
            "rename" => Action::Rename,
            "remove" => Action::Remove,
            "inspect" => Action::Inspect,
            "get_logs" => Action::GetLogs,
            other => Action::Unknown(other.to_string()),
        }
    }
}

/// A `container_operation`'s payload, read and clamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// What to do.
    pub action: Action,
    /// The container as sent (may be empty: answered with an error).
    pub container_id: String,
    /// `stop`/`restart` grace period, clamped to `STOP_TIMEOUT_MAX_S`.
    pub grace_s: u32,
    /// `rename`: the new name.
    pub new_name: Option<String>,
    /// `remove`: force.
    pub force: bool,
    /// `get_logs`: lines, clamped to `LOGS_TAIL_MAX_LINES`.
    pub tail: u32,
}

#[derive(Deserialize)]
struct OperationWire<'a> {
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

impl Operation {
    fn parse(payload: Option<&RawValue>) -> Result<Operation, String> {
        let wire: OperationWire = match payload.map(|p| serde_json::from_str(p.get())) {
            Some(Ok(op)) => op,
            Some(Err(e)) => return Err(format!("invalid container_operation payload: {e}")),
            None => return Err("invalid container_operation payload: missing".into()),
        };
        Ok(Operation {
            action: Action::of(&wire.action),
            container_id: wire.container_id.into_owned(),
            grace_s: wire
                .timeout
                .filter(|t| t.is_finite() && *t >= 0.0)
                .map(|t| (t as u32).min(STOP_TIMEOUT_MAX_S))
                .unwrap_or(STOP_TIMEOUT_DEFAULT_S),
            new_name: wire.new_name.map(Cow::into_owned),
            force: wire.force.unwrap_or(false),
            tail: wire
                .tail
                .filter(|t| t.is_finite() && *t >= 1.0)
                .map(|t| (t as u32).min(LOGS_TAIL_MAX_LINES))
                .unwrap_or(LOGS_TAIL_DEFAULT_LINES),
        })
    }
}

/// A frame that must be answered.
#[derive(Debug)]
pub struct Request {
    /// The reply ID (`id`, else `correlation_id`; never empty).
    pub id: String,
    /// What it asks.
    pub command: Command,
}

impl Request {
    /// About how many bytes it holds beyond its fixed size: the payload and the strings. The agent
    /// bounds the bytes of requests waiting for a slot with it (issue 11 D2).
    pub fn bytes(&self) -> usize {
        let payload = match &self.command {
            Command::ListContainers => 0,
            Command::Operation(op) => {
                op.container_id.len() + op.new_name.as_ref().map_or(0, String::len)
            }
            Command::InvalidOperation(why) => why.len(),
            Command::Unsupported { name } => name.len(),
            Command::UpdateContainer(p)
            | Command::SelfUpdate(p)
            | Command::DeployCompose(p)
            | Command::ScanComposeDirs(p)
            | Command::ReadComposeFile(p)
            | Command::ListImages(p)
            | Command::RemoveImage(p)
            | Command::PruneImages(p)
            | Command::ListNetworks(p)
            | Command::CreateNetwork(p)
            | Command::DeleteNetwork(p)
            | Command::PruneNetworks(p)
            | Command::ListVolumes(p)
            | Command::DeleteVolume(p)
            | Command::PruneVolumes(p) => p.as_ref().map_or(0, |p| p.get().len()),
        };
        self.id.len() + payload
    }
}

/// A frame that gets no reply (spec 3.6.1, 3.8.6).
#[derive(Debug)]
pub enum Notice {
    /// `health_check_configs_sync`.
    HealthCheckConfigsSync(Payload),
    /// `health_check_config`.
    HealthCheckConfig(Payload),
    /// `health_check_config_remove`.
    HealthCheckConfigRemove(Payload),
    /// `shell_session`.
    ShellSession(Payload),
    /// Any other type, or a request without ID (nobody to answer): logged by the agent.
    Unknown {
        /// The frame's `type`.
        kind: String,
    },
}

/// A frame from the backend after registration, parsed once.
#[derive(Debug)]
pub enum Frame {
    /// Must be answered.
    Request(Request),
    /// Gets no reply.
    Notice(Notice),
}

/// Parses one text frame (after `auth_success`). Only a text that is not a JSON object is an error.
pub fn parse(text: &str) -> Result<Frame, serde_json::Error> {
    let frame = Incoming::parse(text)?;
    Ok(classify(&frame))
}

/// The typed form of a parsed [`Incoming`].
pub fn classify(frame: &Incoming<'_>) -> Frame {
    let payload = || frame.payload.map(RawValue::to_owned);
    let id = frame.reply_id();
    match (frame.kind.as_ref(), id) {
        ("command", Some(id)) => Frame::Request(Request {
            id: id.to_string(),
            command: Command::from_name(frame.command.as_deref().unwrap_or(""), payload()),
        }),
        ("container_operation", Some(id)) => Frame::Request(Request {
            id: id.to_string(),
            command: match Operation::parse(frame.payload) {
                Ok(op) => Command::Operation(op),
                Err(why) => Command::InvalidOperation(why),
            },
        }),
        ("health_check_configs_sync", _) => {
            Frame::Notice(Notice::HealthCheckConfigsSync(payload()))
        }
        ("health_check_config", _) => Frame::Notice(Notice::HealthCheckConfig(payload())),
        ("health_check_config_remove", _) => {
            Frame::Notice(Notice::HealthCheckConfigRemove(payload()))
        }
        ("shell_session", _) => Frame::Notice(Notice::ShellSession(payload())),
        (kind, _) => Frame::Notice(Notice::Unknown {
            kind: kind.to_string(),
        }),
    }
}

/// Answers one request into `out`: the one place that maps each command to its handler.
/// `scratch` is a reusable buffer for Docker bodies.
pub async fn answer(ctx: &Context, req: &Request, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
    let id = req.id.as_str();
    match &req.command {
        Command::ListContainers => list_containers(&ctx.client, id, out).await,
        Command::Operation(op) => operation(&ctx.client, op, id, scratch, out).await,
        Command::InvalidOperation(why) => op_error(out, id, why),
        // The ADV commands: each arm becomes `module::handler(ctx, payload.as_deref(), id, out)`
        // when its module lands.
        Command::UpdateContainer(p) => {
            super::update::update_container(ctx, p.as_deref(), id, out).await
        }
        Command::SelfUpdate(p) => super::selfupdate::self_update(ctx, p.as_deref(), id, out).await,
        Command::DeployCompose(p) => {
            super::deploy::deploy_compose(ctx, p.as_deref(), id, out).await
        }
        Command::ScanComposeDirs(p) => {
            super::stacks::scan_compose_dirs(ctx, p.as_deref(), id, out).await
        }
        Command::ReadComposeFile(p) => {
            super::stacks::read_compose_file(ctx, p.as_deref(), id, out).await
        }
        Command::ListImages(p) => manage::list_images(ctx, p.as_deref(), id, out).await,
        Command::RemoveImage(p) => manage::remove_image(ctx, p.as_deref(), id, out).await,
        Command::PruneImages(p) => manage::prune_images(ctx, p.as_deref(), id, out).await,
        Command::ListNetworks(p) => manage::list_networks(ctx, p.as_deref(), id, out).await,
        Command::CreateNetwork(p) => manage::create_network(ctx, p.as_deref(), id, out).await,
        Command::DeleteNetwork(p) => manage::delete_network(ctx, p.as_deref(), id, out).await,
        Command::PruneNetworks(p) => manage::prune_networks(ctx, p.as_deref(), id, out).await,
        Command::ListVolumes(p) => manage::list_volumes(ctx, p.as_deref(), id, out).await,
        Command::DeleteVolume(p) => manage::delete_volume(ctx, p.as_deref(), id, out).await,
        Command::PruneVolumes(p) => manage::prune_volumes(ctx, p.as_deref(), id, out).await,
        Command::Unsupported { name } => msg::write_response_error(
            out,
            id,
            &format!("unknown command: {name}"),
            &msg::now_stamp(),
        ),
    }
}

/// Handles a frame that gets no reply (health-check configuration, spec 3.6.1; the web shell,
/// 3.8.6): the one place for them. Returns false for a type this agent does not know, which the
/// caller logs.
pub fn notice(ctx: &Context, frame: &Notice) -> bool {
    let (kind, payload) = match frame {
        Notice::HealthCheckConfigsSync(p) => ("health_check_configs_sync", p),
        Notice::HealthCheckConfig(p) => ("health_check_config", p),
        Notice::HealthCheckConfigRemove(p) => ("health_check_config_remove", p),
        Notice::ShellSession(p) => {
            super::shell::handle(ctx, p.as_deref());
            return true;
        }
        Notice::Unknown { .. } => return false,
    };
    super::health::notice(ctx, kind, payload.as_deref())
}

async fn list_containers(client: &Client, id: &str, out: &mut Vec<u8>) {
    // No health check starts while the reply is built (heap high-water, issue 14).
    let _quiet = super::health::quiet();
    let now = msg::now_stamp();
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

fn op_error(out: &mut Vec<u8>, id: &str, text: &str) {
    msg::write_op_result(
        out,
        &OpResult {
            correlation_id: id,
            error: Some(text),
            ..Default::default()
        },
    )
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

async fn operation(
    client: &Client,
    op: &Operation,
    id: &str,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) {
    let fail = |out: &mut Vec<u8>, text: &str| op_error(out, id, text);
    let cid = op.container_id.as_str();
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
    let grace = op.grace_s;
    match &op.action {
        Action::Start => match client.start(cid).await {
            Ok(()) => ok(out, "started"),
            Err(e) => fail(
                out,
                &format!("failed to start container: {}", docker_text(&e)),
            ),
        },
        Action::Stop => match client.stop(cid, grace).await {
            Ok(()) => ok(out, "stopped"),
            Err(e) => fail(
                out,
                &format!("failed to stop container: {}", docker_text(&e)),
            ),
        },
        Action::Restart => match client.restart(cid, grace).await {
            Ok(()) => ok(out, "restarted"),
            Err(e) => fail(
                out,
                &format!("failed to restart container: {}", docker_text(&e)),
            ),
        },
        Action::Kill => match client.kill(cid).await {
            Ok(()) => ok(out, "killed"),
            Err(e) => fail(
                out,
                &format!("failed to kill container: {}", docker_text(&e)),
            ),
        },
        Action::Rename => match op.new_name.as_deref().filter(|n| !n.is_empty()) {
            None => fail(out, "new_name is required for rename action"),
            Some(new_name) => match client.rename(cid, new_name).await {
                Ok(()) => ok(out, "renamed"),
                Err(e) => fail(
                    out,
                    &format!("failed to rename container: {}", docker_text(&e)),
                ),
            },
        },
        Action::Remove => match client.remove(cid, op.force).await {
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
        Action::Inspect => match client.inspect_raw(cid, scratch).await {
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
        Action::GetLogs => {
            // TTY containers have one raw stream; others are multiplexed (spec 3.4).
            let tty = match client.inspect_raw(cid, scratch).await {
                Ok(()) => serde_json::from_slice::<InspectTty>(scratch)
                    .ok()
                    .and_then(|i| i.config)
                    .is_some_and(|c| c.tty),
                Err(e) => return fail(out, &format!("failed to get logs: {}", docker_text(&e))),
            };
            let mut logs = String::new();
            match client.logs(cid, op.tail, tty, &mut logs).await {
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
        Action::Unknown(other) => fail(out, &format!("unknown action: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Request {
        match parse(text).unwrap() {
            Frame::Request(r) => r,
            Frame::Notice(n) => panic!("not a request: {n:?}"),
        }
    }

    #[test]
    fn requests_are_told_apart() {
        let r = request(r#"{"type":"command","command":"x","id":"1"}"#);
        assert_eq!(r.id, "1");
        assert!(matches!(r.command, Command::Unsupported { ref name } if name == "x"));
        let r = request(r#"{"type":"container_operation","correlation_id":"1"}"#);
        assert!(matches!(r.command, Command::InvalidOperation(_)));
        assert!(matches!(
            parse(r#"{"type":"health_check_configs_sync","payload":{}}"#).unwrap(),
            Frame::Notice(Notice::HealthCheckConfigsSync(Some(_)))
        ));
        assert!(
            matches!(
                parse(r#"{"type":"command","command":"x"}"#).unwrap(),
                Frame::Notice(Notice::Unknown { ref kind }) if kind == "command"
            ),
            "no id, nobody to answer"
        );
        assert!(parse("[1]").is_err());
    }

    #[test]
    fn each_adv_command_keeps_its_payload() {
        let r = request(
            r#"{"type":"command","command":"remove_image","id":"7","payload":{"image_id":"abc","force":true}}"#,
        );
        match r.command {
            Command::RemoveImage(Some(p)) => {
                assert_eq!(p.get(), r#"{"image_id":"abc","force":true}"#)
            }
            other => panic!("{other:?}"),
        }
        let r = request(r#"{"type":"command","command":"list_containers","id":"8"}"#);
        assert!(matches!(r.command, Command::ListContainers));
        assert!(r.command.is_large_reply());
    }

    #[test]
    fn operations_are_read_and_clamped_once() {
        let r = request(
            r#"{"type":"container_operation","id":"9","payload":{"action":"stop","container_id":"abc","timeout":99999}}"#,
        );
        match r.command {
            Command::Operation(op) => {
                assert_eq!(op.action, Action::Stop);
                assert_eq!(op.container_id, "abc");
                assert_eq!(op.grace_s, STOP_TIMEOUT_MAX_S);
                assert_eq!(op.tail, LOGS_TAIL_DEFAULT_LINES);
            }
            other => panic!("{other:?}"),
        }
        let r = request(
            r#"{"type":"container_operation","id":"9","payload":{"action":"dance","container_id":"abc"}}"#,
        );
        assert!(
            matches!(r.command, Command::Operation(Operation { action: Action::Unknown(ref a), .. }) if a == "dance")
        );
        let r = request(r#"{"type":"container_operation","id":"9","payload":[1]}"#);
        assert!(
            matches!(r.command, Command::InvalidOperation(ref w) if w.starts_with("invalid container_operation payload: "))
        );
    }
}
