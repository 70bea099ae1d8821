//! Swift authentication: tempauth (v1), Keystone v3 password, or a given storage URL and
//! token; credentials read from the variables python-swiftclient reads.

use crate::error::{Error, ErrorKind, Result};
use crate::http::map_err;
use std::env;

/// How to obtain a storage URL and token.
#[derive(Clone, PartialEq, Eq)]
pub enum SwiftAuth {
    /// Tempauth / swauth v1: `GET auth_url` with `X-Auth-User`/`X-Auth-Key`.
    V1 {
        /// Auth URL (`ST_AUTH`).
        auth_url: String,
        /// `account:user` (`ST_USER`).
        user: String,
        /// Key (`ST_KEY`).
        key: String,
    },
    /// Keystone v3 password authentication scoped to a project.
    V3 {
        /// Identity endpoint (`OS_AUTH_URL`), with or without `/v3`.
        auth_url: String,
        /// `OS_USERNAME`.
        username: String,
        /// `OS_PASSWORD`.
        password: String,
        /// `OS_PROJECT_NAME`.
        project_name: String,
        /// `OS_USER_DOMAIN_NAME` (default `Default`).
        user_domain: String,
        /// `OS_PROJECT_DOMAIN_NAME` (default `Default`).
        project_domain: String,
        /// `OS_REGION_NAME`, to pick an endpoint from the catalog.
        region: Option<String>,
    },
    /// Keystone v3 password authentication of a service user scoped to a trust another
    /// user gave it: the token acts for the trustor in the trust's project, so the storage
    /// URL is the trustor's account. Renewable for as long as the trust lasts.
    Trust {
        /// Identity endpoint, with or without `/v3`.
        auth_url: String,
        /// The trustee's (service's) user name.
        username: String,
        /// Its password.
        password: String,
        /// Its domain name.
        user_domain: String,
        /// The trust.
        trust_id: String,
    },
    /// A ready storage URL and token (`OS_STORAGE_URL`, `OS_AUTH_TOKEN`); cannot be renewed.
    Token {
        /// Storage URL (account URL).
        storage_url: String,
        /// Token.
        token: String,
    },
}

impl std::fmt::Debug for SwiftAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        match self {
            SwiftAuth::V1 { auth_url, user, .. } => write!(f, "V1({auth_url}, {user})"),
            SwiftAuth::V3 {
                auth_url, username, ..
            } => write!(f, "V3({auth_url}, {username})"),
            SwiftAuth::Trust {
                auth_url, trust_id, ..
            } => write!(f, "Trust({auth_url}, {trust_id})"),
            SwiftAuth::Token { storage_url, .. } => write!(f, "Token({storage_url})"),
        }
    }
}

fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.is_empty())
}

impl SwiftAuth {
    /// From the environment: `ST_AUTH`/`ST_USER`/`ST_KEY` first, then `OS_AUTH_URL` with
    /// `OS_USERNAME`/`OS_PASSWORD`/`OS_PROJECT_NAME` (v3, or v1 when the URL is `.../v1.0`),
    /// then `OS_STORAGE_URL`/`OS_AUTH_TOKEN`. Also returns a preset storage URL/token (used
    /// first, renewed through the credentials when it expires).
    pub fn from_env() -> Result<(SwiftAuth, Option<(String, String)>)> {
        let preset = var("OS_STORAGE_URL").zip(var("OS_AUTH_TOKEN"));
        if let (Some(auth_url), Some(user), Some(key)) =
            (var("ST_AUTH"), var("ST_USER"), var("ST_KEY"))
        {
            return Ok((
                SwiftAuth::V1 {
                    auth_url,
                    user,
                    key,
                },
                preset,
            ));
        }
        if let (Some(auth_url), Some(username), Some(password)) =
            (var("OS_AUTH_URL"), var("OS_USERNAME"), var("OS_PASSWORD"))
        {
            if auth_url.trim_end_matches('/').ends_with("/v1.0") {
                return Ok((
                    SwiftAuth::V1 {
                        auth_url,
                        user: username,
                        key: password,
                    },
                    preset,
                ));
            }
            let project_name = var("OS_PROJECT_NAME")
                .or_else(|| var("OS_TENANT_NAME"))
                .ok_or_else(|| Error::usage("swift auth", "OS_PROJECT_NAME is not set"))?;
            return Ok((
                SwiftAuth::V3 {
                    auth_url,
                    username,
                    password,
                    project_name,
                    user_domain: var("OS_USER_DOMAIN_NAME").unwrap_or_else(|| "Default".into()),
                    project_domain: var("OS_PROJECT_DOMAIN_NAME")
                        .unwrap_or_else(|| "Default".into()),
                    region: var("OS_REGION_NAME"),
                },
                preset,
            ));
        }
        if let Some((storage_url, token)) = preset {
            return Ok((SwiftAuth::Token { storage_url, token }, None));
        }
        Err(Error::usage(
            "swift auth",
            "no Swift credentials: set ST_AUTH/ST_USER/ST_KEY, OS_AUTH_URL/OS_USERNAME/OS_PASSWORD/OS_PROJECT_NAME, or OS_STORAGE_URL/OS_AUTH_TOKEN",
        ))
    }

    /// True when a new token can be obtained.
    pub fn renewable(&self) -> bool {
        !matches!(self, SwiftAuth::Token { .. })
    }

    /// Authenticates; returns (storage URL, token).
    pub(crate) fn login(&self, agent: &ureq::Agent) -> Result<(String, String)> {
        match self {
            SwiftAuth::Token { storage_url, token } => Ok((storage_url.clone(), token.clone())),
            SwiftAuth::V1 {
                auth_url,
                user,
                key,
            } => {
                let resp = agent
                    .get(auth_url)
                    .set("X-Auth-User", user)
                    .set("X-Auth-Key", key)
                    .call()
                    .map_err(|e| map_err("swift auth", auth_url, e))?;
                let url = resp.header("X-Storage-Url").map(str::to_string);
                let tok = resp.header("X-Auth-Token").map(str::to_string);
                url.zip(tok).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Auth,
                        "swift auth",
                        auth_url,
                        "no X-Storage-Url/X-Auth-Token in the answer",
                    )
                })
            }
            SwiftAuth::V3 {
                auth_url,
                username,
                password,
                project_name,
                user_domain,
                project_domain,
                region,
            } => keystone_login(
                agent,
                auth_url,
                serde_json::json!({"auth": {
                    "identity": {"methods": ["password"], "password": {"user": {
                        "name": username, "domain": {"name": user_domain}, "password": password}}},
                    "scope": {"project": {"name": project_name, "domain": {"name": project_domain}}}
                }}),
                region.as_deref(),
            ),
            SwiftAuth::Trust {
                auth_url,
                username,
                password,
                user_domain,
                trust_id,
            } => keystone_login(
                agent,
                auth_url,
                serde_json::json!({"auth": {
                    "identity": {"methods": ["password"], "password": {"user": {
                        "name": username, "domain": {"name": user_domain}, "password": password}}},
                    "scope": {"OS-TRUST:trust": {"id": trust_id}}
                }}),
                None,
            ),
        }
    }
}

/// The public object-store endpoint (in `region` when given) of a Keystone v3 token
/// document, as `POST /v3/auth/tokens` answers it; `Ok(None)` when the catalog has none.
/// The document is a stranger's (fuzzed: `fuzz/fuzz_targets/keystone_catalog.rs`).
pub fn catalog_endpoint(
    body: &[u8],
    region: Option<&str>,
) -> std::result::Result<Option<String>, serde_json::Error> {
    let json: serde_json::Value = serde_json::from_slice(body)?;
    Ok(json["token"]["catalog"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["type"] == "object-store")
        .flat_map(|s| s["endpoints"].as_array().into_iter().flatten())
        .find(|e| {
            e["interface"] == "public"
                && region.is_none_or(|r| e["region"] == r || e["region_id"] == r)
        })
        .and_then(|e| e["url"].as_str())
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .map(str::to_string))
}

/// `POST /v3/auth/tokens` with `body`; returns the public object-store endpoint of the
/// token's catalog (in `region` when given) and the token.
fn keystone_login(
    agent: &ureq::Agent,
    auth_url: &str,
    body: serde_json::Value,
    region: Option<&str>,
) -> Result<(String, String)> {
    let base = auth_url.trim_end_matches('/');
    let url = if base.ends_with("/v3") {
        format!("{base}/auth/tokens")
    } else {
        format!("{base}/v3/auth/tokens")
    };
    let resp = agent
        .post(&url)
        .set("Content-Type", "application/json")
        .send_string(&body.to_string())
        .map_err(|e| map_err("keystone auth", &url, e))?;
    let token = resp.header("X-Subject-Token").map(str::to_string);
    let body = crate::http::read_body(resp, 8 << 20, "keystone auth", &url)?;
    let endpoint = catalog_endpoint(&body, region).map_err(|e| {
        Error::new(ErrorKind::Auth, "keystone auth", &url, "bad JSON").with_source(e)
    })?;
    endpoint.zip(token).ok_or_else(|| {
        Error::new(
            ErrorKind::Auth,
            "keystone auth",
            &url,
            "no token or no public object-store endpoint in the catalog",
        )
    })
}
