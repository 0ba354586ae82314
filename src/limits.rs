//! Every compile-time ceiling, default timeout and budget that bounds the agent as a whole, each with its
//! reason.
//!
//! Nothing in the crate writes a capacity or a timeout as a bare number. A value here is the most the
//! agent will ever hold; runtime budgets (board profiles, flags) may lower them, never raise them.
//!
//! What stays beside its code instead, named with its unit and reason, each module's doc saying so:
//! - facts of a wire format, not choices (`ws`: RFC 6455's 125-byte control payload and 14-byte
//!   header; `docker::logs`' 8-byte frame header; `ws::sha1`'s block; `dns::wire`'s RFC 1035 sizes
//!   and `dns`'s 1,232-byte EDNS answer);
//! - caps on one parser's input from a local file, read once per sample into a buffer of that parser
//!   (`host`, `identity`, `board`, `sampler::source::cgroup`, `token`, `dns::conf`, and the `health`
//!   command's `/proc/net/unix`), and `dns::conf`'s bounds of resolv.conf's own options (glibc's);
//! - limits the DockMon backend states for its own fields (`config`'s 255-byte name and token, the
//!   environment's defaults beside the parser that applies them; `dockmon::health`'s host ID and
//!   100-character failure text);
//! - a fixed table's own field width (`sampler::table`'s container name);
//! - the WebSocket connection's and the outbox's own capacities (`ws`, `ws::conn`, `outbox`), which
//!   the agent's executor (`modes::agent`) imports from there.

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

/// Connecting to the engine: instant on the local socket when dockerd is alive, milliseconds for a
/// `tcp://` engine on the LAN (there, each stage: resolve, connect, TLS handshake). Not DockMon's 45 s
/// (`DOCKMON_CONNECT_TIMEOUT_MS`).
pub const ENGINE_CONNECT_TIMEOUT_MS: u64 = 3_000;
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
/// How long `dockmon-agent health` (the image's HEALTHCHECK) waits for the running agent's answer.
/// The HEALTHCHECK's own timeout is 5 s.
pub const HEALTH_COMMAND_TIMEOUT_MS: u64 = 3_000;

// ---- Resident text (issue 18, `textmem`) --------------------------------------------------------------

/// Stack buffer `textmem::release` reads /proc/self/maps through, whole lines at a time. The agent's
/// maps are about 25 lines of under 130 bytes; a longer line (a path of kilobytes) is skipped, and it
/// cannot be one of the executable's mappings we look for only if its path is that long.
pub const TEXT_MAPS_READ_BYTES: usize = 4 * 1024;
/// First release of the start-up code's pages, after registration on every board (the first container
/// list and stats round fault their steady windows back in at once).
pub const TEXT_RELEASE_FIRST_S: u64 = 15;
/// Then twice a minute: the pages a rare command (update, compose, shell, management), a burst of
/// container events or a reconnection faulted in are given back within 30 s, and the steady code
/// faults its few windows straight back in from the page cache: about a dozen minor faults (well
/// under a millisecond of CPU) per release.
pub const TEXT_RELEASE_EVERY_S: u64 = 30;

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
/// Room made in the `list_containers` reply beyond the next element when it is full: growing in
/// 16 KiB steps keeps the reply's buffer within 16 KiB of its size (doubling would leave up to half
/// of it unused, at the heap's high-water mark). The steps cost a realloc per ~15 containers, every
/// few seconds at most.
pub const LIST_REPLY_GROW_BYTES: usize = 16 * 1024;
/// What one element may add to Docker's (`RepoDigests`, `StartedAt` and a typical `Env`); a larger
/// environment grows the buffer the usual way.
pub const LIST_REPLY_ELEMENT_EXTRA_BYTES: usize = 4 * 1024;
/// Room beyond the last reply's size that a `list_containers` reply is first given (`docker::list`
/// sizes each reply like the previous one): one element's `LIST_REPLY_ELEMENT_EXTRA_BYTES` plus
/// 1 KiB, so the same list is written without a growth step and holds at most this much unused at
/// its largest (issue 14: with 20 health checks the reply's peak must leave room at 100 containers).
pub const LIST_REPLY_GUESS_SLACK_BYTES: usize = LIST_REPLY_ELEMENT_EXTRA_BYTES + 1024;
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

// ---- Container updates (issue 13, spec 3.8.1) ------------------------------------------------------

/// Longest line of the pull progress stream (`POST /images/create`). Progress lines are 150-250 bytes
/// (status, layer ID, `progressDetail`, the text progress bar); an `errorDetail` from a registry is a
/// sentence or two. 16 KiB leaves room for a long registry message and is one line held at a time.
pub const PULL_LINE_MAX_BYTES: usize = 16 * 1024;
/// Layers tracked one by one during a pull. Docker images rarely pass 40 layers (the overlay2 driver
/// allows 128); past this the table refuses new layers and counts them (`docker::pull` policy).
pub const PULL_LAYERS_MAX_COUNT: usize = 64;
/// A layer ID as the pull stream prints it: 12 hex digits; a little room for other engines.
pub const PULL_LAYER_ID_MAX_BYTES: usize = 24;
/// A pull with no byte from the engine for this long has stalled: the engine sends progress several
/// times a second while a layer downloads, and a registry that stops answering is cut by dockerd's own
/// timeouts well before.
pub const PULL_IDLE_TIMEOUT_MS: u64 = 120_000;
/// `update_layer_progress` at most this often unless progress jumped or a layer completed (spec 3.8.1).
pub const PULL_PROGRESS_INTERVAL_MS: u64 = 500;
/// Overall progress that makes an `update_layer_progress` due at once (spec 3.8.1: 5 points).
pub const PULL_PROGRESS_STEP_POINTS: u8 = 5;
/// `POST /containers/create` and `POST /networks/{id}/connect` answers: `{"Id":…,"Warnings":[…]}`.
pub const CREATE_BODY_MAX_BYTES: usize = 16 * 1024;
/// The health wait polls the new container's state this often.
pub const UPDATE_HEALTH_POLL_MS: u64 = 1_000;
/// `update_container`'s `stop_timeout` when the payload gives none (spec 3.3; not the 10 s of
/// `stop`/`restart`, `STOP_TIMEOUT_DEFAULT_S`). At most `STOP_TIMEOUT_MAX_S`.
pub const UPDATE_STOP_TIMEOUT_DEFAULT_S: u32 = 30;
/// `update_container`'s `health_timeout` when the payload gives none (spec 3.3; not the health
/// checks' `HEALTH_TIMEOUT_DEFAULT_S`).
pub const UPDATE_HEALTH_TIMEOUT_DEFAULT_S: u32 = 120;
/// Longest health wait accepted from the backend (`health_timeout`, default 120 s): its own wait for
/// `update_complete` is 300 s (spec 3.3).
pub const UPDATE_HEALTH_TIMEOUT_MAX_S: u32 = 600;
/// Container updates running at once (each holds an inspect, a plan and a pull stream for minutes);
/// DockMon's scheduled updates run one host's containers one after another, the UI one per click.
pub const UPDATES_IN_FLIGHT_MAX_COUNT: usize = 8;
/// Grace period of a container without a Docker healthcheck: min(this, half the health timeout)
/// (spec 3.8.1).
pub const UPDATE_GRACE_MAX_S: u32 = 30;
// ---- The DockMon session (issue 10, issue 11 D1-D3; `dockmon::session`, `modes::agent`) ------------

/// Opening the connection to DockMon (TCP, TLS and the upgrade) may take this long: the Go agent's
/// dialer (45 s). Not to be confused with `ENGINE_CONNECT_TIMEOUT_MS`, the Docker engine's 3 s.
pub const DOCKMON_CONNECT_TIMEOUT_MS: u64 = 45_000;
/// The register frame's answer must come within this (spec 2.7).
pub const AUTH_REPLY_TIMEOUT_MS: u64 = 10_000;
/// Every frame write to DockMon must finish within this (spec 2.2: 10 s write deadline).
pub const DOCKMON_WRITE_TIMEOUT_MS: u64 = 10_000;
/// The close frame at shutdown gets this long; the process exits either way.
pub const DOCKMON_CLOSE_TIMEOUT_MS: u64 = 2_000;
/// The agent pings this long after its last ping (spec 2.7).
pub const PING_INTERVAL_MS: u64 = 30_000;
/// A connection on which nothing (data or pong) arrived for this long is dead (spec 2.7: 30 s + 10 s).
pub const READ_DEADLINE_MS: u64 = 40_000;
/// A registered connection must stay up this long before the reconnect backoff starts over (issue 11
/// D1). Spec 2.8 resets it after every registration, so a server that closes right after
/// `auth_success` got ~3,100 registrations a minute; a minute up is a working connection (two pings
/// answered), and after it the agent reconnects at once as spec 2.8 asks.
pub const HEALTHY_SESSION_MS: u64 = 60_000;
/// Fewest milliseconds between the starts of two registered connections (issue 11 D1): even with a
/// tiny `RECONNECT_INITIAL`, no more than one registration a second.
pub const RECONNECT_MIN_GAP_MS: u64 = 1_000;
/// Reading the engine facts (`GET /info`) before dialling DockMon is retried from this delay (issue 11
/// D3)...
pub const FACTS_RETRY_INITIAL_MS: u64 = 1_000;
/// ...doubling to this one: a frozen dockerd costs one `/info` call (with its 10 s deadline) a
/// half-minute.
pub const FACTS_RETRY_MAX_MS: u64 = 30_000;
/// Host stats cadence (spec 4.4).
pub const HOST_STATS_INTERVAL_MS: u64 = 2_000;
/// Requests read from the socket and waiting for one of the `COMMANDS_IN_FLIGHT_MAX` workers (issue 11
/// D2). Past this (or past `COMMANDS_WAITING_MAX_BYTES`) the agent stops reading the socket until a
/// worker takes one (backpressure: the server's frames wait in the kernel and in TCP's window). Not
/// lower: while the socket is not read, neither are the server's pings, and a server whose pong
/// deadline passes (uvicorn: 20 s) drops the connection with every command on it; 1,000
/// `list_containers` at once (about 150 bytes each when waiting) must fit.
pub const COMMANDS_WAITING_MAX_COUNT: usize = 2048;
/// Bytes the waiting requests may hold together (their parsed form and payloads); past it the socket
/// is not read, so large payloads (the frame cap is 2 MiB) can't pile up. At least one request is
/// always admitted.
pub const COMMANDS_WAITING_MAX_BYTES: usize = 384 * 1024;
/// Large replies (`list_containers`: about 1.6 KiB per container, 160 KiB at 100) built at once. The
/// builder also waits until no reply is queued, so at most this many plus one being written are in
/// memory: 16 at once were 4.6 MB with 300 containers (issue 11 D2).
pub const LARGE_REPLIES_AT_ONCE_COUNT: usize = 1;
/// The default `stop`/`restart` grace period in seconds (spec 3.4: agent default 10).
pub const STOP_TIMEOUT_DEFAULT_S: u32 = 10;
/// Longest grace period accepted from the backend (its own timeout is `timeout + 20 s`).
pub const STOP_TIMEOUT_MAX_S: u32 = 3600;
/// Largest `get_logs` tail (spec 3.4: the backend clamps to 10000).
pub const LOGS_TAIL_MAX_LINES: u32 = 10_000;
// ---- Image, network and volume management (DockMon's Images, Networks and Volumes pages) ----------
//
// Measured on Docker 20.10.24 (API 1.41): `GET /images/json?all=1` is 250-400 bytes per image
// (more with labels and many tags), a `GET /volumes` entry about 220 bytes, a network inspect about
// 400-900 bytes plus about 180 per attached container; a prune report about 80 bytes per removed image
// reference and 70 per volume or network name. Past a cap the call fails with an error naming it
// (`docker::Error::Http`, body too large); nothing is read beyond it.

/// `GET /images/json?all=1`: 1 MiB is some 2500 images, intermediate build images included.
pub const IMAGES_BODY_MAX_BYTES: usize = 1024 * 1024;
/// `DELETE /images/{id}`: one `Untagged`/`Deleted` entry (about 80 bytes) per tag and layer image
/// removed; 64 KiB is 800 of them.
pub const IMAGE_REMOVE_BODY_MAX_BYTES: usize = 64 * 1024;
/// A prune report (images, networks, volumes): 1 MiB is some 12000 entries. The prune has happened
/// when its report is read, so this is far above what a host can produce.
pub const PRUNE_BODY_MAX_BYTES: usize = 1024 * 1024;
/// `GET /volumes`: 512 KiB is some 2300 volumes.
pub const VOLUMES_BODY_MAX_BYTES: usize = 512 * 1024;
/// `GET /networks/{id}`: 256 KiB holds well over 1000 attached containers.
pub const NETWORK_INSPECT_BODY_MAX_BYTES: usize = 256 * 1024;
/// Removing an image or a volume, pruning networks or volumes: dockerd deletes layers and data
/// before it answers, seconds on an SD card. DockMon waits 60 s for these (spec 3.3); our error
/// comes first.
pub const MANAGE_SLOW_TIMEOUT_MS: u64 = 50_000;
/// Pruning images: DockMon waits 120 s (spec 3.3); removing many layers on a Pi takes a while.
pub const IMAGES_PRUNE_TIMEOUT_MS: u64 = 110_000;
// ---- Web shell (spec 3.8.6) --------------------------------------------------------------------------

/// Answers of exec create (`{"Id":"…"}`, 70 bytes), resize (empty) and exec inspect (about 400 bytes).
pub const EXEC_BODY_MAX_BYTES: usize = 4 * 1024;
/// Shell sessions open at once. Each holds a Docker socket, one `SHELL_READ_BYTES` read buffer and its
/// base64 text (about 10 KiB with the frame), and a shell process in the container; a browser opens one
/// per terminal tab, and DockMon's UI shows one terminal at a time. The session past the cap gets an
/// `error` frame.
pub const SHELL_SESSIONS_MAX_COUNT: usize = 4;
/// One read of TTY output, sent as one `shell_data` frame: the spec's chunk size (spec 3.8.6, ≤ 4096).
pub const SHELL_READ_BYTES: usize = 4096;
/// A shell stops reading its TTY while the outbox holds this many event frames, and waits until the
/// writer drains it: output is slowed, never dropped (the outbox drops the oldest event when full).
/// Below the smallest board's `outbox_events_max` (64, rpi-zero-2w) minus one frame per session.
pub const SHELL_OUTBOX_EVENTS_HIGH_COUNT: usize = 32;
/// Keystroke and resize messages queued for one session. When full, further input is dropped with a
/// debug line: a browser that types faster than the container's TTY takes input is pasting, and the
/// TTY itself would block it.
pub const SHELL_INPUT_QUEUE_MAX_COUNT: usize = 64;
/// Longest `session_id` kept (DockMon sends UUIDs, 36 characters).
pub const SHELL_SESSION_ID_MAX_BYTES: usize = 64;
/// After a session closes, how long its exec may take to end (the shell gets SIGHUP when its stdin
/// closes) before the agent reports it still running.
pub const SHELL_EXIT_CHECK_MS: u64 = 3_000;
/// How often the exit check asks Docker within `SHELL_EXIT_CHECK_MS`.
pub const SHELL_EXIT_POLL_MS: u64 = 100;
/// A keystroke write to the TTY that takes longer ends the session: a shell that reads nothing for
/// this long is stuck, and the write would hold up `close`.
pub const SHELL_WRITE_TIMEOUT_MS: u64 = 10_000;

// ---- Stats-service dual-send (spec 4.5) ----------------------------------------------------------

/// Sample frames waiting for the ingest socket: the Go agent's channel size (spec 4.5). A frame is
/// about 330 bytes, so a full queue holds about 85 KiB. When full, the new sample is dropped.
pub const INGEST_QUEUE_MAX_COUNT: usize = 256;
/// First reconnect delay (spec 4.5); it doubles up to `INGEST_RETRY_MAX_MS` and never resets.
pub const INGEST_RETRY_INITIAL_MS: u64 = 1_000;
/// Longest reconnect delay (spec 4.5).
pub const INGEST_RETRY_MAX_MS: u64 = 30_000;
/// Every frame write must finish within this (the main socket's deadline, spec 2.2).
pub const INGEST_WRITE_TIMEOUT_MS: u64 = 10_000;
/// Connecting and the upgrade (the Go dialer's handshake timeout, spec 2.2), as for the main socket.
pub const INGEST_CONNECT_TIMEOUT_MS: u64 = 45_000;
/// Sent frames' buffers kept for reuse: one round of samples of a typical host; a full queue's worth
/// would keep 85 KiB for nothing.
pub const INGEST_POOL_MAX_COUNT: usize = 32;
// ---- Drop-in install: privilege drop, proxies, tcp:// engines (issue 12) ---------------------------

/// Entries of `DATA_PATH` handed to the unprivileged uid when the image drops root (src/privilege.rs).
/// A Go agent leaves `permanent_token`, `update.lock`, `cleanup.json` and `stacks/` (a few files per
/// compose project); 10 000 covers hundreds of projects while bounding the walk on a mistaken
/// `DATA_PATH=/`.
pub const DATA_TAKEOVER_MAX_ENTRIES: usize = 10_000;
/// A proxy's answer to `CONNECT` (src/proxy.rs): a status line and a few headers (`Proxy-Agent`,
/// `Date`); squid's and tinyproxy's are under 200 bytes. Held on the stack while connecting.
pub const PROXY_ANSWER_MAX_BYTES: usize = 2 * 1024;
// ---- Event following and the sampler's repair (issue 10 item 6) ----------------------------------------

/// Pause before re-subscribing when Docker's event stream ends or fails (the Go agent never does): one
/// second keeps a restarting dockerd from being hammered while losing at most a second of events.
pub const EVENTS_RETRY_MS: u64 = 1_000;
/// The sampler re-lists running containers this often to repair drift (events are the normal way its
/// table follows the engine; a start dropped from a full change queue is repaired here).
pub const SAMPLER_RELIST_INTERVAL_MS: u64 = 60_000;

// ---- Agent-side HTTP health checks (spec 3.6) ------------------------------------------------------

/// Health-check configs held at once. DockMon keys agent-side checks by container, so a host has at
/// most one per container; 256 covers every container a small host runs, at about 300 bytes each in
/// the compact form (`dockmon::health::config`). The config past the cap is refused with one warning.
pub const HEALTH_CHECKS_MAX_COUNT: usize = 256;
/// Checks running at once. Each holds a socket, a `CONN_BUF_BYTES` read buffer, a request head and its
/// task and its result frame (about 9 KB together, measured); HTTPS ones are capped lower
/// (`HEALTH_TLS_IN_FLIGHT_MAX_COUNT`). Due checks past the cap wait for a slot. With 20 checks due
/// together (tests/protocol_health_memory.rs) 8 in flight grew the heap high-water by 110 KB and 6 by
/// 87 KB, more than the 79 KB the 100-container figures of issue #4 leave; 4 fit. The price: a slow
/// target holds a slot for its whole timeout (up to 60 s), so four hung targets delay the others by
/// as much; 200 fast checks at a 10 s interval (20 a second) still finish in milliseconds each.
pub const HEALTH_IN_FLIGHT_MAX_COUNT: usize = 4;
/// HTTPS checks among those running at once. A rustls client connection adds about 13 KB while it
/// handshakes (record buffers, the certificate chain, the transcript): 20 checks, 10 of them HTTPS,
/// due together grew the heap high-water by 160 KB with all 8 slots open to HTTPS, so HTTPS checks
/// queue behind 2.
pub const HEALTH_TLS_IN_FLIGHT_MAX_COUNT: usize = 2;
/// Longest check URL kept (and longest redirect target followed). DockMon's UI takes any URL; 2 KiB is
/// what browsers and proxies reliably pass.
pub const HEALTH_URL_MAX_BYTES: usize = 2 * 1024;
/// The user's extra headers (`headers_json`), rendered as `Name: value` lines. A request head stays well
/// under what servers accept (8 KiB in nginx and Go).
pub const HEALTH_HEADERS_MAX_BYTES: usize = 4 * 1024;
/// Extra headers per check: a stack array of name/value pairs is handed to the request writer.
pub const HEALTH_HEADER_MAX_COUNT: usize = 16;
/// Entries of an expected-status list (`200,201,204`, `200-299`): a few codes or ranges in practice.
pub const HEALTH_STATUS_RANGES_MAX_COUNT: usize = 16;
/// Redirects followed before the check fails: Go's `http.Client` default (10), which the Go agent uses.
pub const HEALTH_REDIRECTS_MAX_COUNT: usize = 10;
/// A check's timeout when the config gives none (`timeout_seconds` <= 0, spec 3.6.1).
pub const HEALTH_TIMEOUT_DEFAULT_S: u32 = 10;
/// Longest check timeout: DockMon's UI allows 5-60 s (spec 3.6.1); a larger value only holds a slot.
pub const HEALTH_TIMEOUT_MAX_S: u32 = 60;
/// Longest check interval: DockMon's UI allows 10-3600 s (spec 3.6.1).
pub const HEALTH_INTERVAL_MAX_S: u32 = 3_600;
/// The scheduler's tick: the Go agent's 1 s ticker (spec 3.6.1), which is also the shortest interval.
pub const HEALTH_TICK_MS: u64 = 1_000;
/// Response body read and dropped after the status line, so the server sees a clean close; the rest of
/// a larger body is left unread (the socket is closed, the status is already known).
pub const HEALTH_BODY_MAX_BYTES: usize = 64 * 1024;
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
/// Most of `/proc/self/mountinfo` read to discover `HOST_STACKS_DIR` (a line is ~150 bytes; a
/// container sees tens of mounts, a Kubernetes node a few thousand); lines past it are ignored.
pub const COMPOSE_MOUNTINFO_MAX_BYTES: usize = 1024 * 1024;
/// Longest mountinfo line read whole when the file is streamed for `HOST_STACKS_DIR` (a line is
/// a mount's IDs, root, mount point, options and source: a few hundred bytes; overlay's lower-dir
/// lists are the long ones).
pub const COMPOSE_MOUNTINFO_LINE_MAX_BYTES: usize = 8 * 1024;

// ---- Self-update (issue 15, spec 1.2, 3.8.3) --------------------------------------------------------

/// `cleanup.json`: five container IDs and names, well under 1 KiB; a bigger file is not ours.
pub const SELF_UPDATE_CLEANUP_MAX_BYTES: usize = 4 * 1024;
/// How long the new agent container may take to be healthy (spec 3.8.3: 60 s limit).
pub const SELF_UPDATE_HEALTH_TIMEOUT_S: u64 = 60;
/// Without a Docker healthcheck, running this long counts as up (spec 3.8.3: 5 s).
pub const SELF_UPDATE_NO_HEALTHCHECK_S: u64 = 5;
/// Grace period the new agent gives the old one's stop: it is idle (its loop was retired or it is
/// about to be), so a short one.
pub const SELF_UPDATE_OLD_STOP_S: u32 = 10;
/// Pause between the `complete` progress event and closing the connection, so the outbox writes it.
pub const SELF_UPDATE_RETIRE_DELAY_MS: u64 = 500;

// ---- The cgroup source's kept files (issue 18) -----------------------------------------------------

/// File descriptors the cgroup source keeps open between samples, at most (`sampler::source::cgroup`
/// keeps each container's cgroup files and `net/dev` open and re-reads them with `pread`). A container
/// takes 7 (8 on a cgroup v1 kernel with CFQ); 4,096 covers a 512-container table at 8 each. Each kept
/// file also holds about 4.5 KiB of kernel memory (its `struct file` and `seq_file` page). Past this, or
/// past the soft `RLIMIT_NOFILE` less [`FD_RESERVE_COUNT`], containers are sampled by open, read, close.
pub const CGROUP_KEPT_FILES_MAX_COUNT: usize = 4_096;
/// File descriptors the cgroup source leaves free under the soft `RLIMIT_NOFILE` for everything else:
/// the Docker connection pool (`IDLE_CONN_MAX_COUNT`), the DockMon connection, shell sessions, compose,
/// health checks, the reactor's epoll and timer descriptors, logs. 256 is several times what a busy agent
/// holds (`ls /proc/<pid>/fd` of an agent at 100 containers with the Docker source: about 20).
pub const FD_RESERVE_COUNT: usize = 256;

// ---- Native (systemd) self-update (issue 15, spec 3.8.3; `dockmon::selfupdate::native`) --------------

/// Largest release binary downloaded. Ours are about 2 MB (stripped, static); 16 MiB leaves room to
/// grow while a wrong `SELF_UPDATE_URL` cannot fill the disk next to the executable.
pub const SELF_UPDATE_BINARY_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Largest `SHA256SUMS` read (into memory): three lines of about 90 bytes in our releases.
pub const SELF_UPDATE_SUMS_MAX_BYTES: usize = 16 * 1024;
/// The whole download (redirects, both files) must finish within this (spec 3.8.3: 5 min timeout).
pub const SELF_UPDATE_DOWNLOAD_TIMEOUT_MS: u64 = 300_000;
/// Redirects followed per file: GitHub answers a release asset with one (to its object store).
pub const SELF_UPDATE_REDIRECTS_MAX_COUNT: usize = 5;
/// Read buffer of the download, allocated for the download only. Holds a whole response head
/// (`HEAD_MAX_BYTES`; GitHub's redirect heads carry a signed URL of about 1 KB).
pub const SELF_UPDATE_READ_BYTES: usize = 16 * 1024;
/// The new binary must be registered with DockMon within this after its start, or it exits and the
/// next start (systemd restarts it 10 s later) goes back to the old binary. DockMon itself gives up
/// on the update after 300 s; 120 s leave time for the restart back and the old agent's reconnect.
pub const SELF_UPDATE_TRIAL_CONNECT_S: u64 = 120;
/// `update.lock`: a version, two paths and a checksum, well under 1 KiB; a bigger file is not ours.
pub const SELF_UPDATE_LOCK_MAX_BYTES: usize = 4 * 1024;

// ---- Fault matrix (issue 17) -------------------------------------------------------------------------

/// A permanent token that could not be written (read-only or full `DATA_PATH`) is written again
/// this often until it succeeds: a small file, so retrying costs nothing, and a fixed disk is
/// caught within seconds.
pub const TOKEN_STORE_RETRY_MS: u64 = 10_000;

// ---- Cheap cgroup samples (issue 18) -----------------------------------------------------------------

/// The cgroup source takes every sample that falls due within this window in one wake (the interval
/// when shorter): one timer, one `/proc/stat` read and one run of socket writes per batch instead of
/// per sample. At most 1 s, the budget's token bucket depth, so no token is lost between wakes; a
/// sample is at most this late, and the next visit stays one interval after the due time.
pub const SAMPLER_BATCH_MS: u64 = 1_000;
/// Within a batch, the sampler lets the socket writers run after this many samples: the frames
/// queued meanwhile fit the outbox's spare buffers (`OUTBOX_SPARE_MAX`) and about one 4 KiB write,
/// so a batch adds no heap and still costs one write per several frames.
pub const SAMPLER_BATCH_YIELD_COUNT: usize = 8;
/// The cgroup source reads a container's memory limit file every this many samples (and after a
/// Docker `update` event, which is how a limit changes); the samples between reuse the last value.
/// 12 is a minute at the default 5 s interval: a limit written behind Docker's back shows within it.
pub const CGROUP_LIMIT_REREAD_SAMPLES: u8 = 12;
