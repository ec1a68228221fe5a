//! One client per accounting provider (Xero, QuickBooks Online, MYOB, MYOB Acumatica) behind
//! one trait, and the mapping of each provider's errors into diagnoses.
//!
//! Empty for now: the OAuth issue brings the Xero, QuickBooks and MYOB clients, the Acumatica
//! issue the password-session client.
