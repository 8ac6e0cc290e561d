//! Claims: one automatic action on a function at a time, across every instance of the guard.
//!
//! The record in the function's tags is the authority for the cooldown, but on a bad day it is
//! written after the alias moves (`quota`: records wait while actions wait), and instances
//! share no memory: a second alarm of the same function, taken by another instance after the
//! first moved the alias and before its record was written, would find no record and move the
//! alias a second time, one more release back. So before its first action an automatic cause
//! claims the function until the cooldown's end, in one place all instances see (a DynamoDB
//! conditional write, `adapters::claims`); a cause that finds another's claim is held back as
//! by the cooldown. The cause that holds the claim may take it again (its own duplicates go
//! the usual way, exactly once); one whose action changed nothing gives it back.

use crate::ports::PortError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

/// Who holds a function's claim, since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The cause's dedupe key.
    pub cause: String,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait Claims: Send + Sync {
    /// Claims `function` (`ACCOUNT:NAME`) for `cause` from `at` until `until`, unless another
    /// cause holds it until later than `at`: `Ok(None)` when claimed, else who holds it.
    async fn claim(
        &self,
        function: &str,
        cause: &str,
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Claim>, PortError>;

    /// Gives `cause`'s claim on `function` back (its action changed nothing). Another's claim
    /// is left alone.
    async fn release(&self, function: &str, cause: &str) -> Result<(), PortError>;
}

/// Claims in this process's memory: what a guard without a claim table has (the CLI, tests),
/// and what instances sharing one store look like in the simulation.
#[derive(Default)]
pub struct LocalClaims {
    held: Mutex<HashMap<String, (Claim, DateTime<Utc>)>>,
}

#[async_trait]
impl Claims for LocalClaims {
    async fn claim(
        &self,
        function: &str,
        cause: &str,
        at: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<Claim>, PortError> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((holder, end)) = held.get(function) {
            if holder.cause != cause && *end > at {
                return Ok(Some(holder.clone()));
            }
        }
        let claim = Claim {
            cause: cause.to_string(),
            at,
        };
        held.insert(function.to_string(), (claim, until));
        Ok(None)
    }

    async fn release(&self, function: &str, cause: &str) -> Result<(), PortError> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.get(function).is_some_and(|(c, _)| c.cause == cause) {
            held.remove(function);
        }
        Ok(())
    }
}

/// The claim's key for a function of `account`: its name (the last part of an ARN).
pub fn claim_key(account: &str, function: &str) -> String {
    let name = if function.starts_with("arn:") {
        function.split(':').nth(6).unwrap_or(function)
    } else {
        function
    };
    format!("{account}:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("a time")
    }

    #[tokio::test]
    async fn a_claim_holds_others_off_until_it_ends_or_is_given_back() {
        let claims = LocalClaims::default();
        let (t0, end) = (at("2026-11-20T03:13:00Z"), at("2026-11-20T03:43:00Z"));
        assert_eq!(claims.claim("f", "a", t0, end).await, Ok(None));
        // The holder again (a duplicate delivery): claimed.
        assert_eq!(claims.claim("f", "a", t0, end).await, Ok(None));
        let held = claims
            .claim("f", "b", at("2026-11-20T03:14:00Z"), end)
            .await;
        assert_eq!(
            held,
            Ok(Some(Claim {
                cause: "a".into(),
                at: t0
            }))
        );
        // Another function is free.
        assert_eq!(claims.claim("g", "b", t0, end).await, Ok(None));
        // Another's release leaves it; the holder's frees it.
        claims.release("f", "b").await.expect("release");
        assert!(claims
            .claim("f", "b", t0, end)
            .await
            .expect("claim")
            .is_some());
        claims.release("f", "a").await.expect("release");
        assert_eq!(claims.claim("f", "b", t0, end).await, Ok(None));
        // Past its end, a claim holds nothing.
        let later = at("2026-11-20T03:44:00Z");
        assert_eq!(claims.claim("f", "c", later, later).await, Ok(None));
    }

    #[test]
    fn a_function_is_claimed_by_account_and_name_whether_named_or_by_arn() {
        assert_eq!(claim_key("123456789012", "orders"), "123456789012:orders");
        assert_eq!(
            claim_key(
                "123456789012",
                "arn:aws:lambda:us-east-1:123456789012:function:orders"
            ),
            "123456789012:orders"
        );
    }
}
