//! Command payloads the agent reads itself (spec 3.8): `update_container`, `self_update`,
//! `deploy_compose` (with its env files), the self-update `cleanup.json`, and image references. The
//! first byte picks the parser, the rest is the payload's JSON text.
//!
//! Checks: a parsed `cleanup.json`, written again, parses to the same value (the round trip); the
//! required fields of an accepted update are present; accepted env files have plain names, `.env`
//! first; `repository` is lower-case and, on reference-shaped input, idempotent; a reference
//! matches its own repository.
use dockmon_agent::dockmon::{deploy, selfupdate, update};
use serde_json::value::RawValue;

pub fn run(data: &[u8]) {
    let (selector, rest) = crate::split_first(data);
    let text = crate::text(rest);
    let raw: Option<&RawValue> = serde_json::from_str(&text).ok();
    match selector % 5 {
        0 => {
            if let Ok(p) = update::parse_payload(raw) {
                assert!(!p.container_id.is_empty() && !p.new_image.is_empty());
            }
        }
        1 => {
            let _ = selfupdate::parse_payload(raw);
        }
        2 => {
            if let Ok(c) = selfupdate::parse_cleanup(text.as_bytes()) {
                let written = serde_json::to_vec(&c).unwrap();
                assert_eq!(selfupdate::parse_cleanup(&written), Ok(c.clone()));
                let _ = selfupdate::role(&c, Some(&c.new_container_id));
            }
        }
        3 => {
            if let Ok(p) = serde_json::from_str::<deploy::Payload>(&text) {
                if let Ok(files) = deploy::env_files_of(&p) {
                    assert!(files.iter().all(|(n, _)| deploy::safe_file_name(n)));
                    if let Some(i) = files.iter().position(|(n, _)| n == ".env") {
                        assert_eq!(i, 0, ".env is not first");
                    }
                }
            }
        }
        _ => {
            let (ours, wanted) = text.split_once('\n').unwrap_or((&text, ""));
            let repo = selfupdate::repository(ours);
            assert_eq!(repo, repo.to_ascii_lowercase());
            // Idempotent for what can be an image reference: only reference characters, and at most
            // one `:` (the tag's) in the last path component. (`a:b:c` loses one `:` part per call.)
            let name = ours.split('@').next().unwrap_or("");
            let last = name.rsplit('/').next().unwrap_or("");
            let reference = ours
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._/:@-".contains(&b))
                && last.matches(':').count() <= 1;
            if reference {
                assert_eq!(
                    selfupdate::repository(&repo),
                    repo,
                    "repository is not idempotent"
                );
            }
            let _ = selfupdate::check_repository(ours, wanted);
            if !ours.is_empty() && !ours.starts_with("sha256:") {
                assert!(selfupdate::check_repository(ours, ours).is_ok());
            }
        }
    }
}
