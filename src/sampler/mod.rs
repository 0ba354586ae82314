//! Container stats sampling under a budget: [`budget`] (calls in flight and per second, and the
//! [`Plan`](budget::Plan) they give a number of containers), [`table`] (the fixed round-robin container
//! table), [`source`] (the Docker API or cgroup files) and [`driver`] (the loop that runs them for
//! every mode).
use core::fmt;

pub mod budget;
pub mod driver;
pub mod source;
pub mod table;

/// Why one reading failed: the source's own error.
#[derive(Debug)]
pub enum Error {
    /// The Docker stats call failed.
    Docker(crate::docker::Error),
    /// Reading the cgroup files failed.
    Cgroup(source::cgroup::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Docker(e) => write!(f, "{e}"),
            Error::Cgroup(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Docker(e) => Some(e),
            Error::Cgroup(e) => Some(e),
        }
    }
}
