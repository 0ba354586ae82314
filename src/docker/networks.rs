//! `GET /networks`, read for the IPv4 subnets of Docker's networks: in container mode the host's
//! addresses inside them are Docker's own (bridge gateways), not the host's (spec 2.3 `host_ips`).
use super::{Client, Error};
use crate::limits::{CALL_TIMEOUT_MS, NETWORKS_BODY_MAX_BYTES};
use serde::Deserialize;
use std::borrow::Cow;
use std::net::Ipv4Addr;

#[derive(Deserialize)]
struct Network<'a> {
    #[serde(rename = "IPAM", borrow, default)]
    ipam: Option<Ipam<'a>>,
}

#[derive(Deserialize)]
struct Ipam<'a> {
    #[serde(rename = "Config", borrow, default)]
    config: Option<Vec<IpamConfig<'a>>>,
}

#[derive(Deserialize)]
struct IpamConfig<'a> {
    #[serde(rename = "Subnet", borrow, default)]
    subnet: Cow<'a, str>,
}

/// The IPv4 subnets (`a.b.c.d/len`) in a `GET /networks` answer; others are skipped.
pub fn parse_subnets(body: &[u8]) -> Result<Vec<(Ipv4Addr, u8)>, serde_json::Error> {
    let networks: Vec<Network> = serde_json::from_slice(body)?;
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
    /// The registration's network facts from one `GET /networks` (issue 10: it was read twice): the
    /// daemon's start time (`Created` of `bridge`, spec 2.3 `daemon_started_at`, `""` without one)
    /// and the IPv4 subnets of every network.
    pub async fn network_facts(
        &self,
        buf: &mut Vec<u8>,
    ) -> Result<(String, Vec<(Ipv4Addr, u8)>), Error> {
        self.call(
            "GET",
            "/networks",
            None,
            buf,
            NETWORKS_BODY_MAX_BYTES,
            CALL_TIMEOUT_MS,
        )
        .await?;
        let started = super::ops::bridge_created(buf)?;
        let subnets = parse_subnets(buf).map_err(|e| Error::Json {
            call: "GET /networks".to_string(),
            message: e.to_string(),
        })?;
        Ok((started, subnets))
    }

    /// The IPv4 subnets of every Docker network.
    pub async fn network_subnets(&self, buf: &mut Vec<u8>) -> Result<Vec<(Ipv4Addr, u8)>, Error> {
        self.call(
            "GET",
            "/networks",
            None,
            buf,
            NETWORKS_BODY_MAX_BYTES,
            CALL_TIMEOUT_MS,
        )
        .await?;
        parse_subnets(buf).map_err(|e| Error::Json {
            call: "GET /networks".to_string(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
