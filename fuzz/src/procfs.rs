//! The /proc and /sys readers outside the cgroup source: host CPU and memory (`host`), the container
//! ID from /proc/self/cgroup (`identity::parse_container_id`), routes and fib_trie (`identity`), the
//! privilege drop's /proc/self/status (`privilege::parse_status`) and the shell's NSpid
//! (`dockmon::shell::ns_pid`). Input: a hostname, a NUL, the file's text.
//!
//! Checks: a container ID is a piece of its input starting with 12 lower-case hex digits; a route's
//! prefix is at most 32.
use dockmon_agent::dockmon::shell::ns_pid;
use dockmon_agent::identity::{fib_trie_local, parse_container_id, parse_route_line, FibTrieLocal};
use dockmon_agent::{host, privilege, procfs};

pub fn run(data: &[u8]) {
    let [hostname, file] = crate::fields::<2>(data);
    let (hostname, text) = (crate::text(hostname), crate::text(file));
    for whole in [false, true] {
        if let Ok(stat) = procfs::parse_stat(text.as_bytes(), whole) {
            let _ = host::CpuTimes::of(&stat);
        }
        if let Ok(m) = procfs::parse_meminfo(text.as_bytes(), whole) {
            let _ = host::mem_kib(&m);
        }
    }
    let _ = privilege::parse_status(&text);
    let _ = ns_pid(&text);
    for env in [None, Some(&*hostname)] {
        if let Some((id, _)) = parse_container_id(&text, env) {
            let from_input = text.contains(id) || hostname.contains(id);
            assert!(from_input, "{id:?} is not from the input");
            let head = id.get(..12).expect("an ID shorter than 12");
            assert!(head
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
    }
    for line in text.lines().take(256) {
        if let Some(route) = parse_route_line(line) {
            assert!(route.prefix_len <= 32, "prefix {}", route.prefix_len);
        }
    }
    let mut trie = FibTrieLocal::new();
    for line in text.lines().take(256) {
        let _ = trie.feed(line);
    }
    let _ = fib_trie_local(&text).take(256).count();
}
