//! WebSocket wire format (RFC 6455, client side). Owned by the protocol work; see the submodules.
