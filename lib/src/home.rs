//! Where the guard runs: its own account and region. The guard changes functions there and
//! nowhere else. `guard.accounts` says whose events are accepted at all; it never widens what
//! the guard may change. An event caused in another account or region is rejected before any
//! AWS call: acting on it would change the guard's own function of the same name, and its
//! alarm would be confirmed by a name that may exist in both places.
//!
//! The guard learns its home once, never from an event: in Lambda from the invoked function's
//! ARN, in the CLI from STS `GetCallerIdentity` and the SDK's region.

use crate::intake::Inbound;
use crate::transition::is_account_id;
use std::fmt;

/// The guard's own partition, account and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    pub partition: String,
    pub account: String,
    pub region: String,
}

impl Home {
    /// A home in the `aws` partition.
    pub fn new(account: &str, region: &str) -> Result<Self, String> {
        Self::in_partition("aws", account, region)
    }

    pub fn in_partition(partition: &str, account: &str, region: &str) -> Result<Self, String> {
        if !is_account_id(account) {
            return Err(format!(
                "the guard's own account `{account}` is not an account id"
            ));
        }
        if region.is_empty() {
            return Err("the guard's own region is not known".into());
        }
        if !partition.starts_with("aws") {
            return Err(format!("`{partition}` is not an AWS partition"));
        }
        Ok(Self {
            partition: partition.into(),
            account: account.into(),
            region: region.into(),
        })
    }

    /// From the invoked function's ARN, as Lambda's context gives it:
    /// `arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]`.
    pub fn from_function_arn(arn: &str) -> Result<Self, String> {
        let parts: Vec<&str> = arn.splitn(8, ':').collect();
        match parts.as_slice() {
            ["arn", partition, "lambda", region, account, "function", name, ..]
                if !name.is_empty() =>
            {
                Self::in_partition(partition, account, region)
            }
            _ => Err(format!("`{arn}` is not a Lambda function ARN")),
        }
    }

    /// Why an event caused in `account` and `region` is not the guard's to act on, if it is
    /// not: the reason names both places.
    pub fn foreign(&self, account: &str, region: &str) -> Option<String> {
        if account == self.account && region == self.region {
            return None;
        }
        Some(format!(
            "the event comes from account {account} in {region}; the guard runs in account {} in {} and acts only on functions there",
            self.account, self.region
        ))
    }

    /// Why this inbound event is not the guard's to act on, if it is not.
    pub fn rejects(&self, inbound: &Inbound) -> Option<String> {
        let (account, region) = inbound.origin();
        self.foreign(account, region)
    }

    /// The ARN of the guard's own alarm of this name (an escalation's alarm, recorded by name).
    pub fn alarm_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:cloudwatch:{}:{}:alarm:{name}",
            self.partition, self.region, self.account
        )
    }
}

impl fmt::Display for Home {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "account {} in {}", self.account, self.region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_home_is_read_from_the_invoked_function_arn_with_or_without_a_qualifier() {
        for arn in [
            "arn:aws:lambda:eu-west-1:123456789012:function:rollback-guard-guard",
            "arn:aws:lambda:eu-west-1:123456789012:function:rollback-guard-guard:live",
        ] {
            let home = Home::from_function_arn(arn).expect("a function ARN");
            assert_eq!(home, Home::new("123456789012", "eu-west-1").expect("home"));
        }
        let cn = Home::from_function_arn("arn:aws-cn:lambda:cn-north-1:123456789012:function:g")
            .expect("China partition");
        assert_eq!(
            cn.alarm_arn("a"),
            "arn:aws-cn:cloudwatch:cn-north-1:123456789012:alarm:a"
        );
    }

    #[test]
    fn anything_but_a_function_arn_is_refused() {
        for arn in [
            "",
            "arn:aws:lambda:eu-west-1:123456789012:layer:x",
            "arn:aws:lambda:eu-west-1:12345:function:x",
            "arn:aws:lambda::123456789012:function:x",
            "arn:aws:lambda:eu-west-1:123456789012:function:",
            "arn:aws:sns:eu-west-1:123456789012:function:x",
        ] {
            assert!(Home::from_function_arn(arn).is_err(), "{arn}");
        }
    }

    #[test]
    fn another_account_or_region_is_foreign_and_the_reason_names_both_places() {
        let home = Home::new("123456789012", "eu-west-1").expect("home");
        assert_eq!(home.foreign("123456789012", "eu-west-1"), None);
        let account = home
            .foreign("222222222222", "eu-west-1")
            .expect("another account");
        assert!(account.contains("account 222222222222"), "{account}");
        assert!(account.contains("account 123456789012"), "{account}");
        let region = home
            .foreign("123456789012", "us-west-2")
            .expect("another region");
        assert!(region.contains("us-west-2"), "{region}");
        assert!(region.contains("eu-west-1"), "{region}");
    }
}
