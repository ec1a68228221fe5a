//! The provider clients the hub was configured with.

use std::collections::HashMap;

use anyhow::Context;
use ledgerlink_core::Provider;
use ledgerlink_providers::{OAuthClient, OAuthEndpoints};

use crate::Config;

pub struct ProviderRegistry {
    oauth: HashMap<Provider, OAuthClient>,
}

impl ProviderRegistry {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.provider_timeout)
            .connect_timeout(config.provider_timeout.min(std::time::Duration::from_secs(30)))
            .user_agent(concat!("ledgerlink/", env!("CARGO_PKG_VERSION")))
            // Token endpoints must not be followed elsewhere with credentials attached.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("Failed to build the HTTP client for providers")?;
        let mut oauth = HashMap::new();
        for provider in Provider::OAUTH {
            let Some(settings) = config.providers.get(provider) else { continue };
            let (Some(client_id), Some(client_secret)) = (&settings.client_id, &settings.client_secret)
            else {
                continue;
            };
            let endpoints = OAuthEndpoints {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                authorize_url: settings.authorize_url.clone(),
                token_url: settings.token_url.clone(),
                connections_url: settings.connections_url.clone(),
                api_base_url: settings.api_base_url.clone(),
                revoke_url: settings.revoke_url.clone(),
                api_key: settings.api_key.clone(),
                scopes: settings.scopes.split_whitespace().map(str::to_owned).collect(),
            };
            oauth.insert(provider, OAuthClient::new(provider, endpoints, http.clone()));
        }
        Ok(Self { oauth })
    }

    /// The OAuth client of `provider`, or why there is none.
    pub fn oauth(&self, provider: Provider) -> Result<&OAuthClient, String> {
        self.oauth.get(&provider).ok_or_else(|| {
            format!(
                "{} is not configured on this hub: set providers.{}.client_id and client_secret",
                provider.display_name(),
                provider.as_str()
            )
        })
    }
}
