//! Keystone v3 token validation, as keystonemiddleware does it: the service holds a token
//! of its own (password auth with the service's credentials) and asks
//! `GET /v3/auth/tokens` with `X-Subject-Token` about each caller's token. Answers are
//! cached for a short time (never past the token's expiry) so a busy API does not ask
//! Keystone on every request.

use super::caller::Caller;
use crate::error::{ApiError, ApiResult};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How long a validation is trusted.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// Most cached validations (the cache is cleared when full: simple and bounded).
const CACHE_MAX: usize = 10_000;
/// Time limit of one call to Keystone.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The service's own identity.
#[derive(Debug, Clone)]
pub struct ServiceCredentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Project the service token is scoped to.
    pub project_name: String,
    /// User domain name.
    pub user_domain: String,
    /// Project domain name.
    pub project_domain: String,
}

impl ServiceCredentials {
    /// From `OS_USERNAME`, `OS_PASSWORD`, `OS_PROJECT_NAME` and the `OS_*_DOMAIN_NAME`
    /// variables (default `Default`), as the OpenStack clients read them.
    pub fn from_env() -> Result<ServiceCredentials, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let need = |k: &str| {
            var(k).ok_or_else(|| format!("{k} is not set (the service's Keystone credentials)"))
        };
        Ok(ServiceCredentials {
            username: need("OS_USERNAME")?,
            password: need("OS_PASSWORD")?,
            project_name: need("OS_PROJECT_NAME")?,
            user_domain: var("OS_USER_DOMAIN_NAME").unwrap_or_else(|| "Default".into()),
            project_domain: var("OS_PROJECT_DOMAIN_NAME").unwrap_or_else(|| "Default".into()),
        })
    }
}

/// A Keystone v3 validator.
pub struct Keystone {
    url: String,
    creds: ServiceCredentials,
    agent: ureq::Agent,
    /// The service's token and its user id.
    service_token: Mutex<Option<(String, String)>>,
    cache: Mutex<HashMap<String, (Caller, Instant)>>,
}

impl Keystone {
    /// A validator against `url` (e.g. `http://127.0.0.1:5000`, with or without `/v3`).
    pub fn new(url: &str, creds: ServiceCredentials) -> Arc<Keystone> {
        let url = url
            .trim_end_matches('/')
            .trim_end_matches("/v3")
            .to_string();
        Arc::new(Keystone {
            url,
            creds,
            agent: ureq::AgentBuilder::new().timeout(TIMEOUT).build(),
            service_token: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The caller of `token`: 401 when Keystone does not accept it, 503 when Keystone
    /// cannot be asked.
    pub async fn validate(self: &Arc<Self>, token: &str) -> ApiResult<Caller> {
        if let Some(c) = self.cached(token) {
            return Ok(c);
        }
        let me = Arc::clone(self);
        let t = token.to_string();
        let (caller, ttl) = tokio::task::spawn_blocking(move || me.validate_blocking(&t))
            .await
            .map_err(|e| ApiError::Internal(format!("keystone validation task: {e}")))??;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(token.to_string(), (caller.clone(), Instant::now() + ttl));
        Ok(caller)
    }

    fn cached(&self, token: &str) -> Option<Caller> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(token)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(c, _)| c.clone())
    }

    fn validate_blocking(&self, token: &str) -> ApiResult<(Caller, Duration)> {
        for attempt in 0..2 {
            let service = self.service_token(attempt > 0)?;
            let resp = self
                .agent
                .get(&format!("{}/v3/auth/tokens", self.url))
                .set("X-Auth-Token", &service)
                .set("X-Subject-Token", token)
                .call();
            match resp {
                Ok(r) => {
                    let body: Value = r.into_json().map_err(|e| unavailable(&self.url, &e))?;
                    return parse_validation(&body);
                }
                // The service token expired: get a new one once.
                Err(ureq::Error::Status(401, _)) if attempt == 0 => continue,
                Err(ureq::Error::Status(404 | 401, _)) => {
                    return Err(ApiError::Unauthorized("The token is not valid".into()))
                }
                Err(e) => return Err(unavailable(&self.url, &e)),
            }
        }
        Err(ApiError::Unauthorized("The token is not valid".into()))
    }

    fn service_token(&self, renew: bool) -> ApiResult<String> {
        Ok(self.service_login(renew)?.0)
    }

    /// The service's token and user id, logging in when there is none (or `renew`).
    fn service_login(&self, renew: bool) -> ApiResult<(String, String)> {
        let mut slot = self.service_token.lock().unwrap_or_else(|p| p.into_inner());
        if let (false, Some(t)) = (renew, slot.as_ref()) {
            return Ok(t.clone());
        }
        let c = &self.creds;
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": c.username, "domain": {"name": c.user_domain}, "password": c.password}}},
            "scope": {"project": {"name": c.project_name, "domain": {"name": c.project_domain}}}
        }});
        let resp = self
            .agent
            .post(&format!("{}/v3/auth/tokens", self.url))
            .send_json(body)
            .map_err(|e| unavailable(&self.url, &e))?;
        let t = resp
            .header("X-Subject-Token")
            .ok_or_else(|| ApiError::Unavailable("Keystone returned no service token".into()))?
            .to_string();
        let v: Value = resp.into_json().map_err(|e| unavailable(&self.url, &e))?;
        let user = v["token"]["user"]["id"]
            .as_str()
            .ok_or_else(|| ApiError::Unavailable("Keystone's token names no user".into()))?
            .to_string();
        *slot = Some((t, user));
        Ok(slot.clone().unwrap_or_default())
    }

    /// Creates a trust from `caller` to the service user on the caller's project with the
    /// caller's roles, impersonating the caller, until `expires_at` (RFC 3339, microseconds
    /// kept: Keystone refuses two trusts that differ in nothing else): what a
    /// worker later uses to act on the caller's own Cloud Files account, and nothing else.
    /// Returns its id. Blocking.
    pub fn create_trust(&self, caller: &Caller, expires_at: &str) -> ApiResult<String> {
        let (Some(user), Some(token)) = (&caller.user_id, &caller.token) else {
            return Err(ApiError::Internal(
                "a trust needs the caller's Keystone user and token".into(),
            ));
        };
        let (_, trustee) = self.service_login(false)?;
        let roles: Vec<Value> = caller.roles.iter().map(|r| json!({"name": r})).collect();
        let body = json!({"trust": {
            "trustor_user_id": user,
            "trustee_user_id": trustee,
            "project_id": caller.project_id,
            "roles": roles,
            "impersonation": true,
            "expires_at": expires_at,
        }});
        let url = format!("{}/v3/OS-TRUST/trusts", self.url);
        match self
            .agent
            .post(&url)
            .set("X-Auth-Token", token)
            .send_json(body)
        {
            Ok(r) => {
                let v: Value = r.into_json().map_err(|e| unavailable(&self.url, &e))?;
                v["trust"]["id"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::Unavailable("Keystone's trust has no id".into()))
            }
            Err(ureq::Error::Status(409, r)) => Err(ApiError::conflict(format!(
                "Keystone has this trust already: {}",
                r.into_string().unwrap_or_default()
            ))),
            Err(ureq::Error::Status(s @ (401 | 403), r)) => Err(ApiError::forbidden(format!(
                "Keystone refused to delegate your roles to the image service ({s}): {}",
                r.into_string().unwrap_or_default()
            ))),
            Err(e) => Err(unavailable(&self.url, &e)),
        }
    }
}

fn unavailable(url: &str, e: &dyn std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!(
        "the identity service at {url} cannot validate tokens: {e}"
    ))
}

/// Project, roles and how long to trust them, from a validation answer.
fn parse_validation(body: &Value) -> ApiResult<(Caller, Duration)> {
    let token = &body["token"];
    let project = token["project"]["id"]
        .as_str()
        .ok_or_else(|| ApiError::Unauthorized("The token is not scoped to a project".into()))?;
    let roles = token["roles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let ttl = token["expires_at"]
        .as_str()
        .and_then(cloudimg_tasks::time::parse_iso8601)
        .and_then(|t| t.duration_since(SystemTime::now()).ok())
        .map(|left| left.min(CACHE_TTL))
        .unwrap_or(Duration::ZERO);
    Ok((
        Caller {
            project_id: project.to_string(),
            roles,
            user_id: token["user"]["id"].as_str().map(str::to_string),
            token: None,
        },
        ttl,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_project_and_roles() {
        let body = json!({"token": {"project": {"id": "abc"}, "roles": [{"name": "admin"}, {"name": "reader"}],
            "expires_at": "2999-01-01T00:00:00.000000Z"}});
        let (c, ttl) = parse_validation(&body).unwrap();
        assert_eq!(c.project_id, "abc");
        assert!(c.roles.contains("admin") && c.roles.contains("reader"));
        assert_eq!(ttl, CACHE_TTL);
        let unscoped = json!({"token": {"roles": []}});
        assert!(matches!(
            parse_validation(&unscoped),
            Err(ApiError::Unauthorized(_))
        ));
    }
}
