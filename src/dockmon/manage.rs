//! DockMon's Images, Networks and Volumes pages (spec 3.3, 3.7.3-3.7.5): the ten management
//! commands, each an entry point that makes its Docker calls (`docker::images`, `docker::networks`,
//! `docker::volumes`, `docker::usage`) and writes the whole reply frame into `out`.
//!
//! Read this first: DockMon's circuit breaker counts error replies (5 in 60 s take the host offline,
//! spec 2.7), and opening these pages sends about six commands at once. So a reply is an error only
//! when the operation failed; error texts follow the Go agent (`failed to remove image: Error
//! response from daemon: …`, and the special cases of spec 3.3).
//!
//! Usage (which containers use an image, a volume, a network) comes from one
//! `GET /containers/json?all=1` per list command, so stopped containers count too, for networks as
//! for images and volumes (the Go agent inspects each network and so counts only running ones; we
//! make two calls instead of one per network). `delete_network` asks Docker's inspect, whose
//! attached containers are exactly those that block the removal.
//!
//! Memory: Docker's answers are read into buffers this call owns (each within its `limits` cap) and
//! dropped at the end; replies are written straight into `out` (no `serde_json::Value` tree), so a
//! call holds at most the two answers it reads plus its reply.
use super::context::Context;
use super::error::docker_text;
use super::msg;
use crate::docker;
use crate::docker::images::ImageSummary;
use crate::docker::networks::{Network, NetworkCreate};
use crate::docker::usage::ContainerUsage;
use crate::docker::volumes::Volume;
use crate::rfc3339;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Networks Docker creates itself and refuses to remove (spec 3.3).
pub const BUILTIN_NETWORKS: [&str; 3] = ["bridge", "host", "none"];

#[derive(Deserialize, Default)]
struct RemoveImage<'a> {
    #[serde(borrow, default)]
    image_id: Option<Cow<'a, str>>,
    #[serde(default)]
    force: Option<bool>,
}

#[derive(Deserialize, Default)]
struct CreateNetwork<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    driver: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    subnet: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    gateway: Option<Cow<'a, str>>,
    #[serde(default)]
    internal: Option<bool>,
}

#[derive(Deserialize, Default)]
struct DeleteNetwork<'a> {
    #[serde(borrow, default)]
    network_id: Option<Cow<'a, str>>,
    #[serde(default)]
    force: Option<bool>,
}

#[derive(Deserialize, Default)]
struct DeleteVolume<'a> {
    #[serde(borrow, default)]
    volume_name: Option<Cow<'a, str>>,
    #[serde(default)]
    force: Option<bool>,
}

/// The payload as `T`; absent or `null` is `T::default()`. The error is serde's message.
fn parse_payload<'a, T: Deserialize<'a> + Default>(
    payload: Option<&'a RawValue>,
) -> Result<T, serde_json::Error> {
    match payload {
        Some(raw) if raw.get().trim() != "null" => serde_json::from_str(raw.get()),
        _ => Ok(T::default()),
    }
}

/// The reply text of a payload `command` cannot read: `invalid <command> payload: <serde's message>`.
fn invalid(command: &'static str) -> impl FnOnce(serde_json::Error) -> String {
    move |e| format!("invalid {command} payload: {e}")
}

/// A failed engine call as the Go agent words it: `failed to <what>: <Docker's text>`.
fn failed(what: &'static str) -> impl FnOnce(docker::Error) -> String {
    move |e| format!("failed to {what}: {}", docker_text(&e))
}

/// Writes the reply frame of every command here: `{"type":"response","id":…,"payload":<what emit
/// writes>,"timestamp":…}` when the handler's calls succeeded, the error reply with its text when one
/// failed. Each handler is its calls (`?` on the first failure) followed by one `answer`.
fn answer(out: &mut Vec<u8>, id: &str, reply: Result<impl FnOnce(&mut Vec<u8>), String>) {
    match reply {
        Ok(emit) => {
            msg::begin_response(out, id);
            emit(out);
            msg::end_response(out, &msg::now_stamp());
        }
        Err(text) => msg::write_response_error(out, id, &text, &msg::now_stamp()),
    }
}

/// `list_images` (payload `{}`): every image of `GET /images/json?all=1` as spec 3.7.3.
pub async fn list_images(ctx: &Context, _payload: Option<&RawValue>, id: &str, out: &mut Vec<u8>) {
    let (mut images_buf, mut list_buf) = (Vec::new(), Vec::new());
    let reply = async {
        let images = (ctx.client.images(&mut images_buf).await).map_err(failed("list images"))?;
        let usage =
            (ctx.client.container_usage(&mut list_buf).await).map_err(failed("list containers"))?;
        Ok(move |out: &mut Vec<u8>| emit_images(out, &images, &usage))
    };
    answer(out, id, reply.await);
}

/// `remove_image` (`image_id`, `force`): `{"success":true}`, or Docker's refusal (an image in use).
pub async fn remove_image(ctx: &Context, payload: Option<&RawValue>, id: &str, out: &mut Vec<u8>) {
    let reply = async {
        let p: RemoveImage = parse_payload(payload).map_err(invalid("remove_image"))?;
        let image = p.image_id.as_deref().unwrap_or("");
        if image.is_empty() {
            return Err("image_id is required".to_string());
        }
        let force = p.force.unwrap_or(false);
        (ctx.client.remove_image(image, force).await).map_err(failed("remove image"))?;
        Ok(emit_success)
    };
    answer(out, id, reply.await);
}

/// `prune_images`: every unused image; `{"removed_count":N,"space_reclaimed":BYTES}`.
pub async fn prune_images(ctx: &Context, _payload: Option<&RawValue>, id: &str, out: &mut Vec<u8>) {
    let mut buf = Vec::new();
    let reply = async {
        let r = (ctx.client.prune_images(&mut buf).await).map_err(failed("prune images"))?;
        Ok(move |out: &mut Vec<u8>| emit_pruned(out, r.deleted, Some(r.space_reclaimed), None))
    };
    answer(out, id, reply.await);
}

/// `list_networks` (payload `{}`): every network of `GET /networks` as spec 3.7.4.
pub async fn list_networks(
    ctx: &Context,
    _payload: Option<&RawValue>,
    id: &str,
    out: &mut Vec<u8>,
) {
    let (mut nets_buf, mut list_buf) = (Vec::new(), Vec::new());
    let reply = async {
        let networks =
            (ctx.client.networks(&mut nets_buf).await).map_err(failed("list networks"))?;
        let usage =
            (ctx.client.container_usage(&mut list_buf).await).map_err(failed("list containers"))?;
        Ok(move |out: &mut Vec<u8>| {
            out.push(b'[');
            for (i, n) in networks.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let users = usage.iter().filter(|c| c.in_network(&n.id, &n.name));
                emit_network(out, n, users.map(|c| (c.id.as_ref(), c.name())));
            }
            out.push(b']');
        })
    };
    answer(out, id, reply.await);
}

/// The create request of a `create_network` payload (`driver` `""` → `bridge`), or why it is refused.
fn network_create<'p>(p: &'p CreateNetwork) -> Result<NetworkCreate<'p>, String> {
    let name = p.name.as_deref().unwrap_or("").trim();
    if name.is_empty() {
        return Err("network name is required".to_string());
    }
    let driver = p.driver.as_deref().unwrap_or("").trim();
    Ok(NetworkCreate {
        name,
        driver: if driver.is_empty() { "bridge" } else { driver },
        subnet: p.subnet.as_deref().unwrap_or("").trim(),
        gateway: p.gateway.as_deref().unwrap_or("").trim(),
        internal: p.internal.unwrap_or(false),
    })
}

/// `create_network` (`name`, `driver` (`""` → `bridge`), `subnet`, `gateway`, `internal`): the new
/// network as one network object.
pub async fn create_network(
    ctx: &Context,
    payload: Option<&RawValue>,
    id: &str,
    out: &mut Vec<u8>,
) {
    let p: Result<CreateNetwork, String> =
        parse_payload(payload).map_err(invalid("create_network"));
    let mut buf = Vec::new();
    let reply = async {
        let req = network_create(p.as_ref().map_err(String::clone)?)?;
        let net_id = (ctx.client.create_network(&req).await).map_err(failed("create network"))?;
        let read_back = ctx.client.network(&net_id, &mut buf).await;
        Ok(move |out: &mut Vec<u8>| match read_back {
            Ok(n) => emit_network(out, &n, attached(&n)),
            // Created but not readable back: still a success, with what we know.
            Err(_) => {
                let n = Network {
                    id: Cow::Borrowed(&net_id),
                    name: Cow::Borrowed(req.name),
                    driver: Cow::Borrowed(req.driver),
                    scope: Cow::Borrowed("local"),
                    created: Cow::Borrowed(""),
                    internal: req.internal,
                    ipam: None,
                    containers: None,
                };
                emit_network(out, &n, std::iter::empty());
            }
        })
    };
    answer(out, id, reply.await);
}

/// `delete_network` (`network_id`, `force`): refuses the built-in networks, and networks with
/// containers attached unless `force` (then each is force-disconnected first); `{"success":true}`.
pub async fn delete_network(
    ctx: &Context,
    payload: Option<&RawValue>,
    id: &str,
    out: &mut Vec<u8>,
) {
    let mut buf = Vec::new();
    let reply = async {
        let p: DeleteNetwork = parse_payload(payload).map_err(invalid("delete_network"))?;
        let net = p.network_id.as_deref().unwrap_or("");
        if net.is_empty() {
            return Err("network_id is required".to_string());
        }
        let n = (ctx.client.network(net, &mut buf).await).map_err(failed("inspect network"))?;
        if let Some(text) = check_delete(&n, p.force.unwrap_or(false)) {
            return Err(text);
        }
        for (cid, cname) in attached(&n) {
            if let Err(e) = ctx.client.disconnect_network(&n.id, cid).await {
                let name = &n.name;
                let text = format!(
                    "failed to disconnect container {cname} from network {name}: {}",
                    docker_text(&e)
                );
                return Err(text);
            }
        }
        (ctx.client.remove_network(&n.id).await).map_err(failed("remove network"))?;
        Ok(emit_success)
    };
    answer(out, id, reply.await);
}

/// Why a network may not be deleted (spec 3.3), `None` when it may.
pub fn check_delete(n: &Network, force: bool) -> Option<String> {
    if BUILTIN_NETWORKS.contains(&n.name.as_ref()) {
        return Some(format!("cannot delete built-in network '{}'", n.name));
    }
    let count = n.containers.as_ref().map_or(0, |c| c.len());
    if count > 0 && !force {
        return Some(format!(
            "network has {count} connected container(s), use force to disconnect and delete"
        ));
    }
    None
}

/// `prune_networks`: every unused network; `{"removed_count":N,"networks_removed":[names]}`.
pub async fn prune_networks(
    ctx: &Context,
    _payload: Option<&RawValue>,
    id: &str,
    out: &mut Vec<u8>,
) {
    let mut buf = Vec::new();
    let reply = async {
        let r = (ctx.client.prune_networks(&mut buf).await).map_err(failed("prune networks"))?;
        Ok(move |out: &mut Vec<u8>| {
            let names = r.deleted.as_deref().unwrap_or(&[]);
            emit_pruned(
                out,
                names.len() as u64,
                None,
                Some(("networks_removed", names)),
            )
        })
    };
    answer(out, id, reply.await);
}

/// `list_volumes` (payload `{}`): every volume of `GET /volumes` as spec 3.7.5.
pub async fn list_volumes(ctx: &Context, _payload: Option<&RawValue>, id: &str, out: &mut Vec<u8>) {
    let (mut vols_buf, mut list_buf) = (Vec::new(), Vec::new());
    let reply = async {
        let list = (ctx.client.volumes(&mut vols_buf).await).map_err(failed("list volumes"))?;
        let usage =
            (ctx.client.container_usage(&mut list_buf).await).map_err(failed("list containers"))?;
        Ok(move |out: &mut Vec<u8>| {
            emit_volumes(out, list.volumes.as_deref().unwrap_or(&[]), &usage)
        })
    };
    answer(out, id, reply.await);
}

/// `delete_volume` (`volume_name`, `force`): `{"success":true}`, or Docker's refusal (in use).
pub async fn delete_volume(ctx: &Context, payload: Option<&RawValue>, id: &str, out: &mut Vec<u8>) {
    let reply = async {
        let p: DeleteVolume = parse_payload(payload).map_err(invalid("delete_volume"))?;
        let name = p.volume_name.as_deref().unwrap_or("");
        if name.trim().is_empty() {
            return Err("volume name cannot be empty".to_string());
        }
        let force = p.force.unwrap_or(false);
        (ctx.client.remove_volume(name, force).await).map_err(failed("remove volume"))?;
        Ok(emit_success)
    };
    answer(out, id, reply.await);
}

/// `prune_volumes`: every unused volume, named ones included;
/// `{"removed_count":N,"space_reclaimed":BYTES,"volumes_removed":[names]}`.
pub async fn prune_volumes(
    ctx: &Context,
    _payload: Option<&RawValue>,
    id: &str,
    out: &mut Vec<u8>,
) {
    let mut buf = Vec::new();
    let reply = async {
        let r = (ctx.client.prune_volumes(&mut buf).await).map_err(failed("prune volumes"))?;
        Ok(move |out: &mut Vec<u8>| {
            let names = r.deleted.as_deref().unwrap_or(&[]);
            let (count, space) = (names.len() as u64, Some(r.space_reclaimed));
            emit_pruned(out, count, space, Some(("volumes_removed", names)))
        })
    };
    answer(out, id, reply.await);
}

// ---- Reply writers (pure) ---------------------------------------------------------------------------

fn emit_success(out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"success\":true}");
}

/// A prune answer (spec 3.7.3-3.7.5): `{"removed_count":N}`, then `"space_reclaimed":BYTES` and the
/// removed names under their key (`networks_removed`, `volumes_removed`) where the command has them.
fn emit_pruned(
    out: &mut Vec<u8>,
    removed_count: u64,
    space_reclaimed: Option<u64>,
    names: Option<(&str, &[Cow<str>])>,
) {
    out.extend_from_slice(b"{\"removed_count\":");
    push_u64(out, removed_count);
    if let Some(bytes) = space_reclaimed {
        out.extend_from_slice(b",\"space_reclaimed\":");
        push_u64(out, bytes);
    }
    if let Some((key, names)) = names {
        out.push(b',');
        push_str(out, key);
        out.push(b':');
        push_strs(out, names.iter().map(|n| n.as_ref()));
    }
    out.push(b'}');
}

/// The image array of spec 3.7.3.
pub fn emit_images(out: &mut Vec<u8>, images: &[ImageSummary], usage: &[ContainerUsage]) {
    out.push(b'[');
    for (i, image) in images.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let users = || usage.iter().filter(|c| c.image_id == image.id);
        let count = users().count() as u64;
        out.extend_from_slice(b"{\"id\":");
        push_str(out, short_id(&image.id));
        out.extend_from_slice(b",\"tags\":");
        push_strs(out, image.tags());
        out.extend_from_slice(b",\"size\":");
        push_u64(out, image.size.max(0) as u64);
        out.extend_from_slice(b",\"created\":");
        push_str(out, &rfc3339::seconds(image.created));
        out.extend_from_slice(b",\"in_use\":");
        push_bool(out, count > 0);
        out.extend_from_slice(b",\"container_count\":");
        push_u64(out, count);
        out.extend_from_slice(b",\"containers\":");
        push_refs(out, users().map(|c| (c.id.as_ref(), c.name())));
        out.extend_from_slice(b",\"dangling\":");
        push_bool(out, image.tags().next().is_none());
        out.push(b'}');
    }
    out.push(b']');
}

/// One network object of spec 3.7.4, with the containers `users` gives.
pub fn emit_network<'u>(
    out: &mut Vec<u8>,
    n: &Network,
    users: impl Iterator<Item = (&'u str, &'u str)> + Clone,
) {
    let count = users.clone().count() as u64;
    out.extend_from_slice(b"{\"id\":");
    push_str(out, short_id(&n.id));
    out.extend_from_slice(b",\"name\":");
    push_str(out, &n.name);
    out.extend_from_slice(b",\"driver\":");
    push_str(out, &n.driver);
    out.extend_from_slice(b",\"scope\":");
    push_str(out, &n.scope);
    out.extend_from_slice(b",\"created\":");
    let (before, after) = without_fraction(&n.created);
    out.push(b'"');
    // Docker's timestamps are digits, `-`, `:`, `T`, `Z` and `+`: nothing to escape, but go through
    // the escaper anyway for a daemon that writes something else.
    push_str_inner(out, before);
    push_str_inner(out, after);
    out.push(b'"');
    out.extend_from_slice(b",\"internal\":");
    push_bool(out, n.internal);
    out.extend_from_slice(b",\"subnet\":");
    push_str(out, n.subnet());
    out.extend_from_slice(b",\"containers\":");
    push_refs(out, users);
    out.extend_from_slice(b",\"container_count\":");
    push_u64(out, count);
    out.extend_from_slice(b",\"is_builtin\":");
    push_bool(out, BUILTIN_NETWORKS.contains(&n.name.as_ref()));
    out.push(b'}');
}

/// The volume array of spec 3.7.5.
pub fn emit_volumes(out: &mut Vec<u8>, volumes: &[Volume], usage: &[ContainerUsage]) {
    out.push(b'[');
    for (i, v) in volumes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let users = || usage.iter().filter(|c| c.mounts_volume(&v.name));
        let count = users().count() as u64;
        out.extend_from_slice(b"{\"name\":");
        push_str(out, &v.name);
        out.extend_from_slice(b",\"driver\":");
        push_str(out, &v.driver);
        out.extend_from_slice(b",\"mountpoint\":");
        push_str(out, &v.mountpoint);
        out.extend_from_slice(b",\"created\":");
        push_str(out, &v.created_at);
        out.extend_from_slice(b",\"containers\":");
        push_refs(out, users().map(|c| (c.id.as_ref(), c.name())));
        out.extend_from_slice(b",\"container_count\":");
        push_u64(out, count);
        out.extend_from_slice(b",\"in_use\":");
        push_bool(out, count > 0);
        out.push(b'}');
    }
    out.push(b']');
}

/// The running containers attached to an inspected network, as `(id, name)`.
fn attached<'n>(n: &'n Network) -> impl Iterator<Item = (&'n str, &'n str)> + Clone {
    n.containers
        .iter()
        .flatten()
        .map(|(id, e)| (id.as_ref(), e.name.as_ref()))
}

/// An ID without `sha256:`, cut to 12 characters (Docker's short form).
pub fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.get(..12).unwrap_or(id)
}

/// An RFC 3339 time without its fractional seconds, as Go's `time.RFC3339` writes it:
/// `2026-11-28T23:58:11.123456789Z` → (`2026-11-28T23:58:11`, `Z`). The two parts are written one
/// after the other.
pub fn without_fraction(t: &str) -> (&str, &str) {
    match t.find('.') {
        Some(dot) if t[..dot].contains('T') => {
            let rest = &t[dot + 1..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            (&t[..dot], &rest[digits..])
        }
        _ => (t, ""),
    }
}

fn push_refs<'u>(out: &mut Vec<u8>, refs: impl Iterator<Item = (&'u str, &'u str)>) {
    out.push(b'[');
    for (i, (id, name)) in refs.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"id\":");
        push_str(out, short_id(id));
        out.extend_from_slice(b",\"name\":");
        push_str(out, name);
        out.push(b'}');
    }
    out.push(b']');
}

fn push_strs<'s>(out: &mut Vec<u8>, items: impl Iterator<Item = &'s str>) {
    out.push(b'[');
    for (i, s) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_str(out, s);
    }
    out.push(b']');
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// `s` escaped as inside a JSON string, without the quotes.
fn push_str_inner(out: &mut Vec<u8>, s: &str) {
    let start = out.len();
    push_str(out, s);
    // push_str wrote `"…"`: drop the two quotes.
    out.pop();
    out.remove(start);
}

fn push_u64(out: &mut Vec<u8>, n: u64) {
    let _ = serde_json::to_writer(&mut *out, &n);
}

fn push_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::volumes::VolumeList;
    use serde_json::Value;

    const CONTAINERS: &str = r#"[{"Id":"77246dc03533aabbcc","Names":["/t1"],"ImageID":"sha256:51b7a756fdf3ffff","Mounts":[{"Type":"volume","Name":"pgdata"}],"NetworkSettings":{"Networks":{"bridge":{"NetworkID":"3f0c2a1b9d8e0000"}}}},
        {"Id":"88","Names":["/t\"2"],"ImageID":"sha256:51b7a756fdf3ffff","Mounts":[],"NetworkSettings":{"Networks":{}}}]"#;

    fn json(out: &[u8]) -> Value {
        serde_json::from_slice(out)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
    }

    #[test]
    fn images_in_the_shape_of_spec_3_7_3() {
        let usage: Vec<ContainerUsage> = serde_json::from_str(CONTAINERS).unwrap();
        let images: Vec<ImageSummary> = serde_json::from_str(
            r#"[{"Id":"sha256:51b7a756fdf3ffff","RepoTags":["bb:local","steerlab/busybox:local"],"Size":1990000,"Created":1764374400},
                {"Id":"sha256:0123456789abcdef","RepoTags":["<none>:<none>"],"Size":-1,"Created":0}]"#,
        )
        .unwrap();
        let mut out = Vec::new();
        emit_images(&mut out, &images, &usage);
        assert_eq!(
            json(&out),
            serde_json::json!([
                {"id":"51b7a756fdf3","tags":["bb:local","steerlab/busybox:local"],"size":1990000,"created":"2025-11-29T00:00:00Z","in_use":true,"container_count":2,"containers":[{"id":"77246dc03533","name":"t1"},{"id":"88","name":"t\"2"}],"dangling":false},
                {"id":"0123456789ab","tags":[],"size":0,"created":"1970-01-01T00:00:00Z","in_use":false,"container_count":0,"containers":[],"dangling":true}
            ])
        );
        let mut out = Vec::new();
        emit_images(&mut out, &[], &usage);
        assert_eq!(out, b"[]");
    }

    #[test]
    fn networks_in_the_shape_of_spec_3_7_4() {
        let usage: Vec<ContainerUsage> = serde_json::from_str(CONTAINERS).unwrap();
        let n: Network = serde_json::from_str(
            r#"{"Name":"bridge","Id":"3f0c2a1b9d8e0000","Created":"2026-11-28T23:58:11.009283922Z","Scope":"local","Driver":"bridge","IPAM":{"Config":[{"Subnet":"172.17.0.0/16"}]},"Internal":false,"Containers":{}}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        let users = usage.iter().filter(|c| c.in_network(&n.id, &n.name));
        emit_network(&mut out, &n, users.map(|c| (c.id.as_ref(), c.name())));
        assert_eq!(
            json(&out),
            serde_json::json!({"id":"3f0c2a1b9d8e","name":"bridge","driver":"bridge","scope":"local","created":"2026-11-28T23:58:11Z","internal":false,"subnet":"172.17.0.0/16","containers":[{"id":"77246dc03533","name":"t1"}],"container_count":1,"is_builtin":true})
        );
    }

    #[test]
    fn volumes_in_the_shape_of_spec_3_7_5() {
        let usage: Vec<ContainerUsage> = serde_json::from_str(CONTAINERS).unwrap();
        let list: VolumeList = serde_json::from_str(
            r#"{"Volumes":[{"Name":"pgdata","Driver":"local","Mountpoint":"/var/lib/docker/volumes/pgdata/_data","CreatedAt":"2026-11-20T10:00:00Z"},{"Name":"free","Driver":"local","Mountpoint":"/m"}]}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        emit_volumes(&mut out, list.volumes.as_deref().unwrap(), &usage);
        assert_eq!(
            json(&out),
            serde_json::json!([
                {"name":"pgdata","driver":"local","mountpoint":"/var/lib/docker/volumes/pgdata/_data","created":"2026-11-20T10:00:00Z","containers":[{"id":"77246dc03533","name":"t1"}],"container_count":1,"in_use":true},
                {"name":"free","driver":"local","mountpoint":"/m","created":"","containers":[],"container_count":0,"in_use":false}
            ])
        );
    }

    #[test]
    fn delete_checks_of_spec_3_3() {
        let net = |body: &'static str| serde_json::from_str::<Network>(body).unwrap();
        for name in BUILTIN_NETWORKS {
            let body = format!(r#"{{"Name":"{name}","Containers":{{}}}}"#);
            let n: Network = serde_json::from_str(&body).unwrap();
            assert_eq!(
                check_delete(&n, true).unwrap(),
                format!("cannot delete built-in network '{name}'")
            );
        }
        let busy = net(r#"{"Name":"app","Containers":{"a":{"Name":"x"},"b":{"Name":"y"}}}"#);
        assert_eq!(
            check_delete(&busy, false).unwrap(),
            "network has 2 connected container(s), use force to disconnect and delete"
        );
        assert!(check_delete(&busy, true).is_none());
        assert!(check_delete(&net(r#"{"Name":"app","Containers":null}"#), false).is_none());
    }

    #[test]
    fn payloads_absent_null_empty_or_wrong() {
        let raw = |s: &str| serde_json::from_str::<&RawValue>(s).map(|r| r.get().to_owned());
        let p: DeleteVolume = parse_payload(None).unwrap();
        assert!(p.volume_name.is_none());
        let null = raw("null").unwrap();
        let null: &RawValue = serde_json::from_str(&null).unwrap();
        assert!(parse_payload::<DeleteVolume>(Some(null)).is_ok());
        let body: &RawValue = serde_json::from_str(r#"{"volume_name":"v","force":true}"#).unwrap();
        let p: DeleteVolume = parse_payload(Some(body)).unwrap();
        assert_eq!((p.volume_name.as_deref(), p.force), (Some("v"), Some(true)));
        let bad: &RawValue = serde_json::from_str(r#"{"force":"yes"}"#).unwrap();
        assert!(parse_payload::<DeleteVolume>(Some(bad)).is_err());
        let empty: &RawValue = serde_json::from_str("{}").unwrap();
        assert!(parse_payload::<CreateNetwork>(Some(empty)).is_ok());
    }

    #[test]
    fn short_ids_and_go_rfc3339() {
        assert_eq!(short_id("sha256:51b7a756fdf3aaaa"), "51b7a756fdf3");
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(short_id("sha256:é"), "é");
        let cases = [
            ("2026-11-28T23:58:11.009283922Z", "2026-11-28T23:58:11Z"),
            ("2026-11-28T23:58:11.5+01:00", "2026-11-28T23:58:11+01:00"),
            ("2026-11-28T23:58:11Z", "2026-11-28T23:58:11Z"),
            ("", ""),
            ("a.b", "a.b"),
        ];
        for (t, want) in cases {
            let (a, b) = without_fraction(t);
            assert_eq!(format!("{a}{b}"), want, "{t}");
        }
    }

    #[test]
    fn escaping_helpers() {
        let mut out = Vec::new();
        push_str_inner(&mut out, "a\"b");
        assert_eq!(out, br#"a\"b"#);
        let mut out = Vec::new();
        push_strs(&mut out, ["x", "y"].into_iter());
        assert_eq!(out, br#"["x","y"]"#);
    }
}
