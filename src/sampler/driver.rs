//! The sampling loop every mode shares: one [`Driver`] owns the container [`Table`], the [`Budget`]
//! and the [`Source`], and hands each finished reading to the caller's sink.
//!
//! Read this first: [`budget`](super::budget) (what may start when) and [`table`](super::table)
//! (round robin, who is due). Both are pure and take `now`; this file is the async shell around them.
//! It is the one place below `modes/` that owns a timer (STYLE rule 2 puts timers in the modes): the
//! agent, `watch` and `snapshot` all run this same loop, so it lives once, here, and the modes keep
//! only what differs (where readings go, what is logged).
//!
//! How it runs: `in_flight` worker tasks are spawned once per [`Driver::run`], each with its own read
//! buffer for life (kept at most `SAMPLE_BUF_KEEP_BYTES`), and take jobs from a bounded queue; the
//! loop starts a job when a container is due and the budget has a slot and a token, and sleeps until
//! the next due time, token, finished job, container change or re-list. Container IDs travel in fixed
//! strings, so a warm sample allocates nothing here (the Docker client's request still does).
//!
//! The cgroup source runs no workers (issue 18): its samples are local file reads of a few tens of
//! microseconds, so the loop takes them itself, in batches: every container due at a wake that the
//! budget has a token for, back to back, sharing one `/proc/stat` reading, and then sleeps at least
//! [`SAMPLER_BATCH_MS`] (the interval when shorter). Per sample that saves the job and result
//! channels, a worker's wake, a timer and the write of one frame at a time: what made a sample cost
//! 0.28 ms of CPU where reading its files costs a fraction of that (bench/README.md). The budget is
//! spent the same way (a token per sample, one slot at a time), so calls per second, calls in flight
//! and round robin mean what they mean for the Docker source, whose path is unchanged.
//!
//! What it reports ([`Report`]), and must not do: it never logs above `debug!`. Shortfall, a full
//! table and a failing re-list are reported once per state change, for the mode to log or show.
//!
//! When full: a container that does not fit the table is not sampled ([`Report::TableFull`], once);
//! changes beyond the caller's channel are the caller's to drop, the periodic re-list repairs them.
use super::budget::{Budget, Plan, Wait};
use super::source::cgroup::{Error as CgroupError, Files};
use super::source::Source;
use super::table::{self, Table, CONTAINER_NAME_MAX_BYTES};
use super::Error;
use crate::docker::types::{ContainerSummary, Event};
use crate::docker::Client;
use crate::limits::{
    CALL_TIMEOUT_MS, CONTAINER_ID_MAX_BYTES, SAMPLER_BATCH_MS, SAMPLER_BATCH_YIELD_COUNT,
    SAMPLER_CHANGES_MAX_COUNT, SAMPLER_RELIST_INTERVAL_MS, SAMPLE_BUF_KEEP_BYTES,
};
use crate::stats::{self, Computed, Sample};
use async_io::Timer;
use smol::channel::{Receiver, Sender};
use smol::LocalExecutor;
use std::ops::ControlFlow;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A full container ID.
pub type Id = heapless::String<CONTAINER_ID_MAX_BYTES>;
/// A container name, cut to the table's length.
pub type Name = heapless::String<CONTAINER_NAME_MAX_BYTES>;

/// The budget a driver runs under (from the board profile, or a mode's own interval).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Each container is due this long after its previous visit was due.
    pub interval: Duration,
    /// Calls started per second, at most.
    pub calls_per_sec: u32,
    /// Calls running at once, at most (and the number of worker tasks).
    pub in_flight: usize,
    /// Rows of the container table.
    pub containers_max: usize,
}

impl Settings {
    /// What these settings give `running` containers.
    pub fn plan(&self, running: usize) -> Plan {
        Plan::new(self.interval, self.calls_per_sec, self.in_flight, running)
    }
}

/// A change of the running set, from Docker's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Started, restarted or unpaused: sample it (again), with a fresh PID.
    Started {
        /// Full ID.
        id: Id,
        /// Name without the slash.
        name: Name,
    },
    /// Died, destroyed or paused: stop sampling it.
    Stopped {
        /// Full ID.
        id: Id,
    },
    /// Updated (`docker update`): its memory limit may have changed; the cgroup source reads the
    /// limit file again at its next sample.
    Updated {
        /// Full ID.
        id: Id,
    },
}

impl Change {
    /// The change a container event means, if any. `None` for other actions (`exec_create`,
    /// `health_status`, …), other event types and IDs longer than a Docker ID.
    pub fn from_event(e: &Event<'_>) -> Option<Change> {
        if e.kind != "container" {
            return None;
        }
        let id = Id::try_from(e.actor.id.as_ref()).ok()?;
        match e.action.as_ref() {
            "start" | "restart" | "unpause" => {
                #[derive(serde::Deserialize, Default)]
                struct Attributes<'a> {
                    #[serde(borrow, default)]
                    name: std::borrow::Cow<'a, str>,
                }
                let attributes: Attributes = e
                    .actor
                    .attributes
                    .and_then(|a| serde_json::from_str(a.get()).ok())
                    .unwrap_or_default();
                Some(Change::Started {
                    id,
                    name: table::cut(&attributes.name),
                })
            }
            "die" | "destroy" | "pause" => Some(Change::Stopped { id }),
            "update" => Some(Change::Updated { id }),
            _ => None,
        }
    }
}

/// The queue of [`Change`]s from the events follower to the driver.
///
/// A bounded channel of `SAMPLER_CHANGES_MAX_COUNT` carries them. When it is full (a burst of events
/// while the driver waits on Docker: dockerd stopping kills every container at once), a start is
/// dropped as before (the re-list repairs it), but a stop is kept in an overflow list, because with
/// dockerd gone no re-list comes to repair it and the stopped container would stay in the table,
/// failing every sample (issue 11 D5). Order is kept: while the overflow holds anything, every change
/// goes there (a start cancels a pending stop of the same container), and the driver takes the
/// overflow once the channel is empty, so it sees the changes as they happened.
///
/// When full: the overflow holds at most the table's rows (a stop of a container not in the table
/// changes nothing), deduplicated; past that a stop is dropped and the re-list repairs it.
pub struct Changes {
    tx: Sender<Change>,
    rx: Receiver<Change>,
    overflow: std::cell::RefCell<Vec<Id>>,
    overflow_max: usize,
}

impl Changes {
    /// A queue whose channel holds `SAMPLER_CHANGES_MAX_COUNT` changes and whose overflow holds up to
    /// `rows` stops (the table's `containers_max`). Nothing is allocated for the overflow until used.
    pub fn new(rows: usize) -> Changes {
        let (tx, rx) = smol::channel::bounded(SAMPLER_CHANGES_MAX_COUNT);
        Changes {
            tx,
            rx,
            overflow: std::cell::RefCell::new(Vec::new()),
            overflow_max: rows,
        }
    }

    /// Queues `change` (never waits), following the policy in the type's doc.
    pub fn offer(&self, change: Change) {
        let mut overflow = self.overflow.borrow_mut();
        let change = if overflow.is_empty() {
            match self.tx.try_send(change) {
                Ok(()) | Err(smol::channel::TrySendError::Closed(_)) => return,
                Err(smol::channel::TrySendError::Full(change)) => change,
            }
        } else {
            change
        };
        match change {
            Change::Stopped { id } => {
                if !overflow.contains(&id) && overflow.len() < self.overflow_max {
                    overflow.push(id);
                }
            }
            Change::Started { id, .. } => overflow.retain(|s| *s != id),
            // Dropped: the limit is read again within `CGROUP_LIMIT_REREAD_SAMPLES` samples anyway.
            Change::Updated { .. } => {}
        }
    }

    /// The next change: the channel's, then (once it is empty) the overflow's stops.
    async fn next(&self) -> Change {
        loop {
            if let Ok(c) = self.rx.try_recv() {
                return c;
            }
            if let Some(id) = {
                let mut overflow = self.overflow.borrow_mut();
                let id = (!overflow.is_empty()).then(|| overflow.remove(0));
                if overflow.is_empty() {
                    // Back to no heap: an overflow is a rare burst.
                    *overflow = Vec::new();
                }
                id
            } {
                return Change::Stopped { id };
            }
            match self.rx.recv().await {
                Ok(c) => return c,
                // Cannot happen: `tx` lives in `self`.
                Err(_) => std::future::pending().await,
            }
        }
    }
}

/// What the driver hands the sink. The sink answers [`ControlFlow::Break`] to end [`Driver::run`].
#[derive(Debug)]
pub enum Report<'a> {
    /// A finished reading.
    Reading {
        /// Full ID.
        id: &'a str,
        /// Name (cut to the table's length).
        name: &'a str,
        /// The `container_stats` numbers.
        stats: &'a Computed,
        /// The container's first reading since it entered the table: CPU % is 0, there was nothing to
        /// measure it against.
        first: bool,
    },
    /// A reading failed (mostly a container that stopped between the list and the call).
    Failed {
        /// Full ID.
        id: &'a str,
        /// Why.
        error: &'a Error,
    },
    /// A container left the table (stopped, or gone at a re-list).
    Gone {
        /// Full ID.
        id: &'a str,
    },
    /// The budget cannot visit every container each interval. Once per driver.
    Shortfall(Plan),
    /// The table is full: further containers are not sampled. Once per driver. `running` is the count
    /// a re-list found; `None` when a started container did not fit.
    TableFull {
        /// The table's rows.
        max: usize,
        /// Running containers the re-list found.
        running: Option<usize>,
    },
    /// The re-list failed (once, until it works again).
    ListFailed(&'a crate::docker::Error),
    /// The re-list works again after [`Report::ListFailed`].
    ListRecovered,
}

/// One sample to take.
struct Job {
    id: Id,
    pid: u32,
    /// The container's open cgroup files, lent by its table entry.
    files: Files,
}

/// One sample taken.
struct Done {
    id: Id,
    result: Result<Sample, Error>,
    /// The files, back for the table entry (closed when it is gone).
    files: Files,
}

/// The sampling loop's state. See the module doc.
pub struct Driver {
    client: Rc<Client>,
    source: Rc<Source>,
    settings: Settings,
    table: Table,
    budget: Budget,
    relist_every: Option<Duration>,
    next_relist: Option<Instant>,
    said_full: bool,
    said_short: bool,
    failing: bool,
    /// Scratch for the cgroup PID lookup.
    scratch: Vec<u8>,
}

impl Driver {
    /// A driver with an empty table (allocated now for `containers_max` rows) and a full budget at
    /// `now`, which re-lists running containers at once and then every [`SAMPLER_RELIST_INTERVAL_MS`].
    pub fn new(client: Rc<Client>, source: Rc<Source>, settings: Settings, now: Instant) -> Self {
        Driver {
            client,
            source,
            table: Table::new(settings.containers_max, settings.interval),
            budget: Budget::new(settings.calls_per_sec, settings.in_flight, now),
            settings,
            relist_every: Some(Duration::from_millis(SAMPLER_RELIST_INTERVAL_MS)),
            next_relist: Some(now),
            said_full: false,
            said_short: false,
            failing: false,
            scratch: Vec::new(),
        }
    }

    /// No re-list: the caller fills the table with [`Driver::add`] (`snapshot`'s fixed set).
    pub fn without_relist(mut self) -> Self {
        self.relist_every = None;
        self.next_relist = None;
        self
    }

    /// Adds a running container, due at `now`. Returns `false` when the table is full.
    pub async fn add(&mut self, id: &str, name: &str, now: Instant) -> bool {
        let pid = self.pid_of(id).await;
        self.table.upsert(id, name, pid, now).is_ok()
    }

    /// Containers in the table.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Samples until `sink` answers [`ControlFlow::Break`] (or forever). `changes` brings container
    /// starts and stops; `None` means the table changes only by re-list or [`Driver::add`]. Worker tasks are spawned on `ex` and end with this future.
    pub async fn run(
        mut self,
        ex: &LocalExecutor<'static>,
        changes: Option<&Changes>,
        mut sink: impl FnMut(Report<'_>) -> ControlFlow<()>,
    ) {
        // The cgroup source samples in the loop itself, in batches (module doc): no workers.
        let batched = matches!(&*self.source, Source::Cgroup(_));
        let slots = self.settings.in_flight.max(1);
        let (jobs_tx, jobs_rx) = smol::channel::bounded::<Job>(slots);
        let (done_tx, done_rx) = smol::channel::bounded::<Done>(slots);
        let workers = if batched { 0 } else { slots };
        let mut buf = Vec::new();
        // Dropped (cancelled) when `run` returns.
        let _workers: Vec<smol::Task<()>> = (0..workers)
            .map(|_| {
                ex.spawn(work(
                    self.client.clone(),
                    self.source.clone(),
                    jobs_rx.clone(),
                    done_tx.clone(),
                ))
            })
            .collect();
        if self.check_shortfall(&mut sink).is_break() {
            return;
        }
        loop {
            let now = Instant::now();
            if self.next_relist.is_some_and(|t| now >= t)
                && self.relist(now, &mut sink).await.is_break()
            {
                return;
            }
            let wake_at = if batched {
                let (flow, wake_at) = self.sample_due(now, &mut buf, &mut sink).await;
                if flow.is_break() {
                    return;
                }
                // Not again before the batch window is over: what falls due meanwhile waits for it.
                wake_at.map(|t| t.max(now + self.batch_window()))
            } else {
                self.start_due(now, &jobs_tx)
            };
            enum Ev {
                Done(Done),
                Change(Change),
                Wake,
            }
            let done = async {
                match done_rx.recv().await {
                    Ok(d) => Ev::Done(d),
                    // Cannot happen: `done_tx` lives in this frame.
                    Err(_) => std::future::pending().await,
                }
            };
            let change = async {
                match changes {
                    Some(changes) => Ev::Change(changes.next().await),
                    None => std::future::pending().await,
                }
            };
            let timer = async {
                match wake_at {
                    Some(t) => {
                        Timer::at(t).await;
                        Ev::Wake
                    }
                    None => std::future::pending().await,
                }
            };
            let ev = smol::future::or(smol::future::or(done, change), timer).await;
            let now = Instant::now();
            let flow = match ev {
                Ev::Done(done) => self.finished(done, now, &mut sink).await,
                Ev::Change(Change::Started { id, name }) => {
                    let pid = self.pid_of(&id).await;
                    if self.table.upsert(&id, &name, pid, now).is_err() && !self.said_full {
                        self.said_full = true;
                        sink(Report::TableFull {
                            max: self.table.max(),
                            running: None,
                        })
                    } else {
                        self.check_shortfall(&mut sink)
                    }
                }
                Ev::Change(Change::Updated { id }) => {
                    if let Some(e) = self.table.find(&id) {
                        e.files.reread_limit();
                    }
                    ControlFlow::Continue(())
                }
                Ev::Change(Change::Stopped { id }) => {
                    if self.table.find(&id).is_some() {
                        self.table.remove(&id);
                        sink(Report::Gone { id: &id })
                    } else {
                        ControlFlow::Continue(())
                    }
                }
                Ev::Wake => ControlFlow::Continue(()),
            };
            if flow.is_break() {
                return;
            }
        }
    }

    /// Starts every due container the budget allows now; returns when to look again (`None`: only a
    /// finished job or a change can make anything due).
    fn start_due(&mut self, now: Instant, jobs: &Sender<Job>) -> Option<Instant> {
        let mut wake_at = self.next_relist;
        let mut sooner = |t: Instant| wake_at = Some(wake_at.map_or(t, |w| w.min(t)));
        loop {
            // Look for a due container before taking a token, so an idle table spends none.
            match self.table.next_due() {
                None => break,
                Some(due) if due > now => {
                    sooner(due);
                    break;
                }
                Some(_) => {}
            }
            match self.budget.try_start(now) {
                Err(Wait::InFlight) => break,
                Err(Wait::Until(t)) => {
                    sooner(t);
                    break;
                }
                Ok(()) => {}
            }
            // An idle entry is due (checked above), so this finds one.
            let Some(i) = self.table.take_due(now) else {
                self.budget.finish();
                break;
            };
            let files = self.table.take_files(i);
            let e = self.table.get(i);
            let job = Job {
                id: e.id.clone(),
                pid: e.pid,
                files,
            };
            if let Err(err) = jobs.try_send(job) {
                // Cannot happen: the queue holds `in_flight` jobs and the budget allows no more.
                let job = err.into_inner();
                self.budget.finish();
                self.table.finish(&job.id, None, now);
                break;
            }
        }
        wake_at
    }

    /// The cgroup source's batch window: samples due within it are taken in one wake,
    /// [`SAMPLER_BATCH_MS`] or the interval when shorter (each container is still visited once per
    /// interval). At most one second, the token bucket's depth, so no token is lost between wakes.
    fn batch_window(&self) -> Duration {
        Duration::from_millis(SAMPLER_BATCH_MS).min(self.settings.interval)
    }

    /// [`Driver::start_due`] for the cgroup source: takes every due container the budget allows now,
    /// one after the other in this task (local file reads, a few tens of microseconds each), and
    /// reports each reading as it is taken. The budget is spent as for the Docker source: a token per
    /// sample and one slot, given back when the sample is done, so at most one sample runs at once
    /// and at most `calls_per_sec` are taken per second. `/proc/stat` is read once per batch
    /// ([`CgroupSource::sample_batched`](super::source::cgroup::CgroupSource::sample_batched)).
    async fn sample_due(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        sink: &mut impl FnMut(Report<'_>) -> ControlFlow<()>,
    ) -> (ControlFlow<()>, Option<Instant>) {
        let source = self.source.clone();
        let Source::Cgroup(cg) = &*source else {
            return (ControlFlow::Continue(()), self.next_relist);
        };
        let mut system = None;
        let mut taken = 0usize;
        loop {
            // Let the writers send what this batch has queued so far: the outbox and the ingest
            // queue then hold a few frames at a time (their spare buffers), not a whole batch.
            if taken > 0 && taken % SAMPLER_BATCH_YIELD_COUNT == 0 {
                smol::future::yield_now().await;
            }
            taken += 1;
            let mut wake_at = self.next_relist;
            let mut sooner = |t: Instant| wake_at = Some(wake_at.map_or(t, |w| w.min(t)));
            match self.table.next_due() {
                None => return (ControlFlow::Continue(()), wake_at),
                Some(due) if due > now => {
                    sooner(due);
                    return (ControlFlow::Continue(()), wake_at);
                }
                Some(_) => {}
            }
            match self.budget.try_start(now) {
                // Cannot happen: a batch holds one slot at a time and gives it back below.
                Err(Wait::InFlight) => return (ControlFlow::Continue(()), wake_at),
                Err(Wait::Until(t)) => {
                    sooner(t);
                    return (ControlFlow::Continue(()), wake_at);
                }
                Ok(()) => {}
            }
            let Some(i) = self.table.take_due(now) else {
                self.budget.finish();
                return (ControlFlow::Continue(()), wake_at);
            };
            let mut files = self.table.take_files(i);
            let e = self.table.get(i);
            let id = e.id.clone();
            let result = cg
                .sample_batched(
                    &id,
                    e.pid,
                    &mut files,
                    buf,
                    &mut system,
                    e.prev.map(|p| p.memory_limit),
                )
                .map_err(Error::Cgroup);
            if buf.capacity() > SAMPLE_BUF_KEEP_BYTES {
                buf.clear();
                buf.shrink_to(SAMPLE_BUF_KEEP_BYTES);
            }
            let done = Done { id, result, files };
            let flow = self.finished(done, now, sink).await;
            if flow.is_break() {
                return (flow, None);
            }
        }
    }

    /// Records a finished job and reports it.
    async fn finished(
        &mut self,
        done: Done,
        now: Instant,
        sink: &mut impl FnMut(Report<'_>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        self.budget.finish();
        self.table.put_files(&done.id, done.files);
        // Gone meanwhile (stopped, re-listed away): nothing to report.
        let Some(name) = self.table.find(&done.id).map(|e| e.name.clone()) else {
            return ControlFlow::Continue(());
        };
        match done.result {
            Ok(sample) => {
                let prev = self.table.finish(&done.id, Some(sample), now);
                let c = stats::compute(prev.as_ref(), &sample);
                sink(Report::Reading {
                    id: &done.id,
                    name: &name,
                    stats: &c,
                    first: prev.is_none(),
                })
            }
            Err(e) => {
                log::debug!("stats of {}: {e}", done.id);
                self.table.finish(&done.id, None, now);
                if matches!(&*self.source, Source::Cgroup(_)) {
                    // A restart we missed leaves a stale PID; look it up again (the container's own
                    // cgroup: no Docker call in the usual layouts).
                    let pid = self.pid_of(&done.id).await;
                    let _ = self.table.upsert(&done.id, &name, pid, now);
                }
                sink(Report::Failed {
                    id: &done.id,
                    error: &e,
                })
            }
        }
    }

    /// Re-lists running containers: adds the missing, drops the gone.
    async fn relist(
        &mut self,
        now: Instant,
        sink: &mut impl FnMut(Report<'_>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        self.next_relist = self.relist_every.map(|every| now + every);
        let running = running_containers(&self.client).await;
        match running {
            Err(e) => {
                if !self.failing {
                    self.failing = true;
                    sink(Report::ListFailed(&e))?;
                }
            }
            Ok(running) => {
                if self.failing {
                    self.failing = false;
                    sink(Report::ListRecovered)?;
                }
                let gone: Vec<Id> = self
                    .table
                    .iter()
                    .filter(|e| !running.iter().any(|(r, _)| *r == e.id))
                    .map(|e| e.id.clone())
                    .collect();
                for id in &gone {
                    self.table.remove(id);
                    sink(Report::Gone { id })?;
                }
                for (id, name) in &running {
                    if self.table.find(id).is_some() {
                        continue;
                    }
                    let pid = self.pid_of(id).await;
                    if self.table.upsert(id, name, pid, now).is_err() {
                        if !self.said_full {
                            self.said_full = true;
                            sink(Report::TableFull {
                                max: self.table.max(),
                                running: Some(running.len()),
                            })?;
                        }
                        break;
                    }
                }
            }
        }
        self.check_shortfall(sink)
    }

    /// Reports the shortfall the first time the table outgrows the budget.
    fn check_shortfall(
        &mut self,
        sink: &mut impl FnMut(Report<'_>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let plan = self.settings.plan(self.table.len());
        if plan.shortfall() && !self.said_short {
            self.said_short = true;
            return sink(Report::Shortfall(plan));
        }
        ControlFlow::Continue(())
    }

    /// The container's init PID, which the cgroup source needs for network counters (0 for the Docker
    /// source, or when unknown). From the container's own cgroup; only in a layout that does not name
    /// the container (rootless Docker, a `--cgroup-parent`) from Docker's inspect.
    async fn pid_of(&mut self, id: &str) -> u32 {
        let Source::Cgroup(cg) = &*self.source else {
            return 0;
        };
        match cg.pid(id, &mut self.scratch) {
            Ok(pid) => pid,
            Err(CgroupError::NoCgroup { .. }) => inspect_pid(&self.client, id).await,
            Err(e) => {
                log::debug!("pid of {id}: {e}");
                0
            }
        }
    }
}

/// `State.Pid` from Docker's inspect (0 when it fails).
async fn inspect_pid(client: &Client, id: &str) -> u32 {
    #[derive(serde::Deserialize)]
    struct Inspect {
        #[serde(rename = "State")]
        state: PidState,
    }
    #[derive(serde::Deserialize)]
    struct PidState {
        #[serde(rename = "Pid", default)]
        pid: u32,
    }
    let mut buf = Vec::new();
    match client.inspect_raw(id, &mut buf).await {
        Ok(()) => serde_json::from_slice::<Inspect>(&buf)
            .map(|i| i.state.pid)
            .unwrap_or(0),
        Err(_) => 0,
    }
}

/// One worker: takes jobs until the queue closes, with one read buffer for life.
async fn work(client: Rc<Client>, source: Rc<Source>, jobs: Receiver<Job>, done: Sender<Done>) {
    let mut buf = Vec::new();
    while let Ok(mut job) = jobs.recv().await {
        let result = match &*source {
            Source::Docker => client.stats(&job.id, &mut buf).await.map_err(Error::Docker),
            Source::Cgroup(cg) => cg
                .sample_kept(&job.id, job.pid, &mut job.files, &mut buf)
                .map_err(Error::Cgroup),
        };
        if buf.capacity() > SAMPLE_BUF_KEEP_BYTES {
            buf.clear();
            buf.shrink_to(SAMPLE_BUF_KEEP_BYTES);
        }
        let finished = Done {
            id: job.id,
            result,
            files: job.files,
        };
        if done.send(finished).await.is_err() {
            break;
        }
    }
}

/// The running containers' IDs and names, read element by element so the list answer (about
/// 80 KiB at 100 containers) is never held whole.
async fn running_containers(client: &Client) -> Result<Vec<(Id, Name)>, crate::docker::Error> {
    let mut list = client.list_reader(false, CALL_TIMEOUT_MS).await?;
    let mut running = Vec::new();
    while let Some(element) = list.next().await? {
        let c: ContainerSummary =
            serde_json::from_slice(element).map_err(|e| crate::docker::Error::Json {
                call: "GET /containers/json".into(),
                message: e.to_string(),
            })?;
        if let Ok(id) = Id::try_from(c.id.as_ref()) {
            running.push((id, table::cut(c.name())));
        }
    }
    Ok(running)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Option<Change> {
        let e: Event = serde_json::from_str(json).unwrap();
        Change::from_event(&e)
    }

    fn stopped(n: usize) -> Change {
        Change::Stopped {
            id: Id::try_from(format!("{n:064}").as_str()).unwrap(),
        }
    }

    fn started(n: usize) -> Change {
        Change::Started {
            id: Id::try_from(format!("{n:064}").as_str()).unwrap(),
            name: Name::try_from("c").unwrap(),
        }
    }

    /// Everything queued, in the order `next` gives it.
    fn drain(changes: &Changes) -> Vec<Change> {
        let mut out = Vec::new();
        while !changes.rx.is_empty() || !changes.overflow.borrow().is_empty() {
            out.push(async_io::block_on(changes.next()));
        }
        out
    }

    /// Issue 11 D5: a burst of stops larger than the channel (dockerd stopping kills every container)
    /// loses none of them, in order, and the overflow gives its memory back.
    #[test]
    fn issue11_d5_no_stop_is_lost_when_the_channel_is_full() {
        let changes = Changes::new(1_000);
        let n = SAMPLER_CHANGES_MAX_COUNT * 3;
        for i in 0..n {
            changes.offer(stopped(i));
        }
        let got = drain(&changes);
        assert_eq!(got, (0..n).map(stopped).collect::<Vec<_>>());
        assert_eq!(changes.overflow.borrow().capacity(), 0);
    }

    #[test]
    fn overflow_keeps_order_dedups_and_lets_a_start_cancel_a_stop() {
        let changes = Changes::new(1_000);
        let full = SAMPLER_CHANGES_MAX_COUNT;
        for i in 0..full {
            changes.offer(started(i));
        }
        // Channel full: stops go to the overflow, once each; a later start of the same container
        // cancels its stop (a restart), and other starts are dropped for the re-list, as before.
        changes.offer(stopped(1));
        changes.offer(stopped(2));
        changes.offer(stopped(1));
        changes.offer(started(2));
        changes.offer(started(900));
        let mut want: Vec<Change> = (0..full).map(started).collect();
        want.push(stopped(1));
        assert_eq!(drain(&changes), want);
        // Empty again: the channel takes changes first.
        changes.offer(stopped(5));
        assert_eq!(drain(&changes), [stopped(5)]);
    }

    #[test]
    fn overflow_holds_at_most_the_table_rows() {
        let changes = Changes::new(3);
        for i in 0..SAMPLER_CHANGES_MAX_COUNT + 10 {
            changes.offer(stopped(i));
        }
        assert_eq!(drain(&changes).len(), SAMPLER_CHANGES_MAX_COUNT + 3);
    }

    #[test]
    fn events_become_changes() {
        let id = "a".repeat(64);
        let start = format!(
            r#"{{"Type":"container","Action":"start","Actor":{{"ID":"{id}","Attributes":{{"name":"web","image":"x"}}}}}}"#
        );
        assert_eq!(
            event(&start),
            Some(Change::Started {
                id: Id::try_from(id.as_str()).unwrap(),
                name: Name::try_from("web").unwrap()
            })
        );
        for action in ["die", "destroy", "pause"] {
            let json =
                format!(r#"{{"Type":"container","Action":"{action}","Actor":{{"ID":"{id}"}}}}"#);
            assert_eq!(
                event(&json),
                Some(Change::Stopped {
                    id: Id::try_from(id.as_str()).unwrap()
                })
            );
        }
        let restart_without_name =
            format!(r#"{{"Type":"container","Action":"restart","Actor":{{"ID":"{id}"}}}}"#);
        assert!(
            matches!(event(&restart_without_name), Some(Change::Started { name, .. }) if name.is_empty())
        );
        let update = format!(r#"{{"Type":"container","Action":"update","Actor":{{"ID":"{id}"}}}}"#);
        assert_eq!(
            event(&update),
            Some(Change::Updated {
                id: Id::try_from(id.as_str()).unwrap()
            })
        );
        for other in [
            format!(r#"{{"Type":"container","Action":"exec_create: sh","Actor":{{"ID":"{id}"}}}}"#),
            format!(r#"{{"Type":"image","Action":"start","Actor":{{"ID":"{id}"}}}}"#),
            format!(
                r#"{{"Type":"container","Action":"start","Actor":{{"ID":"{}"}}}}"#,
                "a".repeat(65)
            ),
        ] {
            assert_eq!(event(&other), None, "{other}");
        }
    }

    #[test]
    fn settings_plan_is_the_budget_plan() {
        let s = Settings {
            interval: Duration::from_secs(10),
            calls_per_sec: 2,
            in_flight: 2,
            containers_max: 64,
        };
        let p = s.plan(30);
        assert_eq!((p.capacity, p.shortfall()), (20, true));
        assert_eq!(p.effective_interval, Duration::from_secs(15));
    }
}
