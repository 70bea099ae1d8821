//! The HTTP layer: extractors, one module of thin handlers per resource, and the router.
//! Handlers extract, call [`crate::service`], and serialize.

pub mod extract;
pub mod images;
pub mod members;
pub mod meta;
pub mod router;
pub mod tasks;

pub use router::router;
