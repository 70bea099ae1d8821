//! The image as the API shows it, and the rules about its attributes: which are core
//! (columns), which are read-only or reserved, which values are allowed. Pure data and
//! functions: no HTTP, no SQL.

use crate::clock;
use crate::error::{ApiError, ApiResult};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Image statuses (Glance's).
pub mod status {
    /// Record exists, no data.
    pub const QUEUED: &str = "queued";
    /// Data being uploaded.
    pub const SAVING: &str = "saving";
    /// Data present and usable.
    pub const ACTIVE: &str = "active";
    /// An upload or import failed for good.
    pub const KILLED: &str = "killed";
    /// Data present, download refused to non-admins.
    pub const DEACTIVATED: &str = "deactivated";
}

/// Disk formats Glance accepts.
pub const DISK_FORMATS: [&str; 11] = [
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];
/// Container formats Glance accepts.
pub const CONTAINER_FORMATS: [&str; 8] = [
    "ami",
    "ari",
    "aki",
    "bare",
    "ovf",
    "ova",
    "docker",
    "compressed",
];
/// Values of `os_distro` the Cloud Images docs allow.
pub const OS_DISTROS: [&str; 19] = [
    "arch",
    "centos",
    "debian",
    "fedora",
    "freebsd",
    "gentoo",
    "mandrake",
    "mandriva",
    "mes",
    "msdos",
    "netbsd",
    "netware",
    "openbsd",
    "opensolaris",
    "opensuse",
    "rhel",
    "sled",
    "ubuntu",
    "windows",
];
/// Prefix of the properties that carry licensing and billing: customers cannot touch them.
pub const PROTECTED_PREFIX: &str = "com.rackspace";
/// Most custom properties on one image (Glance's `image_property_quota`).
pub const PROPERTY_QUOTA: usize = 128;
/// Most tags on one image (Glance's `image_tag_quota`).
pub const TAG_QUOTA: usize = 128;
/// Longest tag, in Unicode characters.
pub const TAG_MAX_CHARS: usize = 255;
/// Longest name and property value, in characters.
pub const VALUE_MAX_CHARS: usize = 255;

/// Attributes the API computes; nobody sets them.
pub const READ_ONLY: [&str; 14] = [
    "id",
    "status",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "created_at",
    "updated_at",
    "file",
    "self",
    "schema",
    "direct_url",
    "locations",
];
/// Attributes Glance keeps for itself.
pub const RESERVED: [&str; 5] = ["deleted", "deleted_at", "owner_id", "location", "stores"];
/// Core attributes a writer may change (besides custom properties).
pub const WRITABLE_CORE: [&str; 9] = [
    "name",
    "visibility",
    "protected",
    "disk_format",
    "container_format",
    "min_disk",
    "min_ram",
    "os_hidden",
    "tags",
];

/// An image: its columns, custom properties and tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// UUID text.
    pub id: String,
    /// Name (may be unset).
    pub name: Option<String>,
    /// Owning project.
    pub owner: String,
    /// See [`status`].
    pub status: String,
    /// private | public | shared | community.
    pub visibility: String,
    /// Deletion refused while true.
    pub protected: bool,
    /// Hidden from default lists.
    pub os_hidden: bool,
    /// Disk format.
    pub disk_format: Option<String>,
    /// Container format.
    pub container_format: Option<String>,
    /// Bytes of data.
    pub size: Option<i64>,
    /// Virtual disk size.
    pub virtual_size: Option<i64>,
    /// MD5 hex of the data.
    pub checksum: Option<String>,
    /// `sha512` once data is stored.
    pub os_hash_algo: Option<String>,
    /// Hex digest of the data.
    pub os_hash_value: Option<String>,
    /// Minimum disk (GB).
    pub min_disk: i64,
    /// Minimum RAM (MB).
    pub min_ram: i64,
    /// Stored timestamp.
    pub created_at: String,
    /// Stored timestamp.
    pub updated_at: String,
    /// Bumped by every change; updates are fenced on it.
    pub version: i64,
    /// Custom properties.
    pub properties: BTreeMap<String, String>,
    /// Tags, sorted.
    pub tags: Vec<String>,
}

impl Image {
    /// A new queued image owned by `owner`.
    pub fn new(id: String, owner: &str) -> Image {
        let now = clock::now();
        Image {
            id,
            name: None,
            owner: owner.to_string(),
            status: status::QUEUED.to_string(),
            visibility: "private".to_string(),
            protected: false,
            os_hidden: false,
            disk_format: None,
            container_format: None,
            size: None,
            virtual_size: None,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            min_disk: 0,
            min_ram: 0,
            created_at: now.clone(),
            updated_at: now,
            version: 0,
            properties: BTreeMap::new(),
            tags: Vec::new(),
        }
    }

    /// The Glance v2 JSON document as a value (see the `Serialize` impl, which the
    /// handlers use to write it without building the value).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Sets core attribute or custom property `key` from a JSON value, validating it.
    /// Permission and read-only checks are the caller's; this checks types and values.
    pub fn set(&mut self, key: &str, value: &Value) -> ApiResult<()> {
        match key {
            "name" => self.name = opt_string(key, value)?,
            "visibility" => {
                let v = string(key, value)?;
                if !["private", "public", "shared", "community"].contains(&v.as_str()) {
                    return Err(ApiError::bad(format!(
                        "Invalid visibility value: {v} (allowed: private, shared, public, community)"
                    )));
                }
                self.visibility = v;
            }
            "protected" => self.protected = boolean(key, value)?,
            "os_hidden" => self.os_hidden = boolean(key, value)?,
            "disk_format" => self.disk_format = enum_value(key, value, &DISK_FORMATS)?,
            "container_format" => {
                self.container_format = enum_value(key, value, &CONTAINER_FORMATS)?
            }
            "min_disk" => self.min_disk = non_negative(key, value)?,
            "min_ram" => self.min_ram = non_negative(key, value)?,
            "tags" => {
                let arr = value
                    .as_array()
                    .ok_or_else(|| ApiError::bad("Attribute 'tags' must be a list of strings"))?;
                let mut tags = Vec::new();
                for t in arr {
                    let t = t.as_str().ok_or_else(|| {
                        ApiError::bad("Attribute 'tags' must be a list of strings")
                    })?;
                    check_tag(t)?;
                    tags.push(t.to_string());
                }
                tags.sort();
                tags.dedup();
                if tags.len() > TAG_QUOTA {
                    return Err(ApiError::TooLarge(format!(
                        "Maximum number of tags exceeded: {} (the limit is {TAG_QUOTA})",
                        tags.len()
                    )));
                }
                self.tags = tags;
            }
            _ => {
                let v = match value {
                    Value::String(s) => s.clone(),
                    _ => {
                        return Err(ApiError::bad(format!(
                            "Property '{key}' must be a string (custom properties are strings)"
                        )))
                    }
                };
                check_property(key, &v)?;
                self.properties.insert(key.to_string(), v);
                if self.properties.len() > PROPERTY_QUOTA {
                    return Err(ApiError::TooLarge(format!(
                        "Maximum number of properties exceeded: the limit is {PROPERTY_QUOTA}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Whether `key` is present (a set core attribute or an existing property).
    pub fn has(&self, key: &str) -> bool {
        match key {
            "name" => self.name.is_some(),
            "disk_format" => self.disk_format.is_some(),
            "container_format" => self.container_format.is_some(),
            k if WRITABLE_CORE.contains(&k) => true,
            k => self.properties.contains_key(k),
        }
    }
}

/// Writes the Glance v2 document straight into the response: custom properties at the
/// top level beside the core attributes (unset ones as null, as Glance shows them). A
/// list page serializes 25 of these, so no intermediate `Value` map is built.
impl Serialize for Image {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(CORE_FIELDS + self.properties.len()))?;
        for (k, v) in &self.properties {
            if !is_core_field(k) {
                m.serialize_entry(k, v)?;
            }
        }
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("owner", &self.owner)?;
        m.serialize_entry("status", &self.status)?;
        m.serialize_entry("visibility", &self.visibility)?;
        m.serialize_entry("protected", &self.protected)?;
        m.serialize_entry("os_hidden", &self.os_hidden)?;
        m.serialize_entry("disk_format", &self.disk_format)?;
        m.serialize_entry("container_format", &self.container_format)?;
        m.serialize_entry("size", &self.size)?;
        m.serialize_entry("virtual_size", &self.virtual_size)?;
        m.serialize_entry("checksum", &self.checksum)?;
        m.serialize_entry("os_hash_algo", &self.os_hash_algo)?;
        m.serialize_entry("os_hash_value", &self.os_hash_value)?;
        m.serialize_entry("min_disk", &self.min_disk)?;
        m.serialize_entry("min_ram", &self.min_ram)?;
        m.serialize_entry("tags", &self.tags)?;
        let mut stamp = [0u8; clock::SHOWN];
        m.serialize_entry("created_at", clock::show_in(&self.created_at, &mut stamp))?;
        let mut stamp = [0u8; clock::SHOWN];
        m.serialize_entry("updated_at", clock::show_in(&self.updated_at, &mut stamp))?;
        // Plain concatenations: formatting machinery was a visible share of a list page.
        let link = ["/v2/images/", self.id.as_str(), "/file"].concat();
        m.serialize_entry("file", &link)?;
        m.serialize_entry("self", &link[..link.len() - "/file".len()])?;
        m.serialize_entry("schema", "/v2/schemas/image")?;
        m.end()
    }
}

/// Number of entries the document always has.
const CORE_FIELDS: usize = 22;

/// Whether `k` is one of the document's own entries (a property of that name, which the
/// rules never let in, would otherwise appear twice).
fn is_core_field(k: &str) -> bool {
    matches!(
        k,
        "id" | "name"
            | "owner"
            | "status"
            | "visibility"
            | "protected"
            | "os_hidden"
            | "disk_format"
            | "container_format"
            | "size"
            | "virtual_size"
            | "checksum"
            | "os_hash_algo"
            | "os_hash_value"
            | "min_disk"
            | "min_ram"
            | "tags"
            | "created_at"
            | "updated_at"
            | "file"
            | "self"
            | "schema"
    )
}

/// Validates a custom property's name and value.
pub fn check_property(key: &str, value: &str) -> ApiResult<()> {
    if key.is_empty() || key.chars().count() > VALUE_MAX_CHARS {
        return Err(ApiError::bad(format!(
            "Property names must have 1 to {VALUE_MAX_CHARS} characters"
        )));
    }
    if value.chars().count() > VALUE_MAX_CHARS {
        return Err(ApiError::bad(format!(
            "Property '{key}' is longer than {VALUE_MAX_CHARS} characters"
        )));
    }
    if key == "os_distro" && !OS_DISTROS.contains(&value) {
        return Err(ApiError::bad(format!(
            "Invalid os_distro '{value}': use one of {}",
            OS_DISTROS.join(", ")
        )));
    }
    Ok(())
}

/// Validates a tag.
pub fn check_tag(tag: &str) -> ApiResult<()> {
    let n = tag.chars().count();
    if n == 0 || n > TAG_MAX_CHARS {
        return Err(ApiError::bad(format!(
            "Tags must have 1 to {TAG_MAX_CHARS} characters; this one has {n}"
        )));
    }
    Ok(())
}

/// True for a property customers may not create, change or remove.
pub fn is_protected_property(key: &str) -> bool {
    key.starts_with(PROTECTED_PREFIX)
}

fn string(key: &str, v: &Value) -> ApiResult<String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad(format!("Attribute '{key}' must be a string")))
}

fn opt_string(key: &str, v: &Value) -> ApiResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() <= VALUE_MAX_CHARS => Ok(Some(s.clone())),
        Value::String(_) => Err(ApiError::bad(format!(
            "Attribute '{key}' is longer than {VALUE_MAX_CHARS} characters"
        ))),
        _ => Err(ApiError::bad(format!(
            "Attribute '{key}' must be a string or null"
        ))),
    }
}

fn boolean(key: &str, v: &Value) -> ApiResult<bool> {
    v.as_bool()
        .ok_or_else(|| ApiError::bad(format!("Attribute '{key}' must be true or false")))
}

fn non_negative(key: &str, v: &Value) -> ApiResult<i64> {
    v.as_i64()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::bad(format!("Attribute '{key}' must be an integer >= 0")))
}

fn enum_value(key: &str, v: &Value, allowed: &[&str]) -> ApiResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if allowed.contains(&s.as_str()) => Ok(Some(s.clone())),
        _ => Err(ApiError::bad(format!(
            "Invalid value for '{key}': {v} (allowed: {})",
            allowed.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_has_glance_fields_and_properties_at_top_level() {
        let mut i = Image::new("00000000-0000-0000-0000-000000000001".into(), "p");
        i.properties.insert("os_version".into(), "12".into());
        let j = i.to_json();
        for k in [
            "id",
            "status",
            "visibility",
            "protected",
            "tags",
            "created_at",
            "updated_at",
            "file",
            "self",
            "schema",
        ] {
            assert!(j.get(k).is_some(), "{k}");
        }
        assert_eq!(j["os_version"], "12");
        assert_eq!(j["status"], "queued");
        assert_eq!(j["visibility"], "private");
        assert!(j["created_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(j["created_at"].as_str().unwrap().len(), 20);
    }

    #[test]
    fn values_are_checked() {
        let mut i = Image::new("x".into(), "p");
        assert!(i.set("os_distro", &json!("ubuntu")).is_ok());
        let e = i.set("os_distro", &json!("Ubuntu")).unwrap_err();
        assert!(e.to_string().contains("ubuntu, windows"), "{e}");
        assert!(i.set("disk_format", &json!("vhd")).is_ok());
        assert!(matches!(
            i.set("disk_format", &json!("qcow3")),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            i.set("min_ram", &json!(-1)),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            i.set("custom", &json!(5)),
            Err(ApiError::BadRequest(_))
        ));
        let long = "é".repeat(256);
        assert!(check_tag(&"é".repeat(255)).is_ok());
        assert!(check_tag(&long).is_err());
        assert!(is_protected_property("com.rackspace__1__options"));
        assert!(!is_protected_property("com.example"));
    }
}
