//! Who may change which attribute, and who may see which image: Glance's rules with Cloud
//! Images' on top (private by default, `com.rackspace*` properties closed to customers,
//! only customer-admin roles set properties). Pure functions over a [`Caller`].

use super::image::{self, Image};
use crate::auth::{Action, Caller};
use crate::error::{ApiError, ApiResult};
use serde_json::Value;

/// Checks that `caller` may set (or remove) attribute `key` of `img` to `value`.
pub fn check_attribute(
    caller: &Caller,
    img: &Image,
    key: &str,
    value: Option<&Value>,
) -> ApiResult<()> {
    if image::READ_ONLY.contains(&key) || key == "owner" {
        return Err(ApiError::forbidden(format!(
            "Attribute '{key}' is read-only."
        )));
    }
    if image::RESERVED.contains(&key) {
        return Err(ApiError::forbidden(format!(
            "Attribute '{key}' is reserved."
        )));
    }
    if image::is_protected_property(key) {
        return Err(ApiError::forbidden(format!(
            "Property '{key}' is protected: properties starting with '{}' carry licensing and \
             billing and cannot be created, changed or removed by customers",
            image::PROTECTED_PREFIX
        )));
    }
    match key {
        "name" | "tags" | "min_disk" | "min_ram" | "os_hidden" | "protected" => {
            caller.may(Action::Write)
        }
        "disk_format" | "container_format" => {
            caller.may(Action::Write)?;
            if img.status != image::status::QUEUED {
                return Err(ApiError::forbidden(format!(
                    "Attribute '{key}' can be only replaced for a queued image (this one is {})",
                    img.status
                )));
            }
            Ok(())
        }
        "visibility" => {
            caller.may(Action::Write)?;
            match value.and_then(Value::as_str) {
                Some("public") | Some("community") => Err(ApiError::forbidden(
                    "Only the cloud operator may make an image public or community; share it with \
                     accounts through members instead",
                )),
                _ => Ok(()),
            }
        }
        _ => caller.may(Action::SetProperties),
    }
}

/// Whether `caller` may see `img` at all (GET by id): public and community images, its own,
/// and shared images it is a member of (in any member status; lists show only accepted
/// ones by default). `member_status` is the caller's membership, if any.
pub fn can_see(caller: &Caller, img: &Image, member_status: Option<&str>) -> bool {
    img.owner == caller.project_id
        || img.visibility == "public"
        || img.visibility == "community"
        || (img.visibility == "shared" && member_status.is_some())
}

/// Requires that `caller` owns `img`: 404 when it cannot even see it, 403 otherwise.
pub fn require_owner(caller: &Caller, img: &Image, visible: bool, what: &str) -> ApiResult<()> {
    if img.owner == caller.project_id {
        Ok(())
    } else if visible {
        Err(ApiError::forbidden(format!(
            "Only the owner of image {} may {what}",
            img.id
        )))
    } else {
        Err(ApiError::no_image(&img.id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attribute_rules() {
        let admin = Caller::new("p", &["admin"]);
        let creator = Caller::new("p", &["cloudImages:creator"]);
        let mut img = Image::new("i".into(), "p");
        let e = check_attribute(&admin, &img, "com.rackspace__1__options", Some(&json!("1")))
            .unwrap_err();
        assert!(matches!(e, ApiError::Forbidden(_)));
        assert!(e.to_string().contains("com.rackspace__1__options"));
        assert!(matches!(
            check_attribute(&admin, &img, "status", None),
            Err(ApiError::Forbidden(_))
        ));
        assert!(check_attribute(&creator, &img, "name", Some(&json!("n"))).is_ok());
        assert!(check_attribute(&creator, &img, "os_distro", Some(&json!("ubuntu"))).is_err());
        assert!(check_attribute(&admin, &img, "os_distro", Some(&json!("ubuntu"))).is_ok());
        assert!(check_attribute(&admin, &img, "visibility", Some(&json!("public"))).is_err());
        assert!(check_attribute(&admin, &img, "visibility", Some(&json!("shared"))).is_ok());
        img.status = "active".into();
        assert!(check_attribute(&admin, &img, "disk_format", Some(&json!("vhd"))).is_err());
    }

    #[test]
    fn visibility() {
        let c = Caller::new("c", &["admin"]);
        let mut img = Image::new("i".into(), "p");
        assert!(
            !can_see(&c, &img, Some("accepted")),
            "private ignores members"
        );
        img.visibility = "shared".into();
        assert!(can_see(&c, &img, Some("pending")));
        assert!(!can_see(&c, &img, None));
        img.visibility = "public".into();
        assert!(can_see(&c, &img, None));
    }
}
