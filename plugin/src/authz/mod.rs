//! What a proven caller may do: the route policy it falls under and the scopes it must hold.

pub mod delegation;
pub mod kind;
pub mod pattern;
pub mod rate_limit;
pub mod revocation;
pub mod routes;
pub mod tenant;

use crate::credential::Identity;

/// The route's required scopes that `identity` lacks (empty: authorized).
pub fn missing_scopes<'r>(required: &'r [String], identity: &Identity) -> Vec<&'r str> {
    required
        .iter()
        .filter(|s| !identity.scopes.iter().any(|g| g == *s))
        .map(String::as_str)
        .collect()
}
