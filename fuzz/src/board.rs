//! Board detection (`board::detect`) from the device tree model, the DMI product and vendor,
//! /proc/cpuinfo and the architecture, then the profile choice with overrides (`board::select`) and
//! its description (`board::describe`). Input: flags (bits 0-2: which of the three files exist;
//! bit 3: also the padded run, `select` and `describe`), then the five texts and the override
//! variables (`NAME=value` lines) separated by NUL.
//!
//! Checks: a reason is always given; trailing NULs and surrounding whitespace of the three single-
//! value files change nothing (as documented).
use dockmon_agent::board::{describe, detect, profiles, select};

pub fn run(data: &[u8]) {
    let (flags, rest) = crate::split_first(data);
    let [model, product, vendor, cpuinfo, arch, env] = crate::fields::<6>(rest);
    let [model, product, vendor, cpuinfo, arch, env] =
        [model, product, vendor, cpuinfo, arch, env].map(crate::text);
    let opt = |bit: u8, s: &str| (flags & bit != 0).then(|| s.to_string());
    let (model, product, vendor) = (opt(1, &model), opt(2, &product), opt(4, &vendor));
    let d = detect(
        model.as_deref(),
        product.as_deref(),
        vendor.as_deref(),
        &cpuinfo,
        &arch,
    );
    assert!(!d.reason.is_empty());
    // The padded run, the profile choice and its description only for some inputs: they cost more
    // than the detection itself.
    if flags & 8 == 0 {
        return;
    }
    // As sysfs and the device tree write them: a newline or a NUL after the value (the fields hold
    // no NUL of their own: the input is split at them).
    let pad = |s: &Option<String>| s.as_ref().map(|s| format!(" \t{s} \n\0"));
    let padded = detect(
        pad(&model).as_deref(),
        pad(&product).as_deref(),
        pad(&vendor).as_deref(),
        &cpuinfo,
        &arch,
    );
    assert_eq!(padded.board, d.board, "padding changed the board");

    let vars: Vec<(&str, &str)> = env.lines().filter_map(|l| l.split_once('=')).collect();
    let lookup = |name: &str| {
        vars.iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    if let Ok(selected) = select(lookup, d) {
        assert!(!describe(&selected, profiles()).is_empty());
    }
}
