//! `dockmon-agent check`: the preflight a user runs when the host does not show up in DockMon. Each
//! line says OK or what to fix; the exit code is 0 only when every check passed. Never prints a token.
use super::agent;
use crate::config::{self, Config};
use crate::http::conn::{Conn, Deadline};
use crate::http::request;
use crate::tls;
use std::io::Write;

/// Runs every check, writing one line each to `out`. Returns whether all passed.
pub async fn run(cfg: Result<Config, config::Error>, out: &mut impl Write) -> bool {
    let mut ok = true;
    let mut line = |good: bool, what: &str, text: String| {
        ok &= good;
        let _ = writeln!(
            out,
            "{:<5} {what:<10} {text}",
            if good { "OK" } else { "FAIL" }
        );
    };

    // Docker first: it needs no configuration.
    let host = std::env::var("DOCKER_HOST").ok();
    match crate::docker::endpoint::select(host.as_deref(), crate::docker::endpoint::is_socket) {
        Err(e) => line(false, "docker", e.to_string()),
        Ok(ep) => match crate::docker::Client::connect(ep.clone()).await {
            Err(e) => line(false, "docker", e.to_string()),
            Ok(c) => {
                let mut buf = Vec::new();
                match c.info(&mut buf).await {
                    Ok(i) => line(
                        true,
                        "docker",
                        format!(
                            "{ep}: Docker {} (API {}), engine {}",
                            i.server_version,
                            c.api_version(),
                            i.id
                        ),
                    ),
                    Err(e) => line(false, "docker", e.to_string()),
                }
            }
        },
    }

    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            line(false, "config", format!("{e}"));
            return false;
        }
    };
    line(
        true,
        "config",
        format!("DOCKMON_URL={} → {}", cfg.dockmon_url, cfg.ws_url),
    );

    // DATA_PATH: create and remove a probe file, as the token store will.
    let probe = cfg.data_path.join(".dockmon-agent-check");
    match std::fs::write(&probe, b"probe").and_then(|_| std::fs::remove_file(&probe)) {
        Ok(()) => line(true, "data path", format!("{} is writable", cfg.data_path.display())),
        Err(e) => line(
            false,
            "data path",
            format!(
                "{} is not writable ({e}); mount a writable volume there (-v dockmon-agent-data:/data) or set DATA_PATH",
                cfg.data_path.display()
            ),
        ),
    }

    // The token that will be used (never printed).
    let token = if cfg.permanent_token.is_some() {
        if cfg.permanent_token_from_file {
            format!("the permanent token in {}", cfg.token_file.display())
        } else {
            "the permanent token from PERMANENT_TOKEN".to_string()
        }
    } else {
        "REGISTRATION_TOKEN (first registration)".to_string()
    };
    line(true, "token", format!("will register with {token}"));

    // DOCKMON_URL: GET <prefix>/health over the same TLS path the agent uses.
    let tls_config = if cfg.ws_url.secure {
        match tls::client_config(cfg.ssl_cert_file.as_deref(), cfg.insecure_skip_verify) {
            Ok((c, _)) => Some(c),
            Err(e) => {
                line(false, "tls", e.to_string());
                return false;
            }
        }
    } else {
        None
    };
    let prefix = cfg
        .ws_url
        .path
        .strip_suffix(config::AGENT_WS_PATH)
        .unwrap_or("");
    let path = format!("{prefix}/health");
    let verified = match (cfg.ws_url.secure, cfg.insecure_skip_verify) {
        (false, _) => "plain http",
        (true, false) => "certificate verified",
        (true, true) => "certificate NOT verified (INSECURE_SKIP_VERIFY)",
    };
    match health(&cfg, tls_config, &path).await {
        Ok(200) => line(
            true,
            "dockmon",
            format!(
                "{}{path} answered 200 ({verified})",
                cfg.dockmon_url.trim_end_matches('/')
            ),
        ),
        Ok(status) => line(
            false,
            "dockmon",
            format!(
                "{path} answered HTTP {status}; is DOCKMON_URL the address of DockMon's web UI?"
            ),
        ),
        Err(e) => {
            let hint = if matches!(&e, Probe::Connect(c) if c.is_certificate()) {
                "; for a self-signed certificate set SSL_CERT_FILE to it, or INSECURE_SKIP_VERIFY=true"
            } else {
                "; check the address and that this host can reach it"
            };
            line(false, "dockmon", format!("{e}{hint}"))
        }
    }
    ok
}

async fn health(
    cfg: &Config,
    tls_config: Option<std::sync::Arc<rustls::ClientConfig>>,
    path: &str,
) -> Result<u16, Probe> {
    let transport = agent::open_transport(&cfg.ws_url, tls_config)
        .await
        .map_err(Probe::Connect)?;
    let mut conn = Conn::new(transport);
    let mut head = Vec::new();
    request::emit(
        &mut head,
        "GET",
        path,
        &cfg.ws_url.authority(),
        &[("Connection", "close")],
        None,
    )
    .map_err(|e| Probe::Http(e.to_string()))?;
    let deadline = Deadline::after_ms(crate::limits::CALL_TIMEOUT_MS);
    conn.write_all(&head, deadline)
        .await
        .map_err(|e| Probe::Http(e.to_string()))?;
    let h = conn
        .read_head(false, &[], deadline)
        .await
        .map_err(|e| Probe::Http(e.to_string()))?;
    Ok(h.status)
}

/// Why DockMon's health endpoint could not be asked.
enum Probe {
    /// DNS, TCP or TLS (a refused certificate gets its own hint).
    Connect(crate::dockmon::error::Connect),
    /// The HTTP exchange.
    Http(String),
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Probe::Connect(e) => write!(f, "{e}"),
            Probe::Http(e) => write!(f, "{e}"),
        }
    }
}
