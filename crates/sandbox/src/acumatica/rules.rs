//! What a simulated instance enforces: where it is served, its version, its security policy
//! and its licence's API limits. `InstanceRules::default()` is a typical instance just before
//! the 2023.1.3 upgrade of seed 002.

use std::cmp::Ordering;
use std::time::Duration;

use rand::Rng as _;
use rand::seq::SliceRandom as _;

/// The first MYOB Acumatica version whose password policy is mandatory (seed 002).
pub const POLICY_VERSION: &str = "2023.1.3";

/// The version an instance starts at by default: the last before [`POLICY_VERSION`].
pub const DEFAULT_VERSION: &str = "2023.1.2";

/// The version the `upgrade` control action moves to when none is named.
pub const UPGRADE_VERSION: &str = POLICY_VERSION;

#[derive(Clone, Debug)]
pub struct InstanceRules {
    /// Where [`super::router`] serves the instance: `/acumatica` by default, `/AcumaticaERP` like
    /// an on-premises site, or empty for the root. The control API is outside it.
    pub base_path: String,
    /// The version the instance starts at ([`DEFAULT_VERSION`]); from [`POLICY_VERSION`] on,
    /// passwords must meet the policy.
    pub version: String,
    /// Wrong passwords in a row that lock a user (Security Preferences' lockout threshold): 5.
    /// `None` never locks. Locked users stay locked until an administrator unlocks them.
    pub lockout_threshold: Option<u32>,
    /// A session not used for this long ends, and frees its licence slot: 10 minutes.
    pub session_idle_timeout: Duration,
    /// The licence's Maximum Number of Web Services API Users: sessions open at once, across
    /// tenants; one more login answers "API Login Limit". 10 by default; a trial licence has 2.
    pub max_api_sessions: Option<u32>,
    /// The licence's concurrent API requests: more in flight at once answer 429. Not limited by
    /// default (the real instance queues them first; the simulator refuses at once).
    pub max_concurrent_requests: Option<u32>,
    /// The licence's API requests per minute (a rolling minute on the injected clock): more
    /// answer 429. Not limited by default.
    pub requests_per_minute: Option<u32>,
    /// Passwords older than this have expired. `None` (the default): they never expire, as the
    /// seed's administrators set them.
    pub password_lifetime: Option<Duration>,
}

impl Default for InstanceRules {
    fn default() -> Self {
        Self {
            base_path: "/acumatica".into(),
            version: DEFAULT_VERSION.into(),
            lockout_threshold: Some(5),
            session_idle_timeout: Duration::from_secs(10 * 60),
            max_api_sessions: Some(10),
            max_concurrent_requests: None,
            requests_per_minute: None,
            password_lifetime: None,
        }
    }
}

impl InstanceRules {
    /// A trial licence: two API users signed in at once, no other limit.
    pub fn trial() -> Self {
        Self { max_api_sessions: Some(2), ..Self::default() }
    }

    pub fn with_base_path(mut self, base_path: &str) -> Self {
        self.base_path = base_path.into();
        self
    }

    pub fn with_version(mut self, version: &str) -> Self {
        self.version = version.into();
        self
    }

    pub fn with_lockout_threshold(mut self, threshold: Option<u32>) -> Self {
        self.lockout_threshold = threshold;
        self
    }

    pub fn with_session_idle_timeout(mut self, timeout: Duration) -> Self {
        self.session_idle_timeout = timeout;
        self
    }

    pub fn with_max_api_sessions(mut self, max: Option<u32>) -> Self {
        self.max_api_sessions = max;
        self
    }

    pub fn with_max_concurrent_requests(mut self, max: Option<u32>) -> Self {
        self.max_concurrent_requests = max;
        self
    }

    pub fn with_requests_per_minute(mut self, max: Option<u32>) -> Self {
        self.requests_per_minute = max;
        self
    }

    pub fn with_password_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.password_lifetime = lifetime;
        self
    }

    /// `base_path` with one leading slash and none at the end; empty for the root.
    pub fn normalized_base_path(&self) -> String {
        let trimmed = self.base_path.trim().trim_matches('/');
        if trimmed.is_empty() { String::new() } else { format!("/{trimmed}") }
    }
}

/// A version's numbers (`2023.1.3` → `[2023, 1, 3]`), or `None` when it is not dotted numbers.
pub(crate) fn parse_version(version: &str) -> Option<Vec<u32>> {
    let parts: Option<Vec<u32>> = version.trim().split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| !p.is_empty())
}

/// Compares two versions by their numbers; a missing trailing number counts as 0.
pub(crate) fn compare_versions(a: &[u32], b: &[u32]) -> Ordering {
    let len = a.len().max(b.len());
    (0..len)
        .map(|i| a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0)))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// True when `version` enforces the password policy (2023.1.3 and later).
pub fn policy_applies(version: &str) -> bool {
    let policy = parse_version(POLICY_VERSION).unwrap_or_default();
    parse_version(version).is_some_and(|v| compare_versions(&v, &policy).is_ge())
}

/// What `password` lacks under the 2023.1.3 policy, each said as a person would read it;
/// empty when it passes. The policy: at least 14 characters, an upper-case letter (A to Z), a
/// lower-case letter (a to z), and a number (0 to 9) or a symbol.
pub fn password_policy_failures(password: &str) -> Vec<&'static str> {
    let mut failures = Vec::new();
    if password.chars().count() < 14 {
        failures.push("at least 14 characters");
    }
    if !password.chars().any(|c| c.is_ascii_uppercase()) {
        failures.push("an upper-case letter (A to Z)");
    }
    if !password.chars().any(|c| c.is_ascii_lowercase()) {
        failures.push("a lower-case letter (a to z)");
    }
    if !password.chars().any(|c| c.is_ascii_digit() || (!c.is_alphanumeric() && !c.is_whitespace())) {
        failures.push("a number (0 to 9) or a symbol (e.g. !#$%^)");
    }
    failures
}

/// A random 16-character password that meets the policy, like the one the upgrade sets.
pub(crate) fn generate_password() -> String {
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const DIGITS: &[u8] = b"23456789";
    const SYMBOLS: &[u8] = b"!#$%^*";
    let mut rng = rand::thread_rng();
    let mut pick = |set: &[u8]| char::from(set[rng.gen_range(0..set.len())]);
    let mut chars = vec![pick(UPPER), pick(LOWER), pick(DIGITS), pick(SYMBOLS)];
    let all: Vec<u8> = [UPPER, LOWER, DIGITS].concat();
    while chars.len() < 16 {
        chars.push(pick(&all));
    }
    chars.shuffle(&mut rand::thread_rng());
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_each_rule_a_password_fails() {
        assert_eq!(password_policy_failures("Str0ngEnough!Pass"), Vec::<&str>::new());
        assert_eq!(password_policy_failures("lowercaseonly-long"), vec!["an upper-case letter (A to Z)"]);
        assert_eq!(
            password_policy_failures("abc"),
            vec![
                "at least 14 characters",
                "an upper-case letter (A to Z)",
                "a number (0 to 9) or a symbol (e.g. !#$%^)"
            ]
        );
        // A symbol stands in for a digit; a space is not a symbol.
        assert!(password_policy_failures("NoDigitsHere!xyz").is_empty());
        assert_eq!(password_policy_failures("NoDigits Here xyz").len(), 1);
    }

    #[test]
    fn generated_passwords_meet_the_policy_and_differ() {
        let a = generate_password();
        let b = generate_password();
        assert!(password_policy_failures(&a).is_empty(), "{a}");
        assert_eq!(a.chars().count(), 16);
        assert_ne!(a, b);
    }

    #[test]
    fn the_policy_applies_from_2023_1_3() {
        assert!(!policy_applies("2023.1.2"));
        assert!(!policy_applies("2022.2.10"));
        assert!(policy_applies("2023.1.3"));
        assert!(policy_applies("2023.2"));
        assert!(policy_applies("2024.1.1"));
        assert!(!policy_applies("latest"));
    }

    #[test]
    fn base_paths_are_normalised() {
        let path = |p: &str| InstanceRules::default().with_base_path(p).normalized_base_path();
        assert_eq!(path("AcumaticaERP/"), "/AcumaticaERP");
        assert_eq!(path("/"), "");
        assert_eq!(path(""), "");
        assert_eq!(path("/acumatica"), "/acumatica");
    }
}
