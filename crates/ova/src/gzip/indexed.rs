//! Indexed multi-member gzip (being built).
