//! The authenticated caller (project, roles) and the one table of what each role may
//! do ([`Caller::may`]). Both authenticators (static tokens, Keystone) make callers and
//! [`super::Authenticator`] hands them out, so the caller sits below all three.

use crate::error::{ApiError, ApiResult};
use std::collections::BTreeSet;

/// Customer-admin roles: full control of the account's images.
pub const ADMIN_ROLES: [&str; 3] = ["identity:user-admin", "admin", "cloudImages:admin"];
/// May create images, upload data, tag, rename; not delete, share or set properties.
pub const CREATOR_ROLE: &str = "cloudImages:creator";
/// Read-only roles.
pub const OBSERVER_ROLES: [&str; 2] = ["observer", "cloudImages:observer"];

/// An authenticated caller.
#[derive(Clone, PartialEq, Eq)]
pub struct Caller {
    /// The project (Rackspace account) the token is scoped to.
    pub project_id: String,
    /// Role names from the token.
    pub roles: BTreeSet<String>,
    /// The Keystone user (Keystone only).
    pub user_id: Option<String>,
    /// The caller's own token (Keystone only): what a task's trust is created with.
    pub token: Option<String>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("Caller")
            .field("project_id", &self.project_id)
            .field("roles", &self.roles)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// What a request wants to do; [`Caller::may`] says whether its roles allow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// List, show, download, read members and schemas.
    Read,
    /// Create an image, upload its data, tag it, change its name and core attributes.
    Write,
    /// Create, change or remove custom properties.
    SetProperties,
    /// Delete, deactivate or reactivate an image.
    Delete,
    /// Add or remove members (producer side).
    Share,
    /// Accept or reject an image shared with the caller (consumer side).
    AnswerShare,
    /// Create tasks.
    CreateTask,
}

impl Action {
    fn describe(self) -> &'static str {
        match self {
            Action::Read => "read images",
            Action::Write => "create or change images",
            Action::SetProperties => "set image properties",
            Action::Delete => "delete, deactivate or reactivate images",
            Action::Share => "share images",
            Action::AnswerShare => "accept or reject shared images",
            Action::CreateTask => "create tasks",
        }
    }
}

impl Caller {
    /// A caller in `project` with `roles`.
    pub fn new(project: impl Into<String>, roles: &[&str]) -> Caller {
        Caller {
            project_id: project.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            user_id: None,
            token: None,
        }
    }

    fn has_any(&self, roles: &[&str]) -> bool {
        roles.iter().any(|r| self.roles.contains(*r))
    }

    /// True when one of the caller's roles is a customer-admin role.
    pub fn is_admin(&self) -> bool {
        self.has_any(&ADMIN_ROLES)
    }

    /// Whether the caller's roles allow `action` (ownership is checked elsewhere).
    pub fn allowed(&self, action: Action) -> bool {
        let admin = self.is_admin();
        let creator = self.roles.contains(CREATOR_ROLE);
        let observer = self.has_any(&OBSERVER_ROLES);
        match action {
            Action::Read => admin || creator || observer,
            Action::Write | Action::AnswerShare => admin || creator,
            Action::SetProperties | Action::Delete | Action::Share | Action::CreateTask => admin,
        }
    }

    /// `Ok` when allowed, else 403 naming what is refused.
    pub fn may(&self, action: Action) -> ApiResult<()> {
        if self.allowed(action) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "Your roles ({}) do not allow you to {}",
                if self.roles.is_empty() {
                    "none".to_string()
                } else {
                    self.roles.iter().cloned().collect::<Vec<_>>().join(", ")
                },
                action.describe()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_table() {
        let admin = Caller::new("p", &["cloudImages:admin"]);
        let creator = Caller::new("p", &["cloudImages:creator"]);
        let observer = Caller::new("p", &["observer"]);
        let nobody = Caller::new("p", &["member"]);
        for a in [
            Action::Read,
            Action::Write,
            Action::SetProperties,
            Action::Delete,
            Action::Share,
            Action::AnswerShare,
            Action::CreateTask,
        ] {
            assert!(admin.allowed(a), "{a:?}");
            assert!(!nobody.allowed(a), "{a:?}");
        }
        assert!(creator.allowed(Action::Write));
        assert!(!creator.allowed(Action::SetProperties));
        assert!(!creator.allowed(Action::Delete));
        assert!(observer.allowed(Action::Read));
        assert!(!observer.allowed(Action::Write));
        let e = observer.may(Action::Write).unwrap_err();
        assert!(e.to_string().contains("observer"), "{e}");
    }
}
