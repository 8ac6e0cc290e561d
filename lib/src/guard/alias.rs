//! `rollback-alias`: abort the canary or move the alias to the stable version, exactly once
//! under concurrent deliveries (`UpdateAlias` guarded by the alias revision).

use crate::decision::Mode;
use crate::policy::{Action, Target};
use crate::ports::PortError;
use crate::report::{Outcome, Report};
use crate::rollback::{
    plan_rollback, plan_version_rollback, versions_needed, AliasPlan, AliasState, VersionsNeeded,
};
use crate::state::{AliasChange, Planned};
use std::collections::BTreeMap;
use tracing::warn;

use super::claim::{elsewhere, reconcile, Prior};
use super::codedeploy::Yielded;
use super::judge::Verdict;
use super::{Ctx, Guard};

enum UpdateResult {
    Updated(AliasState),
    /// Another delivery of the same transition got there first.
    AlreadyThere,
}

impl Guard {
    pub(super) async fn rollback_alias(
        &self,
        mut report: Report,
        target: &Target,
        tags: &BTreeMap<String, String>,
        ctx: &Ctx<'_>,
    ) -> Report {
        let function = target.function.as_str();
        let Some(alias) = target.alias.as_deref() else {
            // Policy validation refuses rollback-alias on a target without an alias.
            return report.settle(Outcome::Failed, "target has no alias");
        };
        let mut before = match self.read_alias(function, alias).await {
            Ok(a) => a,
            Err(why) => return report.settle(Outcome::Failed, why),
        };
        report.alias_before = Some(before.clone());
        // A second delivery of a cause that planned already: never planned again from the
        // state the first delivery produced.
        let state = ctx.state.now();
        let earlier = state
            .plan_of(&ctx.key)
            .filter(|p| ctx.mode == Mode::Execute && p.delivery() != ctx.delivery);
        if let Some(prior) = earlier {
            report.ladder_continues = true;
            return match reconcile(prior, &before) {
                Prior::Done => self.planned_done(report, ctx, prior, alias).await,
                Prior::Elsewhere => {
                    report.alias_after = Some(before.clone());
                    report.settle(Outcome::Skipped, elsewhere(prior, alias, &before))
                }
                Prior::Resume(after) => {
                    let description = format!(
                        "alias {alias} moved from {before} to {after}, as an earlier delivery of this transition planned at {}",
                        prior.at()
                    );
                    self.carry_out(report, target, alias, before, after, description, tags, ctx)
                        .await
                }
            };
        }
        match self
            .codedeploy_first(&mut report, target, alias, &before, tags, ctx)
            .await
        {
            Err(settled) => return settled,
            Ok(Yielded::Own(now)) => before = now,
            Ok(Yielded::RolledBack(now)) => {
                // An alarm on the version CodeDeploy went back to: the guard's own rollback
                // goes on from there. Otherwise CodeDeploy's rollback was the rollback.
                let watched = ctx.watched_version.as_deref();
                if !watched.is_some_and(|v| now.serves(v)) {
                    return self.codedeploy_rolled_back(report, target, ctx, None).await;
                }
                before = now;
            }
        }
        // A version the guard published with the AI off is the same release as the one it
        // was made from: the rollback goes past both.
        let derived_from = state
            .last
            .as_ref()
            .filter(|r| r.action == Action::DisableAi.as_str())
            .and_then(|r| r.alias.as_ref())
            .filter(|c| c.alias == alias && c.after.version == before.version)
            .map(|c| c.before.version.clone());
        let stable = state.stable.as_deref();
        let derived_from = derived_from.as_deref();
        let watched = ctx.watched_version.as_deref();
        // Versions rolled back away from are never gone back to: asking after one settles
        // nothing, the list does.
        let needed = match versions_needed(&before, watched, stable, derived_from) {
            VersionsNeeded::Check(v) if state.bad.contains(&v) => VersionsNeeded::All,
            needed => needed,
        };
        let mut published = match self.published(function, needed).await {
            Ok(v) => v,
            Err(e) => {
                return report.settle(
                    Outcome::Failed,
                    format!("cannot list versions of {function}: {e}"),
                )
            }
        };
        published.retain(|v| !state.bad.contains(v));
        let plan = match watched {
            Some(version) => {
                plan_version_rollback(&before, version, &published, stable, derived_from)
            }
            None => plan_rollback(&before, &published, stable, derived_from),
        };
        let plan = match plan {
            Ok(plan) => plan,
            Err(e) => {
                report.alias_after = Some(before.clone());
                return report.settle(
                    Outcome::Failed,
                    format!("{e}; alias {alias} left unchanged on {before}"),
                );
            }
        };
        let after = plan.after(&before);
        let description = plan.describe(alias, &before);
        report.alias_after = Some(after.clone());
        // Whatever comes of it, the alias is (or will be) on the stable version: a later rung
        // of the ladder may follow.
        report.ladder_continues = true;
        if let AliasPlan::AlreadyStable { .. } | AliasPlan::NotServed { .. } = plan {
            self.settle_key(&ctx.key);
            return report.settle(Outcome::AlreadyDone, description);
        }
        // An automatic move of the alias off its version is judged first; a canary's abort
        // is not (the canary is the suspect by definition).
        let judged = matches!(plan, AliasPlan::MoveTo { .. }) && ctx.automatic && ctx.mode.live();
        let mut blamed = String::new();
        if judged {
            match self
                .judge_rollback(target, tags, ctx, &before, &after.version)
                .await
            {
                Ok(Verdict::Go(why)) => blamed = why,
                Ok(Verdict::Held { why, quiet }) => {
                    return self.held(report, target, &before, why, quiet)
                }
                Err(why) => {
                    report.alias_after = Some(before.clone());
                    return report.settle(
                        Outcome::Failed,
                        format!("{why}; alias {alias} left unchanged on {before}"),
                    );
                }
            }
        }
        let description = if blamed.is_empty() {
            description
        } else {
            format!("{description} ({blamed})")
        };
        match ctx.mode {
            Mode::Plan => {
                return report.settle(Outcome::Planned, format!("would be done: {description}"))
            }
            Mode::Observe => return report.observed(format!("would be done: {description}")),
            Mode::Execute => {}
        }
        let planned = Planned::Move {
            cause: ctx.key.clone(),
            delivery: ctx.delivery.clone(),
            at: ctx.now,
            before: before.clone(),
            after: after.clone(),
        };
        match self.commit(ctx, planned, &before).await {
            Ok(None) => {}
            // Another delivery of this cause planned between this one's read and its write.
            Ok(Some((prior, Prior::Done))) => {
                return self.planned_done(report, ctx, &prior, alias).await
            }
            Ok(Some((prior, Prior::Elsewhere))) => {
                return report.settle(Outcome::Skipped, elsewhere(&prior, alias, &before))
            }
            Ok(Some((_, Prior::Resume(planned_after)))) if planned_after.same_routing(&after) => {}
            Ok(Some((prior, Prior::Resume(_)))) => {
                return report.settle(Outcome::Skipped, elsewhere(&prior, alias, &before))
            }
            Err(why) => {
                report.alias_after = Some(before.clone());
                return report.settle(
                    Outcome::Failed,
                    format!("{why}; alias {alias} left unchanged on {before}"),
                );
            }
        }
        // The account's blast-radius cap, counted by the delivery that holds the plan.
        if judged {
            match self.within_cap(target, ctx).await {
                Ok(Verdict::Go(_)) => {}
                Ok(Verdict::Held { why, quiet }) => {
                    self.drop_plan(&mut report, ctx).await;
                    return self.held(report, target, &before, why, quiet);
                }
                Err(why) => {
                    self.drop_plan(&mut report, ctx).await;
                    report.alias_after = Some(before.clone());
                    return report.settle(
                        Outcome::Failed,
                        format!("{why}; alias {alias} left unchanged on {before}"),
                    );
                }
            }
        }
        self.carry_out(report, target, alias, before, after, description, tags, ctx)
            .await
    }

    /// An automatic rollback the judgement (or the cap) holds back: nothing changed, people
    /// paged (unless they were this hour, for the cap) with the command that would act.
    fn held(
        &self,
        mut report: Report,
        target: &Target,
        before: &AliasState,
        why: String,
        quiet: bool,
    ) -> Report {
        report.alias_after = Some(before.clone());
        report.ladder_continues = false;
        let account = target
            .account
            .as_deref()
            .filter(|a| *a != self.home.account)
            .map(|a| format!(" --account {a}"))
            .unwrap_or_default();
        let reason = format!(
            "not rolled back: {why}. To roll back anyway: `guard request --target {}{account} --action rollback-alias --reason \"...\"`",
            target.name
        );
        if quiet {
            return report.stand_down(reason);
        }
        report.settle(Outcome::Skipped, reason)
    }

    /// Moves the alias as planned, records it, and says so.
    #[allow(clippy::too_many_arguments)]
    async fn carry_out(
        &self,
        mut report: Report,
        target: &Target,
        alias: &str,
        before: AliasState,
        after: AliasState,
        description: String,
        tags: &BTreeMap<String, String>,
        ctx: &Ctx<'_>,
    ) -> Report {
        report.alias_after = Some(after.clone());
        if let Some(done) = self
            .move_alias(&mut report, &target.function, alias, &before, &after)
            .await
        {
            return done;
        }
        let record = ctx.record(
            Action::RollbackAlias,
            Some(AliasChange {
                alias: alias.into(),
                before,
                after: after.clone(),
            }),
            None,
        );
        self.write_record(&mut report, target, ctx.state, &record, &ctx.key)
            .await;
        self.stack_note(&mut report, target, alias, &after, tags);
        report.settle(Outcome::Executed, description)
    }

    /// The published versions the plan needs: one asked after when that settles it (outside
    /// the 15/s the control plane shares), the whole list only when it does not.
    async fn published(
        &self,
        function: &str,
        needed: VersionsNeeded,
    ) -> Result<Vec<String>, PortError> {
        let aliases = &self.ports.aliases;
        if let VersionsNeeded::Check(version) = &needed {
            let published = self
                .retry
                .run("GetFunction", || aliases.is_published(function, version))
                .await?;
            if published {
                return Ok(vec![version.clone()]);
            }
        }
        if needed == VersionsNeeded::Nothing {
            return Ok(Vec::new());
        }
        self.retry
            .run("ListVersionsByFunction", || aliases.list_versions(function))
            .await
    }

    /// The alias as it is, read with retries; the error is the reason a report gives.
    pub(super) async fn read_alias(
        &self,
        function: &str,
        alias: &str,
    ) -> Result<AliasState, String> {
        self.retry
            .run("GetAlias", || self.ports.aliases.get_alias(function, alias))
            .await
            .map_err(|e| format!("cannot read alias {function}:{alias}: {e}"))
    }

    /// Moves the alias from `before` to `after`. `None` when it moved; otherwise the settled
    /// report (already done by another delivery, or failed with the alias state re-read).
    pub(super) async fn move_alias(
        &self,
        report: &mut Report,
        function: &str,
        alias: &str,
        before: &AliasState,
        after: &AliasState,
    ) -> Option<Report> {
        match self.update_alias(function, alias, before, after).await {
            Ok(UpdateResult::Updated(now)) => {
                report.alias_after = Some(now);
                None
            }
            Ok(UpdateResult::AlreadyThere) => Some(report.clone().settle(
                Outcome::AlreadyDone,
                format!(
                    "another delivery of this transition already moved alias {alias} to {after}"
                ),
            )),
            Err(e) => {
                let now = match self.ports.aliases.get_alias(function, alias).await {
                    Ok(a) => {
                        let state = a.to_string();
                        report.alias_after = Some(a);
                        state
                    }
                    Err(read) => format!("unknown (re-reading it failed: {read})"),
                };
                Some(report.clone().settle(
                    Outcome::Failed,
                    format!("could not update alias {function}:{alias} ({e}); it is now on {now}"),
                ))
            }
        }
    }

    /// `UpdateAlias` guarded by the alias revision: of concurrent deliveries, one moves the
    /// alias, the others find it moved.
    async fn update_alias(
        &self,
        function: &str,
        alias: &str,
        before: &AliasState,
        after: &AliasState,
    ) -> Result<UpdateResult, PortError> {
        let aliases = &self.ports.aliases;
        let mut expected = before.clone();
        let mut attempt = 1;
        loop {
            let result = aliases
                .update_alias(function, alias, after, expected.revision_id.as_deref())
                .await;
            match result {
                Ok(state) => return Ok(UpdateResult::Updated(state)),
                Err(PortError::RevisionChanged(_)) if attempt < self.retry.attempts => {
                    let now = self
                        .retry
                        .run("GetAlias", || aliases.get_alias(function, alias))
                        .await?;
                    if now.same_routing(after) {
                        return Ok(UpdateResult::AlreadyThere);
                    }
                    if !now.same_routing(before) {
                        return Err(PortError::Other(format!(
                            "alias changed underneath the guard: expected {before}, found {now}"
                        )));
                    }
                    // Only the revision moved (a description edit, say): try again on it.
                    expected = now;
                }
                Err(e) if e.retryable() && attempt < self.retry.attempts => {
                    let delay = self.retry.pause(attempt);
                    warn!(call = "UpdateAlias", attempt, error = %e, "retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
            attempt += 1;
        }
    }
}
