#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dockmon_agent_fuzz::ws_frame::run(data));
