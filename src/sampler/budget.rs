//! The stats budget: at most `in_flight_max` calls at once and at most `calls_per_sec` started per
//! second (a token bucket holding one second of calls), and [`Plan`], what such a budget means for a
//! number of containers (the shortfall the agent logs and `snapshot` shows). Pure: time is an argument.
//!
//! Why both: Docker 20.10-24 answers a one-shot stats call at its next one-second collection tick, so
//! calls must overlap (in flight) to reach more than one container a second; and every call costs
//! dockerd and containerd a few milliseconds of CPU, which on a Pi Zero 2 W is the real overhead, so
//! the rate is capped too.
use std::time::{Duration, Instant};

/// The two caps and their state.
#[derive(Debug, Clone)]
pub struct Budget {
    calls_per_sec: f64,
    in_flight_max: usize,
    in_flight: usize,
    tokens: f64,
    refilled: Instant,
}

/// Why a call may not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Every slot is taken: wait for a call to finish.
    InFlight,
    /// The rate is spent: a token is back at this instant.
    Until(Instant),
}

impl Budget {
    /// A full bucket at `now`.
    pub fn new(calls_per_sec: u32, in_flight_max: usize, now: Instant) -> Self {
        let rate = f64::from(calls_per_sec.max(1));
        Budget {
            calls_per_sec: rate,
            in_flight_max: in_flight_max.max(1),
            in_flight: 0,
            tokens: rate,
            refilled: now,
        }
    }

    /// Takes a slot and a token if both are free.
    pub fn try_start(&mut self, now: Instant) -> Result<(), Wait> {
        if self.in_flight >= self.in_flight_max {
            return Err(Wait::InFlight);
        }
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.calls_per_sec).min(self.calls_per_sec);
        self.refilled = now;
        if self.tokens < 1.0 {
            let missing = (1.0 - self.tokens) / self.calls_per_sec;
            return Err(Wait::Until(now + Duration::from_secs_f64(missing)));
        }
        self.tokens -= 1.0;
        self.in_flight += 1;
        Ok(())
    }

    /// A call finished (successfully or not).
    pub fn finish(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Calls running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The most containers this budget can visit per `interval`.
    pub fn capacity(&self, interval: Duration) -> usize {
        (self.calls_per_sec * interval.as_secs_f64()).floor() as usize
    }
}

/// What a budget gives `running` containers sampled every `interval`: whether it visits each of them
/// every interval and, if not, how often it does. Counts calls only: the engine's own answer time
/// (milliseconds for a one-shot call on Docker 20.10 here, up to a second on older engines) can stretch
/// a round further when `in_flight` calls are all waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The interval asked for.
    pub interval: Duration,
    /// Calls started per second, at most.
    pub calls_per_sec: u32,
    /// Calls running at once, at most.
    pub in_flight: usize,
    /// Containers to visit.
    pub running: usize,
    /// Containers the rate can visit per `interval` ([`Budget::capacity`]).
    pub capacity: usize,
    /// How often each container is really visited: `interval`, or `running / calls_per_sec` seconds
    /// when that is longer.
    pub effective_interval: Duration,
}

impl Plan {
    /// The plan of a budget of `calls_per_sec` and `in_flight` for `running` containers.
    pub fn new(interval: Duration, calls_per_sec: u32, in_flight: usize, running: usize) -> Plan {
        let budget = Budget::new(calls_per_sec, in_flight, Instant::now());
        let rate = f64::from(calls_per_sec.max(1));
        let round = Duration::from_secs_f64(running as f64 / rate);
        Plan {
            interval,
            calls_per_sec,
            in_flight,
            running,
            capacity: budget.capacity(interval),
            effective_interval: interval.max(round),
        }
    }

    /// The budget cannot visit every container each interval.
    pub fn shortfall(&self) -> bool {
        self.running > self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_cap_then_rate_cap() {
        let t0 = Instant::now();
        let mut b = Budget::new(4, 2, t0);
        assert_eq!(b.try_start(t0), Ok(()));
        assert_eq!(b.try_start(t0), Ok(()));
        assert_eq!(b.try_start(t0), Err(Wait::InFlight));
        b.finish();
        b.finish();
        assert_eq!(b.try_start(t0), Ok(()));
        assert_eq!(b.try_start(t0), Ok(()));
        b.finish();
        b.finish();
        // Four tokens spent at t0: the next one is back 250 ms later.
        assert_eq!(
            b.try_start(t0),
            Err(Wait::Until(t0 + Duration::from_millis(250)))
        );
        assert_eq!(b.try_start(t0 + Duration::from_millis(250)), Ok(()));
    }

    #[test]
    fn the_bucket_holds_one_second() {
        let t0 = Instant::now();
        let mut b = Budget::new(2, 100, t0);
        let later = t0 + Duration::from_secs(60);
        let started = (0..10).filter(|_| b.try_start(later).is_ok()).count();
        assert_eq!(started, 2, "an idle minute does not bank 120 calls");
        assert_eq!(b.capacity(Duration::from_secs(5)), 10);
    }

    #[test]
    fn a_plan_says_when_the_rate_falls_short() {
        let five = Duration::from_secs(5);
        let p = Plan::new(five, 20, 8, 100);
        assert_eq!(p.capacity, 100);
        assert!(!p.shortfall());
        assert_eq!(p.effective_interval, five);
        let p = Plan::new(five, 20, 8, 101);
        assert!(p.shortfall());
        assert_eq!(p.effective_interval.as_millis(), 5_050);
        // Two calls a second over a one-second interval: three containers wait 1.5 s each.
        let p = Plan::new(Duration::from_secs(1), 2, 2, 3);
        assert_eq!((p.capacity, p.shortfall()), (2, true));
        assert_eq!(p.effective_interval.as_millis(), 1_500);
        assert_eq!(Plan::new(five, 20, 8, 0).effective_interval, five);
    }
}
