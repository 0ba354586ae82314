//! argv → `Command`, and the help texts.
