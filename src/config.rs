//! Environment → `Config` for the agent mode (DockMon spec section 1.1). Pure: takes the variables as a map.
