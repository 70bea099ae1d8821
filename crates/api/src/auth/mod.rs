//! Who is calling and what they may do.
//!
//! Every request carries `X-Auth-Token`; an [`Authenticator`] turns it into a [`Caller`]
//! (project and roles): from a static token file for the embedded default, or from
//! Keystone v3 for a cloud. What each role may do is decided in one place, the
//! `caller` module ([`Caller::may`]); the table is in docs/API.md.

mod caller;
pub mod keystone;
pub mod static_tokens;

pub use caller::{Action, Caller, ADMIN_ROLES, CREATOR_ROLE, OBSERVER_ROLES};

use crate::error::ApiResult;

/// Turns a token into a caller.
pub enum Authenticator {
    /// Tokens from a file (the embedded default).
    Static(static_tokens::StaticTokens),
    /// Keystone v3 validation.
    Keystone(std::sync::Arc<keystone::Keystone>),
}

impl Authenticator {
    /// Validates `token`; 401 when it is not accepted, 503 when the identity service
    /// cannot be reached.
    pub async fn authenticate(&self, token: &str) -> ApiResult<Caller> {
        match self {
            Authenticator::Static(s) => s.lookup(token),
            Authenticator::Keystone(k) => {
                let mut c = k.validate(token).await?;
                c.token = Some(token.to_string());
                Ok(c)
            }
        }
    }
}
