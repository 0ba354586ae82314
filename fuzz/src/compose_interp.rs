//! Compose interpolation and value syntaxes (`compose::interp::interpolate`,
//! `compose::interp::parse_env_file`, `compose::model::{parse_bytes, parse_duration_ns,
//! shell_words, normalize_project_name}`). The input is the text.
//!
//! Checks (round trips): text with every `$` doubled interpolates back to itself; the words of
//! `shell_words`, each single-quoted again, split to the same words; env-file pairs written back as
//! `KEY='value'` parse to the same pairs; a normalised project name normalises to itself.
use dockmon_agent::compose::interp::{interpolate, parse_env_file};
use dockmon_agent::compose::model::{
    normalize_project_name, parse_bytes, parse_duration_ns, shell_words,
};

fn get(name: &str) -> Option<String> {
    match name {
        "A" => Some("alpha".into()),
        "EMPTY" => Some(String::new()),
        "DOLLAR" => Some("$x".into()),
        _ => None,
    }
}

pub fn run(data: &[u8]) {
    let text = crate::text(data);
    let _ = interpolate(&text, &get);
    let escaped = text.replace('$', "$$");
    assert_eq!(
        interpolate(&escaped, &get).as_deref().ok(),
        Some(&*text),
        "escaped text does not interpolate to itself"
    );
    if let Some(words) = shell_words(&text) {
        let quoted: Vec<String> = words
            .iter()
            .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
            .collect();
        assert_eq!(
            shell_words(&quoted.join(" ")),
            Some(words),
            "shell words round trip"
        );
    }
    if let Ok(pairs) = parse_env_file(&text) {
        let plain = pairs.iter().all(|(k, v)| {
            !k.is_empty()
                && !k.starts_with("export")
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
                && !v.contains(['\'', '\n', '\r'])
        });
        if plain {
            let written: String = pairs.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
            assert_eq!(
                parse_env_file(&written),
                Ok(pairs),
                "env file round trip via {written:?}"
            );
        }
    }
    let _ = parse_bytes(&text);
    let _ = parse_duration_ns(&text);
    if let Some(name) = normalize_project_name(&text) {
        assert_eq!(normalize_project_name(&name).as_deref(), Some(&*name));
    }
}
