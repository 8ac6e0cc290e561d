//! `disable-ai`: the AI flag off, every other setting kept; with an alias, a published version
//! of the served code and settings with the flag off.

use crate::ai::{disabled_environment, unpublished_differences, FunctionConfig};
use crate::decision::Mode;
use crate::flag;
use crate::policy::{Action, Target};
use crate::report::{Outcome, Report};
use crate::rollback::AliasState;
use crate::state::{AliasChange, FlagChange};
use std::collections::BTreeMap;

use super::codedeploy::Yielded;
use super::{Ctx, Guard};

/// Whether an action goes on, or has settled its report already.
enum Step {
    Go(Report),
    Done(Report),
}

impl Guard {
    /// `disable-ai`: the flag off, every other setting kept. With an alias, published versions
    /// are immutable, so `$LATEST` (checked to hold exactly the served version's code and
    /// settings) gets the flag, is published, and the alias moves to the new version.
    pub(super) async fn disable_ai(
        &self,
        mut report: Report,
        target: &Target,
        tags: &BTreeMap<String, String>,
        ctx: &Ctx<'_>,
    ) -> Report {
        let function = target.function.as_str();
        let flag = target.ai_flag.as_str();
        let functions = &self.ports.functions;
        let alias = match target.alias.as_deref() {
            Some(alias) => alias,
            None => return self.disable_ai_on_latest(report, target, ctx).await,
        };
        let mut before = match self.read_alias(function, alias).await {
            Ok(a) => a,
            Err(why) => return report.settle(Outcome::Failed, why),
        };
        report.alias_before = Some(before.clone());
        // A second delivery of a cause that stopped a deployment first: its rollback is under
        // way, and the first delivery goes on from there.
        let state = ctx.state.now();
        let earlier = state
            .plan_of(&ctx.key)
            .filter(|p| ctx.mode == Mode::Execute && p.delivery() != ctx.delivery);
        if let Some(prior) = earlier {
            return self.planned_done(report, ctx, prior, alias).await;
        }
        // A deployment shifting the alias is stopped first: the AI goes off on the version it
        // started from.
        match self
            .codedeploy_first(&mut report, target, alias, &before, tags, ctx)
            .await
        {
            Err(settled) => return settled,
            Ok(Yielded::Own(now) | Yielded::RolledBack(now)) => before = now,
        }
        if before.version == "$LATEST" && before.weights.is_empty() {
            // The alias follows $LATEST: changing $LATEST is enough.
            return self.disable_ai_on_latest(report, target, ctx).await;
        }
        if !before.weights.is_empty() {
            return report.refuse(format!(
                "alias {alias} is mid-canary ({before}): disable-ai needs the alias on one version"
            ));
        }
        let served_version = before.version.clone();
        let served = match self
            .retry
            .run("GetFunctionConfiguration", || {
                functions.get_config(function, Some(&served_version))
            })
            .await
        {
            Ok(c) => c,
            Err(e) => {
                return report.settle(
                    Outcome::Failed,
                    format!("cannot read version {served_version} of {function}: {e}"),
                )
            }
        };
        let place = format!("version {served_version} (served by alias {alias})");
        let mut report = match self.check_flag(report, &served, flag, &place, &ctx.key) {
            Step::Go(report) => report,
            Step::Done(settled) => return settled,
        };
        let latest = match flag::settled(functions.as_ref(), &self.retry, function).await {
            Ok(c) => c,
            Err(e) => {
                return report.settle(
                    Outcome::Failed,
                    format!("cannot read $LATEST of {function}: {e}"),
                )
            }
        };
        let differences = unpublished_differences(&latest, &served, flag);
        if !differences.is_empty() {
            report.alias_after = Some(before.clone());
            return report.refuse(format!(
                "refusing to publish $LATEST of {function}: its {} differ from version {served_version}, which alias {alias} serves; nothing was changed",
                differences.join(", ")
            ));
        }
        let would = format!("would be done: publish version {served_version}'s code and settings with {flag}=false and move alias {alias} to it");
        match ctx.mode {
            Mode::Plan => return report.settle(Outcome::Planned, would),
            Mode::Observe => return report.observed(would),
            Mode::Execute => {}
        }
        let updated = flag::update_environment(functions.as_ref(), &self.retry, function, |vars| {
            disabled_environment(vars, flag)
        })
        .await;
        let latest = match updated {
            Ok(c) if c.ai_disabled(flag) && c.code_sha256 == served.code_sha256 => c,
            Ok(_) => {
                return report.settle(
                    Outcome::Failed,
                    format!("$LATEST of {function} changed while the guard updated it; nothing published, alias {alias} still on {before}"),
                )
            }
            Err(e) => {
                return report.settle(
                    Outcome::Failed,
                    format!("could not set {flag}=false on $LATEST of {function} ({e}); nothing published, alias {alias} still on {before}"),
                )
            }
        };
        let description = format!("rollback-guard: version {served_version} with {flag}=false");
        let published = self
            .retry
            .run("PublishVersion", || {
                functions.publish_version(
                    function,
                    &served.code_sha256,
                    latest.revision_id.as_deref(),
                    &description,
                )
            })
            .await;
        let new_version = match published {
            Ok(v) => v,
            Err(e) => {
                return report.settle(
                    Outcome::Failed,
                    format!("could not publish a version ({e}); $LATEST of {function} has {flag}=false, unpublished; alias {alias} still on {before}"),
                )
            }
        };
        // Published versions are what will serve traffic: check this one before moving to it.
        match self.retry.run("GetFunctionConfiguration", || functions.get_config(function, Some(&new_version))).await {
            Ok(c) if c.ai_disabled(flag) && c.code_sha256 == served.code_sha256 => {}
            Ok(_) => {
                return report.settle(
                    Outcome::Failed,
                    format!("published version {new_version} does not hold version {served_version}'s code with {flag}=false; alias {alias} left on {before}"),
                )
            }
            Err(e) => {
                return report.settle(
                    Outcome::Failed,
                    format!("cannot verify published version {new_version} ({e}); alias {alias} left on {before}"),
                )
            }
        }
        let after = AliasState::on(&new_version);
        report.alias_after = Some(after.clone());
        if let Some(done) = self
            .move_alias(&mut report, function, alias, &before, &after)
            .await
        {
            return done;
        }
        let record = ctx.record(
            Action::DisableAi,
            Some(AliasChange {
                alias: alias.into(),
                before,
                after,
            }),
            Some(FlagChange {
                name: flag.into(),
                before: served.flag(flag).map(str::to_string),
            }),
        );
        self.write_record(&mut report, target, ctx.state, &record, &ctx.key)
            .await;
        self.stack_note(
            &mut report,
            target,
            alias,
            &AliasState::on(&new_version),
            tags,
        );
        report.ladder_continues = true;
        let kept = report.preserved_variables.len();
        report.settle(
            Outcome::Executed,
            format!(
                "AI disabled: alias {alias} moved from version {served_version} to version {new_version}, the same code and settings with {flag}=false; {kept} other variable(s) kept"
            ),
        )
    }

    /// `disable-ai` on a target invoked through `$LATEST` (no alias, or an alias on `$LATEST`).
    async fn disable_ai_on_latest(&self, report: Report, target: &Target, ctx: &Ctx<'_>) -> Report {
        let function = target.function.as_str();
        let flag = target.ai_flag.as_str();
        let functions = self.ports.functions.as_ref();
        let latest = match flag::settled(functions, &self.retry, function).await {
            Ok(c) => c,
            Err(e) => {
                return report.settle(
                    Outcome::Failed,
                    format!("cannot read $LATEST of {function}: {e}"),
                )
            }
        };
        let place = format!("$LATEST of {function}");
        let mut report = match self.check_flag(report, &latest, flag, &place, &ctx.key) {
            Step::Go(report) => report,
            Step::Done(settled) => return settled,
        };
        let would = format!("would be done: set {flag}=false on $LATEST of {function}");
        match ctx.mode {
            Mode::Plan => return report.settle(Outcome::Planned, would),
            Mode::Observe => return report.observed(would),
            Mode::Execute => {}
        }
        let flag_before = latest.flag(flag).map(str::to_string);
        if let Err(e) = flag::update_environment(functions, &self.retry, function, |vars| {
            disabled_environment(vars, flag)
        })
        .await
        {
            return report.settle(
                Outcome::Failed,
                format!("could not set {flag}=false on $LATEST of {function} ({e}); its environment is as it was"),
            );
        }
        let record = ctx.record(
            Action::DisableAi,
            None,
            Some(FlagChange {
                name: flag.into(),
                before: flag_before,
            }),
        );
        self.write_record(&mut report, target, ctx.state, &record, &ctx.key)
            .await;
        report.ladder_continues = true;
        let kept = report.preserved_variables.len();
        report.settle(
            Outcome::Executed,
            format!(
                "AI disabled: {flag}=false on $LATEST of {function}; {kept} other variable(s) kept"
            ),
        )
    }

    /// What every disable-ai path checks on the configuration it would change: the flag
    /// already off (a no-op the ladder may go on from) or variables that cannot be read (a
    /// refusal: writing them back would lose them).
    fn check_flag(
        &self,
        mut report: Report,
        config: &FunctionConfig,
        flag: &str,
        place: &str,
        key: &str,
    ) -> Step {
        report.preserved_variables = preserved(&config.variables, flag);
        if config.ai_disabled(flag) {
            report.ladder_continues = true;
            self.settle_key(key);
            return Step::Done(report.settle(
                Outcome::AlreadyDone,
                format!("AI already disabled: {flag}=false on {place}"),
            ));
        }
        if let Some(e) = &config.environment_error {
            return Step::Done(
                report.refuse(format!("the environment of {place} cannot be read ({e})")),
            );
        }
        Step::Go(report)
    }
}

/// The names of the variables kept as they were: all but the flag.
fn preserved(variables: &BTreeMap<String, String>, flag: &str) -> Vec<String> {
    variables.keys().filter(|k| *k != flag).cloned().collect()
}
