//! CodeDeploy first: before the guard moves an alias or publishes an AI-off version, a
//! deployment shifting that alias is stopped with its rollback (never fought), waited for,
//! and the alias verified on the deployment's starting version with no weights.

use crate::codedeploy::{self, RollbackEnd};
use crate::decision::Mode;
use crate::policy::{Action, DeploymentGroup, Target};
use crate::ports::{Shift, Stopping};
use crate::report::{Outcome, Report};
use crate::rollback::AliasState;
use crate::state::{AliasChange, Planned};
use std::collections::BTreeMap;
use std::time::Duration;
use tracing::{info, warn};

use super::{Ctx, Guard};

/// How often the guard looks at a rollback it waits for.
const POLL: Duration = Duration::from_secs(5);

/// Where asking CodeDeploy first left the alias.
pub(super) enum Yielded {
    /// No deployment shifts it (or CodeDeploy could not tell, said in the report): the guard
    /// acts on its own, on the alias as it is now.
    Own(AliasState),
    /// A deployment shifted it: stopped, rolled back, the alias on its starting version (the
    /// report's `alias_after` too, whatever follows).
    RolledBack(AliasState),
}

impl Guard {
    /// Asks CodeDeploy whether a deployment shifts `alias` of `target` (of its deployment
    /// group, when the policy or its tags name one) and, if one does, stops it with its
    /// rollback. `before`: the alias as the guard read it. `Err`: the settled report (the alias
    /// could not be left unsplit). Plans change nothing, so they ask CodeDeploy nothing.
    pub(super) async fn codedeploy_first(
        &self,
        report: &mut Report,
        target: &Target,
        alias: &str,
        before: &AliasState,
        tags: &BTreeMap<String, String>,
        ctx: &Ctx<'_>,
    ) -> Result<Yielded, Report> {
        // Plans and observations change nothing: CodeDeploy is asked nothing.
        if ctx.mode != Mode::Execute {
            return Ok(Yielded::Own(before.clone()));
        }
        let function = target.function.as_str();
        let deployments = &self.ports.deployments;
        let group = codedeploy::group_of(target, tags);
        // A group the function's own tags name narrows the question, no more: anyone who may
        // tag the function could name another team's group, whose deployments that have not
        // started the guard would otherwise stop. Only the policy's group is trusted for that.
        let trusted_group = target.codedeploy.as_ref();
        let ids = match self
            .retry
            .run("ListDeployments", || deployments.unfinished(group.as_ref()))
            .await
        {
            Ok(ids) => ids,
            Err(e) => {
                warn!(function, error = %e, "CodeDeploy not asked; acting on the guard's own");
                report.codedeploy.push(codedeploy::not_asked(alias, &e));
                return Ok(Yielded::Own(before.clone()));
            }
        };
        let mut shifting = None;
        let mut unstarted = Vec::new();
        for id in ids {
            match self
                .retry
                .run("GetDeploymentTarget", || deployments.shift(&id))
                .await
            {
                Ok(Some(shift)) if codedeploy::shifts(&shift, function, alias) => {
                    shifting = Some(shift);
                    break;
                }
                // Another function's, or another alias of this one: not the guard's.
                Ok(Some(_)) => {}
                // Not started: only the policy's group says whose it is.
                Ok(None) => {
                    if let Some(g) = trusted_group {
                        unstarted.push((id, g.clone()));
                    }
                }
                Err(e) => {
                    warn!(deployment = %id, error = %e, "deployment target not read");
                    report.codedeploy.push(codedeploy::not_asked(alias, &e));
                }
            }
        }
        match shifting {
            Some(shift) => {
                self.stop_shift(report, function, alias, before, shift, ctx)
                    .await
            }
            None => {
                self.stop_unstarted(report, &unstarted).await;
                Ok(Yielded::Own(before.clone()))
            }
        }
    }

    /// CodeDeploy's rollback of the deployment the guard stopped was the rollback (of the
    /// report's `alias_before` to its `alias_after`): recorded and settled. `refused`: the
    /// action that was to follow it and was refused (the ladder's fallback is not needed: the
    /// traffic is off the deployed version).
    pub(super) async fn codedeploy_rolled_back(
        &self,
        mut report: Report,
        target: &Target,
        ctx: &Ctx<'_>,
        refused: Option<String>,
    ) -> Report {
        let alias = target.alias.clone().unwrap_or_default();
        let (Some(before), Some(now)) = (report.alias_before.clone(), report.alias_after.clone())
        else {
            return report.settle(Outcome::Failed, "the alias's state was not kept");
        };
        report.ladder_continues = true;
        report.refused = false;
        report.action = Some(Action::RollbackAlias.as_str());
        let record = ctx.record(
            Action::RollbackAlias,
            Some(AliasChange {
                alias: alias.clone(),
                before: before.clone(),
                after: now.clone(),
            }),
            None,
        );
        self.write_record(&mut report, target, ctx.state, &record, &ctx.key)
            .await;
        let deployment = report.deployment.clone().unwrap_or_default();
        let mut reason = format!(
            "CodeDeploy deployment {deployment} stopped and rolled back: alias {alias} moved from {before} to {now}"
        );
        if let Some(why) = refused {
            reason = format!("{reason}; then {why}");
        }
        report.settle(Outcome::Executed, reason)
    }

    /// The guard moved an alias a CloudFormation stack manages, outside a deployment: what the
    /// team's next deploy meets, said in the report.
    pub(super) fn stack_note(
        &self,
        report: &mut Report,
        target: &Target,
        alias: &str,
        now: &AliasState,
        tags: &BTreeMap<String, String>,
    ) {
        if report.deployment.is_some() {
            return;
        }
        if let Some(stack) = tags.get(codedeploy::STACK_TAG) {
            let undo = format!("guard undo --target {}", target.name);
            report.codedeploy.push(codedeploy::stack_note(
                stack,
                alias,
                &now.to_string(),
                &undo,
            ));
        }
    }

    /// Deployments of the target's group that have not started: stopped (nothing shifted, no
    /// rollback to wait for), so they do not shift the alias after the guard's action.
    async fn stop_unstarted(&self, report: &mut Report, unstarted: &[(String, DeploymentGroup)]) {
        let deployments = &self.ports.deployments;
        for (id, group) in unstarted {
            match self
                .retry
                .run("StopDeployment", || deployments.stop(id))
                .await
            {
                Ok(_) => report
                    .codedeploy
                    .push(codedeploy::stopped_unstarted(id, group)),
                Err(e) => report.codedeploy.push(format!(
                    "deployment {id} of {}/{} has not started, and the guard could not stop it ({e}): it may shift the alias after this action",
                    group.application, group.group
                )),
            }
        }
    }

    /// Stops the deployment with its rollback, waits for the rollback (bounded), and leaves
    /// the alias on the deployment's starting version, unsplit.
    async fn stop_shift(
        &self,
        report: &mut Report,
        function: &str,
        alias: &str,
        before: &AliasState,
        shift: Shift,
        ctx: &Ctx<'_>,
    ) -> Result<Yielded, Report> {
        let deployments = &self.ports.deployments;
        let id = shift.deployment.as_str();
        // Kept before the stop: a second delivery of this cause must not stop the rollback
        // deployment CodeDeploy starts, nor roll back further from where it leaves the alias.
        let planned = Planned::Stop {
            cause: ctx.key.clone(),
            delivery: ctx.delivery.clone(),
            at: ctx.now,
            deployment: id.to_string(),
            before: before.clone(),
            back_to: shift.current_version.clone(),
        };
        match self.commit(ctx, planned, before).await {
            Ok(None) => {}
            Ok(Some((prior, _))) => {
                return Err(self.planned_done(report.clone(), ctx, &prior, alias).await)
            }
            Err(why) => {
                return Err(report.clone().settle(
                    Outcome::Failed,
                    format!("{why}; deployment {id} not stopped"),
                ))
            }
        }
        match self
            .retry
            .run("StopDeployment", || deployments.stop(id))
            .await
        {
            Ok(Stopping::Stopping) => {}
            // A stop whose answer was lost and was sent again finds its own stop: not a
            // deployment that completed.
            Ok(Stopping::AlreadyCompleted) if !self.succeeded(id).await => {}
            Ok(Stopping::AlreadyCompleted) => {
                self.drop_plan(report, ctx).await;
                report.codedeploy.push(codedeploy::completed(id));
                let now = self
                    .read_alias(function, alias)
                    .await
                    .map_err(|why| report.clone().settle(Outcome::Failed, why))?;
                report.alias_before = Some(now.clone());
                return Ok(Yielded::Own(now));
            }
            Err(e) => {
                warn!(deployment = id, error = %e, "deployment not stopped; acting on the guard's own");
                self.drop_plan(report, ctx).await;
                report.codedeploy.push(codedeploy::not_stopped(&shift, &e));
                return Ok(Yielded::Own(before.clone()));
            }
        }
        info!(
            deployment = id,
            function, alias, "CodeDeploy deployment stopped; waiting for its rollback"
        );
        let wait = self.policy.guard.codedeploy_wait_seconds;
        let end = self.rollback_end(id, wait).await;
        let now = self
            .read_alias(function, alias)
            .await
            .map_err(|why| report.clone().settle(Outcome::Failed, why))?;
        report.deployment = Some(id.to_string());
        report
            .codedeploy
            .push(codedeploy::stopped(&shift, &end, &now, wait));
        if !codedeploy::needs_putting_back(&now, &shift) {
            report.alias_after = Some(now.clone());
            return Ok(Yielded::RolledBack(now));
        }
        let unsplit = AliasState::on(&shift.current_version);
        if let Some(failed) = self
            .move_alias(report, function, alias, &now, &unsplit)
            .await
        {
            return Err(failed);
        }
        report.codedeploy.push(codedeploy::put_back(&shift));
        Ok(Yielded::RolledBack(
            report.alias_after.clone().unwrap_or(unsplit),
        ))
    }

    /// Whether the deployment succeeded (all traffic on its target version); a deployment that
    /// cannot be looked at is taken to have, as CodeDeploy said it completed.
    async fn succeeded(&self, deployment: &str) -> bool {
        let deployments = &self.ports.deployments;
        self.retry
            .run("GetDeployment", || deployments.deployment(deployment))
            .await
            .map_or(true, |d| d.status == "Succeeded")
    }

    /// Follows the stopped deployment to its rollback deployment, and that to its end, for at
    /// most `wait` seconds.
    async fn rollback_end(&self, deployment: &str, wait: u32) -> RollbackEnd {
        let deployments = &self.ports.deployments;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(wait));
        let mut rollback: Option<String> = None;
        loop {
            let looked = match &rollback {
                None => {
                    self.retry
                        .run("GetDeployment", || deployments.deployment(deployment))
                        .await
                }
                Some(r) => {
                    self.retry
                        .run("GetDeployment", || deployments.deployment(r))
                        .await
                }
            };
            match looked {
                Err(e) => return RollbackEnd::Unfollowed(e.to_string()),
                Ok(d) if rollback.is_some() && d.finished() => {
                    return match d.status.as_str() {
                        "Succeeded" => RollbackEnd::Succeeded,
                        other => RollbackEnd::Failed(format!(
                            "rollback deployment {} {other}",
                            rollback.as_deref().unwrap_or_default()
                        )),
                    }
                }
                Ok(d) if rollback.is_none() && d.rollback.is_some() => {
                    rollback = d.rollback;
                    continue;
                }
                // Finished, and CodeDeploy says why no rollback follows.
                Ok(d) if rollback.is_none() && d.finished() && d.rollback_message.is_some() => {
                    return RollbackEnd::Failed(d.rollback_message.unwrap_or_default())
                }
                Ok(_) => {}
            }
            if tokio::time::Instant::now() + POLL > deadline {
                return RollbackEnd::TimedOut(wait);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
