//! A connection's lifecycle: its status and, when a person must act, the reason.

use std::fmt;
use std::str::FromStr;

/// What the provider identifies: a Xero `tenantId`, a QuickBooks `realmId`, a MYOB company
/// file id, an Acumatica instance and tenant, a Reckon company file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExternalAccount {
    pub id: String,
    pub name: Option<String>,
}

/// Green, amber, red — and the two states before and outside them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionStatus {
    /// Created; waiting for the user to authorise, or for credentials.
    Pending,
    /// Green: the last authorisation step succeeded.
    Connected,
    /// Amber: transient failures; the authorisation is believed valid and the hub retries.
    Degraded,
    /// Red: a person must act; always has a [`DisconnectReason`].
    Disconnected,
    /// Deliberately stopped.
    Paused,
}

impl ConnectionStatus {
    pub const ALL: [Self; 5] =
        [Self::Pending, Self::Connected, Self::Degraded, Self::Disconnected, Self::Paused];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Connected => "connected",
            Self::Degraded => "degraded",
            Self::Disconnected => "disconnected",
            Self::Paused => "paused",
        }
    }

    /// Whether the hub keeps the connection's tokens fresh.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Connected | Self::Degraded)
    }
}

impl fmt::Display for ConnectionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConnectionStatus {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|s| s.as_str() == value).ok_or_else(|| {
            format!("must be one of pending, connected, degraded, disconnected, paused (got {value:?})")
        })
    }
}

/// Why a connection is disconnected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    AuthorizationRevoked,
    RefreshTokenExpired,
    SupersededByDuplicateLink,
    InsufficientPermission,
    CredentialsRejected,
    AccountLocked,
    ApiUserLimitReached,
    ConfigurationError,
    SubscriptionChanged,
}

impl DisconnectReason {
    pub const ALL: [Self; 9] = [
        Self::AuthorizationRevoked,
        Self::RefreshTokenExpired,
        Self::SupersededByDuplicateLink,
        Self::InsufficientPermission,
        Self::CredentialsRejected,
        Self::AccountLocked,
        Self::ApiUserLimitReached,
        Self::ConfigurationError,
        Self::SubscriptionChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationRevoked => "authorization_revoked",
            Self::RefreshTokenExpired => "refresh_token_expired",
            Self::SupersededByDuplicateLink => "superseded_by_duplicate_link",
            Self::InsufficientPermission => "insufficient_permission",
            Self::CredentialsRejected => "credentials_rejected",
            Self::AccountLocked => "account_locked",
            Self::ApiUserLimitReached => "api_user_limit_reached",
            Self::ConfigurationError => "configuration_error",
            Self::SubscriptionChanged => "subscription_changed",
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DisconnectReason {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|r| r.as_str() == value).ok_or_else(|| format!("unknown reason {value:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_reasons_round_trip_through_their_names() {
        for s in ConnectionStatus::ALL {
            assert_eq!(s.as_str().parse::<ConnectionStatus>().unwrap(), s);
        }
        for r in DisconnectReason::ALL {
            assert_eq!(r.as_str().parse::<DisconnectReason>().unwrap(), r);
        }
        assert!("green".parse::<ConnectionStatus>().is_err());
    }
}
