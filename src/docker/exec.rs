//! The exec calls behind DockMon's web shell (spec 3.8.6, the exec rows of spec 5): create an exec,
//! start it attached, resize its TTY, inspect it.
//!
//! Starting attached is an HTTP upgrade over the Docker socket (moby `api/server/router/container/
//! exec.go`, the hijack): we send `Connection: Upgrade` / `Upgrade: tcp`; Docker 20.10 and later
//! answer `101 UPGRADED`, older engines `200 OK` and then hijack the connection anyway. Either way
//! the HTTP client gives the raw socket back ([`crate::http::conn::Conn::into_parts`]) with any bytes
//! it read past the head, and from then on the socket carries the TTY's bytes both ways (no
//! multiplexing: `Tty` is true). Closing it closes the exec's stdin; containerd's shim then closes the
//! console, and the shell gets SIGHUP (containerd `pkg/process/io.go`, `copyConsole`).
//!
//! A command that cannot be started (no `/bin/sh` in the image) is not an error of the start call:
//! Docker upgrades, writes `OCI runtime exec failed: …` into the stream and closes it; only the
//! exec's inspect (`Pid` 0, `ExitCode` 126 or 127) tells it never ran.
use super::client::{parse_json, status_error_owned, HOST};
use super::{Client, Error};
use crate::http::conn::Deadline;
use crate::http::request;
use crate::limits::*;
use async_io::Async;
use serde::{Deserialize, Serialize};
use std::os::unix::net::UnixStream;

/// The raw TTY stream of a started exec, and the bytes Docker sent right after the upgrade head.
pub struct Attached {
    /// The socket, now carrying the TTY.
    pub stream: Async<UnixStream>,
    /// Output already read with the head (often empty).
    pub early: Vec<u8>,
}

/// What `GET /exec/{id}/json` tells about an exec.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExecState {
    /// Whether the process is running.
    #[serde(rename = "Running", default)]
    pub running: bool,
    /// Exit code once it ended (`None` while running).
    #[serde(rename = "ExitCode", default)]
    pub exit_code: Option<i64>,
    /// Host PID, 0 when the process never started.
    #[serde(rename = "Pid", default)]
    pub pid: u64,
    /// The container's full ID.
    #[serde(rename = "ContainerID", default)]
    pub container_id: heapless::String<CONTAINER_ID_MAX_BYTES>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CreateBody<'a> {
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    tty: bool,
    env: &'a [&'a str],
    cmd: &'a [&'a str],
}

#[derive(Deserialize)]
struct Created<'a> {
    #[serde(rename = "Id", borrow)]
    id: &'a str,
}

impl Client {
    /// `POST /containers/{id}/exec` running `cmd` with `env`: with a TTY and stdin, stdout and stderr
    /// attached when `tty`, else with nothing attached. Returns the exec's ID.
    pub async fn exec_create(
        &self,
        container: &str,
        cmd: &[&str],
        env: &[&str],
        tty: bool,
    ) -> Result<heapless::String<CONTAINER_ID_MAX_BYTES>, Error> {
        let mut target = String::with_capacity(96);
        target.push_str("/containers/");
        request::push_encoded(&mut target, container);
        target.push_str("/exec");
        let body = serde_json::to_vec(&CreateBody {
            attach_stdin: tty,
            attach_stdout: tty,
            attach_stderr: tty,
            tty,
            env,
            cmd,
        })
        .map_err(|e| Error::Json {
            call: "POST /containers/{id}/exec".into(),
            message: e.to_string(),
        })?;
        let mut out = Vec::new();
        self.call(
            "POST",
            &target,
            Some(("application/json", &body)),
            &mut out,
            EXEC_BODY_MAX_BYTES,
            CALL_TIMEOUT_MS,
        )
        .await?;
        let created: Created = parse_json("POST /containers/{id}/exec", &out)?;
        heapless::String::try_from(created.id).map_err(|_| Error::Json {
            call: "POST /containers/{id}/exec".into(),
            message: format!(
                "exec ID longer than {CONTAINER_ID_MAX_BYTES} bytes: {}",
                created.id.len()
            ),
        })
    }

    /// `POST /exec/{id}/start` attached (`Detach` false, `Tty` true), as an upgrade: returns the raw
    /// stream once Docker answered 101 (or 200 on engines that hijack without 101).
    pub async fn exec_start_attached(&self, exec_id: &str) -> Result<Attached, Error> {
        let call = "POST /exec/{id}/start";
        let mut target = String::with_capacity(96);
        target.push_str("/exec/");
        request::push_encoded(&mut target, exec_id);
        target.push_str("/start");
        let full = self.versioned(&target);
        let body: &[u8] = br#"{"Detach":false,"Tty":true}"#;
        let mut head = Vec::with_capacity(256);
        request::emit(
            &mut head,
            "POST",
            &full,
            HOST,
            &[("Connection", "Upgrade"), ("Upgrade", "tcp")],
            Some(("application/json", body.len())),
        )
        .map_err(|source| Error::Http {
            call: call.into(),
            source,
        })?;
        head.extend_from_slice(body);
        let deadline = Deadline::after_ms(CALL_TIMEOUT_MS);
        // Never a pooled connection: this one is handed over for good.
        let mut conn = self.dial().await?;
        let http = |source| Error::Http {
            call: call.into(),
            source,
        };
        conn.write_all(&head, deadline).await.map_err(http)?;
        let answer = conn.read_head(false, &[], deadline).await.map_err(http)?;
        match answer.status {
            101 | 200 => {
                let (stream, early) = conn.into_parts();
                Ok(Attached { stream, early })
            }
            status => Err(status_error_owned(call.into(), status, &mut conn, deadline).await),
        }
    }

    /// `POST /exec/{id}/start` detached: Docker starts the process and answers at once.
    pub async fn exec_start_detached(&self, exec_id: &str) -> Result<(), Error> {
        let mut target = String::with_capacity(96);
        target.push_str("/exec/");
        request::push_encoded(&mut target, exec_id);
        target.push_str("/start");
        let mut out = Vec::new();
        self.call(
            "POST",
            &target,
            Some(("application/json", br#"{"Detach":true,"Tty":false}"#)),
            &mut out,
            EXEC_BODY_MAX_BYTES,
            CALL_TIMEOUT_MS,
        )
        .await
    }

    /// `POST /exec/{id}/resize?h={rows}&w={cols}`.
    pub async fn exec_resize(&self, exec_id: &str, rows: u16, cols: u16) -> Result<(), Error> {
        let mut target = String::with_capacity(112);
        target.push_str("/exec/");
        request::push_encoded(&mut target, exec_id);
        target.push_str("/resize?h=");
        target.push_str(&rows.to_string());
        target.push_str("&w=");
        target.push_str(&cols.to_string());
        let mut out = Vec::new();
        self.call(
            "POST",
            &target,
            None,
            &mut out,
            EXEC_BODY_MAX_BYTES,
            CALL_TIMEOUT_MS,
        )
        .await
    }

    /// `GET /exec/{id}/json`: running or not, exit code, PID.
    pub async fn exec_inspect(&self, exec_id: &str) -> Result<ExecState, Error> {
        let mut target = String::with_capacity(96);
        target.push_str("/exec/");
        request::push_encoded(&mut target, exec_id);
        target.push_str("/json");
        let mut out = Vec::new();
        self.call(
            "GET",
            &target,
            None,
            &mut out,
            EXEC_BODY_MAX_BYTES,
            CALL_TIMEOUT_MS,
        )
        .await?;
        parse_json("GET /exec/{id}/json", &out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_inspect_reads_the_three_fields() {
        let never: ExecState = serde_json::from_str(
            r#"{"ID":"x","Running":false,"ExitCode":126,"ProcessConfig":{"tty":true},"Pid":0}"#,
        )
        .unwrap();
        assert!(!never.running && never.exit_code == Some(126) && never.pid == 0);
        let live: ExecState =
            serde_json::from_str(r#"{"Running":true,"ExitCode":null,"Pid":4242}"#).unwrap();
        assert!(live.running && live.exit_code.is_none() && live.pid == 4242);
    }

    #[test]
    fn the_create_body_has_docker_s_field_names() {
        let body = serde_json::to_string(&CreateBody {
            attach_stdin: true,
            attach_stdout: true,
            attach_stderr: true,
            tty: true,
            env: &["TERM=xterm-256color"],
            cmd: &["/bin/sh", "-c", "x"],
        })
        .unwrap();
        assert_eq!(
            body,
            r#"{"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Tty":true,"Env":["TERM=xterm-256color"],"Cmd":["/bin/sh","-c","x"]}"#
        );
    }
}
