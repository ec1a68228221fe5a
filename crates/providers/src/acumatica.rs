//! MYOB Acumatica's contract-based REST API with a password API user: log in, do the work,
//! **always** log out.
//!
//! Acumatica counts signed-in API sessions against the licence; a session left open (an error,
//! a timeout, a caller that gave up) keeps counting until it expires, and enough of them lock
//! every integration out with "API Login Limit". A [`Session`] from [`AcumaticaClient::open`] logs out after
//! the work whatever happened, and a session dropped half way (an error path, a cancelled
//! request) logs out in the background.
//!
//! Login failures arrive as HTTP 500 with `{"message", "exceptionMessage", "exceptionType"}`;
//! [`Diagnosis::acumatica_login`] reads `exceptionMessage` (rejected credentials, a locked user,
//! the login limit, an expired password).

use ledgerlink_core::{Diagnosis, Provider, SecretString};
use reqwest::header::{COOKIE, HeaderMap, SET_COOKIE};

use crate::ProviderError;

/// Where and as whom to log in.
#[derive(Clone, Debug)]
pub struct AcumaticaLogin {
    /// The instance's base URL, which may include a path (`https://x.example.com/AcumaticaERP`).
    pub instance_url: url::Url,
    pub username: String,
    pub password: SecretString,
    pub tenant: Option<String>,
    pub company: Option<String>,
    pub branch: Option<String>,
}

impl AcumaticaLogin {
    /// `path` below the instance URL, e.g. `entity/auth/login`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.instance_url.as_str().trim_end_matches('/'), path.trim_start_matches('/'))
    }
}

/// A signed-in session. [`Session::close`] logs out; a session dropped without closing logs out
/// in the background.
pub struct Session {
    client: AcumaticaClient,
    login: AcumaticaLogin,
    cookies: Option<String>,
}

/// An answer from the entity API, as it came.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The diagnosis of a failed answer (none for 2xx).
    pub fn diagnosis(&self) -> Option<Diagnosis> {
        crate::classify::api_response(Provider::Acumatica, self.status, &self.headers, &self.body)
    }
}

#[derive(Clone)]
pub struct AcumaticaClient {
    http: reqwest::Client,
}

impl AcumaticaClient {
    /// A client over `http`, which should not follow redirects and should time out (the hub
    /// passes its proxy's client, built once).
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }

    /// Logs in. The session must be [`Session::close`]d (it logs out when dropped otherwise).
    pub async fn open(&self, login: &AcumaticaLogin) -> Result<Session, Diagnosis> {
        let cookies = self.login(login).await?;
        Ok(Session { client: self.clone(), login: login.clone(), cookies: Some(cookies) })
    }

    async fn login(&self, login: &AcumaticaLogin) -> Result<String, Diagnosis> {
        let url = login.url("entity/auth/login");
        let mut body = serde_json::json!({"name": login.username, "password": login.password.expose()});
        if let Some(tenant) = &login.tenant {
            body["tenant"] = tenant.as_str().into();
        }
        if let Some(company) = &login.company {
            body["company"] = company.as_str().into();
        }
        if let Some(branch) = &login.branch {
            body["branch"] = branch.as_str().into();
        }
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| ProviderError::from_reqwest(&e, &url).diagnosis(Provider::Acumatica))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            let cookies: Vec<String> = response
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(|v| v.split(';').next())
                .map(|pair| pair.trim().to_owned())
                .filter(|pair| pair.contains('='))
                .collect();
            return Ok(cookies.join("; "));
        }
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        if status == 500 {
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["exceptionMessage"].as_str().or(v["message"].as_str()).map(str::to_owned))
                .unwrap_or_default();
            return Err(Diagnosis::acumatica_login(status, &message));
        }
        Err(crate::classify::api_response(Provider::Acumatica, status, &headers, text.as_bytes())
            .unwrap_or_else(|| Diagnosis::lookup(Provider::Acumatica, Some(status), None, None)))
    }

    async fn logout(&self, login: &AcumaticaLogin, cookies: &str) {
        let url = login.url("entity/auth/logout");
        match self.http.post(&url).header(COOKIE, cookies).send().await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => tracing::warn!(status = %response.status(), "MYOB Acumatica refused the logout"),
            Err(error) => {
                tracing::warn!(%error, "logging out of MYOB Acumatica failed; the session expires by itself")
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(cookies) = self.cookies.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (client, login) = (self.client.clone(), self.login.clone());
            runtime.spawn(async move { client.logout(&login, &cookies).await });
        }
    }
}

impl Session {
    /// Logs out.
    pub async fn close(mut self) {
        if let Some(cookies) = self.cookies.take() {
            self.client.logout(&self.login, &cookies).await;
        }
    }

    /// Sends a request below the instance URL with the session's cookies.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Vec<u8>,
    ) -> Result<Answer, Diagnosis> {
        let url = self.login.url(path_and_query);
        let response = self
            .client
            .http
            .request(method, &url)
            .headers(headers.clone())
            .header(COOKIE, self.cookies.as_deref().unwrap_or_default())
            .body(body)
            .send()
            .await
            .map_err(|e| ProviderError::from_reqwest(&e, &url).diagnosis(Provider::Acumatica))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| ProviderError::from_reqwest(&e, &url).diagnosis(Provider::Acumatica))?
            .to_vec();
        Ok(Answer { status, headers, body })
    }

    pub async fn get(&self, path_and_query: &str) -> Result<Answer, Diagnosis> {
        self.send(reqwest::Method::GET, path_and_query, &HeaderMap::new(), Vec::new()).await
    }
}

/// The rules MYOB Acumatica 2023.1.3 enforces on passwords, each one a failing password breaks.
pub fn password_policy_failures(password: &str) -> Vec<&'static str> {
    let mut failed = Vec::new();
    if password.chars().count() < 14 {
        failed.push("at least 14 characters");
    }
    if !password.chars().any(|c| c.is_uppercase()) {
        failed.push("an upper-case letter (A to Z)");
    }
    if !password.chars().any(|c| c.is_lowercase()) {
        failed.push("a lower-case letter (a to z)");
    }
    if !password.chars().any(|c| c.is_ascii_digit() || (!c.is_alphanumeric() && !c.is_whitespace())) {
        failed.push("a number (0 to 9) or a symbol (e.g. !#$%^)");
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_2023_1_3_policy_names_each_rule_a_password_breaks() {
        assert!(password_policy_failures("Correct-Horse-Battery-9").is_empty());
        assert!(password_policy_failures("CorrectHorseBatteryStaple!").is_empty(), "a symbol will do");
        assert_eq!(password_policy_failures("Short1!"), ["at least 14 characters"]);
        assert_eq!(
            password_policy_failures("alllowercaseletters"),
            ["an upper-case letter (A to Z)", "a number (0 to 9) or a symbol (e.g. !#$%^)"]
        );
        assert_eq!(password_policy_failures("ALLUPPERCASE12345"), ["a lower-case letter (a to z)"]);
        assert_eq!(password_policy_failures("").len(), 4);
    }

    #[test]
    fn urls_keep_the_instance_path() {
        let login = AcumaticaLogin {
            instance_url: url::Url::parse("https://x.example.com/AcumaticaERP/").unwrap(),
            username: "api".into(),
            password: SecretString::from("p".to_owned()),
            tenant: Some("Company".into()),
            company: None,
            branch: None,
        };
        assert_eq!(login.url("entity/auth/login"), "https://x.example.com/AcumaticaERP/entity/auth/login");
    }
}
