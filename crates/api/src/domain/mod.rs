//! The rules of the service, apart from HTTP and SQL: the image model and its attribute
//! rules, visibility and ownership, Glance's PATCH, and list queries.

pub mod image;
pub mod inspect;
pub mod list;
pub mod patch;
pub mod rules;
