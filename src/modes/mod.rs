//! The drivers: they own timers and wire the layers together.
