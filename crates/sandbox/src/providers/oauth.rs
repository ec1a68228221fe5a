//! The OAuth 2.0 code flow the three providers share: authorize parameters, the consent page,
//! the decision, and the token endpoint's bookkeeping (faults, counters, concurrency).
//! Each provider module only dresses requests and responses in its own shapes.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use url::Url;

use super::faults::EndpointFault;
use super::http::{escape_html, found};
use super::state::{ConsentRequest, IssuedTokens, ProviderState, TokenError};
use super::{Provider, Simulator};

/// The query parameters the consent page carries through to its decision form.
const CARRIED: [&str; 7] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// A validated authorize request.
struct AuthorizeRequest {
    consent: ConsentRequest,
    redirect: Url,
    state: Option<String>,
}

/// A request the provider refuses with its own error page (no redirect to the app).
#[derive(Debug, thiserror::Error)]
#[error("{error}: {description}")]
struct AuthorizeError {
    error: &'static str,
    description: String,
}

fn invalid(error: &'static str, description: impl Into<String>) -> AuthorizeError {
    AuthorizeError { error, description: description.into() }
}

fn parse_authorize(
    provider: Provider,
    st: &ProviderState,
    params: &HashMap<String, String>,
) -> Result<AuthorizeRequest, AuthorizeError> {
    let get = |name: &str| params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let client_id = get("client_id").ok_or_else(|| invalid("invalid_request", "client_id is missing"))?;
    let app = st.clients.get(client_id).ok_or_else(|| invalid("unauthorized_client", "unknown client_id"))?;
    let redirect_uri =
        get("redirect_uri").ok_or_else(|| invalid("invalid_request", "redirect_uri is missing"))?;
    let redirect = Url::parse(redirect_uri)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| invalid("invalid_request", "redirect_uri must be an absolute http(s) URL"))?;
    if !app.redirect_uris.is_empty() && !app.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(invalid("invalid_request", "redirect_uri is not registered for this client"));
    }
    match get("response_type") {
        Some("code") => {}
        Some(_) => return Err(invalid("unsupported_response_type", "response_type must be code")),
        None => return Err(invalid("invalid_request", "response_type is missing")),
    }
    let scope = match (get("scope"), provider) {
        (Some(scope), _) => scope.to_owned(),
        // MYOB's older keys were documented without a scope; assume the company-file one.
        (None, Provider::Myob) => "CompanyFile".to_owned(),
        (None, _) => return Err(invalid("invalid_scope", "scope is missing")),
    };
    if provider == Provider::QuickBooks
        && !scope.split_whitespace().any(|s| s.starts_with("com.intuit.quickbooks.") || s == "openid")
    {
        return Err(invalid("invalid_scope", "scope must include com.intuit.quickbooks.accounting"));
    }
    let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) => None,
        (Some(challenge), Some("S256")) => Some(challenge.to_owned()),
        (Some(_), _) => return Err(invalid("invalid_request", "code_challenge_method must be S256")),
        (None, Some(_)) => return Err(invalid("invalid_request", "code_challenge is missing")),
    };
    Ok(AuthorizeRequest {
        consent: ConsentRequest {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            scope,
            code_challenge,
        },
        redirect,
        state: params.get("state").cloned(),
    })
}

fn error_page(provider: Provider, error: &AuthorizeError) -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} (sandbox): error</title></head>\n\
         <body><main><h1>Sorry, something went wrong</h1>\n<p>Error: <code>{error}</code></p>\n<p>{description}</p>\n\
         </main></body></html>\n",
        title = provider.display_name(),
        error = error.error,
        description = escape_html(&error.description),
    );
    (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

/// `GET` authorize: the consent page, or straight back to the app when auto-approving.
pub(crate) fn authorize(sim: &Simulator, provider: Provider, params: &HashMap<String, String>) -> Response {
    enum Next {
        /// Auto-approved: the app's callback URL.
        Approved(String),
        Consent(String),
    }
    let next = sim.with_state(provider, |st, rules, now| {
        let request = parse_authorize(provider, st, params)?;
        if st.faults.auto_approve.unwrap_or(rules.auto_approve) {
            let (code, account) = st.approve(now, rules, request.consent.clone());
            return Ok(Next::Approved(approval_location(provider, &request, &code, &account)));
        }
        let account = match st.faults.next_account.as_deref().and_then(|id| st.account(id)) {
            Some(account) => format!(
                "your existing {} <strong>{}</strong>",
                provider.account_noun(),
                escape_html(&account.name)
            ),
            None => format!(
                "a new {} <strong>{}</strong>",
                provider.account_noun(),
                escape_html(&st.next_account_name())
            ),
        };
        Ok(Next::Consent(account))
    });
    match next {
        Err(error) => error_page(provider, &error),
        Ok(Next::Approved(location)) => found(&location),
        Ok(Next::Consent(account)) => consent_page(provider, params, &account),
    }
}

fn consent_page(provider: Provider, params: &HashMap<String, String>, account: &str) -> Response {
    let hidden: String = CARRIED
        .iter()
        .filter_map(|name| params.get(*name).map(|value| (name, value)))
        .map(|(name, value)| {
            format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">", escape_html(value))
        })
        .collect();
    let action = provider.decision_action();
    let client = escape_html(params.get("client_id").map_or("", String::as_str));
    let scopes: String = params
        .get("scope")
        .map_or("", String::as_str)
        .split_whitespace()
        .map(|s| format!("<li><code>{}</code></li>", escape_html(s)))
        .collect();
    let title = provider.display_name();
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title} (sandbox): allow access?</title></head>\n<body><main>\n\
         <h1>{title} (sandbox)</h1>\n<p>The app <code>{client}</code> wants to connect to {account}.</p>\n\
         <p>It asks for:</p><ul>{scopes}</ul>\n\
         <form method=\"post\" action=\"{action}\">{hidden}<input type=\"hidden\" name=\"decision\" value=\"allow\">\
         <button type=\"submit\">Allow access</button></form>\n\
         <form method=\"post\" action=\"{action}\">{hidden}<input type=\"hidden\" name=\"decision\" value=\"deny\">\
         <button type=\"submit\">Deny</button></form>\n</main></body></html>\n"
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

/// `POST` decision from the consent page's forms.
pub(crate) fn decision(sim: &Simulator, provider: Provider, form: &HashMap<String, String>) -> Response {
    let allow = match form.get("decision").map(String::as_str) {
        Some("allow") => true,
        Some("deny") => false,
        _ => return error_page(provider, &invalid("invalid_request", "decision must be allow or deny")),
    };
    let outcome = sim.with_state(provider, |st, rules, now| {
        let request = parse_authorize(provider, st, form)?;
        let approval = allow.then(|| st.approve(now, rules, request.consent.clone()));
        Ok::<_, AuthorizeError>((request, approval))
    });
    match outcome {
        Err(error) => error_page(provider, &error),
        Ok((request, Some((code, account)))) => {
            found(&approval_location(provider, &request, &code, &account))
        }
        Ok((request, None)) => {
            let mut url = request.redirect;
            {
                let mut query = url.query_pairs_mut();
                query.append_pair("error", "access_denied");
                if let Some(state) = &request.state {
                    query.append_pair("state", state);
                }
            }
            found(url.as_str())
        }
    }
}

fn approval_location(provider: Provider, request: &AuthorizeRequest, code: &str, account: &str) -> String {
    let mut url = request.redirect.clone();
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("code", code);
        match provider {
            Provider::Xero => {
                query.append_pair("scope", &request.consent.scope);
            }
            Provider::QuickBooks => {
                query.append_pair("realmId", account);
            }
            Provider::Myob => {
                query.append_pair("businessId", account);
            }
        }
        if let Some(state) = &request.state {
            query.append_pair("state", state);
        }
    }
    url.into()
}

/// What a token-endpoint call came to, before the provider renders it.
pub(crate) enum TokenOutcome {
    Fault(EndpointFault),
    Issued(IssuedTokens),
    Failed(TokenError),
}

pub(crate) struct TokenCall {
    pub outcome: TokenOutcome,
    /// The response must be lost (`drop_next_token_responses`); the work is done regardless.
    pub lost: bool,
    /// Held until the handler returns, so the concurrency counter spans the whole call.
    _in_flight: Option<RefreshInFlight>,
}

/// Runs one token-endpoint call: faults, client authentication, the grant, counters, the
/// configured delay. `client` is the client id and the secret presented, if any.
pub(crate) async fn token_call(
    sim: &Simulator,
    provider: Provider,
    client: Option<(String, Option<String>)>,
    form: &HashMap<String, String>,
) -> TokenCall {
    let (outcome, lost, in_flight, delay) = sim.with_state(provider, |st, rules, now| {
        st.counters.token_requests += 1;
        let delay = Duration::from_millis(st.faults.token_delay_ms);
        if let Some(fault) = st.take_endpoint_fault() {
            return (TokenOutcome::Fault(fault), false, None, delay);
        }
        let grant_type = form.get("grant_type").map(String::as_str);
        let in_flight = match (grant_type, form.get("refresh_token")) {
            (Some("refresh_token"), Some(token)) => st.begin_refresh(token),
            _ => None,
        };
        let result = client
            .as_ref()
            .ok_or(TokenError::InvalidClient)
            .and_then(|(id, secret)| st.authenticate_client(id, secret.as_deref()).map(|()| id))
            .and_then(|client_id| match grant_type {
                Some("authorization_code") => st.exchange_code(now, rules, client_id, form),
                Some("refresh_token") => st.refresh(now, rules, client_id, form),
                Some(_) => Err(TokenError::UnsupportedGrantType),
                None => Err(TokenError::InvalidRequest("grant_type is missing")),
            });
        let outcome = match result {
            Ok(tokens) => TokenOutcome::Issued(tokens),
            Err(error) => {
                match error {
                    TokenError::InvalidGrant(_) => st.counters.invalid_grants += 1,
                    TokenError::InvalidClient => st.counters.invalid_clients += 1,
                    _ => {}
                }
                tracing::debug!(provider = %provider, %error, "sandbox token request refused");
                TokenOutcome::Failed(error)
            }
        };
        let lost = st.faults.take_drop();
        if lost {
            st.counters.dropped_responses += 1;
        }
        (outcome, lost, in_flight, delay)
    });
    // Built outside the lock: dropping the guard takes the lock again.
    let in_flight = in_flight.map(|grant| RefreshInFlight { sim: sim.clone(), provider, grant });
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    TokenCall { outcome, lost, _in_flight: in_flight }
}

/// Counts a refresh as in flight for its grant until dropped (also when the client goes away).
struct RefreshInFlight {
    sim: Simulator,
    provider: Provider,
    grant: u64,
}

impl Drop for RefreshInFlight {
    fn drop(&mut self) {
        let grant = self.grant;
        self.sim.with_state(self.provider, |st, _, _| st.end_refresh(grant));
    }
}
