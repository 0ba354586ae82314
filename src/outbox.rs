//! The one bounded queue every frame to DockMon goes through, with priorities: command replies, then
//! events, then stats (spec 9.6: writes are serialised; issue: replies are never dropped).
//!
//! Policy when full:
//! - Replies are never dropped. Their number is bounded by the request handlers in flight
//!   (`COMMANDS_IN_FLIGHT_MAX`): a handler past that cap waits for a slot before it starts, so this
//!   queue holds at most that many replies plus those being written.
//! - Events: at most the profile's `outbox_events_max` (default `OUTBOX_EVENTS_MAX`); when full the oldest event is dropped.
//! - Stats: at most the profile's `outbox_stats_max` (default `OUTBOX_STATS_MAX`); when full the oldest sample is dropped (a newer one of the
//!   same container is worth more). Stats go first under pressure because they are the only frames
//!   whose loss the backend repairs by itself (the next sample replaces them).
//!
//! Each drop is counted; [`Outbox::take_drop_report`] tells the driver to log once per episode.
//! Pure: no I/O, no waking (the driver wraps it).
//!
//! Capacities stay here rather than in `limits`: they are this queue's own defaults (board profiles set
//! the runtime depth, clamped by `limits::BOARD_OUTBOX_*`), beside the policy that uses them.
use std::collections::VecDeque;

/// Requests handled at once; also the ceiling of queued replies.
pub const COMMANDS_IN_FLIGHT_MAX: usize = 16;
/// Container events waiting to be sent. Docker emits a handful per container action; 256 covers a
/// compose project of dozens of containers restarting at once while the socket is slow.
pub const OUTBOX_EVENTS_MAX: usize = 256;
/// Stats frames waiting to be sent: a few rounds of a Pi's worth of containers.
pub const OUTBOX_STATS_MAX: usize = 128;

/// Sent frames' buffers kept for the next frames, so steady-state stats and events allocate nothing.
pub const OUTBOX_SPARE_MAX: usize = 16;
/// Small frames written in one write at most (issue 18): a batch of stats goes out a few frames per
/// system call. Bounded so the frames held until their write is done stay a short list.
pub const OUTBOX_WRITE_BATCH_COUNT: usize = 16;
/// Largest buffer kept for reuse: stats (about 410 bytes), host stats and most events fit; a large
/// reply's buffer is freed rather than held.
pub const OUTBOX_SPARE_BYTES: usize = 2 * 1024;

/// The priority class of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A command or operation reply: never dropped.
    Reply,
    /// `container_event` and other events.
    Event,
    /// `container_stats` and host stats.
    Stats,
}

/// Frames waiting for the socket.
#[derive(Debug)]
pub struct Outbox {
    events_max: usize,
    stats_max: usize,
    replies: VecDeque<Vec<u8>>,
    events: VecDeque<Vec<u8>>,
    stats: VecDeque<Vec<u8>>,
    dropped_events: u64,
    dropped_stats: u64,
    reported: (u64, u64),
    spare: Vec<Vec<u8>>,
}

impl Outbox {
    /// An empty outbox with the default capacities.
    pub fn new() -> Self {
        Self::with_capacity(OUTBOX_EVENTS_MAX, OUTBOX_STATS_MAX)
    }

    /// An empty outbox holding at most `events_max` events and `stats_max` stats frames (from the
    /// board profile: at least one round of the container table).
    pub fn with_capacity(events_max: usize, stats_max: usize) -> Self {
        Outbox {
            events_max: events_max.max(1),
            stats_max: stats_max.max(1),
            replies: VecDeque::new(),
            events: VecDeque::new(),
            stats: VecDeque::new(),
            dropped_events: 0,
            dropped_stats: 0,
            reported: (0, 0),
            spare: Vec::new(),
        }
    }

    /// Queues `frame`. Returns false when an older frame of the same class was dropped for it.
    pub fn push(&mut self, class: Class, frame: Vec<u8>) -> bool {
        let (queue, max, dropped) = match class {
            Class::Reply => {
                self.replies.push_back(frame);
                return true;
            }
            Class::Event => (&mut self.events, self.events_max, &mut self.dropped_events),
            Class::Stats => (&mut self.stats, self.stats_max, &mut self.dropped_stats),
        };
        let mut kept = true;
        if queue.len() >= max {
            queue.pop_front();
            *dropped += 1;
            kept = false;
        }
        queue.push_back(frame);
        kept
    }

    /// The next frame to send, by priority, with its class (for [`Outbox::requeue`]).
    pub fn pop(&mut self) -> Option<(Class, Vec<u8>)> {
        if let Some(f) = self.replies.pop_front() {
            return Some((Class::Reply, f));
        }
        if let Some(f) = self.events.pop_front() {
            return Some((Class::Event, f));
        }
        self.stats.pop_front().map(|f| (Class::Stats, f))
    }

    /// Puts back a frame that could not be written, first in its class, so it goes out first on
    /// the next connection: DockMon keeps a command pending until its own timeout, so a reply sent
    /// after a quick reconnect still reaches the caller. Caps apply as for [`Outbox::push`]; a
    /// stats frame is simply dropped by the next [`Outbox::drop_stats`].
    pub fn requeue(&mut self, class: Class, frame: Vec<u8>) {
        let (queue, max) = match class {
            Class::Reply => (&mut self.replies, usize::MAX),
            Class::Event => (&mut self.events, self.events_max),
            Class::Stats => (&mut self.stats, self.stats_max),
        };
        if queue.len() < max {
            queue.push_front(frame);
        }
    }

    /// An empty buffer to write the next frame into: a sent frame's, when one was kept.
    pub fn buffer(&mut self) -> Vec<u8> {
        self.spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(OUTBOX_SPARE_BYTES / 4))
    }

    /// Takes back a sent frame's buffer for [`Outbox::buffer`] (a small one, while fewer than
    /// `OUTBOX_SPARE_MAX` are kept; others are freed).
    pub fn recycle(&mut self, mut frame: Vec<u8>) {
        if frame.capacity() <= OUTBOX_SPARE_BYTES && self.spare.len() < OUTBOX_SPARE_MAX {
            frame.clear();
            if self.spare.capacity() == 0 {
                self.spare.reserve_exact(OUTBOX_SPARE_MAX);
            }
            self.spare.push(frame);
        }
    }

    /// Frames waiting, per class: (replies, events, stats).
    pub fn len(&self) -> (usize, usize, usize) {
        (self.replies.len(), self.events.len(), self.stats.len())
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.replies.is_empty() && self.events.is_empty() && self.stats.is_empty()
    }

    /// Stats are stale after a reconnect: the next round sends fresh ones.
    pub fn drop_stats(&mut self) {
        self.stats.clear();
    }

    /// New drops since the last report, as (events, stats), or `None` if there were none.
    pub fn take_drop_report(&mut self) -> Option<(u64, u64)> {
        let now = (self.dropped_events, self.dropped_stats);
        if now == self.reported {
            return None;
        }
        let new = (now.0 - self.reported.0, now.1 - self.reported.1);
        self.reported = now;
        Some(new)
    }
}

impl Default for Outbox {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_first_then_events_then_stats() {
        let mut o = Outbox::new();
        o.push(Class::Stats, b"s1".to_vec());
        o.push(Class::Event, b"e1".to_vec());
        o.push(Class::Reply, b"r1".to_vec());
        o.push(Class::Stats, b"s2".to_vec());
        let order: Vec<Vec<u8>> = std::iter::from_fn(|| o.pop().map(|(_, f)| f)).collect();
        assert_eq!(
            order,
            [
                b"r1".to_vec(),
                b"e1".to_vec(),
                b"s1".to_vec(),
                b"s2".to_vec()
            ]
        );
    }

    #[test]
    fn stats_and_events_drop_oldest_replies_never() {
        let mut o = Outbox::new();
        for i in 0..OUTBOX_STATS_MAX + 10 {
            o.push(Class::Stats, i.to_string().into_bytes());
        }
        for i in 0..1000 {
            assert!(o.push(Class::Reply, i.to_string().into_bytes()));
        }
        assert_eq!(o.len(), (1000, 0, OUTBOX_STATS_MAX));
        assert_eq!(o.take_drop_report(), Some((0, 10)));
        assert_eq!(o.take_drop_report(), None);
        for _ in 0..1000 {
            o.pop();
        }
        assert_eq!(
            o.pop(),
            Some((Class::Stats, b"10".to_vec())),
            "the oldest stats went first"
        );
        for i in 0..OUTBOX_EVENTS_MAX + 1 {
            o.push(Class::Event, i.to_string().into_bytes());
        }
        assert_eq!(o.take_drop_report(), Some((1, 0)));
    }

    #[test]
    fn a_frame_put_back_goes_out_first_in_its_class() {
        let mut o = Outbox::new();
        o.push(Class::Reply, b"r1".to_vec());
        o.push(Class::Reply, b"r2".to_vec());
        o.push(Class::Event, b"e1".to_vec());
        let (class, frame) = o.pop().unwrap();
        assert_eq!((class, frame.as_slice()), (Class::Reply, b"r1".as_slice()));
        o.requeue(class, frame);
        let order: Vec<Vec<u8>> = std::iter::from_fn(|| o.pop().map(|(_, f)| f)).collect();
        assert_eq!(order, [b"r1".to_vec(), b"r2".to_vec(), b"e1".to_vec()]);
        // A full class keeps its cap: the frame put back is the one that goes.
        for i in 0..OUTBOX_STATS_MAX {
            o.push(Class::Stats, i.to_string().into_bytes());
        }
        o.requeue(Class::Stats, b"late".to_vec());
        assert_eq!(o.len(), (0, 0, OUTBOX_STATS_MAX));
        assert_eq!(o.pop(), Some((Class::Stats, b"0".to_vec())));
    }

    #[test]
    fn sent_buffers_are_reused_small_ones_only_and_at_most_spare_max() {
        let mut o = Outbox::new();
        let mut b = o.buffer();
        b.extend_from_slice(b"frame");
        let ptr = b.as_ptr();
        o.recycle(b);
        let again = o.buffer();
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), ptr, "the same allocation comes back");
        o.recycle(Vec::with_capacity(OUTBOX_SPARE_BYTES + 1));
        assert_eq!(o.spare.len(), 0, "a large buffer is freed");
        for _ in 0..OUTBOX_SPARE_MAX + 5 {
            o.recycle(Vec::with_capacity(64));
        }
        assert_eq!(o.spare.len(), OUTBOX_SPARE_MAX);
    }
}
