#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dockmon_agent_fuzz::http_head::run(data));
