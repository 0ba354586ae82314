//! Every compile-time ceiling, default timeout and budget, each with its reason.
//!
//! Nothing else in the crate writes a capacity or a timeout as a bare number. A value here is the
//! most the agent will ever hold; runtime budgets (board profiles, flags) may lower them, never raise them.

// ---- HTTP over the Docker socket -------------------------------------------------------------------

/// Largest response head accepted. Docker's heads are about 300 bytes; 4 KiB leaves room for a socket
/// proxy's extra headers, and anything bigger is not a Docker engine. It sizes every connection's
/// buffer (`CONN_BUF_BYTES`), and with 8 stats calls in flight plus the events stream and a list,
/// 8 KiB cost 40 KiB more heap for nothing.
pub const HEAD_MAX_BYTES: usize = 4 * 1024;
/// Header slots handed to httparse (a stack array). Docker sends about 8 headers.
pub const HEADER_MAX_COUNT: usize = 32;
/// Longest value of a header we keep (`Api-Version`, `Sec-WebSocket-Accept`, `Server`).
pub const HEADER_VALUE_MAX_BYTES: usize = 128;
/// Headers a caller may ask the head parser to keep (`http::head::parse`'s capture list).
pub const HEADER_CAPTURE_MAX_COUNT: usize = 4;
/// Longest chunk-size or trailer line in a chunked body (RFC 9112 §7.1). Docker writes bare hex sizes;
/// 256 bytes leaves room for chunk extensions.
pub const CHUNK_LINE_MAX_BYTES: usize = 256;
/// Read buffer of one connection, allocated once for its life. Holds a whole head (so at least
/// `HEAD_MAX_BYTES`) and reads bodies in slices of this size.
pub const CONN_BUF_BYTES: usize = HEAD_MAX_BYTES;
/// Idle keep-alive connections to the engine kept for reuse: one per stats call in flight (a board
/// profile allows at most `BOARD_STATS_IN_FLIGHT_MAX_COUNT`) plus a list and an inspect. The pool only
/// ever holds sockets that were in use at once, so a profile with 8 in flight keeps at most 10; with
/// two, the calls beyond two in flight each dialled a fresh socket, which dockerd accepts and tears
/// down again every time.
pub const IDLE_CONN_MAX_COUNT: usize = BOARD_STATS_IN_FLIGHT_MAX_COUNT + 2;

// ---- Body caps per Docker endpoint (bytes) ---------------------------------------------------------

/// `/_ping` answers `OK`.
pub const PING_BODY_MAX_BYTES: usize = 64;
/// `/info`: about 3 KiB on a plain host; swarm, plugins and registry mirrors add a few KiB.
pub const INFO_BODY_MAX_BYTES: usize = 64 * 1024;
/// `/version`: about 1 KiB.
pub const VERSION_BODY_MAX_BYTES: usize = 16 * 1024;
/// `/containers/json?all=1`: about 1.2 KiB per container with a few labels and ports; 2 MiB covers
/// well over a thousand containers. The buffer grows only as far as the answer needs.
pub const LIST_BODY_MAX_BYTES: usize = 2 * 1024 * 1024;
/// One element of that list: a container with very large label sets still fits many times over.
/// The buffer grows only to the largest element seen.
pub const LIST_ELEMENT_MAX_BYTES: usize = 256 * 1024;
/// The whole `list_containers` reply: the list and one inspect per container, within DockMon's own
/// 30 s timeout for the command (spec 3.5).
pub const LIST_CALL_TIMEOUT_MS: u64 = 25_000;
/// `/containers/{id}/json`: 6-10 KiB typical; large env and label sets stay well under this.
pub const INSPECT_BODY_MAX_BYTES: usize = 256 * 1024;
/// One stats document: about 2 KiB on cgroup v1 with 2 CPUs; `percpu_usage` and per-device blkio lists
/// grow it on big machines (128 CPUs add about 2 KiB).
pub const STATS_BODY_MAX_BYTES: usize = 32 * 1024;
/// One `/events` JSON line. An event carries every label of its container; 16 KiB holds hundreds.
pub const EVENT_LINE_MAX_BYTES: usize = 16 * 1024;
/// Error bodies (`{"message": ...}`) are read this far and the rest is dropped.
pub const ERROR_BODY_MAX_BYTES: usize = 4 * 1024;

// ---- Docker identifiers ------------------------------------------------------------------------------

/// A full container ID is 64 hex characters.
pub const CONTAINER_ID_MAX_BYTES: usize = 64;
/// Longest request target we build (endpoint, ID, query).
pub const REQUEST_TARGET_MAX_BYTES: usize = 512;

// ---- Timeouts (milliseconds) -------------------------------------------------------------------------

/// Connecting to the local socket is instant when dockerd is alive.
pub const CONNECT_TIMEOUT_MS: u64 = 3_000;
/// Ordinary engine calls (`/info`, list, inspect): head and body within this time, so a stalled engine
/// is an error instead of a hang. Docker 20.10 answers a list of 100 containers in about 50 ms.
pub const CALL_TIMEOUT_MS: u64 = 10_000;
/// One stats call. One-shot answers come at once; without one-shot (API < 1.41) Docker waits about a
/// second to fill `precpu_stats`, and a loaded Pi can double that.
pub const STATS_TIMEOUT_MS: u64 = 5_000;

// ---- API versions ------------------------------------------------------------------------------------

/// Newest Docker API version this agent speaks; we call `/v<min(server, this)>`. The same ceiling as
/// DockMon's Go agent (Docker SDK v28.5.2).
pub const API_VERSION_MAX: (u16, u16) = (1, 51);
/// Oldest API version we accept. 1.24 is Docker 1.12; everything we call exists there except
/// `one-shot` stats (1.41), which we then leave out.
pub const API_VERSION_MIN: (u16, u16) = (1, 24);
/// First API version with `one-shot=true` on `/containers/{id}/stats` (Docker 20.10).
pub const API_VERSION_ONE_SHOT: (u16, u16) = (1, 41);

// ---- Local modes -------------------------------------------------------------------------------------

/// Default `snapshot` window between the two samples that give CPU %.
pub const SNAPSHOT_WINDOW_DEFAULT_MS: u64 = 1_000;

// ---- The sampler -------------------------------------------------------------------------------------

/// Container starts and stops (from Docker's events) waiting for the sampler. When full, a change is
/// dropped and the sampler's periodic re-list repairs what was missed.
pub const SAMPLER_CHANGES_MAX_COUNT: usize = 64;
/// Capacity a sampler slot keeps in its read buffer between samples. One buffer per in-flight slot is
/// reused for every sample; a Docker stats document is about 2 KiB on 2 CPUs and the cgroup files
/// (`/proc/stat` the largest) 1-2 KiB on a Pi, so 16 KiB leaves room for big machines while a buffer that
/// grew past it (up to `STATS_BODY_MAX_BYTES` or the cgroup reader's 64 KiB file cap) is shrunk back
/// after the sample, keeping the pool at most `BOARD_STATS_IN_FLIGHT_MAX_COUNT` × 16 KiB.
pub const SAMPLE_BUF_KEEP_BYTES: usize = 16 * 1024;

// ---- Board budget ceilings ---------------------------------------------------------------------------
//
// The most any board profile (`boards/*.json`, `src/board.rs`) or environment override may ask for.
// `board::select` clamps a value past its ceiling (or under the interval floor) to it and records one
// warning; the unit tests keep every compiled-in profile inside these bounds.

/// Shortest stats interval per container. Docker's stats collector reads the cgroups once a second
/// (moby `daemon/stats` collector interval), so sampling faster returns the same counters twice. A
/// floor, not a ceiling: shorter intervals are raised to it.
pub const BOARD_STATS_INTERVAL_MIN_MS: u64 = 1_000;
/// Stats calls started per second. Each call costs dockerd + containerd CPU (a few ms on a Pi Zero 2 W,
/// about 1 ms on a server core); at 50 calls/s a fast host spends 5 % of a core on them, past which the
/// agent becomes the load it is meant to watch.
pub const BOARD_STATS_CALLS_PER_SEC_MAX: u32 = 50;
/// Stats calls in flight at once. Each holds a connection with its `CONN_BUF_BYTES` buffer and a body of
/// up to `STATS_BODY_MAX_BYTES` (40 KiB together), so 16 cost at most 640 KiB; dockerd serves each on
/// its own goroutine, and more concurrency only queues in containerd.
pub const BOARD_STATS_IN_FLIGHT_MAX_COUNT: usize = 16;
/// Rows of the fixed container table. A list answer of 1024 containers is about 1.2 MiB, inside
/// `LIST_BODY_MAX_BYTES` with room for large label sets; a host with more is beyond what one
/// single-threaded agent should sample.
pub const BOARD_CONTAINERS_MAX_COUNT: usize = 1_024;
/// Stats frames the outbox may hold: two full rounds of the largest container table.
pub const BOARD_OUTBOX_STATS_MAX_COUNT: usize = 2 * BOARD_CONTAINERS_MAX_COUNT;
/// Event frames the outbox may hold. Events carry every label of their container (up to
/// `EVENT_LINE_MAX_BYTES` each), so 1024 already allow megabytes in the worst case.
pub const BOARD_OUTBOX_EVENTS_MAX_COUNT: usize = 1_024;
/// Largest RSS ceiling a profile may state. The agent's design point is single-digit MiB; a profile
/// asking for more than 64 MiB has a typo.
pub const BOARD_RSS_CEILING_MAX_KIB: u64 = 64 * 1024;
/// Largest heap ceiling a profile may state (half the RSS ceiling's ceiling: code, stacks and static
/// data take the rest).
pub const BOARD_HEAP_CEILING_MAX_KIB: u64 = 32 * 1024;

// ---- Container operations and logs -------------------------------------------------------------------

/// Start, kill, rename and remove: dockerd does the work before it answers (runc create and start,
/// network setup, removing the rw layer). A Pi Zero 2 W on an SD card takes 1-3 s to start a small
/// container and several seconds to remove a large layer; DockMon waits 30 s for the reply (spec 3.4),
/// so our own error reaches it before the backend gives up.
pub const OP_TIMEOUT_MS: u64 = 20_000;
/// Answers of start, stop, restart, kill, rename and remove: 204 (or 304) with no body. A body is read
/// this far.
pub const OP_BODY_MAX_BYTES: usize = 4 * 1024;
/// `GET /images/{id}/json`: 2-6 KiB (two configs, the layer list); many labels or a long history of
/// repo tags and digests stay well under this.
pub const IMAGE_INSPECT_BODY_MAX_BYTES: usize = 256 * 1024;
/// `GET /networks`: about 700 bytes per network (IPAM, options, labels); 256 KiB holds some 350, more
/// than Docker's default address pools can give out.
pub const NETWORKS_BODY_MAX_BYTES: usize = 256 * 1024;
/// Bytes the agent adds to Docker's list in one `list_containers` reply (`RepoDigests`, `StartedAt`,
/// `Env`; spec 3.7.1). About 100 B of digests, 45 B of start time and 0.3-3 KiB of environment per
/// container, so 1 MiB covers several hundred containers with large environments. Past it `Env`, then
/// `StartedAt` and the digests are left out (`docker::list` states the order).
pub const LIST_EXTRAS_MAX_BYTES: usize = 1024 * 1024;
/// The `logs` text of one `get_logs` reply. DockMon's backend clamps `tail` to 10000 lines (spec 3.4):
/// at about 100 bytes a line that is 1 MiB, and a Pi should hold no more. Past it the oldest whole lines
/// are dropped (`docker::logs`). At the peak, while the text is assembled beside the two stream buffers
/// (whose capacities may reach 1.5 times this), a logs call holds about 2.5 times this.
pub const LOGS_REPLY_MAX_BYTES: usize = 1024 * 1024;
/// Longest unfinished line held per stream before it is stored as a piece of a line (and so can be
/// dropped as the oldest bytes): Docker's log copier itself cuts lines at 16 KiB (moby
/// `daemon/logger/copier.go` bufSize).
pub const LOGS_PIECE_MAX_BYTES: usize = 16 * 1024;
/// `tail` when the request gives 0 (or none): the Go agent's and DockMon's default (spec 3.4).
pub const LOGS_TAIL_DEFAULT_LINES: u32 = 100;
/// One logs call, head and whole body. Docker reads a json-file tail backwards, so 10000 lines come at
/// once; the deadline guards a trickling engine and leaves 10 s of the backend's 30 s (spec 3.4) to send
/// the reply.
pub const LOGS_TIMEOUT_MS: u64 = 20_000;

// --- compose stacks (issue 16: deploy_compose, scan_compose_dirs, read_compose_file) ---------------
/// Largest compose or env file read or deployed: spec 3.8.5's "File too large (max 1MB)".
pub const COMPOSE_FILE_MAX_BYTES: usize = 1024 * 1024;
/// Deepest YAML nesting accepted. Compose files nest about 6 deep (services → web → deploy →
/// resources → limits → cpus); 64 leaves room for long anchors while bounding the parser's stack.
pub const COMPOSE_YAML_MAX_DEPTH: usize = 64;
/// Most YAML nodes after alias expansion. A 1 MiB compose file of short lines holds about 100k
/// nodes; aliases may not multiply that (the "billion laughs" file stops here, ~10 MB of tree).
pub const COMPOSE_YAML_MAX_NODES: usize = 200_000;
/// Most services in one project: more than any stack seen in practice, and bounds the plan.
pub const COMPOSE_SERVICES_MAX: usize = 256;
/// Most env files in one deployment (`env_files`) or found next to a compose file.
pub const COMPOSE_ENV_FILES_MAX: usize = 32;
/// Compose files one scan reports (spec 3.8.5); past it the scan stops.
pub const COMPOSE_SCAN_MAX_FILES: usize = 1000;
/// Directory entries one scan visits in all: a scan of `/var/lib/docker/volumes` on a big host must
/// not walk millions of files within the backend's 60 s.
pub const COMPOSE_SCAN_MAX_ENTRIES: usize = 200_000;
/// Depth of a scan when the request gives none (spec 3.8.5), and the most we allow.
pub const COMPOSE_SCAN_DEPTH_DEFAULT: usize = 5;
/// Deepest scan accepted.
pub const COMPOSE_SCAN_DEPTH_MAX: usize = 20;
/// Container create, network and volume calls: small JSON answers.
pub const COMPOSE_CALL_BODY_MAX_BYTES: usize = 64 * 1024;
/// `GET /containers/json` filtered to one project.
pub const COMPOSE_LIST_BODY_MAX_BYTES: usize = 1024 * 1024;
/// Default wait for services to become healthy (`health_timeout` 0 or absent; spec 3.8.4 sends 60).
pub const COMPOSE_HEALTH_TIMEOUT_DEFAULT_S: u64 = 60;
/// Longest `health_timeout` honoured (the backend's ack timeout is 1800 s).
pub const COMPOSE_HEALTH_TIMEOUT_MAX_S: u64 = 1500;
/// Poll period while waiting for a dependency's health or exit.
pub const COMPOSE_POLL_MS: u64 = 500;
