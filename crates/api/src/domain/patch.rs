//! Glance's image PATCH: a JSON array of `add`/`remove`/`replace` operations on single-token
//! paths (`/name`, `/tags`, `/os_distro`), applied in order to a copy of the image. These
//! are Glance's rules, not RFC 6902's: nested paths are refused, `add` of an existing
//! attribute replaces it, `replace`/`remove` of a missing property is a conflict (409),
//! read-only and reserved attributes are 403.
//!
//! Both media types are understood: `application/openstack-images-v2.1-json-patch`
//! (`{"op": "replace", "path": "/name", "value": ...}`) and the deprecated v2.0 form
//! (`{"replace": "/name", "value": ...}`).

use super::image::{Image, WRITABLE_CORE};
use super::rules;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use serde_json::Value;

/// The PATCH media types, for `Accept-Patch`.
pub const ACCEPT_PATCH: &str =
    "application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch";
/// The current media type.
pub const MEDIA_TYPE_21: &str = "application/openstack-images-v2.1-json-patch";
/// The deprecated one.
pub const MEDIA_TYPE_20: &str = "application/openstack-images-v2.0-json-patch";
/// Most operations in one PATCH.
pub const MAX_OPS: usize = 512;

/// One operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Set (creating or replacing).
    Add(String, Value),
    /// Unset; the attribute must exist.
    Remove(String),
    /// Change; the attribute must exist.
    Replace(String, Value),
}

/// Parses a PATCH body of either media type.
pub fn parse(body: &Value, v20: bool) -> ApiResult<Vec<Op>> {
    let arr = body
        .as_array()
        .ok_or_else(|| ApiError::bad("The PATCH body must be a JSON array of operations"))?;
    if arr.len() > MAX_OPS {
        return Err(ApiError::TooLarge(format!(
            "{} operations in one PATCH; at most {MAX_OPS} are accepted",
            arr.len()
        )));
    }
    arr.iter().map(|o| parse_op(o, v20)).collect()
}

fn parse_op(o: &Value, v20: bool) -> ApiResult<Op> {
    let obj = o
        .as_object()
        .ok_or_else(|| ApiError::bad("Each PATCH operation must be a JSON object"))?;
    let (op, path) = if v20 {
        let found: Vec<&str> = ["add", "remove", "replace"]
            .into_iter()
            .filter(|k| obj.contains_key(*k))
            .collect();
        if found.len() != 1 {
            return Err(ApiError::bad(
                "Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\"",
            ));
        }
        let path = obj[found[0]]
            .as_str()
            .ok_or_else(|| ApiError::bad("The operation's path must be a string"))?;
        (found[0], path)
    } else {
        let op = obj
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad("Each operation needs \"op\": add, remove or replace"))?;
        let path = obj
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad("Each operation needs a \"path\" string"))?;
        (op, path)
    };
    for k in obj.keys() {
        let known = matches!(
            k.as_str(),
            "op" | "path" | "value" | "add" | "remove" | "replace"
        );
        if !known {
            return Err(ApiError::bad(format!(
                "Unknown member '{k}' in a PATCH operation"
            )));
        }
    }
    let key = decode_path(path)?;
    let value = || {
        obj.get("value")
            .cloned()
            .ok_or_else(|| ApiError::bad(format!("Operation '{op}' on {path} needs a \"value\"")))
    };
    match op {
        "add" => Ok(Op::Add(key, value()?)),
        "replace" => Ok(Op::Replace(key, value()?)),
        "remove" => Ok(Op::Remove(key)),
        other => Err(ApiError::bad(format!(
            "Invalid operation '{other}': only add, remove and replace are supported"
        ))),
    }
}

/// `/name` -> `name`; JSON-pointer escapes `~1` and `~0` decoded; nested paths refused.
fn decode_path(path: &str) -> ApiResult<String> {
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| ApiError::bad(format!("Pointer `{path}` does not start with \"/\"")))?;
    if rest.is_empty() {
        return Err(ApiError::bad("Pointer `/` names no attribute"));
    }
    if rest.contains('/') {
        return Err(ApiError::bad(format!(
            "Nested paths are not allowed: `{path}` (escape a '/' inside a name as ~1)"
        )));
    }
    let mut out = String::with_capacity(rest.len());
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => {
                    return Err(ApiError::bad(format!(
                        "Invalid escape in pointer `{path}`: '~' must be followed by 0 or 1"
                    )))
                }
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Applies `ops` to `img` for `caller`; on error `img` may be half changed (callers apply
/// to a copy).
pub fn apply(img: &mut Image, ops: &[Op], caller: &Caller) -> ApiResult<()> {
    for op in ops {
        match op {
            Op::Add(k, v) => {
                rules::check_attribute(caller, img, k, Some(v))?;
                img.set(k, v)?;
            }
            Op::Replace(k, v) => {
                rules::check_attribute(caller, img, k, Some(v))?;
                // Core attributes always exist (possibly null); properties must.
                if !WRITABLE_CORE.contains(&k.as_str()) && !img.has(k) {
                    return Err(ApiError::conflict(format!(
                        "Property {k} does not exist, so it cannot be replaced"
                    )));
                }
                img.set(k, v)?;
            }
            Op::Remove(k) => {
                rules::check_attribute(caller, img, k, None)?;
                if WRITABLE_CORE.contains(&k.as_str()) {
                    match k.as_str() {
                        "name" | "disk_format" | "container_format" if img.has(k) => {
                            img.set(k, &Value::Null)?
                        }
                        "name" | "disk_format" | "container_format" => {
                            return Err(ApiError::conflict(format!(
                                "Attribute {k} is not set, so it cannot be removed"
                            )))
                        }
                        _ => {
                            return Err(ApiError::forbidden(format!(
                                "Attribute '{k}' cannot be removed; replace it instead"
                            )))
                        }
                    }
                } else if img.properties.remove(k).is_none() {
                    return Err(ApiError::conflict(format!(
                        "Property {k} does not exist, so it cannot be removed"
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn admin() -> Caller {
        Caller::new("p", &["admin"])
    }

    #[test]
    fn parses_both_media_types() {
        let v21 = json!([{"op": "replace", "path": "/name", "value": "x"}, {"op": "remove", "path": "/a~1b"}]);
        assert_eq!(
            parse(&v21, false).unwrap(),
            vec![
                Op::Replace("name".into(), json!("x")),
                Op::Remove("a/b".into())
            ]
        );
        let v20 = json!([{"replace": "/name", "value": "x"}]);
        assert_eq!(
            parse(&v20, true).unwrap(),
            vec![Op::Replace("name".into(), json!("x"))]
        );
        for bad in [
            json!({"op": "add"}),
            json!([{"op": "move", "path": "/a", "from": "/b"}]),
            json!([{"op": "add", "path": "/a/b", "value": "1"}]),
            json!([{"op": "add", "path": "a", "value": "1"}]),
            json!([{"op": "add", "path": "/a"}]),
            json!([{"op": "add", "path": "/a~2", "value": "1"}]),
            json!([{"op": "add", "path": "/a", "value": "1", "extra": 1}]),
        ] {
            assert!(
                matches!(parse(&bad, false), Err(ApiError::BadRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn glance_semantics() {
        let mut img = Image::new("i".into(), "p");
        let ops = parse(
            &json!([
                {"op": "add", "path": "/os_distro", "value": "debian"},
                {"op": "add", "path": "/os_distro", "value": "ubuntu"},
                {"op": "replace", "path": "/name", "value": "n"},
                {"op": "add", "path": "/tags", "value": ["b", "a", "b"]}
            ]),
            false,
        )
        .unwrap();
        apply(&mut img, &ops, &admin()).unwrap();
        assert_eq!(img.properties["os_distro"], "ubuntu");
        assert_eq!(img.name.as_deref(), Some("n"));
        assert_eq!(img.tags, vec!["a", "b"]);
        let missing = parse(
            &json!([{"op": "replace", "path": "/nope", "value": "1"}]),
            false,
        )
        .unwrap();
        assert!(matches!(
            apply(&mut img, &missing, &admin()),
            Err(ApiError::Conflict(_))
        ));
        let missing = parse(&json!([{"op": "remove", "path": "/nope"}]), false).unwrap();
        assert!(matches!(
            apply(&mut img, &missing, &admin()),
            Err(ApiError::Conflict(_))
        ));
        let ro = parse(
            &json!([{"op": "replace", "path": "/status", "value": "active"}]),
            false,
        )
        .unwrap();
        assert!(matches!(
            apply(&mut img, &ro, &admin()),
            Err(ApiError::Forbidden(_))
        ));
        let rm = parse(&json!([{"op": "remove", "path": "/os_distro"}]), false).unwrap();
        apply(&mut img, &rm, &admin()).unwrap();
        assert!(!img.properties.contains_key("os_distro"));
    }
}
