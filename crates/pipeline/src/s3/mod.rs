//! S3 backend (being written).
use crate::error::{Error, Result};
/// S3 store.
#[derive(Debug)]
pub struct S3Store;
impl S3Store {
    /// From env.
    pub fn from_env() -> Result<crate::local::LocalStore> { Err(Error::usage("s3", "not yet")) }
}
