//! Docker's networks: the IPv4 subnets read at registration (in container mode the host's addresses
//! inside them are Docker's own bridge gateways, not the host's; spec 2.3 `host_ips`), and the calls
//! of DockMon's Networks page (spec 5): list, inspect, create, disconnect, remove, prune.
//!
//! Docker's JSON goes into borrowed structs with only the fields the replies need; answers are read
//! whole within their cap (`NETWORKS_BODY_MAX_BYTES`, `NETWORK_INSPECT_BODY_MAX_BYTES`,
//! `OP_BODY_MAX_BYTES`, `PRUNE_BODY_MAX_BYTES`), past which the call is an [`Error::Http`] naming it.
use super::images::parse;
use super::{Client, Error};
use crate::http::request;
use crate::limits::*;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// A network of `GET /networks` or `GET /networks/{id}`.
#[derive(Debug, Deserialize)]
pub struct Network<'a> {
    /// 64 hex.
    #[serde(rename = "Id", borrow, default)]
    pub id: Cow<'a, str>,
    /// `bridge`, `host`, `none` or a user's name.
    #[serde(rename = "Name", borrow, default)]
    pub name: Cow<'a, str>,
    /// `bridge`, `host`, `null`, `overlay`, `macvlan`, a plugin.
    #[serde(rename = "Driver", borrow, default)]
    pub driver: Cow<'a, str>,
    /// `local`, `global` or `swarm`.
    #[serde(rename = "Scope", borrow, default)]
    pub scope: Cow<'a, str>,
    /// RFC 3339 with nanoseconds, as the daemon wrote it.
    #[serde(rename = "Created", borrow, default)]
    pub created: Cow<'a, str>,
    /// No route outside.
    #[serde(rename = "Internal", default)]
    pub internal: bool,
    /// Address management: the subnets.
    #[serde(rename = "IPAM", borrow, default)]
    pub ipam: Option<Ipam<'a>>,
    /// Inspect only: the running containers attached, by container ID (`{}` in lists).
    #[serde(rename = "Containers", borrow, default)]
    pub containers: Option<BTreeMap<Cow<'a, str>, Endpoint<'a>>>,
}

impl Network<'_> {
    /// The first IPAM subnet, `""` when none (spec 3.7.4).
    pub fn subnet(&self) -> &str {
        self.ipam
            .as_ref()
            .and_then(|i| i.config.as_ref())
            .and_then(|c| c.first())
            .map_or("", |c| c.subnet.as_ref())
    }
}

/// A container's endpoint in a network inspect.
#[derive(Debug, Deserialize)]
pub struct Endpoint<'a> {
    /// The container's name (no leading `/`).
    #[serde(rename = "Name", borrow, default)]
    pub name: Cow<'a, str>,
}

/// What `create_network` asks for (spec 3.3).
#[derive(Debug, Default)]
pub struct NetworkCreate<'a> {
    /// The name.
    pub name: &'a str,
    /// The driver (the caller puts `bridge` for `""`).
    pub driver: &'a str,
    /// CIDR, `""` for Docker's choice.
    pub subnet: &'a str,
    /// Gateway address, `""` for Docker's choice.
    pub gateway: &'a str,
    /// No route outside.
    pub internal: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CreateBody<'a> {
    name: &'a str,
    driver: &'a str,
    internal: bool,
    /// Docker < 25 would otherwise create a second network of the same name.
    check_duplicate: bool,
    #[serde(rename = "IPAM", skip_serializing_if = "Option::is_none")]
    ipam: Option<IpamBody<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct IpamBody<'a> {
    config: [IpamConfigBody<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct IpamConfigBody<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    subnet: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    gateway: &'a str,
}

/// The body of `POST /networks/create` (spec 5: `Name`, `Driver`, `Internal`, optional
/// `IPAM.Config[{Subnet,Gateway}]`).
pub fn emit_create(req: &NetworkCreate) -> Vec<u8> {
    let ipam = (!req.subnet.is_empty() || !req.gateway.is_empty()).then_some(IpamBody {
        config: [IpamConfigBody {
            subnet: req.subnet,
            gateway: req.gateway,
        }],
    });
    // Serializing strs and bools into a Vec cannot fail.
    serde_json::to_vec(&CreateBody {
        name: req.name,
        driver: req.driver,
        internal: req.internal,
        check_duplicate: true,
        ipam,
    })
    .unwrap_or_default()
}

#[derive(Deserialize)]
struct Created<'a> {
    #[serde(rename = "Id", borrow, default)]
    id: Cow<'a, str>,
}

/// What `POST /networks/prune` reports.
#[derive(Debug, Deserialize)]
pub struct NetworksPruned<'a> {
    /// Names of the removed networks (`null` when none).
    #[serde(rename = "NetworksDeleted", borrow, default)]
    pub deleted: Option<Vec<Cow<'a, str>>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DisconnectBody<'a> {
    container: &'a str,
    force: bool,
}

#[derive(Deserialize)]
struct Subnets<'a> {
    #[serde(rename = "IPAM", borrow, default)]
    ipam: Option<Ipam<'a>>,
}

/// A network's address management.
#[derive(Debug, Deserialize)]
pub struct Ipam<'a> {
    /// `null` for `host` and `none`.
    #[serde(rename = "Config", borrow, default)]
    pub config: Option<Vec<IpamConfig<'a>>>,
}

/// One IPAM pool.
#[derive(Debug, Deserialize)]
pub struct IpamConfig<'a> {
    /// CIDR.
    #[serde(rename = "Subnet", borrow, default)]
    pub subnet: Cow<'a, str>,
}

/// The IPv4 subnets (`a.b.c.d/len`) in a `GET /networks` answer; others are skipped.
pub fn parse_subnets(body: &[u8]) -> Result<Vec<(Ipv4Addr, u8)>, serde_json::Error> {
    let networks: Vec<Subnets> = serde_json::from_slice(body)?;
    Ok(networks
        .iter()
        .filter_map(|n| n.ipam.as_ref())
        .filter_map(|i| i.config.as_ref())
        .flatten()
        .filter_map(|c| {
            let (addr, len) = c.subnet.split_once('/')?;
            let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
            Some((addr.parse().ok()?, len))
        })
        .collect())
}

impl Client {
    /// `GET /networks` into `buf` (within `NETWORKS_BODY_MAX_BYTES` and `CALL_TIMEOUT_MS`): the one
    /// place that reads the list, for the registration's facts and the Networks page.
    pub(crate) async fn get_networks(&self, buf: &mut Vec<u8>) -> Result<(), Error> {
        self.call(
            "GET",
            "/networks",
            None,
            buf,
            NETWORKS_BODY_MAX_BYTES,
            CALL_TIMEOUT_MS,
        )
        .await
    }

    /// The registration's network facts from one `GET /networks` (issue 10: it was read twice): the
    /// daemon's start time (`Created` of `bridge`, spec 2.3 `daemon_started_at`, `""` without one)
    /// and the IPv4 subnets of every network.
    pub async fn network_facts(
        &self,
        buf: &mut Vec<u8>,
    ) -> Result<(String, Vec<(Ipv4Addr, u8)>), Error> {
        self.get_networks(buf).await?;
        let started = super::ops::bridge_created(buf)?;
        let subnets = parse_subnets(buf).map_err(|e| Error::Json {
            call: "GET /networks".to_string(),
            message: e.to_string(),
        })?;
        Ok((started, subnets))
    }

    /// `GET /networks`, parsed from `buf` (no `Containers`: Docker lists them only on inspect).
    pub async fn networks<'b>(&self, buf: &'b mut Vec<u8>) -> Result<Vec<Network<'b>>, Error> {
        self.get_networks(buf).await?;
        parse("GET /networks", buf)
    }

    /// `GET /networks/{id}` (an ID, a unique ID prefix or a name), parsed from `buf`.
    pub async fn network<'b>(&self, id: &str, buf: &'b mut Vec<u8>) -> Result<Network<'b>, Error> {
        let target = network_target(id, "");
        self.call(
            "GET",
            &target,
            None,
            buf,
            NETWORK_INSPECT_BODY_MAX_BYTES,
            CALL_TIMEOUT_MS,
        )
        .await?;
        parse("GET /networks/{id}", buf)
    }

    /// `POST /networks/create`; returns the new network's ID.
    pub async fn create_network(&self, req: &NetworkCreate<'_>) -> Result<String, Error> {
        let body = emit_create(req);
        let mut buf = Vec::new();
        self.call(
            "POST",
            "/networks/create",
            Some(("application/json", &body)),
            &mut buf,
            OP_BODY_MAX_BYTES,
            OP_TIMEOUT_MS,
        )
        .await?;
        let created: Created = parse("POST /networks/create", &buf)?;
        if created.id.is_empty() {
            return Err(Error::Json {
                call: "POST /networks/create".to_string(),
                message: "no `Id` in the answer".to_string(),
            });
        }
        Ok(created.id.into_owned())
    }

    /// `POST /networks/{id}/disconnect` of `container`, forced (spec 5).
    pub async fn disconnect_network(&self, id: &str, container: &str) -> Result<(), Error> {
        let target = network_target(id, "/disconnect");
        // Serializing two strs and a bool into a Vec cannot fail.
        let body = serde_json::to_vec(&DisconnectBody {
            container,
            force: true,
        })
        .unwrap_or_default();
        let mut buf = Vec::new();
        self.call(
            "POST",
            &target,
            Some(("application/json", &body)),
            &mut buf,
            OP_BODY_MAX_BYTES,
            OP_TIMEOUT_MS,
        )
        .await
    }

    /// `DELETE /networks/{id}`. Docker refuses (403) while containers are attached.
    pub async fn remove_network(&self, id: &str) -> Result<(), Error> {
        let target = network_target(id, "");
        let mut buf = Vec::new();
        self.call(
            "DELETE",
            &target,
            None,
            &mut buf,
            OP_BODY_MAX_BYTES,
            OP_TIMEOUT_MS,
        )
        .await
    }

    /// `POST /networks/prune` of every unused network. `buf` holds the report.
    pub async fn prune_networks<'b>(
        &self,
        buf: &'b mut Vec<u8>,
    ) -> Result<NetworksPruned<'b>, Error> {
        self.call(
            "POST",
            "/networks/prune",
            None,
            buf,
            PRUNE_BODY_MAX_BYTES,
            MANAGE_SLOW_TIMEOUT_MS,
        )
        .await?;
        parse("POST /networks/prune", buf)
    }
}

/// `/networks/{id}{suffix}` with the ID percent-encoded.
fn network_target(id: &str, suffix: &str) -> String {
    let mut target = String::with_capacity(96);
    target.push_str("/networks/");
    request::push_encoded(&mut target, id);
    target.push_str(suffix);
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_inspect_and_list_fields() {
        let body = br#"{"Name":"dmt","Id":"3f0c2a1b9d8e77","Created":"2026-11-28T23:58:11.123Z","Scope":"local","Driver":"bridge","EnableIPv6":false,"IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"10.77.0.0/24","Gateway":"10.77.0.1"}]},"Internal":true,"Containers":{"77246dc03533aa":{"Name":"t1","EndpointID":"e","MacAddress":"m","IPv4Address":"10.77.0.2/24","IPv6Address":""}},"Options":{},"Labels":{}}"#;
        let n: Network = parse("t", body).unwrap();
        assert_eq!(n.subnet(), "10.77.0.0/24");
        assert!(n.internal);
        let c = n.containers.unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c["77246dc03533aa"].name, "t1");
        let n: Network = parse(
            "t",
            br#"{"Name":"host","IPAM":{"Config":null},"Containers":null}"#,
        )
        .unwrap();
        assert_eq!(n.subnet(), "");
        assert!(n.containers.is_none());
    }

    #[test]
    fn create_body_has_ipam_only_when_asked() {
        let plain = NetworkCreate {
            name: "n",
            driver: "bridge",
            ..Default::default()
        };
        assert_eq!(
            emit_create(&plain),
            br#"{"Name":"n","Driver":"bridge","Internal":false,"CheckDuplicate":true}"#
        );
        let full = NetworkCreate {
            subnet: "10.9.0.0/24",
            gateway: "10.9.0.1",
            internal: true,
            ..plain
        };
        assert_eq!(
            std::str::from_utf8(&emit_create(&full)).unwrap(),
            r#"{"Name":"n","Driver":"bridge","Internal":true,"CheckDuplicate":true,"IPAM":{"Config":[{"Subnet":"10.9.0.0/24","Gateway":"10.9.0.1"}]}}"#
        );
        assert_eq!(
            network_target("a b", "/disconnect"),
            "/networks/a%20b/disconnect"
        );
    }

    #[test]
    fn ipv4_subnets_only() {
        let body = br#"[{"Name":"bridge","IPAM":{"Config":[{"Subnet":"172.17.0.0/16","Gateway":"172.17.0.1"}]}},
            {"Name":"v6","IPAM":{"Config":[{"Subnet":"fd00::/64"},{"Subnet":"10.5.0.0/24"}]}},
            {"Name":"host","IPAM":{"Config":[]}},{"Name":"none","IPAM":{"Config":null}},{"Name":"x"}]"#;
        assert_eq!(
            parse_subnets(body).unwrap(),
            [
                (Ipv4Addr::new(172, 17, 0, 0), 16),
                (Ipv4Addr::new(10, 5, 0, 0), 24)
            ]
        );
    }
}
