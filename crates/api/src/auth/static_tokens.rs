//! Static tokens for the embedded default: a JSON file
//! `{"TOKEN": {"project_id": "...", "roles": ["..."]}, ...}` read once at start.

use super::caller::Caller;
use crate::error::{ApiError, ApiResult};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

/// Largest token file accepted (it is read whole).
const MAX_FILE: u64 = 4 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    project_id: String,
    #[serde(default)]
    roles: Vec<String>,
}

/// The tokens of one file.
pub struct StaticTokens {
    tokens: HashMap<String, Caller>,
}

impl StaticTokens {
    /// Reads `path`; the message names the file and what is wrong with it.
    pub fn load(path: &Path) -> Result<StaticTokens, String> {
        let md = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if md.len() > MAX_FILE {
            return Err(format!(
                "{}: {} bytes is larger than the {} accepted for a token file",
                path.display(),
                md.len(),
                MAX_FILE
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<StaticTokens, String> {
        let raw: HashMap<String, Entry> =
            serde_json::from_str(text).map_err(|e| format!("not a token map: {e}"))?;
        let mut tokens = HashMap::new();
        for (t, e) in raw {
            if t.is_empty() || e.project_id.is_empty() {
                return Err("empty token or project_id".into());
            }
            tokens.insert(
                t,
                Caller {
                    project_id: e.project_id,
                    roles: e.roles.into_iter().collect(),
                    user_id: None,
                    token: None,
                },
            );
        }
        Ok(StaticTokens { tokens })
    }

    /// The caller of `token`, or 401.
    pub fn lookup(&self, token: &str) -> ApiResult<Caller> {
        self.tokens
            .get(token)
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("The token is not valid".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_looks_up() {
        let s = StaticTokens::parse(r#"{"t1":{"project_id":"p1","roles":["admin"]}}"#).unwrap();
        assert_eq!(s.lookup("t1").unwrap().project_id, "p1");
        assert!(matches!(s.lookup("t2"), Err(ApiError::Unauthorized(_))));
        assert!(StaticTokens::parse(r#"{"t1":{"project":"p1"}}"#).is_err());
        assert!(StaticTokens::parse("[]").is_err());
    }
}
