//! `GET /v2/images` query parameters, parsed and checked into a [`ListQuery`] that the SQL
//! layer turns into a parameterised statement. Sort keys and filterable columns come from
//! fixed tables here, so no part of the SQL text ever comes from the request.

use crate::error::{ApiError, ApiResult};

/// A bound value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Text.
    Text(String),
    /// Integer.
    Int(i64),
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// A sortable attribute: its name, the SQL expression (NULLs folded so both engines order
/// and compare alike) and whether the expression is an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    /// The attribute name.
    pub name: &'static str,
    /// SQL expression over `i` (the images table).
    pub expr: &'static str,
    /// True when the expression is an integer.
    pub int: bool,
}

const SORT_KEYS: [SortKey; 14] = [
    SortKey {
        name: "name",
        expr: "COALESCE(i.name, '')",
        int: false,
    },
    SortKey {
        name: "status",
        expr: "i.status",
        int: false,
    },
    SortKey {
        name: "container_format",
        expr: "COALESCE(i.container_format, '')",
        int: false,
    },
    SortKey {
        name: "disk_format",
        expr: "COALESCE(i.disk_format, '')",
        int: false,
    },
    SortKey {
        name: "size",
        expr: "COALESCE(i.size, -1)",
        int: true,
    },
    SortKey {
        name: "virtual_size",
        expr: "COALESCE(i.virtual_size, -1)",
        int: true,
    },
    SortKey {
        name: "id",
        expr: "i.id",
        int: false,
    },
    SortKey {
        name: "created_at",
        expr: "i.created_at",
        int: false,
    },
    SortKey {
        name: "updated_at",
        expr: "i.updated_at",
        int: false,
    },
    SortKey {
        name: "visibility",
        expr: "i.visibility",
        int: false,
    },
    SortKey {
        name: "owner",
        expr: "i.owner",
        int: false,
    },
    SortKey {
        name: "min_disk",
        expr: "i.min_disk",
        int: true,
    },
    SortKey {
        name: "min_ram",
        expr: "i.min_ram",
        int: true,
    },
    SortKey {
        name: "protected",
        expr: "i.protected",
        int: true,
    },
];

/// The `id` key, the tiebreaker of every order.
pub fn id_key() -> SortKey {
    SORT_KEYS[6]
}

fn sort_key(name: &str) -> ApiResult<SortKey> {
    SORT_KEYS
        .iter()
        .copied()
        .find(|k| k.name == name)
        .ok_or_else(|| {
            ApiError::bad(format!(
                "Invalid sort key: {name} (allowed: {})",
                SORT_KEYS.map(|k| k.name).join(", ")
            ))
        })
}

/// Which images the caller asks for by visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisFilter {
    /// Public, own, and shared-with-me (member status filtered).
    Default,
    /// `public`.
    Public,
    /// `private` (own only).
    Private,
    /// `shared`: own shared images and those shared with me.
    Shared,
    /// `community`.
    Community,
    /// `all`: the default set plus community.
    All,
}

/// A filter on one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// A column equals a value (column names from a fixed table).
    Column(&'static str, Arg),
    /// `size >= n`.
    SizeMin(i64),
    /// `size <= n`.
    SizeMax(i64),
    /// Carries this tag.
    Tag(String),
    /// A custom property equals a value.
    Property(String, String),
}

/// A parsed list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Page size.
    pub limit: usize,
    /// Start after this image.
    pub marker: Option<String>,
    /// Order, `id` last as tiebreaker.
    pub sort: Vec<(SortKey, Dir)>,
    /// Visibility selection.
    pub visibility: VisFilter,
    /// Member statuses that make a shared image appear.
    pub member_status: Vec<&'static str>,
    /// Attribute filters.
    pub filters: Vec<Filter>,
    /// The parameters without `marker`, for the `next` link.
    pub carry: Vec<(String, String)>,
}

const TEXT_COLUMNS: [&str; 7] = [
    "name",
    "status",
    "owner",
    "disk_format",
    "container_format",
    "id",
    "checksum",
];

/// Parses the query parameters of `GET /v2/images`. `max_limit` caps `limit`.
pub fn parse(
    params: &[(String, String)],
    default_limit: usize,
    max_limit: usize,
) -> ApiResult<ListQuery> {
    let mut q = ListQuery {
        limit: default_limit.min(max_limit),
        marker: None,
        sort: Vec::new(),
        visibility: VisFilter::Default,
        member_status: vec!["accepted"],
        filters: Vec::new(),
        carry: Vec::new(),
    };
    let mut sort_keys: Vec<SortKey> = Vec::new();
    let mut sort_dirs: Vec<Dir> = Vec::new();
    let mut hidden_filter = false;
    for (k, v) in params {
        if k != "marker" {
            q.carry.push((k.clone(), v.clone()));
        }
        match k.as_str() {
            "limit" => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| ApiError::bad(format!("limit must be a non-negative integer, not '{v}'")))?;
                if n < 0 {
                    return Err(ApiError::bad("limit must be a non-negative integer"));
                }
                q.limit = (n as usize).min(max_limit);
            }
            "marker" => q.marker = Some(v.clone()),
            "sort_key" => sort_keys.push(sort_key(v)?),
            "sort_dir" => sort_dirs.push(dir(v)?),
            "sort" => {
                for part in v.split(',').filter(|p| !p.is_empty()) {
                    let (name, d) = match part.split_once(':') {
                        Some((n, d)) => (n, dir(d)?),
                        None => (part, Dir::Desc),
                    };
                    q.sort.push((sort_key(name.trim())?, d));
                }
            }
            "visibility" => {
                q.visibility = match v.as_str() {
                    "public" => VisFilter::Public,
                    "private" => VisFilter::Private,
                    "shared" => VisFilter::Shared,
                    "community" => VisFilter::Community,
                    "all" => VisFilter::All,
                    other => {
                        return Err(ApiError::bad(format!(
                            "Invalid visibility value: {other} (allowed: public, private, shared, community, all)"
                        )))
                    }
                }
            }
            "member_status" => {
                q.member_status = match v.as_str() {
                    "accepted" => vec!["accepted"],
                    "pending" => vec!["pending"],
                    "rejected" => vec!["rejected"],
                    "all" => vec!["accepted", "pending", "rejected"],
                    other => {
                        return Err(ApiError::bad(format!(
                            "Invalid member_status value: {other} (allowed: accepted, pending, rejected, all)"
                        )))
                    }
                }
            }
            "size_min" => q.filters.push(Filter::SizeMin(int(k, v)?)),
            "size_max" => q.filters.push(Filter::SizeMax(int(k, v)?)),
            "tag" => q.filters.push(Filter::Tag(v.clone())),
            "protected" | "os_hidden" => {
                let b = match v.as_str() {
                    "true" | "True" => 1,
                    "false" | "False" => 0,
                    _ => return Err(ApiError::bad(format!("{k} must be true or false, not '{v}'"))),
                };
                if k == "os_hidden" {
                    hidden_filter = true;
                }
                let col = if k == "protected" { "protected" } else { "os_hidden" };
                q.filters.push(Filter::Column(col, Arg::Int(b)));
            }
            "min_disk" | "min_ram" => {
                let col = if k == "min_disk" { "min_disk" } else { "min_ram" };
                q.filters.push(Filter::Column(col, Arg::Int(int(k, v)?)));
            }
            "size" | "virtual_size" => {
                let col = if k == "size" { "size" } else { "virtual_size" };
                q.filters.push(Filter::Column(col, Arg::Int(int(k, v)?)));
            }
            name => {
                if let Some(col) = TEXT_COLUMNS.iter().find(|c| **c == name) {
                    q.filters.push(Filter::Column(col, Arg::Text(v.clone())));
                } else if ["created_at", "updated_at", "os_hash_value", "os_hash_algo"].contains(&name) {
                    return Err(ApiError::bad(format!("Filtering on '{name}' is not supported")));
                } else {
                    q.filters.push(Filter::Property(name.to_string(), v.clone()));
                }
            }
        }
    }
    if !hidden_filter {
        q.filters.push(Filter::Column("os_hidden", Arg::Int(0)));
    }
    if !sort_keys.is_empty() || !sort_dirs.is_empty() {
        if !q.sort.is_empty() {
            return Err(ApiError::bad(
                "Use either 'sort' or 'sort_key'/'sort_dir', not both",
            ));
        }
        if sort_dirs.len() > 1 && sort_dirs.len() != sort_keys.len() {
            return Err(ApiError::bad(
                "Give one sort_dir, or as many sort_dir as sort_key",
            ));
        }
        if sort_keys.is_empty() {
            sort_keys.push(sort_key("created_at")?);
        }
        for (i, k) in sort_keys.iter().enumerate() {
            let d = if sort_dirs.len() == 1 {
                sort_dirs[0]
            } else {
                sort_dirs.get(i).copied().unwrap_or(Dir::Desc)
            };
            q.sort.push((*k, d));
        }
    }
    if q.sort.is_empty() {
        q.sort.push((sort_key("created_at")?, Dir::Desc));
    }
    if !q.sort.iter().any(|(k, _)| k.name == "id") {
        let last = q.sort.last().map(|(_, d)| *d).unwrap_or(Dir::Desc);
        q.sort.push((id_key(), last));
    }
    Ok(q)
}

fn dir(v: &str) -> ApiResult<Dir> {
    match v {
        "asc" => Ok(Dir::Asc),
        "desc" => Ok(Dir::Desc),
        _ => Err(ApiError::bad(format!(
            "Invalid sort direction: {v} (asc or desc)"
        ))),
    }
}

fn int(k: &str, v: &str) -> ApiResult<i64> {
    v.parse()
        .map_err(|_| ApiError::bad(format!("{k} must be an integer, not '{v}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_caps() {
        let q = parse(&[], 25, 100).unwrap();
        assert_eq!(q.limit, 25);
        assert_eq!(q.sort[0].0.name, "created_at");
        assert_eq!(q.sort[0].1, Dir::Desc);
        assert_eq!(q.sort.last().unwrap().0.name, "id");
        assert_eq!(parse(&p(&[("limit", "5000")]), 25, 100).unwrap().limit, 100);
    }

    #[test]
    fn sort_forms() {
        let q = parse(&p(&[("sort", "name:asc,size")]), 25, 100).unwrap();
        assert_eq!(q.sort[0], (sort_key("name").unwrap(), Dir::Asc));
        assert_eq!(q.sort[1], (sort_key("size").unwrap(), Dir::Desc));
        let q = parse(
            &p(&[
                ("sort_key", "name"),
                ("sort_key", "size"),
                ("sort_dir", "asc"),
            ]),
            25,
            100,
        )
        .unwrap();
        assert_eq!(q.sort[1].1, Dir::Asc);
        assert!(parse(&p(&[("sort_key", "name; DROP TABLE images")]), 25, 100).is_err());
        assert!(parse(&p(&[("sort", "name:up")]), 25, 100).is_err());
    }

    #[test]
    fn filters() {
        let q = parse(
            &p(&[
                ("tag", "a"),
                ("tag", "b"),
                ("os_distro", "ubuntu"),
                ("marker", "m"),
                ("size_min", "3"),
            ]),
            25,
            100,
        )
        .unwrap();
        assert!(q.filters.contains(&Filter::Tag("a".into())));
        assert!(q
            .filters
            .contains(&Filter::Property("os_distro".into(), "ubuntu".into())));
        assert!(q.filters.contains(&Filter::SizeMin(3)));
        assert_eq!(q.marker.as_deref(), Some("m"));
        assert!(q.carry.iter().all(|(k, _)| k != "marker"));
        assert!(parse(&p(&[("visibility", "everyone")]), 25, 100).is_err());
        assert!(parse(&p(&[("member_status", "maybe")]), 25, 100).is_err());
        assert!(parse(&p(&[("limit", "-1")]), 25, 100).is_err());
        assert!(parse(&p(&[("size_max", "x")]), 25, 100).is_err());
    }
}
