//! The set of health checks and when each is due (spec 3.6.1). Pure: time is an argument, nothing is
//! spawned here; the driver in `health/mod.rs` asks [`Set::next_due`] for work and reports back with
//! [`Set::finished`].
//!
//! Rules: the set is keyed by container ID. A config is due as soon as it is seen (added, replaced or
//! synced) and then `interval_s` after each start. A check does not start again while its last run is
//! still going. Disabled checks are kept but never due. At most `HEALTH_IN_FLIGHT_MAX_COUNT` checks run
//! at once, of them at most `HEALTH_TLS_IN_FLIGHT_MAX_COUNT` to `https://` URLs (a TLS handshake costs
//! the most heap); a due check past that waits for a slot, the earliest due first.
//!
//! Policy when full: at `HEALTH_CHECKS_MAX_COUNT` configs a new one is refused ([`Full`]); a
//! replacement of a config already held is always taken. Each stored config carries a serial, so
//! a run of a config since replaced or removed is recognised when it ends and its result dropped.
use super::config::Check;
use crate::limits::{
    HEALTH_CHECKS_MAX_COUNT, HEALTH_IN_FLIGHT_MAX_COUNT, HEALTH_TLS_IN_FLIGHT_MAX_COUNT,
};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The set is at `HEALTH_CHECKS_MAX_COUNT` and the config is new: it was dropped.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

#[derive(Debug)]
struct Entry {
    check: Rc<Check>,
    serial: u64,
    /// `None`: due now (never run).
    next: Option<Instant>,
    running: bool,
}

/// A run the driver should start.
#[derive(Debug, Clone)]
pub struct Due {
    /// The config (shared with the set; a replacement does not change it under the run).
    pub check: Rc<Check>,
    /// Which stored config this is, for [`Set::finished`].
    pub serial: u64,
    /// Whether the run holds one of the HTTPS slots.
    pub tls: bool,
}

/// The checks and their schedule.
#[derive(Debug, Default)]
pub struct Set {
    entries: Vec<Entry>,
    serials: u64,
    in_flight: usize,
    tls_in_flight: usize,
}

impl Set {
    /// Configs held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no config is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Enabled configs held.
    pub fn enabled(&self) -> usize {
        self.entries.iter().filter(|e| e.check.enabled).count()
    }

    /// Runs started and not yet finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn entry(&mut self, check: Check) -> Entry {
        self.serials += 1;
        Entry {
            check: Rc::new(check),
            serial: self.serials,
            next: None,
            running: false,
        }
    }

    /// Adds `check`, or replaces the config of its container; due at once either way.
    pub fn upsert(&mut self, check: Check) -> Result<(), Full> {
        let at = self
            .entries
            .iter()
            .position(|e| e.check.container_id == check.container_id);
        match at {
            Some(i) => {
                self.entries[i] = self.entry(check);
                Ok(())
            }
            None if self.entries.len() >= HEALTH_CHECKS_MAX_COUNT => Err(Full),
            None => {
                let e = self.entry(check);
                self.entries.push(e);
                Ok(())
            }
        }
    }

    /// Removes every config (the start of a sync, which replaces the set).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.entries.shrink_to(HEALTH_CHECKS_MAX_COUNT.min(16));
    }

    /// Removes the config of `container_id`; false if there was none.
    pub fn remove(&mut self, container_id: &str) -> bool {
        let before = self.entries.len();
        self.entries
            .retain(|e| e.check.container_id != container_id);
        self.entries.len() != before
    }

    /// The due check to start now, if a slot is free: the one due longest, marked running and
    /// scheduled `interval_s` from `now`.
    pub fn next_due(&mut self, now: Instant) -> Option<Due> {
        if self.in_flight >= HEALTH_IN_FLIGHT_MAX_COUNT {
            return None;
        }
        let tls_full = self.tls_in_flight >= HEALTH_TLS_IN_FLIGHT_MAX_COUNT;
        let e = self
            .entries
            .iter_mut()
            .filter(|e| e.check.enabled && !e.running && e.next.map_or(true, |t| t <= now))
            .filter(|e| !(tls_full && is_tls(&e.check)))
            .min_by_key(|e| e.next)?;
        e.running = true;
        e.next = Some(now + Duration::from_secs(u64::from(e.check.interval_s)));
        let tls = is_tls(&e.check);
        self.in_flight += 1;
        self.tls_in_flight += usize::from(tls);
        Some(Due {
            check: e.check.clone(),
            serial: e.serial,
            tls,
        })
    }

    /// A run ended: frees its slot. Returns whether its config is still the one stored (else the
    /// config was replaced or removed meanwhile, and the result belongs to nobody).
    pub fn finished(&mut self, due: &Due) -> bool {
        self.in_flight = self.in_flight.saturating_sub(1);
        if due.tls {
            self.tls_in_flight = self.tls_in_flight.saturating_sub(1);
        }
        match self.entries.iter_mut().find(|e| e.serial == due.serial) {
            Some(e) => {
                e.running = false;
                true
            }
            None => false,
        }
    }
}

/// Whether a check starts with a TLS handshake (a redirect may still lead to one from `http://`).
fn is_tls(check: &Check) -> bool {
    check
        .url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

#[cfg(test)]
mod tests {
    use super::super::config;
    use super::*;

    fn check(id: &str, interval: u32, enabled: bool) -> Check {
        config::parse(&format!(
            r#"{{"container_id":"{id}","enabled":{enabled},"check_interval_seconds":{interval}}}"#
        ))
        .unwrap()
        .check
    }

    fn ids(set: &mut Set, now: Instant) -> Vec<(String, Due)> {
        std::iter::from_fn(|| set.next_due(now))
            .map(|d| (d.check.container_id.to_string(), d))
            .collect()
    }

    #[test]
    fn due_when_seen_then_every_interval_never_twice_at_once() {
        let t0 = Instant::now();
        let mut set = Set::default();
        set.upsert(check("a", 10, true)).unwrap();
        set.upsert(check("b", 30, true)).unwrap();
        set.upsert(check("off", 10, false)).unwrap();
        let first = ids(&mut set, t0);
        assert_eq!(
            first.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(set.in_flight(), 2);
        // Still running at the next interval: not started twice.
        assert!(ids(&mut set, t0 + Duration::from_secs(11)).is_empty());
        for (_, serial) in &first {
            assert!(set.finished(serial));
        }
        assert_eq!(set.in_flight(), 0);
        assert!(ids(&mut set, t0 + Duration::from_secs(9)).is_empty());
        let at10 = ids(&mut set, t0 + Duration::from_secs(10));
        assert_eq!(at10.len(), 1);
        assert_eq!(at10[0].0, "a");
        set.finished(&at10[0].1);
        let at30 = ids(&mut set, t0 + Duration::from_secs(30));
        assert_eq!(
            at30.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(),
            ["a", "b"],
            "a (due at 20) first"
        );
    }

    #[test]
    fn the_in_flight_cap_holds_and_the_longest_due_goes_first() {
        let t0 = Instant::now();
        let mut set = Set::default();
        for i in 0..HEALTH_IN_FLIGHT_MAX_COUNT + 3 {
            set.upsert(check(&format!("c{i}"), 10, true)).unwrap();
        }
        let started = ids(&mut set, t0);
        assert_eq!(started.len(), HEALTH_IN_FLIGHT_MAX_COUNT);
        assert!(set.finished(&started[0].1));
        let next = ids(&mut set, t0 + Duration::from_secs(1));
        assert_eq!(next.len(), 1, "one slot freed");
        assert_eq!(next[0].0, format!("c{}", HEALTH_IN_FLIGHT_MAX_COUNT));
    }

    #[test]
    fn https_checks_have_their_own_smaller_cap() {
        let t0 = Instant::now();
        let mut set = Set::default();
        for i in 0..4 {
            let c = config::parse(&format!(
                r#"{{"container_id":"s{i}","enabled":true,"url":"HTTPS://h/"}}"#
            ))
            .unwrap()
            .check;
            set.upsert(c).unwrap();
        }
        set.upsert(check("plain", 10, true)).unwrap();
        let started = ids(&mut set, t0);
        let tls: Vec<_> = started.iter().filter(|d| d.1.tls).collect();
        assert_eq!(tls.len(), HEALTH_TLS_IN_FLIGHT_MAX_COUNT);
        assert_eq!(
            started.len(),
            HEALTH_TLS_IN_FLIGHT_MAX_COUNT + 1,
            "plain still runs"
        );
        set.finished(&tls[0].1);
        assert_eq!(ids(&mut set, t0).len(), 1, "one HTTPS slot freed");
    }

    #[test]
    fn replaced_and_removed_configs_drop_their_results() {
        let t0 = Instant::now();
        let mut set = Set::default();
        set.upsert(check("a", 10, true)).unwrap();
        set.upsert(check("b", 10, true)).unwrap();
        let runs = ids(&mut set, t0);
        set.upsert(check("a", 20, true)).unwrap();
        assert!(set.remove("b"));
        assert!(!set.remove("b"));
        assert_eq!(set.len(), 1);
        // The replacement is due at once even though the old run is still going.
        let again = ids(&mut set, t0);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].1.serial, set.entries[0].serial);
        assert!(!set.finished(&runs[0].1), "a was replaced");
        assert!(!set.finished(&runs[1].1), "b was removed");
        assert!(set.finished(&again[0].1));
        assert_eq!(set.in_flight(), 0);
        set.clear();
        assert!(set.is_empty());
    }

    #[test]
    fn full_refuses_new_configs_but_takes_replacements() {
        let mut set = Set::default();
        for i in 0..HEALTH_CHECKS_MAX_COUNT {
            set.upsert(check(&format!("c{i}"), 10, true)).unwrap();
        }
        assert_eq!(set.upsert(check("one-more", 10, true)), Err(Full));
        assert!(set.upsert(check("c0", 60, true)).is_ok());
        assert_eq!(set.len(), HEALTH_CHECKS_MAX_COUNT);
    }
}
