//! What each container uses, from one `GET /containers/json?all=1`: its image, its named volumes
//! and its networks. DockMon's Images, Networks and Volumes pages show, per object, the containers
//! using it (spec 3.7.3-3.7.5); one list answers all three, stopped containers included.
//!
//! The answer is read whole within `LIST_BODY_MAX_BYTES` (as for `list_containers`), and only the
//! fields below are kept, borrowed from it.
use super::images::parse;
use super::{Client, Error};
use crate::limits::*;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// One container of the list, as far as usage goes.
#[derive(Debug, Deserialize)]
pub struct ContainerUsage<'a> {
    /// 64 hex.
    #[serde(rename = "Id", borrow, default)]
    pub id: Cow<'a, str>,
    /// Names with their leading `/`.
    #[serde(rename = "Names", borrow, default)]
    pub names: Option<Vec<Cow<'a, str>>>,
    /// `sha256:<64 hex>` of its image.
    #[serde(rename = "ImageID", borrow, default)]
    pub image_id: Cow<'a, str>,
    /// Its mounts (`null` on some engines when none).
    #[serde(rename = "Mounts", borrow, default)]
    pub mounts: Option<Vec<Mount<'a>>>,
    /// Its networks.
    #[serde(rename = "NetworkSettings", borrow, default)]
    pub network_settings: Option<NetworkSettings<'a>>,
}

/// One mount of a container.
#[derive(Debug, Deserialize)]
pub struct Mount<'a> {
    /// `volume`, `bind`, `tmpfs`, `npipe`.
    #[serde(rename = "Type", borrow, default)]
    pub kind: Cow<'a, str>,
    /// The volume's name (volume mounts only).
    #[serde(rename = "Name", borrow, default)]
    pub name: Cow<'a, str>,
}

/// The networks of a container.
#[derive(Debug, Deserialize)]
pub struct NetworkSettings<'a> {
    /// Network name → endpoint.
    #[serde(rename = "Networks", borrow, default)]
    pub networks: Option<BTreeMap<Cow<'a, str>, NetworkRef<'a>>>,
}

/// A container's endpoint in one network.
#[derive(Debug, Deserialize)]
pub struct NetworkRef<'a> {
    /// The network's full ID.
    #[serde(rename = "NetworkID", borrow, default)]
    pub network_id: Cow<'a, str>,
}

impl<'a> ContainerUsage<'a> {
    /// The first name without its leading `/`.
    pub fn name(&self) -> &str {
        self.names
            .iter()
            .flatten()
            .next()
            .map_or("", |n| n.trim_start_matches('/'))
    }

    /// Whether it mounts the volume `name`.
    pub fn mounts_volume(&self, name: &str) -> bool {
        self.mounts
            .iter()
            .flatten()
            .any(|m| m.kind == "volume" && m.name == name)
    }

    /// Whether it is attached to the network with full ID `id` (or, for engines that leave
    /// `NetworkID` empty, named `name`).
    pub fn in_network(&self, id: &str, name: &str) -> bool {
        self.network_settings
            .iter()
            .filter_map(|s| s.networks.as_ref())
            .flatten()
            .any(|(net_name, r)| {
                if r.network_id.is_empty() {
                    net_name == name
                } else {
                    r.network_id == id
                }
            })
    }
}

impl Client {
    /// `GET /containers/json?all=1`, parsed from `buf` for usage.
    pub async fn container_usage<'b>(
        &self,
        buf: &'b mut Vec<u8>,
    ) -> Result<Vec<ContainerUsage<'b>>, Error> {
        self.call(
            "GET",
            "/containers/json?all=1",
            None,
            buf,
            LIST_BODY_MAX_BYTES,
            CALL_TIMEOUT_MS,
        )
        .await?;
        parse("GET /containers/json", buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_of_images_volumes_and_networks() {
        let body = br#"[{"Id":"77246dc03533ff","Names":["/t1"],"Image":"bb","ImageID":"sha256:51b7","Command":"sh","Created":1,"Ports":[],"Labels":{},"State":"running","Status":"Up","HostConfig":{"NetworkMode":"default"},"NetworkSettings":{"Networks":{"bridge":{"IPAMConfig":null,"NetworkID":"e4af","IPAddress":"172.17.0.2"},"dmt":{"NetworkID":""}}},"Mounts":[{"Type":"volume","Name":"pgdata","Source":"/x","Destination":"/d","Driver":"local","Mode":"z","RW":true,"Propagation":""},{"Type":"bind","Source":"/h","Destination":"/b"}]},
            {"Id":"b","Names":null,"ImageID":"sha256:00","Mounts":null,"NetworkSettings":{"Networks":null}},{"Id":"c"}]"#;
        let list: Vec<ContainerUsage> = parse("t", body).unwrap();
        assert_eq!(list[0].name(), "t1");
        assert!(list[0].mounts_volume("pgdata"));
        assert!(!list[0].mounts_volume("/h"));
        assert!(list[0].in_network("e4af", "bridge"));
        assert!(
            list[0].in_network("ffff", "dmt"),
            "empty NetworkID: by name"
        );
        assert!(!list[0].in_network("ffff", "other"));
        for c in &list[1..] {
            assert_eq!(c.name(), "");
            assert!(!c.mounts_volume("pgdata"));
            assert!(!c.in_network("e4af", "bridge"));
        }
    }
}
