//! Building blocks of the session that depend on time (spec 2.7, 2.8): reconnect backoff and the
//! keepalive, as pure state machines. Time is an argument, so tests run without sleeping.
use crate::limits::{PING_INTERVAL_MS, READ_DEADLINE_MS};
use std::time::{Duration, Instant};

/// `PING_INTERVAL_MS` as a `Duration`.
fn ping_interval() -> Duration {
    Duration::from_millis(PING_INTERVAL_MS)
}

/// `READ_DEADLINE_MS` as a `Duration`.
fn read_deadline() -> Duration {
    Duration::from_millis(READ_DEADLINE_MS)
}

/// Reconnect delays: from `initial`, doubling to `max`, with jitter; reset by the session only after
/// a connection stayed up for `HEALTHY_SESSION_MS` (issue 11 D1).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// Starts at `initial`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            current: initial,
        }
    }

    /// The delay before the next attempt, then doubles the base. `jitter` in `[0, 1)` spreads the
    /// delay over `[base/2, base)` ("equal jitter"), so agents restarted together do not reconnect in
    /// step; the Go agent has no jitter.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        let j = jitter.clamp(0.0, 1.0);
        base / 2 + base.mul_f64(j / 2.0)
    }

    /// After a connection that stayed up long enough.
    pub fn reset(&mut self) {
        self.current = self.initial;
    }

    /// Jumps to the longest delay (another agent holds this identity).
    pub fn saturate(&mut self) {
        self.current = self.max;
    }
}

/// What the keepalive wants done now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Nothing until the deadline.
    Wait(Instant),
    /// Send a ping (then ask again).
    Ping,
    /// Nothing arrived for `READ_DEADLINE_MS`: the connection is dead.
    Dead,
}

/// Ping and read-deadline bookkeeping for one connection.
#[derive(Debug, Clone)]
pub struct Keepalive {
    last_received: Instant,
    next_ping: Instant,
}

impl Keepalive {
    /// A connection that just opened at `now`.
    pub fn new(now: Instant) -> Self {
        Keepalive {
            last_received: now,
            next_ping: now + ping_interval(),
        }
    }

    /// A data message or a pong arrived (server pings do not count, as in the Go agent).
    pub fn received(&mut self, now: Instant) {
        self.last_received = now;
    }

    /// What to do at `now`. After `Ping`, the caller sends one and the next ping is due in
    /// `PING_INTERVAL_MS`.
    pub fn poll(&mut self, now: Instant) -> Keep {
        let dead_at = self.last_received + read_deadline();
        if now >= dead_at {
            return Keep::Dead;
        }
        if now >= self.next_ping {
            self.next_ping = now + ping_interval();
            return Keep::Ping;
        }
        Keep::Wait(self.next_ping.min(dead_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_max_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let bases: Vec<u64> = (0..9).map(|_| b.next_delay(0.999_999).as_secs()).collect();
        // Upper end of each window: just under base.
        assert_eq!(bases, [0, 1, 3, 7, 15, 31, 59, 59, 59]);
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let lows: Vec<u128> = (0..8).map(|_| b.next_delay(0.0).as_millis()).collect();
        assert_eq!(lows, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        b.reset();
        assert_eq!(b.next_delay(0.0), Duration::from_millis(500));
    }

    #[test]
    fn keepalive_pings_every_30s_and_dies_after_40s_of_silence() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(t0);
        assert_eq!(k.poll(t0), Keep::Wait(t0 + ping_interval()));
        assert_eq!(k.poll(t0 + Duration::from_secs(30)), Keep::Ping);
        assert_eq!(
            k.poll(t0 + Duration::from_secs(30)),
            Keep::Wait(t0 + read_deadline())
        );
        // A pong at 31 s re-arms the deadline.
        k.received(t0 + Duration::from_secs(31));
        assert_eq!(
            k.poll(t0 + Duration::from_secs(45)),
            Keep::Wait(t0 + Duration::from_secs(60))
        );
        assert_eq!(k.poll(t0 + Duration::from_secs(60)), Keep::Ping);
        assert_eq!(k.poll(t0 + Duration::from_secs(71)), Keep::Dead);
    }
}
