//! The texts a simulated instance answers failed logins with, in the `exceptionMessage` of an
//! HTTP 500 `{"message": "An error has occurred.", "exceptionMessage", "exceptionType"}`.
//!
//! Where a text was seen from real instances it is used as is; where it was not, the wording
//! follows the same style and keeps the words the hub classifies by
//! (`ledgerlink_core::Diagnosis::acumatica_login`).

/// Wrong password, or no such user in the tenant (seen from MYOB Advanced instances).
pub const INVALID_CREDENTIALS: &str = "Error: Invalid credentials. Please try again.";

/// The tenant (`tenant` or `company`) is unknown, or none was sent and the instance has
/// several (`PX.Data.PXUndefinedCompanyException`'s own text).
pub const UNKNOWN_TENANT: &str = "A proper company ID cannot be determined for the request.";

/// The user is locked, usually after repeated wrong passwords (seed 002: "Your account is
/// locked").
pub const ACCOUNT_LOCKED: &str = "Error: Your account is locked. Please contact your system administrator.";

/// The password is older than the password lifetime, or an administrator expired it.
pub const PASSWORD_EXPIRED: &str =
    "Error: Your password has expired. Sign in by using your browser to set a new password.";

/// The user must change the password before signing in (seen from real instances for a user
/// flagged to change the password on next login).
pub const PASSWORD_CHANGE_REQUIRED: &str =
    "You need to change your password. Sign in by using your browser to set a new password.";

/// The licence's API users are all signed in.
pub const API_LOGIN_LIMIT: &str = "API Login Limit";

/// The login named a branch the user may not sign in to.
pub fn branch_not_allowed(branch: &str) -> String {
    format!("Error: You do not have access to the branch '{branch}'.")
}

/// `exceptionType` of each failure.
pub const PX_EXCEPTION: &str = "PX.Data.PXException";
pub const PX_UNDEFINED_COMPANY_EXCEPTION: &str = "PX.Data.PXUndefinedCompanyException";

/// The body of an entity request without a live session (HTTP 401), in ASP.NET Web API's words.
pub const NOT_AUTHORIZED: &str = "Authorization has been denied for this request.";

/// The body of a 429.
pub const REQUEST_LIMIT: &str = "The number of requests has exceeded the limit imposed by the license.";
