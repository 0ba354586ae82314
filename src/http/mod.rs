//! HTTP/1.1 wire format and one client connection. Knows nothing of Docker.
