//! Image calls of DockMon's Images page (spec 5): list, remove, prune. Docker's JSON goes into
//! borrowed structs with only the fields the reply needs; knows nothing of DockMon's shapes.
//!
//! Every answer is read whole into the caller's buffer within its cap (`IMAGES_BODY_MAX_BYTES`,
//! `IMAGE_REMOVE_BODY_MAX_BYTES`, `PRUNE_BODY_MAX_BYTES`); past a cap the call is an
//! [`Error::Http`] naming the cap, never a partial answer. A prune whose report is past its cap has
//! still pruned: the error says so only by naming the call, so the caps are sized far above what a
//! host produces.
use super::{Client, Error};
use crate::http::request;
use crate::limits::*;
use serde::Deserialize;
use std::borrow::Cow;

/// One element of `GET /images/json`.
#[derive(Debug, Deserialize)]
pub struct ImageSummary<'a> {
    /// `sha256:<64 hex>`.
    #[serde(rename = "Id", borrow, default)]
    pub id: Cow<'a, str>,
    /// `repo:tag` names; `null`, `[]` or `["<none>:<none>"]` for an untagged image (by engine).
    #[serde(rename = "RepoTags", borrow, default)]
    pub repo_tags: Option<Vec<Cow<'a, str>>>,
    /// Bytes, the image with its parents.
    #[serde(rename = "Size", default)]
    pub size: i64,
    /// Unix seconds.
    #[serde(rename = "Created", default)]
    pub created: i64,
}

impl ImageSummary<'_> {
    /// The real tags: `<none>:<none>` (what older engines write for an untagged image) left out.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.repo_tags
            .iter()
            .flatten()
            .map(|t| t.as_ref())
            .filter(|t| *t != "<none>:<none>")
    }
}

/// What `POST /images/prune` reports.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct ImagesPruned {
    /// Entries of `ImagesDeleted` (each one `Untagged` or `Deleted` reference).
    #[serde(rename = "ImagesDeleted", default, deserialize_with = "count_entries")]
    pub deleted: u64,
    /// Bytes freed.
    #[serde(rename = "SpaceReclaimed", default)]
    pub space_reclaimed: u64,
}

/// `filters={"dangling":{"false":true}}`: every unused image, tagged or not (spec 5), as the Go
/// agent asks.
const PRUNE_ALL_UNUSED: &str =
    "/images/prune?filters=%7B%22dangling%22%3A%7B%22false%22%3Atrue%7D%7D";

impl Client {
    /// `GET /images/json?all=1`, parsed from `buf`.
    pub async fn images<'b>(&self, buf: &'b mut Vec<u8>) -> Result<Vec<ImageSummary<'b>>, Error> {
        self.call(
            "GET",
            "/images/json?all=1",
            None,
            buf,
            IMAGES_BODY_MAX_BYTES,
            CALL_TIMEOUT_MS,
        )
        .await?;
        parse("GET /images/json", buf)
    }

    /// `DELETE /images/{id}`, with `force=1` when `force`. An image in use is Docker's 409
    /// (`conflict: unable to delete … (must be forced) - image is being used by …`).
    pub async fn remove_image(&self, id: &str, force: bool) -> Result<(), Error> {
        let mut target = String::with_capacity(96);
        target.push_str("/images/");
        request::push_encoded(&mut target, id);
        if force {
            target.push_str("?force=1");
        }
        let mut body = Vec::new();
        self.call(
            "DELETE",
            &target,
            None,
            &mut body,
            IMAGE_REMOVE_BODY_MAX_BYTES,
            MANAGE_SLOW_TIMEOUT_MS,
        )
        .await
    }

    /// `POST /images/prune` of every unused image. `buf` holds the report.
    pub async fn prune_images(&self, buf: &mut Vec<u8>) -> Result<ImagesPruned, Error> {
        self.call(
            "POST",
            PRUNE_ALL_UNUSED,
            None,
            buf,
            PRUNE_BODY_MAX_BYTES,
            IMAGES_PRUNE_TIMEOUT_MS,
        )
        .await?;
        parse("POST /images/prune", buf)
    }
}

/// Counts the elements of an array (or `null`) without keeping them.
fn count_entries<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Count;
    impl<'de> serde::de::Visitor<'de> for Count {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array or null")
        }
        fn visit_unit<E>(self) -> Result<u64, E> {
            Ok(0)
        }
        fn visit_none<E>(self) -> Result<u64, E> {
            Ok(0)
        }
        fn visit_some<D2: serde::Deserializer<'de>>(self, d: D2) -> Result<u64, D2::Error> {
            d.deserialize_any(Count)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
            let mut n = 0;
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                n += 1;
            }
            Ok(n)
        }
    }
    d.deserialize_option(Count)
}

pub(super) fn parse<'b, T: Deserialize<'b>>(call: &str, body: &'b [u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::Json {
        call: call.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_list_with_null_none_and_real_tags() {
        let body = br#"[{"Containers":-1,"Created":1764892800,"Id":"sha256:51b7a756fdf3aa","Labels":null,"ParentId":"","RepoDigests":null,"RepoTags":["bb:local","x/bb:local"],"SharedSize":-1,"Size":1990000,"VirtualSize":1990000},
            {"Id":"sha256:00","RepoTags":null,"Size":5,"Created":0},
            {"Id":"sha256:01","RepoTags":["<none>:<none>"],"Size":5,"Created":0},
            {"Id":"sha256:02"}]"#;
        let images: Vec<ImageSummary> = parse("t", body).unwrap();
        assert_eq!(images.len(), 4);
        assert_eq!(
            images[0].tags().collect::<Vec<_>>(),
            ["bb:local", "x/bb:local"]
        );
        assert_eq!(images[0].size, 1_990_000);
        assert_eq!(images[0].created, 1_764_892_800);
        for image in &images[1..] {
            assert_eq!(image.tags().count(), 0);
        }
        assert!(parse::<Vec<ImageSummary>>("t", b"{}").is_err());
    }

    #[test]
    fn prune_report_counts_entries() {
        let r: ImagesPruned = parse(
            "t",
            br#"{"ImagesDeleted":[{"Untagged":"a:1"},{"Deleted":"sha256:1"}],"SpaceReclaimed":42}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            ImagesPruned {
                deleted: 2,
                space_reclaimed: 42
            }
        );
        let r: ImagesPruned = parse("t", br#"{"ImagesDeleted":null,"SpaceReclaimed":0}"#).unwrap();
        assert_eq!(r.deleted, 0);
        let r: ImagesPruned = parse("t", br#"{}"#).unwrap();
        assert_eq!(r.deleted, 0);
        assert!(parse::<ImagesPruned>("t", br#"{"ImagesDeleted":3}"#).is_err());
    }
}
