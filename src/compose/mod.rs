//! Compose stacks (spec 3.8.4, 3.8.5; issue 16): a strict subset of the compose specification,
//! deployed over our own Docker client with compose's own labels, so the host's compose CLI and
//! DockMon's stack grouping recognise the stacks.
//!
//! - [`yaml`]: the file → a bounded tree (size, depth, alias expansion), pure.
//! - [`interp`]: `${VAR}` interpolation and env files, pure.
//! - [`model`]: tree → [`model::Project`], every unsupported key refused by name and line, pure.
//! - [`plan`]: a service → Docker's create body and its config hash, pure.
//! - [`up`]: the Docker calls of `up`, `down` and `restart`, reporting stages through a callback.
//! - [`scan`]: `scan_compose_dirs` and `read_compose_file` over the local file system.
pub mod interp;
pub mod model;
pub mod plan;
pub mod scan;
pub mod up;
pub mod yaml;
