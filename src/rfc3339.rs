//! Time stamps (RFC 3339) formatted into stack buffers.
