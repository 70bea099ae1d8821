//! cloudimg ova crate (being built).
