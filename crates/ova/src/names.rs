//! Member names: what is safe to create on disk, and what the XenServer
//! layout calls each VHD.
//!
//! Archives are flat: every file sits at the top level (`./` prefixes are
//! stripped, the way `tar -zc --directory=DIR .` writes them). Absolute names
//! and `..` are refused outright; anything nested is unsupported.

use crate::error::{Error, ErrorKind, Result};

/// What a member name means after sanitising.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SafeName {
    /// The archive root itself (`./`, `.`): nothing to create.
    Root,
    /// A plain file name at the top level.
    File(String),
}

/// Checks a raw member name and strips `./` prefixes.
pub fn sanitize(raw: &[u8]) -> Result<SafeName> {
    let shown = || String::from_utf8_lossy(raw).into_owned();
    let name = std::str::from_utf8(raw).map_err(|_| {
        Error::new(ErrorKind::Unsupported, "member name is not UTF-8").member(shown())
    })?;
    if name.contains('\0') {
        return Err(Error::new(ErrorKind::UnsafePath, "member name contains NUL").member(shown()));
    }
    if name.starts_with('/') {
        return Err(Error::new(ErrorKind::UnsafePath, "absolute member name").member(shown()));
    }
    let parts: Vec<&str> = name
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(
            Error::new(ErrorKind::UnsafePath, "member name climbs out with '..'").member(shown()),
        );
    }
    match parts.as_slice() {
        [] => Ok(SafeName::Root),
        [one] => Ok(SafeName::File((*one).to_string())),
        _ => Err(Error::new(
            ErrorKind::Unsupported,
            "members in subdirectories are not supported (packages are flat)",
        )
        .member(shown())),
    }
}

/// `"<n>.vhd"` with a canonical decimal `n` (no sign, no leading zeros).
pub fn chain_index(name: &str) -> Option<usize> {
    let digits = name.strip_suffix(".vhd")?;
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The names nova's and os-xenapi's plugins rename before checking the chain:
/// `snap.vhd`, `image.vhd`, `base.vhd` become `0.vhd`, `1.vhd`, ... in that order
/// among those present, and a lone `*.vhd` becomes `0.vhd`. Returns
/// `(member name, chain index)` for every chain member, in no particular order;
/// `swap.vhd` and names not ending in `.vhd` are left out, as they do.
pub fn xenserver_indices(names: &[&str]) -> Result<Vec<(String, usize)>> {
    let mut out: Vec<(String, usize)> = Vec::new();
    let legacy = ["snap.vhd", "image.vhd", "base.vhd"];
    let mut next_legacy = 0;
    for l in legacy {
        if names.contains(&l) {
            out.push((l.to_string(), next_legacy));
            next_legacy += 1;
        }
    }
    if names.len() == 1 && out.is_empty() {
        let only = names[0];
        if only.ends_with(".vhd") && only != "swap.vhd" {
            return Ok(vec![(only.to_string(), 0)]);
        }
    }
    for &n in names {
        if legacy.contains(&n) || n == "swap.vhd" || !n.ends_with(".vhd") {
            continue;
        }
        let idx = chain_index(n).ok_or_else(|| {
            Error::new(
                ErrorKind::Layout,
                "VHD member is not named <n>.vhd (nor a legacy snap/image/base.vhd)",
            )
            .member(n)
        })?;
        out.push((n.to_string(), idx));
    }
    let mut seen = std::collections::BTreeMap::new();
    for (n, i) in &out {
        if let Some(other) = seen.insert(*i, n) {
            return Err(Error::new(
                ErrorKind::Layout,
                format!("{other} and {n} both become {i}.vhd"),
            )
            .member(n.clone()));
        }
    }
    for (expect, (&i, n)) in seen.iter().enumerate() {
        if i != expect {
            return Err(Error::new(
                ErrorKind::Layout,
                format!("chain has a gap: {expect}.vhd is missing (next is {n})"),
            ));
        }
    }
    if out.is_empty() {
        return Err(Error::new(
            ErrorKind::Layout,
            "no VHD in the package (expected 0.vhd)",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes() {
        assert_eq!(
            sanitize(b"./0.vhd").unwrap(),
            SafeName::File("0.vhd".into())
        );
        assert_eq!(sanitize(b"././a").unwrap(), SafeName::File("a".into()));
        assert_eq!(sanitize(b"./").unwrap(), SafeName::Root);
        assert_eq!(sanitize(b".").unwrap(), SafeName::Root);
        for bad in [&b"/etc/x"[..], b"../x", b"a/../../x", b".."] {
            assert_eq!(sanitize(bad).unwrap_err().kind(), ErrorKind::UnsafePath);
        }
        assert_eq!(sanitize(b"a/b").unwrap_err().kind(), ErrorKind::Unsupported);
    }

    #[test]
    fn chain_indices() {
        assert_eq!(chain_index("0.vhd"), Some(0));
        assert_eq!(chain_index("12.vhd"), Some(12));
        assert_eq!(chain_index("01.vhd"), None);
        assert_eq!(chain_index("+1.vhd"), None);
        assert_eq!(chain_index("x.vhd"), None);
    }

    #[test]
    fn xenserver_names() {
        let mut got = xenserver_indices(&["1.vhd", "0.vhd", "swap.vhd", "notes.txt"]).unwrap();
        got.sort();
        assert_eq!(got, vec![("0.vhd".into(), 0), ("1.vhd".into(), 1)]);
        let mut got = xenserver_indices(&["image.vhd", "base.vhd"]).unwrap();
        got.sort_by_key(|x| x.1);
        assert_eq!(got, vec![("image.vhd".into(), 0), ("base.vhd".into(), 1)]);
        assert_eq!(
            xenserver_indices(&["disk.vhd"]).unwrap(),
            vec![("disk.vhd".into(), 0)]
        );
        assert_eq!(
            xenserver_indices(&["0.vhd", "2.vhd"]).unwrap_err().kind(),
            ErrorKind::Layout
        );
        assert_eq!(
            xenserver_indices(&["snap.vhd", "0.vhd"])
                .unwrap_err()
                .kind(),
            ErrorKind::Layout
        );
        assert_eq!(
            xenserver_indices(&["swap.vhd"]).unwrap_err().kind(),
            ErrorKind::Layout
        );
    }
}
