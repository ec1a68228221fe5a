//! The API proxy: forwards an app's request to the provider with the connection's token and
//! tenant headers, within the provider's published limits.
//!
//! Limits are kept per external account (Xero: 5 in flight and 60 per minute per organisation;
//! QuickBooks: 10 in flight and 500 per minute per company) and per app for MYOB, whose
//! 8 requests per second apply to the whole API key. A request over a limit waits its turn
//! (FIFO) instead of failing. A provider's rate-limit answer pauses that account for its
//! `Retry-After` and the request is sent again; a 401 refreshes the token once and retries.
//!
//! Limits are counted in this process: several hub instances each keep their own count.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ledgerlink_core::Provider;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// A provider's published limits for one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub concurrent: usize,
    pub per_window: usize,
    pub window: Duration,
}

impl Limits {
    pub fn of(provider: Provider) -> Self {
        match provider {
            // Minute limits are counted over 61 s, for the same reason as MYOB's below.
            Provider::Xero => Self { concurrent: 5, per_window: 60, window: Duration::from_secs(61) },
            Provider::QuickBooks => Self { concurrent: 10, per_window: 500, window: Duration::from_secs(61) },
            // 8 per second, counted over 1.25 s: requests reach MYOB a little later and closer
            // together than they leave here, and a rolling second there must never see a ninth.
            Provider::Myob => Self { concurrent: 8, per_window: 8, window: Duration::from_millis(1250) },
            // Password and desktop providers are not proxied; a conservative default.
            _ => Self { concurrent: 2, per_window: 60, window: Duration::from_secs(60) },
        }
    }

    /// The key limits are counted under: the account, or the whole app for MYOB.
    pub fn key(provider: Provider, account_id: &str) -> String {
        match provider {
            Provider::Myob => "myob".into(),
            _ => format!("{}:{account_id}", provider.as_str()),
        }
    }
}

/// Per-key queues.
#[derive(Default)]
pub struct RateLimiter {
    keys: Mutex<HashMap<String, Arc<Bucket>>>,
}

struct Bucket {
    limits: Limits,
    in_flight: Arc<Semaphore>,
    state: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    /// When each request of the current window started.
    starts: VecDeque<Instant>,
    /// A provider's `Retry-After`: nothing goes out before this.
    paused_until: Option<Instant>,
}

/// A slot to send one request; dropping it frees the concurrency slot.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl RateLimiter {
    fn bucket(&self, key: &str, limits: Limits) -> Arc<Bucket> {
        let mut keys = self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(keys.entry(key.to_owned()).or_insert_with(|| {
            Arc::new(Bucket {
                limits,
                in_flight: Arc::new(Semaphore::new(limits.concurrent)),
                state: Mutex::new(Window::default()),
            })
        }))
    }

    /// Waits (in arrival order) until a request may go out under `key`'s limits, or until
    /// `deadline`; `None` when the deadline came first.
    pub async fn acquire(&self, key: &str, limits: Limits, deadline: Instant) -> Option<Slot> {
        let bucket = self.bucket(key, limits);
        let permit = tokio::time::timeout_at(deadline, Arc::clone(&bucket.in_flight).acquire_owned())
            .await
            .ok()?
            .ok()?;
        loop {
            let wait_until = {
                let mut window = bucket.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = Instant::now();
                while window.starts.front().is_some_and(|t| now.duration_since(*t) >= bucket.limits.window) {
                    window.starts.pop_front();
                }
                match window.paused_until {
                    Some(until) if until > now => Some(until),
                    _ if window.starts.len() >= bucket.limits.per_window => {
                        window.starts.front().map(|t| *t + bucket.limits.window)
                    }
                    _ => {
                        window.starts.push_back(now);
                        None
                    }
                }
            };
            match wait_until {
                None => return Some(Slot { _permit: permit }),
                Some(until) if until > deadline => return None,
                Some(until) => tokio::time::sleep_until(until).await,
            }
        }
    }

    /// Holds every request under `key` until `wait` has passed (a provider's `Retry-After`).
    pub fn pause(&self, key: &str, limits: Limits, wait: Duration) {
        let bucket = self.bucket(key, limits);
        let mut window = bucket.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let until = Instant::now() + wait;
        if window.paused_until.is_none_or(|current| current < until) {
            window.paused_until = Some(until);
        }
    }
}

/// Whether a path (after the proxy prefix) is safe to append to an account's API base: no
/// `..` or `.` segments that could leave the account's part of the API, in plain or encoded form.
pub fn safe_path(path: &str) -> bool {
    let decoded = path.replace("%2e", ".").replace("%2E", ".").replace("%2f", "/").replace("%2F", "/");
    !decoded.split(['/', '\\']).any(|segment| segment == ".." || segment == ".")
        && !path.contains('#')
        && !path.starts_with('/')
}

/// The proxy's HTTP client and limit queues, shared by every request of this process.
pub struct Proxy {
    pub client: reqwest::Client,
    pub limiter: RateLimiter,
}

impl Proxy {
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ledgerlink/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, limiter: RateLimiter::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_over_the_window_wait_their_turn() {
        let limiter = RateLimiter::default();
        let limits = Limits { concurrent: 5, per_window: 3, window: Duration::from_secs(60) };
        let start = Instant::now();
        let far = start + Duration::from_secs(600);
        for _ in 0..3 {
            drop(limiter.acquire("xero:a", limits, far).await.unwrap());
        }
        assert_eq!(Instant::now(), start, "the first three go at once");
        drop(limiter.acquire("xero:a", limits, far).await.unwrap());
        assert_eq!(Instant::now() - start, Duration::from_secs(60), "the fourth waits for the window");
        // Another account has its own window.
        drop(limiter.acquire("xero:b", limits, far).await.unwrap());
        assert_eq!(Instant::now() - start, Duration::from_secs(60));
        // A deadline before the next slot gives up.
        for _ in 0..2 {
            drop(limiter.acquire("xero:a", limits, far).await.unwrap());
        }
        let soon = Instant::now() + Duration::from_secs(5);
        assert!(limiter.acquire("xero:a", limits, soon).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_capped_and_retry_after_pauses_the_account() {
        let limiter = Arc::new(RateLimiter::default());
        let limits = Limits { concurrent: 2, per_window: 100, window: Duration::from_secs(60) };
        let far = Instant::now() + Duration::from_secs(600);
        let a = limiter.acquire("k", limits, far).await.unwrap();
        let _b = limiter.acquire("k", limits, far).await.unwrap();
        let soon = Instant::now() + Duration::from_secs(1);
        assert!(limiter.acquire("k", limits, soon).await.is_none(), "a third waits for a free slot");
        drop(a);
        limiter.pause("k", limits, Duration::from_secs(30));
        let before = Instant::now();
        let _c = limiter.acquire("k", limits, far).await.unwrap();
        assert_eq!(Instant::now() - before, Duration::from_secs(30));
    }

    #[test]
    fn paths_cannot_climb_out_of_the_account() {
        assert!(safe_path("Contacts"));
        assert!(safe_path("query?x=1"));
        assert!(safe_path("companyinfo/123"));
        assert!(!safe_path("../other/companyinfo"));
        assert!(!safe_path("a/%2e%2e/b"));
        assert!(!safe_path("a/%2E%2e%2Fb/.."));
        assert!(!safe_path("/absolute"));
        assert!(!safe_path("a\\..\\b"));
    }
}
