//! A counting global allocator (cargo feature `count-alloc`) for tests and `bench/`: bytes in use now
//! and their high-water mark, next to the system allocator. Off in release builds users run.
//!
//! The only unsafe code of the crate: `GlobalAlloc` is an unsafe trait. Each method forwards to
//! `System` unchanged and only adds to or subtracts from two atomic counters.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static HIGH_WATER: AtomicUsize = AtomicUsize::new(0);

/// The allocator; install with `#[global_allocator]`.
pub struct Counting;

fn add(n: usize) {
    let now = IN_USE.fetch_add(n, Ordering::Relaxed) + n;
    HIGH_WATER.fetch_max(now, Ordering::Relaxed);
}

fn sub(n: usize) {
    IN_USE.fetch_sub(n, Ordering::Relaxed);
}

// SAFETY: every method calls the same method of `System` with the caller's arguments, so the
// caller's obligations pass through unchanged; the counters do not touch the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see above).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        sub(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            sub(layout.size());
            add(new_size);
        }
        p
    }
}

/// Heap bytes in use now.
pub fn in_use() -> usize {
    IN_USE.load(Ordering::Relaxed)
}

/// The most heap bytes ever in use at once.
pub fn high_water() -> usize {
    HIGH_WATER.load(Ordering::Relaxed)
}

/// Starts a new high-water window at the current use (after warm-up).
pub fn reset_high_water() {
    HIGH_WATER.store(in_use(), Ordering::Relaxed);
}

/// Logs the heap figures each time the process gets SIGUSR1, so a test or `bench/` can read them
/// from a running agent without stopping it (the soak test compares readings minutes apart).
pub async fn report_on_sigusr1() {
    use smol::stream::StreamExt;
    let mut signals = match async_signal::Signals::new([async_signal::Signal::Usr1]) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("count-alloc: cannot catch SIGUSR1 ({e}); heap figures only at exit");
            return;
        }
    };
    while signals.next().await.is_some() {
        log::info!(
            "heap in use {} bytes, high-water {} bytes",
            in_use(),
            high_water()
        );
    }
}
