//! `scan_compose_dirs` and `read_compose_file` (spec 3.8.5): payloads and reply shapes; the file
//! system work is `compose::scan`. Refusals are successful replies with `success:false` inside
//! (spec 3.8.5), so they never count against the backend's circuit breaker.
use super::context::Context;
use super::msg;
use crate::compose::scan::{self, Read};
use crate::rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Deserialize, Default)]
struct ScanPayload {
    #[serde(default)]
    paths: Option<Vec<String>>,
    #[serde(default)]
    recursive: Option<bool>,
    #[serde(default)]
    max_depth: Option<f64>,
}

#[derive(Deserialize, Default)]
struct ReadPayload {
    #[serde(default)]
    path: String,
}

#[derive(Serialize)]
struct FoundOut<'a> {
    path: std::borrow::Cow<'a, str>,
    project_name: &'a str,
    services: &'a [String],
    size: u64,
    modified: &'a str,
}

#[derive(Serialize)]
struct ScanOut<'a> {
    success: bool,
    compose_files: Vec<FoundOut<'a>>,
}

#[derive(Serialize)]
struct ReadOk<'a> {
    success: bool,
    path: &'a str,
    content: &'a str,
    env_content: &'a str,
    env_files: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    skipped_env_files: &'a [String],
}

#[derive(Serialize)]
struct ReadErr<'a> {
    success: bool,
    path: &'a str,
    error: &'a str,
}

fn roots(ctx: &Context, extra: &[PathBuf]) -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut more = vec![ctx.config.stacks_dir.clone()];
    more.extend(extra.iter().cloned());
    scan::default_roots(home.as_deref(), &more)
}

fn reply<T: Serialize>(out: &mut Vec<u8>, id: &str, payload: &T) {
    let now = msg::now_stamp();
    msg::begin_response(out, id);
    // Serializing into a Vec cannot fail for these types.
    let _ = serde_json::to_writer(&mut *out, payload);
    msg::end_response(out, &now);
}

/// Answers `scan_compose_dirs`.
pub async fn scan_compose_dirs(
    ctx: &Context,
    payload: Option<&RawValue>,
    id: &str,
    out: &mut Vec<u8>,
) {
    scan_compose_dirs_now(ctx, payload, id, out)
}

/// The work of [`scan_compose_dirs`]: synchronous (local file system only) and never inlined, so it stays
/// in this cold module instead of in the command dispatcher's hot text.
#[inline(never)]
fn scan_compose_dirs_now(ctx: &Context, payload: Option<&RawValue>, id: &str, out: &mut Vec<u8>) {
    let p: ScanPayload = match payload.map(|p| serde_json::from_str::<ScanPayload>(p.get())) {
        Some(Ok(p)) => p,
        None => ScanPayload::default(),
        Some(Err(e)) => {
            return msg::write_response_error(
                out,
                id,
                &format!("invalid scan_compose_dirs payload: {e}"),
                &msg::now_stamp(),
            )
        }
    };
    let extra: Vec<PathBuf> = p
        .paths
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.starts_with('/'))
        .map(PathBuf::from)
        .collect();
    let depth = p
        .max_depth
        .filter(|d| d.is_finite() && *d >= 1.0)
        .map(|d| d as usize)
        .unwrap_or(0);
    let found = scan::scan(&roots(ctx, &extra), p.recursive.unwrap_or(true), depth);
    let stamps: Vec<rfc3339::Stamp> = found
        .iter()
        .map(|f| rfc3339::nanos(f.modified.0, f.modified.1))
        .collect();
    let files = found
        .iter()
        .zip(&stamps)
        .map(|(f, m)| FoundOut {
            path: f.path.to_string_lossy(),
            project_name: &f.project_name,
            services: &f.services,
            size: f.size,
            modified: m,
        })
        .collect();
    reply(
        out,
        id,
        &ScanOut {
            success: true,
            compose_files: files,
        },
    );
}

/// Answers `read_compose_file`.
pub async fn read_compose_file(
    ctx: &Context,
    payload: Option<&RawValue>,
    id: &str,
    out: &mut Vec<u8>,
) {
    read_compose_file_now(ctx, payload, id, out)
}

/// The work of [`read_compose_file`]: synchronous (local file system only) and never inlined, so it stays
/// in this cold module instead of in the command dispatcher's hot text.
#[inline(never)]
fn read_compose_file_now(ctx: &Context, payload: Option<&RawValue>, id: &str, out: &mut Vec<u8>) {
    let p: ReadPayload = match payload.map(|p| serde_json::from_str::<ReadPayload>(p.get())) {
        Some(Ok(p)) => p,
        None => ReadPayload::default(),
        Some(Err(e)) => {
            return msg::write_response_error(
                out,
                id,
                &format!("invalid read_compose_file payload: {e}"),
                &msg::now_stamp(),
            )
        }
    };
    match scan::read(&p.path, &roots(ctx, &[])) {
        Read::Ok {
            content,
            env_content,
            env_files,
            skipped,
        } => reply(
            out,
            id,
            &ReadOk {
                success: true,
                path: &p.path,
                content: &content,
                env_content: &env_content,
                env_files: &env_files,
                skipped_env_files: &skipped,
            },
        ),
        Read::Refused(error) => reply(
            out,
            id,
            &ReadErr {
                success: false,
                path: &p.path,
                error,
            },
        ),
    }
}
