//! Volume calls of DockMon's Volumes page (spec 5): list, remove, prune. Docker's JSON goes into
//! borrowed structs with only the fields the reply needs; knows nothing of DockMon's shapes.
//!
//! Answers are read whole into the caller's buffer within their cap (`VOLUMES_BODY_MAX_BYTES`,
//! `PRUNE_BODY_MAX_BYTES`); past a cap the call is an [`Error::Http`] naming the cap.
use super::images::parse;
use super::{Client, Error};
use crate::http::request;
use crate::limits::*;
use serde::Deserialize;
use std::borrow::Cow;

/// `GET /volumes`.
#[derive(Debug, Deserialize)]
pub struct VolumeList<'a> {
    /// `null` on some engines when there are none.
    #[serde(rename = "Volumes", borrow, default)]
    pub volumes: Option<Vec<Volume<'a>>>,
}

/// One volume of `GET /volumes`.
#[derive(Debug, Deserialize)]
pub struct Volume<'a> {
    /// The name (a 64-hex ID for anonymous volumes).
    #[serde(rename = "Name", borrow, default)]
    pub name: Cow<'a, str>,
    /// `local` or a plugin's name.
    #[serde(rename = "Driver", borrow, default)]
    pub driver: Cow<'a, str>,
    /// Where the data is on the host.
    #[serde(rename = "Mountpoint", borrow, default)]
    pub mountpoint: Cow<'a, str>,
    /// RFC 3339 as the daemon wrote it; absent on old engines and some plugins.
    #[serde(rename = "CreatedAt", borrow, default)]
    pub created_at: Cow<'a, str>,
}

/// What `POST /volumes/prune` reports.
#[derive(Debug, Deserialize)]
pub struct VolumesPruned<'a> {
    /// Names of the removed volumes (`null` when none).
    #[serde(rename = "VolumesDeleted", borrow, default)]
    pub deleted: Option<Vec<Cow<'a, str>>>,
    /// Bytes freed.
    #[serde(rename = "SpaceReclaimed", default)]
    pub space_reclaimed: u64,
}

/// First API version whose volume prune leaves named volumes alone unless asked with
/// `filters={"all":{"true":true}}` (Docker 23, API 1.42); older engines refuse that filter and
/// prune every unused volume anyway.
const API_PRUNE_ALL_FILTER: (u16, u16) = (1, 42);

impl Client {
    /// `GET /volumes`, parsed from `buf`.
    pub async fn volumes<'b>(&self, buf: &'b mut Vec<u8>) -> Result<VolumeList<'b>, Error> {
        self.call(
            "GET",
            "/volumes",
            None,
            buf,
            VOLUMES_BODY_MAX_BYTES,
            CALL_TIMEOUT_MS,
        )
        .await?;
        parse("GET /volumes", buf)
    }

    /// `DELETE /volumes/{name}`, with `force=1` when `force`. A volume in use is Docker's 409
    /// (`remove x: volume is in use - [id]`).
    pub async fn remove_volume(&self, name: &str, force: bool) -> Result<(), Error> {
        let mut target = String::with_capacity(96);
        target.push_str("/volumes/");
        request::push_encoded(&mut target, name);
        if force {
            target.push_str("?force=1");
        }
        let mut body = Vec::new();
        self.call(
            "DELETE",
            &target,
            None,
            &mut body,
            OP_BODY_MAX_BYTES,
            MANAGE_SLOW_TIMEOUT_MS,
        )
        .await
    }

    /// `POST /volumes/prune` of every unused volume, named ones included (spec 5). `buf` holds the
    /// report.
    pub async fn prune_volumes<'b>(
        &self,
        buf: &'b mut Vec<u8>,
    ) -> Result<VolumesPruned<'b>, Error> {
        let target = if self.api_version() >= super::version::ApiVersion::of(API_PRUNE_ALL_FILTER) {
            // filters={"all":{"true":true}}
            "/volumes/prune?filters=%7B%22all%22%3A%7B%22true%22%3Atrue%7D%7D"
        } else {
            "/volumes/prune"
        };
        self.call(
            "POST",
            target,
            None,
            buf,
            PRUNE_BODY_MAX_BYTES,
            MANAGE_SLOW_TIMEOUT_MS,
        )
        .await?;
        parse("POST /volumes/prune", buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_list_and_prune_report() {
        let body = br#"{"Volumes":[{"CreatedAt":"2026-11-20T10:00:00Z","Driver":"local","Labels":null,"Mountpoint":"/var/lib/docker/volumes/pgdata/_data","Name":"pgdata","Options":null,"Scope":"local"},{"Name":"x"}],"Warnings":null}"#;
        let list: VolumeList = parse("t", body).unwrap();
        let v = list.volumes.unwrap();
        assert_eq!(v[0].name, "pgdata");
        assert_eq!(v[0].mountpoint, "/var/lib/docker/volumes/pgdata/_data");
        assert_eq!(v[0].created_at, "2026-11-20T10:00:00Z");
        assert_eq!(v[1].driver, "");
        let list: VolumeList = parse("t", br#"{"Volumes":null}"#).unwrap();
        assert!(list.volumes.is_none());
        let r: VolumesPruned =
            parse("t", br#"{"VolumesDeleted":["a","b"],"SpaceReclaimed":7}"#).unwrap();
        assert_eq!(r.deleted.unwrap(), ["a", "b"]);
        let r: VolumesPruned =
            parse("t", br#"{"VolumesDeleted":null,"SpaceReclaimed":0}"#).unwrap();
        assert!(r.deleted.is_none());
    }
}
