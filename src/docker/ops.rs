//! Container operations of DockMon's `container_operation` (spec 3.4, the Docker calls of spec 5):
//! start, stop, restart, kill, rename, remove; plus the two lookups that feed other replies: an image's
//! repo digests (`list_containers`, spec 3.7.1) and the daemon's start time (registration, spec 2.3).
//!
//! Each call has a deadline: `OP_TIMEOUT_MS`, or for stop and restart the container's own grace time
//! plus `CALL_TIMEOUT_MS`, since dockerd answers only after the container has exited. IDs and names
//! are percent-encoded into the target, so a name from the network can't change the request. Errors
//! are [`Error::Status`] with Docker's message (`No such container: x`, `… is not running`), which
//! the command layer puts into its reply text.
use super::{Client, Error};
use crate::http::request;
use crate::limits::*;
use serde::Deserialize;
use std::borrow::Cow;

impl Client {
    /// `POST /containers/{id}/start`. Starting a running container is success (Docker answers 304,
    /// which the docker CLI also accepts).
    pub async fn start(&self, id: &str) -> Result<(), Error> {
        let target = container_target(id, "/start", &[]);
        not_modified_is_ok(self.op("POST", &target, OP_TIMEOUT_MS).await)
    }

    /// `POST /containers/{id}/stop?t={timeout_s}`: SIGTERM (or the image's stop signal), then SIGKILL
    /// after `timeout_s` seconds. Returns once the container has exited, so the deadline is
    /// `timeout_s` plus `CALL_TIMEOUT_MS`. Stopping a stopped container is success (304).
    pub async fn stop(&self, id: &str, timeout_s: u32) -> Result<(), Error> {
        let target = container_target(id, "/stop", &[("t", &timeout_s.to_string())]);
        not_modified_is_ok(self.op("POST", &target, grace_deadline_ms(timeout_s)).await)
    }

    /// `POST /containers/{id}/restart?t={timeout_s}`: a stop as in [`Client::stop`], then a start (a
    /// stopped container is just started). Deadline as for stop.
    pub async fn restart(&self, id: &str, timeout_s: u32) -> Result<(), Error> {
        let target = container_target(id, "/restart", &[("t", &timeout_s.to_string())]);
        self.op("POST", &target, grace_deadline_ms(timeout_s)).await
    }

    /// `POST /containers/{id}/kill?signal=SIGKILL`. A container that is not running is an error
    /// (Docker's 409 `… is not running`), as with `docker kill`.
    pub async fn kill(&self, id: &str) -> Result<(), Error> {
        let target = container_target(id, "/kill", &[("signal", "SIGKILL")]);
        self.op("POST", &target, OP_TIMEOUT_MS).await
    }

    /// `POST /containers/{id}/rename?name={new_name}`. Docker checks the name (`[a-zA-Z0-9][a-zA-Z0-9_.-]`,
    /// 400) and that it is free (409).
    pub async fn rename(&self, id: &str, new_name: &str) -> Result<(), Error> {
        let target = container_target(id, "/rename", &[("name", new_name)]);
        self.op("POST", &target, OP_TIMEOUT_MS).await
    }

    /// `DELETE /containers/{id}`, with `force=1` when `force` (kills a running container first).
    /// Anonymous volumes are kept (no `v`), as DockMon's Go agent does (spec 5).
    pub async fn remove(&self, id: &str, force: bool) -> Result<(), Error> {
        let query: &[(&str, &str)] = if force { &[("force", "1")] } else { &[] };
        let target = container_target(id, "", query);
        self.op("DELETE", &target, OP_TIMEOUT_MS).await
    }

    /// `GET /images/{image_id}/json` → its `RepoDigests` (`[]` for an image built or loaded locally).
    /// `buf` holds the answer.
    pub async fn image_repo_digests(
        &self,
        image_id: &str,
        buf: &mut Vec<u8>,
    ) -> Result<Vec<String>, Error> {
        let mut target = String::with_capacity(96);
        target.push_str("/images/");
        request::push_encoded(&mut target, image_id);
        target.push_str("/json");
        self.call(
            "GET",
            &target,
            None,
            buf,
            IMAGE_INSPECT_BODY_MAX_BYTES,
            CALL_TIMEOUT_MS,
        )
        .await?;
        let image: Image = parse("GET /images/{id}/json", buf)?;
        Ok(image
            .repo_digests
            .unwrap_or_default()
            .into_iter()
            .map(Cow::into_owned)
            .collect())
    }

    /// The daemon's start time as DockMon registers it (spec 2.3 `daemon_started_at`): `Created` of
    /// the network named `bridge` from `GET /networks`, as Docker wrote it (RFC 3339 with nanoseconds
    /// and the daemon's offset); `""` when there is no such network. `buf` holds the answer.
    pub async fn daemon_started_at(&self, buf: &mut Vec<u8>) -> Result<String, Error> {
        self.get_networks(buf).await?;
        bridge_created(buf)
    }

    /// One operation whose answer has no body worth keeping.
    async fn op(&self, method: &'static str, target: &str, timeout_ms: u64) -> Result<(), Error> {
        let mut body = Vec::new();
        self.call(
            method,
            target,
            None,
            &mut body,
            OP_BODY_MAX_BYTES,
            timeout_ms,
        )
        .await
    }
}

/// `/containers/{id}{suffix}?k=v&…` with the ID and every value percent-encoded.
fn container_target(id: &str, suffix: &str, query: &[(&str, &str)]) -> String {
    let mut target = String::with_capacity(96);
    target.push_str("/containers/");
    request::push_encoded(&mut target, id);
    target.push_str(suffix);
    for (i, (key, value)) in query.iter().enumerate() {
        target.push(if i == 0 { '?' } else { '&' });
        target.push_str(key);
        target.push('=');
        request::push_encoded(&mut target, value);
    }
    target
}

/// The deadline of stop and restart: dockerd answers after the grace time and then the kill.
fn grace_deadline_ms(timeout_s: u32) -> u64 {
    u64::from(timeout_s) * 1000 + CALL_TIMEOUT_MS
}

/// 304 Not Modified (already started, already stopped) is what the caller wanted.
fn not_modified_is_ok(result: Result<(), Error>) -> Result<(), Error> {
    match result {
        Err(Error::Status { status: 304, .. }) => Ok(()),
        other => other,
    }
}

/// The one field of image inspect we read.
#[derive(Deserialize)]
struct Image<'a> {
    /// `null` on some engines for images without digests.
    #[serde(rename = "RepoDigests", borrow, default)]
    repo_digests: Option<Vec<Cow<'a, str>>>,
}

/// The two fields of a `GET /networks` element we read.
#[derive(Deserialize)]
struct Network<'a> {
    #[serde(rename = "Name", borrow, default)]
    name: Cow<'a, str>,
    #[serde(rename = "Created", borrow, default)]
    created: Cow<'a, str>,
}

/// `Created` of the network named `bridge` in a `GET /networks` answer, `""` when there is none.
pub(super) fn bridge_created(body: &[u8]) -> Result<String, Error> {
    let networks: Vec<Network> = parse("GET /networks", body)?;
    Ok(networks
        .into_iter()
        .find(|n| n.name == "bridge")
        .map(|n| n.created.into_owned())
        .unwrap_or_default())
}

fn parse<'b, T: Deserialize<'b>>(call: &str, body: &'b [u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::Json {
        call: call.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_encode_ids_names_and_values() {
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (
                "a1b2c3d4e5f6",
                "/start",
                &[],
                "/containers/a1b2c3d4e5f6/start",
            ),
            ("web", "/stop", &[("t", "10")], "/containers/web/stop?t=10"),
            (
                "x",
                "/kill",
                &[("signal", "SIGKILL")],
                "/containers/x/kill?signal=SIGKILL",
            ),
            (
                "../../info",
                "/rename",
                &[("name", "a b&c=d/é")],
                "/containers/..%2F..%2Finfo/rename?name=a%20b%26c%3Dd%2F%C3%A9",
            ),
            ("id", "", &[("force", "1")], "/containers/id?force=1"),
            ("id", "", &[], "/containers/id"),
        ];
        for (id, suffix, query, want) in cases {
            assert_eq!(container_target(id, suffix, query), *want);
        }
    }

    #[test]
    fn stop_deadline_covers_the_grace_time() {
        assert_eq!(grace_deadline_ms(0), CALL_TIMEOUT_MS);
        assert_eq!(grace_deadline_ms(10), 10_000 + CALL_TIMEOUT_MS);
        assert_eq!(
            grace_deadline_ms(u32::MAX),
            u64::from(u32::MAX) * 1000 + CALL_TIMEOUT_MS
        );
    }

    #[test]
    fn only_304_becomes_success() {
        let status = |status| Error::Status {
            call: "POST /containers/x/start".into(),
            status,
            message: String::new(),
        };
        assert!(not_modified_is_ok(Err(status(304))).is_ok());
        assert!(not_modified_is_ok(Err(status(404))).is_err());
        assert!(not_modified_is_ok(Ok(())).is_ok());
    }

    #[test]
    fn finds_the_bridge_networks_creation_time() {
        // Recorded: Docker 20.10.24, see tests/fixtures/docker/README.md.
        let body = include_bytes!("../../tests/fixtures/docker/networks.json");
        assert_eq!(
            bridge_created(body).unwrap(),
            "2026-11-29T02:35:58.230860924Z"
        );
        assert_eq!(
            bridge_created(br#"[{"Name":"host","Created":"x"}]"#).unwrap(),
            ""
        );
        assert_eq!(bridge_created(b"[]").unwrap(), "");
        assert!(matches!(bridge_created(b"{}"), Err(Error::Json { .. })));
    }

    #[test]
    fn reads_repo_digests_empty_null_or_missing() {
        let body = include_bytes!("../../tests/fixtures/docker/image-local.json");
        let image: Image = parse("t", body).unwrap();
        assert_eq!(image.repo_digests.unwrap().len(), 0);
        let image: Image = parse(
            "t",
            br#"{"RepoDigests":["nginx@sha256:0123","library/nginx@sha256:4567"]}"#,
        )
        .unwrap();
        assert_eq!(
            image.repo_digests.unwrap(),
            ["nginx@sha256:0123", "library/nginx@sha256:4567"]
        );
        let image: Image = parse("t", br#"{"RepoDigests":null}"#).unwrap();
        assert!(image.repo_digests.is_none());
        let image: Image = parse("t", br#"{}"#).unwrap();
        assert!(image.repo_digests.is_none());
    }
}
