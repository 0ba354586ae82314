//! Thin entry point: argv → mode; each error class → a documented exit code.
fn main() {
    println!(
        "dockmon-agent {} ({})",
        dockmon_agent::VERSION,
        dockmon_agent::COMMIT
    );
}
