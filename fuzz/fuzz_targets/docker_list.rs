#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dockmon_agent_fuzz::docker_list::run(data));
