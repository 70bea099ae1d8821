//! cloudimg pipeline crate (being built).
