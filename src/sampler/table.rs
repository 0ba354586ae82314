//! The fixed table of running containers the sampler visits, round robin.
//!
//! Capacity is set once from the board profile (`containers_max`) and the table never grows past
//! it: a container that does not fit is refused ([`Full`]) and the caller says so once; it is not
//! sampled until a slot frees. Each entry holds a few hundred bytes: the IDs in fixed strings, the
//! previous sample (for CPU %) and the schedule. Pure: time is an argument.
//!
//! An entry also owns the cgroup source's open files of its container ([`Files`], 40 bytes; empty with
//! the Docker source): they travel with each sample job and come back with its result
//! ([`Table::take_files`], [`Table::put_files`]), and removing the entry closes them.
//!
//! `CONTAINER_NAME_MAX_BYTES` stays here rather than in `limits`: it is the width of this table's name
//! column.
use super::source::cgroup::Files;
use crate::limits::CONTAINER_ID_MAX_BYTES;
use crate::stats::Sample;
use std::time::{Duration, Instant};

/// Longest container name kept (Docker allows longer; the payload name is cut here).
pub const CONTAINER_NAME_MAX_BYTES: usize = 128;

/// One running container.
#[derive(Debug)]
pub struct Entry {
    /// Full ID.
    pub id: heapless::String<CONTAINER_ID_MAX_BYTES>,
    /// Name without the slash, cut to `CONTAINER_NAME_MAX_BYTES` on a char boundary.
    pub name: heapless::String<CONTAINER_NAME_MAX_BYTES>,
    /// Init PID (for the cgroup source's network counters); 0 if unknown.
    pub pid: u32,
    /// The previous reading.
    pub prev: Option<Sample>,
    /// When the next sample is due.
    pub due: Instant,
    /// A call for it is running.
    pub busy: bool,
    /// When it was last sampled.
    pub sampled: Option<Instant>,
    /// The cgroup source's open files of this container (empty while a sample job holds them).
    pub files: Files,
}

/// The table refused a container: it holds `max` already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    /// The capacity.
    pub max: usize,
}

/// The round-robin table.
#[derive(Debug)]
pub struct Table {
    entries: Vec<Entry>,
    max: usize,
    interval: Duration,
    cursor: usize,
}

impl Table {
    /// A table of at most `max` containers, each due every `interval`. Storage grows with the
    /// containers (doubling, never past `max`): a profile's `max` is sized for its biggest hosts,
    /// and 512 empty entries would cost 170 KiB of heap on a host running ten containers.
    pub fn new(max: usize, interval: Duration) -> Self {
        Table {
            entries: Vec::new(),
            max,
            interval,
            cursor: 0,
        }
    }

    /// Adds a container (due now), or updates its name and PID if present.
    pub fn upsert(&mut self, id: &str, name: &str, pid: u32, now: Instant) -> Result<(), Full> {
        if let Some(e) = self.entries.iter_mut().find(|e| e.id == id) {
            e.name = cut(name);
            if pid != 0 {
                e.pid = pid;
            }
            return Ok(());
        }
        if self.entries.len() >= self.max {
            return Err(Full { max: self.max });
        }
        let Ok(id) = heapless::String::try_from(id) else {
            // Docker IDs are 64 hex characters; anything longer is not an ID we can sample.
            return Ok(());
        };
        if self.entries.len() == self.entries.capacity() {
            let grown = (self.entries.capacity() * 2).max(8).min(self.max);
            self.entries.reserve_exact(grown - self.entries.len());
        }
        self.entries.push(Entry {
            id,
            name: cut(name),
            pid,
            prev: None,
            due: now,
            busy: false,
            sampled: None,
            files: Files::default(),
        });
        Ok(())
    }

    /// Forgets a container (it stopped or was removed).
    pub fn remove(&mut self, id: &str) {
        if let Some(i) = self.entries.iter().position(|e| e.id == id) {
            self.entries.swap_remove(i);
            if self.cursor > self.entries.len() {
                self.cursor = 0;
            }
        }
    }

    /// Keeps only the containers for which `keep` says yes (a re-list repairing drift).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.entries.retain(|e| keep(&e.id));
        self.cursor = 0;
    }

    /// The next container to sample at `now`, round robin among those due and not busy; marks it busy.
    pub fn take_due(&mut self, now: Instant) -> Option<usize> {
        let n = self.entries.len();
        for k in 0..n {
            let i = (self.cursor + k) % n;
            let e = &mut self.entries[i];
            if !e.busy && e.due <= now {
                e.busy = true;
                self.cursor = (i + 1) % n;
                return Some(i);
            }
        }
        None
    }

    /// The earliest due time of an idle entry.
    pub fn next_due(&self) -> Option<Instant> {
        self.entries.iter().filter(|e| !e.busy).map(|e| e.due).min()
    }

    /// Records a finished call for the entry with `id` (it may have moved or gone meanwhile).
    /// Returns the previous sample, for CPU %.
    pub fn finish(&mut self, id: &str, sample: Option<Sample>, now: Instant) -> Option<Sample> {
        let interval = self.interval;
        let e = self.entries.iter_mut().find(|e| e.id == id)?;
        e.busy = false;
        // The next visit is one interval after this one was due, not after it finished, so a slow
        // engine does not stretch every interval; but never in the past.
        e.due = (e.due + interval).max(now);
        let prev = e.prev;
        if let Some(s) = sample {
            e.prev = Some(s);
            e.sampled = Some(now);
        }
        prev
    }

    /// Hands the open files of the entry at `i` to a sample job (the entry keeps an empty set).
    pub fn take_files(&mut self, i: usize) -> Files {
        core::mem::take(&mut self.entries[i].files)
    }

    /// Gives the files back to the entry with `id` after its sample; if it has left the table meanwhile,
    /// they are dropped, which closes them.
    pub fn put_files(&mut self, id: &str, files: Files) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.id == id) {
            e.files = files;
        }
    }

    /// The entry with `id`.
    pub fn find(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Every entry, in table order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// The entry at `i`.
    pub fn get(&self, i: usize) -> &Entry {
        &self.entries[i]
    }

    /// Containers held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The capacity.
    pub fn max(&self) -> usize {
        self.max
    }
}

/// `name` cut to [`CONTAINER_NAME_MAX_BYTES`] on a char boundary.
pub fn cut(name: &str) -> heapless::String<CONTAINER_NAME_MAX_BYTES> {
    let mut s = heapless::String::new();
    for c in name.chars() {
        if s.push(c).is_err() {
            break;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> String {
        format!("{n:064x}")
    }

    #[test]
    fn round_robin_over_due_entries() {
        let t0 = Instant::now();
        let mut t = Table::new(3, Duration::from_secs(5));
        for n in 0..3 {
            t.upsert(&id(n), "c", 0, t0).unwrap();
        }
        assert_eq!(t.upsert(&id(9), "c", 0, t0), Err(Full { max: 3 }));
        let order: Vec<usize> = std::iter::from_fn(|| t.take_due(t0)).collect();
        assert_eq!(order, [0, 1, 2]);
        assert_eq!(t.take_due(t0), None, "all busy");
        let s = Sample {
            cpu_total_ns: 1,
            ..Default::default()
        };
        assert_eq!(
            t.finish(&id(1), Some(s), t0 + Duration::from_millis(10)),
            None
        );
        assert_eq!(
            t.take_due(t0 + Duration::from_secs(1)),
            None,
            "not due for 5 s"
        );
        assert_eq!(t.next_due(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(t.take_due(t0 + Duration::from_secs(5)), Some(1));
        assert_eq!(t.finish(&id(1), None, t0 + Duration::from_secs(5)), Some(s));
    }

    #[test]
    fn removal_and_names() {
        let t0 = Instant::now();
        let mut t = Table::new(2, Duration::from_secs(5));
        t.upsert(&id(1), &"n".repeat(300), 7, t0).unwrap();
        assert_eq!(t.get(0).name.len(), CONTAINER_NAME_MAX_BYTES);
        t.upsert(&id(2), "b", 0, t0).unwrap();
        t.remove(&id(1));
        assert_eq!(t.len(), 1);
        t.upsert(&id(3), "c", 0, t0).unwrap();
        t.retain(|i| i == id(3));
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(0).id.as_str(), id(3));
    }

    #[test]
    fn storage_grows_with_the_containers_and_never_past_max() {
        let now = Instant::now();
        let mut t = Table::new(20, Duration::from_secs(5));
        assert_eq!(
            t.entries.capacity(),
            0,
            "nothing allocated for an empty host"
        );
        for i in 0..20 {
            t.upsert(&format!("{i:064}"), "c", 0, now).unwrap();
            assert!(t.entries.capacity() <= 20);
        }
        assert_eq!(
            t.upsert(&format!("{:064}", 99), "c", 0, now),
            Err(Full { max: 20 })
        );
        assert_eq!(t.entries.capacity(), 20);
    }
}
