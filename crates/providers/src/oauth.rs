//! The OAuth 2.0 authorization-code flow as Xero, QuickBooks Online and MYOB implement it.
//!
//! Differences that matter, from the providers' docs:
//! - Client authentication: Xero and QuickBooks take HTTP Basic; MYOB takes the client id and
//!   secret in the form body.
//! - Xero needs the `offline_access` scope to issue a refresh token, supports PKCE, and names
//!   the linked organisation only through `GET /connections`.
//! - QuickBooks puts the company (`realmId`) on the callback; MYOB the company file
//!   (`businessId`).
//! - MYOB sends `expires_in` as a string.
//! - A token response without a `refresh_token` means "keep using the one you have".

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ledgerlink_core::{ExternalAccount, Provider, SecretString};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{ProviderError, parse_retry_after};

/// Where a provider lives and who the hub is to it.
#[derive(Clone, Debug)]
pub struct OAuthEndpoints {
    pub client_id: String,
    pub client_secret: SecretString,
    pub authorize_url: url::Url,
    pub token_url: url::Url,
    pub connections_url: url::Url,
    pub api_base_url: url::Url,
    pub revoke_url: Option<url::Url>,
    /// MYOB's developer key (`x-myobapi-key`); defaults to the client id.
    pub api_key: Option<SecretString>,
    pub scopes: Vec<String>,
}

/// The default scopes: read and write accounting data, and (Xero) a refresh token.
pub fn default_scopes(provider: Provider) -> Vec<String> {
    let scopes: &[&str] = match provider {
        Provider::Xero => &[
            "openid",
            "profile",
            "email",
            "offline_access",
            "accounting.settings",
            "accounting.transactions",
            "accounting.contacts",
        ],
        Provider::QuickBooks => &["com.intuit.quickbooks.accounting"],
        Provider::Myob => &["CompanyFile"],
        Provider::Acumatica | Provider::Reckon => &[],
    };
    scopes.iter().map(|s| (*s).to_owned()).collect()
}

/// Tokens from a code exchange or a refresh.
#[derive(Clone, Debug)]
pub struct TokenSet {
    pub access_token: SecretString,
    /// `None`: the provider sent none; keep the refresh token already held.
    pub refresh_token: Option<SecretString>,
    /// `None`: the provider did not say; use its documented default.
    pub expires_in: Option<Duration>,
    pub refresh_token_expires_in: Option<Duration>,
    pub scope: Option<String>,
}

/// The query of the provider's redirect to `/oauth/callback`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    #[serde(rename = "realmId")]
    pub realm_id: Option<String>,
    #[serde(rename = "businessId")]
    pub business_id: Option<String>,
}

/// A PKCE pair (RFC 7636, S256).
pub struct Pkce {
    pub verifier: SecretString,
    pub challenge: String,
}

impl Pkce {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 48];
        rand::thread_rng().fill_bytes(&mut bytes);
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let challenge = Self::challenge_for(&verifier);
        Self { verifier: SecretString::new(verifier), challenge }
    }

    pub fn challenge_for(verifier: &str) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
    }
}

#[derive(Clone, Debug)]
pub struct OAuthClient {
    provider: Provider,
    endpoints: OAuthEndpoints,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<NumberOrString>,
    #[serde(default)]
    x_refresh_token_expires_in: Option<NumberOrString>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(f64),
    Text(String),
}

impl NumberOrString {
    fn seconds(&self) -> Option<Duration> {
        let secs = match self {
            Self::Number(n) => *n,
            Self::Text(t) => t.trim().parse().ok()?,
        };
        (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs))
    }
}

#[derive(Deserialize)]
struct OAuthErrorBody {
    error: Option<String>,
    error_description: Option<String>,
}

impl OAuthClient {
    pub fn new(provider: Provider, mut endpoints: OAuthEndpoints, http: reqwest::Client) -> Self {
        if provider == Provider::Xero && !endpoints.scopes.iter().any(|s| s == "offline_access") {
            // Without it Xero issues no refresh token and the connection dies in 30 minutes.
            endpoints.scopes.push("offline_access".into());
        }
        Self { provider, endpoints, http }
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    pub fn endpoints(&self) -> &OAuthEndpoints {
        &self.endpoints
    }

    /// Xero supports PKCE on top of the client secret; the others do not document it.
    pub fn uses_pkce(&self) -> bool {
        self.provider == Provider::Xero
    }

    pub fn authorize_url(&self, state: &str, redirect_uri: &str, code_challenge: Option<&str>) -> url::Url {
        let mut url = self.endpoints.authorize_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.endpoints.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("scope", &self.endpoints.scopes.join(" "))
                .append_pair("state", state);
            if let Some(challenge) = code_challenge {
                query.append_pair("code_challenge", challenge).append_pair("code_challenge_method", "S256");
            }
        }
        url
    }

    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&SecretString>,
    ) -> Result<TokenSet, ProviderError> {
        let mut form =
            vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)];
        if let Some(verifier) = code_verifier {
            form.push(("code_verifier", verifier.expose()));
        }
        self.token_request(form).await
    }

    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, ProviderError> {
        self.token_request(vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose())])
            .await
    }

    async fn token_request(&self, mut form: Vec<(&str, &str)>) -> Result<TokenSet, ProviderError> {
        let url = self.endpoints.token_url.as_str();
        let secret = self.endpoints.client_secret.expose();
        let mut request = self.http.post(url).header("accept", "application/json");
        if self.provider == Provider::Myob {
            form.push(("client_id", &self.endpoints.client_id));
            form.push(("client_secret", secret));
        } else {
            request = request.basic_auth(&self.endpoints.client_id, Some(secret));
        }
        let response = request.form(&form).send().await.map_err(|e| ProviderError::from_reqwest(&e, url))?;
        let status = response.status().as_u16();
        let retry_after = header(&response, "retry-after");
        // A body cut short after a 200 is a lost answer, like a dropped connection.
        let body = response.bytes().await.map_err(|e| ProviderError::from_reqwest(&e, url))?;
        if (200..300).contains(&status) {
            let parsed: TokenResponse =
                serde_json::from_slice(&body).map_err(|_| ProviderError::Unexpected {
                    status: Some(status),
                    code: None,
                    // Never echo a success body: it may hold tokens.
                    message: "the token endpoint answered success with a body that is not a token response"
                        .into(),
                })?;
            if parsed.access_token.is_empty() {
                return Err(ProviderError::Unexpected {
                    status: Some(status),
                    code: None,
                    message: "the token endpoint answered success without an access token".into(),
                });
            }
            return Ok(TokenSet {
                access_token: SecretString::new(parsed.access_token),
                refresh_token: parsed.refresh_token.filter(|t| !t.is_empty()).map(SecretString::new),
                expires_in: parsed.expires_in.as_ref().and_then(NumberOrString::seconds),
                refresh_token_expires_in: parsed
                    .x_refresh_token_expires_in
                    .as_ref()
                    .and_then(NumberOrString::seconds),
                scope: parsed.scope,
            });
        }
        Err(classify_error(self.provider, status, retry_after.as_deref(), &body))
    }

    /// Finds which account the new grant reaches, and its name.
    pub async fn discover_account(
        &self,
        access_token: &SecretString,
        callback: &CallbackParams,
    ) -> Result<ExternalAccount, ProviderError> {
        match self.provider {
            Provider::Xero => self.discover_xero(access_token).await,
            Provider::QuickBooks => {
                let realm = callback.realm_id.clone().filter(|r| !r.is_empty()).ok_or_else(|| {
                    ProviderError::Unexpected {
                        status: None,
                        code: None,
                        message: "QuickBooks redirected back without a realmId".into(),
                    }
                })?;
                let url = format!("{}/company/{realm}/companyinfo/{realm}", self.api_base());
                let info: serde_json::Value = self.get_json(&url, access_token, &BTreeMap::new()).await?;
                let name = info["CompanyInfo"]["CompanyName"].as_str().map(str::to_owned);
                Ok(ExternalAccount { id: realm, name })
            }
            Provider::Myob => {
                let url = format!("{}/", self.api_base());
                let headers = self.myob_headers();
                let files: serde_json::Value = self.get_json(&url, access_token, &headers).await?;
                let files = files.as_array().cloned().unwrap_or_default();
                let chosen = match callback.business_id.as_deref().filter(|b| !b.is_empty()) {
                    Some(id) => files
                        .iter()
                        .find(|f| f["Id"].as_str() == Some(id))
                        .cloned()
                        .or_else(|| Some(serde_json::json!({"Id": id}))),
                    None => files.first().cloned(),
                };
                let file = chosen.ok_or_else(|| ProviderError::Unexpected {
                    status: None,
                    code: None,
                    message: "the MYOB user has no company file to link".into(),
                })?;
                Ok(ExternalAccount {
                    id: file["Id"].as_str().unwrap_or_default().to_owned(),
                    name: file["Name"].as_str().map(str::to_owned),
                })
            }
            Provider::Acumatica | Provider::Reckon => Err(ProviderError::Unexpected {
                status: None,
                code: None,
                message: format!("{} does not use OAuth", self.provider),
            }),
        }
    }

    async fn discover_xero(&self, access_token: &SecretString) -> Result<ExternalAccount, ProviderError> {
        let url = self.endpoints.connections_url.as_str();
        let tenants: Vec<serde_json::Value> = self.get_json(url, access_token, &BTreeMap::new()).await?;
        // One consent can link several organisations; the one just linked is the newest.
        let newest = tenants
            .iter()
            .filter(|t| t["tenantType"].as_str().is_none_or(|k| k == "ORGANISATION"))
            .max_by(|a, b| {
                let key = |t: &serde_json::Value| {
                    t["updatedDateUtc"]
                        .as_str()
                        .or(t["createdDateUtc"].as_str())
                        .unwrap_or_default()
                        .to_owned()
                };
                key(a).cmp(&key(b))
            })
            .ok_or_else(|| ProviderError::Unexpected {
                status: None,
                code: None,
                message: "the Xero user did not connect any organisation".into(),
            })?;
        Ok(ExternalAccount {
            id: newest["tenantId"].as_str().unwrap_or_default().to_owned(),
            name: newest["tenantName"].as_str().map(str::to_owned),
        })
    }

    /// Revokes the grant where the provider offers it (MYOB documents no revocation).
    pub async fn revoke(&self, refresh_token: &SecretString) -> Result<(), ProviderError> {
        let Some(url) = &self.endpoints.revoke_url else { return Ok(()) };
        let secret = self.endpoints.client_secret.expose();
        let request = self.http.post(url.as_str()).basic_auth(&self.endpoints.client_id, Some(secret));
        let request = match self.provider {
            Provider::QuickBooks => request
                .header("accept", "application/json")
                .json(&serde_json::json!({"token": refresh_token.expose()})),
            _ => request.form(&[("token", refresh_token.expose())]),
        };
        let response = request.send().await.map_err(|e| ProviderError::from_reqwest(&e, url.as_str()))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let retry_after = header(&response, "retry-after");
        let body = response.bytes().await.unwrap_or_default();
        Err(classify_error(self.provider, status, retry_after.as_deref(), &body))
    }

    /// Headers an app needs besides `Authorization` to call the provider's API for `account`.
    pub fn api_headers(&self, account: &ExternalAccount) -> BTreeMap<String, String> {
        match self.provider {
            Provider::Xero => BTreeMap::from([("xero-tenant-id".to_owned(), account.id.clone())]),
            Provider::Myob => self.myob_headers(),
            _ => BTreeMap::new(),
        }
    }

    /// The API base an app should use for `account` (QuickBooks and MYOB address the company
    /// in the path).
    pub fn account_api_base(&self, account: &ExternalAccount) -> String {
        match self.provider {
            Provider::QuickBooks => format!("{}/company/{}", self.api_base(), account.id),
            Provider::Myob => format!("{}/{}", self.api_base(), account.id),
            _ => self.api_base().to_owned(),
        }
    }

    fn api_base(&self) -> &str {
        self.endpoints.api_base_url.as_str().trim_end_matches('/')
    }

    fn myob_headers(&self) -> BTreeMap<String, String> {
        let key = self.endpoints.api_key.as_ref().map_or(self.endpoints.client_id.as_str(), |k| k.expose());
        BTreeMap::from([
            ("x-myobapi-key".to_owned(), key.to_owned()),
            ("x-myobapi-version".to_owned(), "v2".to_owned()),
        ])
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        access_token: &SecretString,
        headers: &BTreeMap<String, String>,
    ) -> Result<T, ProviderError> {
        let mut request =
            self.http.get(url).bearer_auth(access_token.expose()).header("accept", "application/json");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| ProviderError::from_reqwest(&e, url))?;
        let status = response.status().as_u16();
        let retry_after = header(&response, "retry-after");
        let body = response.bytes().await.map_err(|e| ProviderError::from_reqwest(&e, url))?;
        if !(200..300).contains(&status) {
            return Err(classify_error(self.provider, status, retry_after.as_deref(), &body));
        }
        serde_json::from_slice(&body).map_err(|e| ProviderError::Unexpected {
            status: Some(status),
            code: None,
            message: format!("{url} answered with a body the hub could not read: {e}"),
        })
    }
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Maps a non-2xx answer to a [`ProviderError`] using the status and the provider's body.
pub fn classify_error(
    provider: Provider,
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
) -> ProviderError {
    let text = String::from_utf8_lossy(body);
    let oauth: Option<OAuthErrorBody> = serde_json::from_slice(body).ok();
    let oauth_error = oauth.as_ref().and_then(|o| o.error.clone());
    let description = oauth.as_ref().and_then(|o| o.error_description.clone());
    let retry_after = parse_retry_after(retry_after, SystemTime::now());
    match (status, oauth_error.as_deref()) {
        (_, Some("invalid_grant")) => ProviderError::InvalidGrant { status, description },
        (_, Some("invalid_client" | "unauthorized_client")) => ProviderError::InvalidClient { status },
        (429, _) => ProviderError::RateLimited { status, retry_after },
        // MYOB signals rate limits with 403 and an error named RateLimitError.
        (403, _) if provider == Provider::Myob && text.contains("RateLimitError") => {
            ProviderError::RateLimited { status, retry_after }
        }
        (500..=599, _) => ProviderError::Unavailable { status, message: short(&text) },
        _ => ProviderError::Unexpected {
            status: Some(status),
            code: oauth_error,
            message: short(&text).unwrap_or_default(),
        },
    }
}

fn short(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.chars().take(500).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(provider: Provider) -> OAuthClient {
        let url = |p: &str| url::Url::parse(&format!("https://example.test/{p}")).unwrap();
        OAuthClient::new(
            provider,
            OAuthEndpoints {
                client_id: "client-1".into(),
                client_secret: SecretString::new("secret"),
                authorize_url: url("authorize"),
                token_url: url("token"),
                connections_url: url("connections"),
                api_base_url: url("api"),
                revoke_url: None,
                api_key: None,
                scopes: vec!["accounting.transactions".into()],
            },
            reqwest::Client::new(),
        )
    }

    #[test]
    fn xero_always_asks_for_offline_access_and_uses_pkce() {
        let xero = client(Provider::Xero);
        let url = xero.authorize_url("st", "http://hub/oauth/callback", Some("chal"));
        let query: BTreeMap<_, _> = url.query_pairs().into_owned().collect();
        assert!(query["scope"].split(' ').any(|s| s == "offline_access"));
        assert_eq!(query["state"], "st");
        assert_eq!(query["redirect_uri"], "http://hub/oauth/callback");
        assert_eq!(query["code_challenge_method"], "S256");
        assert!(xero.uses_pkce() && !client(Provider::Myob).uses_pkce());
    }

    #[test]
    fn the_pkce_challenge_is_the_rfc_7636_s256_of_the_verifier() {
        // RFC 7636 appendix B.
        assert_eq!(
            Pkce::challenge_for("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let pkce = Pkce::generate();
        assert_eq!(Pkce::challenge_for(pkce.verifier.expose()), pkce.challenge);
    }

    #[test]
    fn expires_in_may_be_a_number_or_a_string() {
        let myob: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":"1200"}"#).unwrap();
        assert_eq!(myob.expires_in.unwrap().seconds(), Some(Duration::from_secs(1200)));
        let xero: TokenResponse = serde_json::from_str(r#"{"access_token":"a","expires_in":1800}"#).unwrap();
        assert_eq!(xero.expires_in.unwrap().seconds(), Some(Duration::from_secs(1800)));
        let odd: TokenResponse = serde_json::from_str(r#"{"access_token":"a","expires_in":"soon"}"#).unwrap();
        assert_eq!(odd.expires_in.unwrap().seconds(), None);
    }

    #[test]
    fn error_answers_are_classified_by_body_then_status() {
        let c = |p, s, h: Option<&str>, b: &str| classify_error(p, s, h, b.as_bytes());
        assert!(matches!(
            c(Provider::Xero, 400, None, r#"{"error":"invalid_grant"}"#),
            ProviderError::InvalidGrant { .. }
        ));
        assert!(matches!(
            c(Provider::Xero, 401, None, r#"{"error":"invalid_client"}"#),
            ProviderError::InvalidClient { .. }
        ));
        assert!(matches!(
            c(Provider::Xero, 429, Some("7"), ""),
            ProviderError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            c(Provider::Myob, 403, None, r#"{"Errors":[{"Name":"RateLimitError"}]}"#),
            ProviderError::RateLimited { .. }
        ));
        assert!(matches!(c(Provider::Xero, 403, None, "forbidden"), ProviderError::Unexpected { .. }));
        assert!(matches!(
            c(Provider::QuickBooks, 503, None, "down"),
            ProviderError::Unavailable { status: 503, .. }
        ));
        assert!(matches!(
            c(Provider::Xero, 400, None, "<html>"),
            ProviderError::Unexpected { status: Some(400), .. }
        ));
    }

    #[test]
    fn apps_get_the_headers_and_base_each_provider_needs() {
        let account = ExternalAccount { id: "abc".into(), name: None };
        assert_eq!(client(Provider::Xero).api_headers(&account)["xero-tenant-id"], "abc");
        let myob = client(Provider::Myob).api_headers(&account);
        assert_eq!(myob["x-myobapi-key"], "client-1");
        assert_eq!(myob["x-myobapi-version"], "v2");
        assert_eq!(
            client(Provider::QuickBooks).account_api_base(&account),
            "https://example.test/api/company/abc"
        );
    }
}
