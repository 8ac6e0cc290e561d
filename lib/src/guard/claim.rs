//! Claims and plans: one automatic action on a target at a time across the guard's instances,
//! and what a cause set out to do, kept before it does it.
//!
//! Every transition may arrive more than once, on several transports, at several instances at
//! once (the seed alarms act through SNS and reach the queue through EventBridge too). The
//! first automatic cause to act claims the target in its state item until its cooldown ends;
//! another cause that finds the claim stands back as for the cooldown. The cause that holds
//! the claim may take it again (its own duplicates), and so before it moves an alias it writes
//! the move it planned (before → after): a second delivery of the same cause that finds the
//! alias already on "after" is done, one that finds it still on "before" makes the same move,
//! and one that finds it elsewhere stands back. Nothing is ever planned from a state the same
//! cause produced.

use crate::policy::Action;
use crate::report::{Outcome, Report};
use crate::rollback::AliasState;
use crate::state::{fingerprint, ActionRecord, AliasChange, Claim, Planned, TargetState};
use chrono::{DateTime, Utc};

use super::state::{Edit, Remembered};
use super::{Ctx, Guard};

/// Whether a cause may act on a target now.
pub(super) enum Claimed {
    /// It holds the target's claim.
    Ours,
    /// It acted already (its record is there), at this time.
    Duplicate(DateTime<Utc>),
    /// The guard's last action is in its cooldown.
    Cooldown(Box<ActionRecord>),
    /// Another cause holds the claim.
    Held(Claim),
}

/// What a second delivery of a cause makes of the plan the first one wrote, against the alias
/// as it is now.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Prior {
    /// Carried out: nothing more to do (but write the record, if the first could not).
    Done,
    /// Not carried out yet: the same move, to this routing.
    Resume(AliasState),
    /// The alias is neither where the plan started nor where it leads: someone else moved it.
    Elsewhere,
}

/// What `plan` means with the alias on `now`.
pub(super) fn reconcile(plan: &Planned, now: &AliasState) -> Prior {
    match plan {
        Planned::Move { before, after, .. } if now.same_routing(after) => Prior::Done,
        Planned::Move { before, after, .. } if now.same_routing(before) => {
            Prior::Resume(after.clone())
        }
        Planned::Move { .. } => Prior::Elsewhere,
        // CodeDeploy's rollback follows a stop by itself: a second stop would stop the rollback.
        Planned::Stop { .. } => Prior::Done,
    }
}

/// Why a second delivery stands back when the alias moved elsewhere since its cause's plan.
pub(super) fn elsewhere(plan: &Planned, alias: &str, now: &AliasState) -> String {
    match plan {
        Planned::Move { at, before, after, .. } => format!(
            "an earlier delivery of this transition planned at {at} to move alias {alias} from {before} to {after}; it is on {now}, so something else moved it since: the guard does not act twice for one transition"
        ),
        Planned::Stop { deployment, .. } => format!(
            "an earlier delivery of this transition stopped CodeDeploy deployment {deployment}"
        ),
    }
}

/// The record of a planned action an earlier delivery carried out.
fn record_of(plan: &Planned, ctx: &Ctx<'_>, alias: &str) -> ActionRecord {
    let (before, after, deployment) = match plan {
        Planned::Move { before, after, .. } => (before.clone(), after.clone(), None),
        Planned::Stop {
            before,
            back_to,
            deployment,
            ..
        } => (
            before.clone(),
            AliasState::on(back_to),
            Some(deployment.clone()),
        ),
    };
    ActionRecord {
        event: fingerprint(&ctx.key),
        action: Action::RollbackAlias.as_str().into(),
        at: plan.at(),
        alarm: ctx.alarm.to_string(),
        alias: Some(AliasChange {
            alias: alias.to_string(),
            before,
            after,
        }),
        flag: None,
        deployment,
        automatic: ctx.automatic,
    }
}

impl Guard {
    /// Claims the target for `cause` until `cooldown` from `now`, unless it acted already,
    /// the last action's cooldown holds, or another cause holds the claim.
    pub(super) async fn claim(
        &self,
        remembered: &Remembered,
        cause: &str,
        now: DateTime<Utc>,
        cooldown: chrono::Duration,
    ) -> Result<Claimed, String> {
        let event = fingerprint(cause);
        self.update(remembered, |s: &mut TargetState| {
            if let Some(last) = &s.last {
                if last.event == event {
                    return Edit::Keep(Claimed::Duplicate(last.at));
                }
                if now < last.at + cooldown {
                    return Edit::Keep(Claimed::Cooldown(Box::new(last.clone())));
                }
            }
            if let Some(holder) = s.claimed_by_other(cause, now) {
                return Edit::Keep(Claimed::Held(holder.clone()));
            }
            if s.claim.as_ref().is_some_and(|c| c.cause == cause) {
                return Edit::Keep(Claimed::Ours);
            }
            s.claim = Some(Claim {
                cause: cause.to_string(),
                at: now,
                until: now + cooldown,
            });
            Edit::Write(Claimed::Ours)
        })
        .await
    }

    /// Observe mode's check, in place of a claim: a duplicate (observed already), the last
    /// action's cooldown, another cause's claim hold it back as they would an action; else the
    /// cause is remembered as observed (nothing else: no claim, record or cooldown).
    pub(super) async fn observe(
        &self,
        remembered: &Remembered,
        cause: &str,
        now: DateTime<Utc>,
        cooldown: chrono::Duration,
    ) -> Result<Claimed, String> {
        let event = fingerprint(cause);
        self.update(remembered, |s: &mut TargetState| {
            if s.observed.contains(&event) {
                return Edit::Keep(Claimed::Duplicate(now));
            }
            if let Some(last) = s.last.as_ref().filter(|l| now < l.at + cooldown) {
                return Edit::Keep(Claimed::Cooldown(Box::new(last.clone())));
            }
            if let Some(holder) = s.claimed_by_other(cause, now) {
                return Edit::Keep(Claimed::Held(holder.clone()));
            }
            s.observed.push(event.clone());
            let keep = s.observed.len().saturating_sub(crate::state::MAX_OBSERVED);
            s.observed.drain(..keep);
            Edit::Write(Claimed::Ours)
        })
        .await
    }

    /// Gives `cause`'s claim back (its action failed and changed nothing), with its plan.
    pub(super) async fn release(&self, remembered: &Remembered, cause: &str) -> Result<(), String> {
        self.update(remembered, |s| {
            if s.claim.as_ref().is_none_or(|c| c.cause != cause) {
                return Edit::Keep(());
            }
            s.claim = None;
            if s.plan_of(cause).is_some() {
                s.plan = None;
            }
            Edit::Write(())
        })
        .await
    }

    /// Keeps `plan` as what this cause sets out to do, unless another delivery of it planned
    /// already: then that plan, and what it means with the alias on `now`. This delivery's own
    /// earlier plan (a stop, then its own rollback on from where CodeDeploy's left the alias)
    /// gives way to the new one.
    pub(super) async fn commit(
        &self,
        ctx: &Ctx<'_>,
        plan: Planned,
        now: &AliasState,
    ) -> Result<Option<(Planned, Prior)>, String> {
        self.update(ctx.state, |s| match s.plan_of(&ctx.key) {
            Some(prior) if prior.delivery() != ctx.delivery => {
                Edit::Keep(Some((prior.clone(), reconcile(prior, now))))
            }
            _ => {
                s.plan = Some(plan.clone());
                Edit::Write(None)
            }
        })
        .await
    }

    /// Drops this cause's plan: it did not come to pass (a stop CodeDeploy refused), and the
    /// cause plans afresh from here.
    pub(super) async fn drop_plan(&self, report: &mut Report, ctx: &Ctx<'_>) {
        let dropped = self
            .update(ctx.state, |s| {
                if s.plan_of(&ctx.key).is_none() {
                    return Edit::Keep(());
                }
                s.plan = None;
                Edit::Write(())
            })
            .await;
        if let Err(why) = dropped {
            report.notes.push(why);
        }
    }

    /// An earlier delivery of this cause carried its plan out: already done, and its record
    /// written if that delivery could not write it.
    pub(super) async fn planned_done(
        &self,
        mut report: Report,
        ctx: &Ctx<'_>,
        plan: &Planned,
        alias: &str,
    ) -> Report {
        let record = record_of(plan, ctx, alias);
        let event = record.event.clone();
        let written = self
            .update(ctx.state, |s| {
                if s.last.as_ref().is_some_and(|l| l.event == event) {
                    return Edit::Keep(());
                }
                s.record(record.clone(), ctx.alarm);
                if s.plan_of(&ctx.key).is_some() {
                    s.plan = None;
                }
                Edit::Write(())
            })
            .await;
        if let Err(why) = written {
            report
                .notes
                .push(format!("the record could not be written: {why}"));
        }
        self.settle_key(&ctx.key);
        if let Some(change) = &record.alias {
            report.alias_after = Some(change.after.clone());
        }
        let what = match plan {
            Planned::Move { before, after, .. } => {
                format!("moved alias {alias} from {before} to {after}")
            }
            Planned::Stop { deployment, .. } => {
                format!("stopped CodeDeploy deployment {deployment}")
            }
        };
        report.settle(
            Outcome::AlreadyDone,
            format!(
                "another delivery of this transition already {what} (planned at {})",
                plan.at()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moved(before: &str, after: &str) -> Planned {
        Planned::Move {
            cause: "c".into(),
            delivery: "d".into(),
            at: "2026-11-20T03:13:00Z".parse().expect("time"),
            before: AliasState::on(before),
            after: AliasState::on(after),
        }
    }

    #[test]
    fn a_plan_is_done_resumed_or_stood_back_from_by_where_the_alias_is() {
        let plan = moved("3", "2");
        assert_eq!(reconcile(&plan, &AliasState::on("2")), Prior::Done);
        assert_eq!(
            reconcile(&plan, &AliasState::on("3")),
            Prior::Resume(AliasState::on("2"))
        );
        assert_eq!(reconcile(&plan, &AliasState::on("1")), Prior::Elsewhere);
        let stop = Planned::Stop {
            cause: "c".into(),
            delivery: "d".into(),
            at: "2026-11-20T03:13:00Z".parse().expect("time"),
            deployment: "d-1".into(),
            before: AliasState::on("3"),
            back_to: "2".into(),
        };
        assert_eq!(reconcile(&stop, &AliasState::on("3")), Prior::Done);
    }
}
