//! Container stats sampling under a budget: [`budget`] (calls in flight and per second), [`table`]
//! (the fixed round-robin container table), [`source`] (the Docker API or cgroup files).
pub mod budget;
pub mod source;
pub mod table;
