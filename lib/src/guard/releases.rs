//! When a release went live: CloudTrail's record of an `UpdateAlias` or `CreateAlias` on a
//! target's alias, kept in its state as the time that version went live, and by whom. The
//! judgement before a rollback reads it before the version's publish time (a version published
//! last week and pointed at today went live today). The guard's own moves (a rollback, a
//! re-enable step) are already kept as its own, and are never a release.

use crate::fleet;
use crate::intake::AliasChange;
use crate::policy::Target;
use crate::report::{Outcome, Report};
use crate::state::{Live, LiveBy, Planned};
use crate::transition::rfc3339_millis;
use crate::watched::WatchedAlias;

use super::state::Edit;
use super::Guard;

/// A CloudTrail record this close to the guard's own move of the alias to that version is the
/// record of that move (CloudTrail delivers within minutes).
const OWN_MOVE: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

impl Guard {
    /// Keeps when `change`'s version went live on a target's alias (in the change's account).
    pub(super) async fn alias_changed(&self, change: AliasChange) -> Report {
        let mut report = Report::rejected(String::new());
        report.account = Some(change.account.clone());
        report.function = Some(change.function.clone());
        report.alias = Some(change.alias.clone());
        match self.guard_in(&change.account).await {
            Ok(acting) => acting.keep_release(report, &change).await,
            Err(why) => report.settle(Outcome::Failed, why),
        }
    }

    async fn keep_release(&self, mut report: Report, change: &AliasChange) -> Report {
        let Some(target) = self.target_changed(change).await else {
            return report.settle(
                Outcome::Ignored,
                format!(
                    "{}:{} is not a target of the guard's (no [[target]] names it, or it has not opted in)",
                    change.function, change.alias
                ),
            );
        };
        report.target = Some(target.name.clone());
        let remembered = match self.remember(&target).await {
            Ok(r) => r,
            Err(why) => return report.settle(Outcome::Failed, why),
        };
        let kept = self
            .update(&remembered, |s| {
                if let Some(live) = s.live.as_ref().filter(|l| l.since > change.at) {
                    return Edit::Keep(format!(
                        "version {} went live later ({}): this record is older",
                        live.version,
                        rfc3339_millis(&live.since)
                    ));
                }
                let own_live = s.live.as_ref().is_some_and(|l| {
                    l.by == LiveBy::Guard
                        && l.version == change.version
                        && (change.at - l.since).abs() <= OWN_MOVE
                });
                let own_plan = s.plan.as_ref().is_some_and(
                    |p| matches!(p, Planned::Move { after, .. } if after.version == change.version),
                );
                if own_live || own_plan {
                    return Edit::Keep("the guard's own move: not a release".to_string());
                }
                s.live = Some(Live {
                    version: change.version.clone(),
                    since: change.at,
                    by: LiveBy::CloudTrail(change.by.clone()),
                });
                Edit::Write(format!(
                    "version {} went live on {}:{} at {} (CloudTrail: {} by {})",
                    change.version,
                    change.function,
                    change.alias,
                    rfc3339_millis(&change.at),
                    "UpdateAlias",
                    change.by
                ))
            })
            .await;
        match kept {
            Ok(why) => report.settle(Outcome::NoAction, format!("recorded: {why}")),
            Err(why) => report.settle(Outcome::Failed, why),
        }
    }

    /// The target whose alias `change` moved: the policy's (in the change's account), else a
    /// fleet function opted in for that alias.
    async fn target_changed(&self, change: &AliasChange) -> Option<Target> {
        let named = self.policy.targets.iter().find(|t| {
            self.account_of(t) == change.account
                && crate::codedeploy::function_name(&t.function) == change.function
                && t.alias.as_deref() == Some(change.alias.as_str())
        });
        if let Some(t) = named {
            return Some(t.clone());
        }
        if !self.policy.triggers.iter().any(|t| t.from_alarm()) {
            return None;
        }
        let mut candidate = fleet::target_of(&WatchedAlias {
            function: change.function.clone(),
            alias: change.alias.clone(),
            version: None,
        });
        candidate.account = Some(change.account.clone());
        self.opted_in(&candidate).await.ok().map(|(t, _)| t)
    }
}
