//! The TCP leg of the DockMon connection (agent WebSocket, `check`'s probe, any other socket opened
//! through `agent::open_transport`): directly, or through the HTTP proxy the environment names for
//! this URL (src/proxy.rs: Go's `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` rules, a `CONNECT` tunnel).
//!
//! Through a proxy the DockMon host name is not resolved here: the proxy resolves it (edge hosts
//! behind a proxy often have no DNS of their own). Each stage (resolve, connect, CONNECT) is bounded
//! by `DOCKMON_CONNECT_TIMEOUT_MS`. Error texts name the proxy without its credentials.
use crate::config::WsUrl;
use crate::dockmon::error::Connect;
use crate::limits::DOCKMON_CONNECT_TIMEOUT_MS;
use crate::proxy::{self, Proxy};
use async_io::{Async, Timer};
use std::net::TcpStream;
use std::time::Duration;

/// The proxy the environment names for `url`, or `None` for a direct connection.
pub fn proxy_for(url: &WsUrl) -> Result<Option<Proxy>, String> {
    let settings =
        proxy::Settings::from_env(|k| std::env::var(k).ok()).map_err(|e| e.to_string())?;
    Ok(settings.select(url.secure, &url.host, url.port).cloned())
}

/// A TCP stream to DockMon at `url`: to its host, or a tunnel through the proxy for it.
pub async fn connect(url: &WsUrl) -> Result<Async<TcpStream>, Connect> {
    match proxy_for(url).map_err(Connect::Proxy)? {
        None => connect_host(&url.host, url.port).await,
        Some(p) => {
            let mut tcp = connect_host(&p.host, p.port)
                .await
                .map_err(|e| Connect::Proxy(format!("proxy {p} (from {}): {e}", p.from)))?;
            let tunnel = async { Some(proxy::connect(&mut tcp, &p, &url.host, url.port).await) };
            match smol::future::or(tunnel, timeout()).await {
                Some(Ok(())) => {
                    log::debug!("tunnel to {}:{} through proxy {p}", url.host, url.port);
                    Ok(tcp)
                }
                Some(Err(e)) => Err(Connect::Proxy(format!("{e} (proxy {p} from {})", p.from))),
                None => Err(Connect::Proxy(format!(
                    "proxy {p} (from {}): no answer to CONNECT within {DOCKMON_CONNECT_TIMEOUT_MS} ms",
                    p.from
                ))),
            }
        }
    }
}

async fn timeout<T>() -> Option<T> {
    Timer::after(Duration::from_millis(DOCKMON_CONNECT_TIMEOUT_MS)).await;
    None
}

/// Resolves `host` (without blocking the thread) and connects to the first address that answers.
async fn connect_host(host: &str, port: u16) -> Result<Async<TcpStream>, Connect> {
    let addrs = crate::dns::resolve(host, port)
        .await
        .map_err(Connect::Resolve)?;
    let mut last_err = Connect::NoAddress;
    for addr in addrs.iter() {
        let connect = async { Some(Async::<TcpStream>::connect(*addr).await) };
        match smol::future::or(connect, timeout()).await {
            Some(Ok(s)) => {
                let _ = s.get_ref().set_nodelay(true);
                return Ok(s);
            }
            Some(Err(error)) => last_err = Connect::Tcp { addr: *addr, error },
            None => last_err = Connect::TcpTimeout { addr: *addr },
        }
    }
    Err(last_err)
}
