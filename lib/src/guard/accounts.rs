//! Acting in other accounts of an organisation: one guard per member account, made on first
//! use from the member role's clients (`guard.member_role`) and kept for the instance's life.
//! The central guard decides; the member's guard acts there, with the central topic and bus.
//! A role that cannot be assumed is `Rollback Failed` naming the account and the role (and a
//! failed scheduled check); one account's failure never holds another back.

use crate::home::Home;
use crate::ports::MemberAccounts;
use crate::report::{Outcome, Report};
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

use super::Guard;

/// The member accounts' guards, each made once.
pub(super) struct Members {
    accounts: Arc<dyn MemberAccounts>,
    guards: Mutex<HashMap<String, Arc<OnceCell<Arc<Guard>>>>>,
}

impl Members {
    pub(super) fn new(accounts: Arc<dyn MemberAccounts>) -> Self {
        Self {
            accounts,
            guards: Mutex::new(HashMap::new()),
        }
    }
}

/// The guard that acts in an event's account: this one, or a member account's.
pub(super) enum Acting<'g> {
    Here(&'g Guard),
    Member(Arc<Guard>),
}

impl Deref for Acting<'_> {
    type Target = Guard;

    fn deref(&self) -> &Guard {
        match self {
            Self::Here(g) => g,
            Self::Member(g) => g,
        }
    }
}

impl Guard {
    /// Acts in other accounts through `accounts` (their role is `guard.member_role`).
    pub fn with_members(mut self, accounts: Arc<dyn MemberAccounts>) -> Self {
        self.members = Some(Members::new(accounts));
        self
    }

    /// The guard that acts in `account`: this one for its own account, else the member
    /// account's, made (and its role assumed) the first time. `Err` says why it cannot be.
    pub(super) async fn guard_in(&self, account: &str) -> Result<Acting<'_>, String> {
        if account == self.home.account {
            return Ok(Acting::Here(self));
        }
        let role = self.policy.guard.member_role_in(account).ok_or_else(|| {
            format!("the guard has no role to act in account {account} (guard.member_role, guard.accounts)")
        })?;
        let members = self.members.as_ref().ok_or_else(|| {
            format!("this guard was not given clients for other accounts; cannot act in account {account}")
        })?;
        let cell = {
            let mut guards = members.guards.lock().map_err(|e| e.to_string())?;
            guards.entry(account.to_string()).or_default().clone()
        };
        let guard = cell
            .get_or_try_init(|| async {
                let ports = members
                    .accounts
                    .member(account, &role)
                    .await
                    .map_err(|e| format!("cannot act in account {account} as {role}: {e}"))?;
                let home = Home::in_partition(&self.home.partition, account, &self.home.region)?;
                let mut guard = Guard::new(self.policy.clone(), self.ports.in_account(ports), home)
                    .with_insights(self.insights.clone())
                    .with_retry(self.retry);
                if let Some(share) = self.share {
                    guard = guard.with_quota_share(share);
                }
                Ok::<_, String>(Arc::new(guard))
            })
            .await?;
        Ok(Acting::Member(guard.clone()))
    }

    /// Every listed member account's scheduled check, at once; an account the guard cannot
    /// act in is one failed step: the check fails (the guard's error alarm tells people), and
    /// nobody is paged every minute for it (an action there would be, when it is needed).
    pub(super) async fn sweep_members(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<Report> {
        if self.members.is_none() {
            return Vec::new();
        }
        let accounts: Vec<&String> = self
            .policy
            .guard
            .accounts
            .iter()
            .flatten()
            .filter(|a| **a != self.home.account)
            .collect();
        let checks = accounts.into_iter().map(|account| async move {
            match self.guard_in(account).await {
                Ok(guard) => guard.sweep_steps(now).await,
                Err(why) => {
                    let mut report = Report::rejected(why);
                    report.outcome = Outcome::Failed;
                    report.account = Some(account.clone());
                    vec![report]
                }
            }
        });
        futures_util::future::join_all(checks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}
