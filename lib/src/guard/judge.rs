//! Judgement before an automatic alias rollback (`crate::judgement`): when the release it would
//! take traffic from went live — what the guard remembers (people's moves, CloudTrail's record
//! of an `UpdateAlias`), else the version's publish time, else the CodeDeploy deployment that
//! shifted the alias to it — the floor, the guard's last rollback of the alias; then, for a
//! rollback the evidence blames, the account's blast-radius cap across instances.

use crate::codedeploy;
use crate::judgement::{judge, Case, Floor, Judgement, Source, WentLive};
use crate::policy::Action;
use crate::rollback::AliasState;
use crate::state::{LiveBy, TargetState};
use chrono::{DateTime, Timelike, Utc};
use std::collections::BTreeMap;

use super::{Ctx, Guard};
use crate::policy::Target;

/// The function tag that sets a floor no rollback goes below.
pub const FLOOR_TAG: &str = "rollback-guard:floor";

/// Whether an automatic rollback goes ahead.
pub(super) enum Verdict {
    /// Blamed (why), and within the cap.
    Go(String),
    /// Not blamed, or over the cap: why; `quiet` when people were paged already this hour.
    Held { why: String, quiet: bool },
}

impl Guard {
    /// The judgement on moving `target`'s alias from `before` to `to` for `ctx`'s automatic
    /// cause, whose trigger's blame window is `window`. `Err`: the evidence could not be
    /// read (the reason a report gives).
    pub(super) async fn judge_rollback(
        &self,
        target: &Target,
        tags: &BTreeMap<String, String>,
        ctx: &Ctx<'_>,
        before: &AliasState,
        to: &str,
    ) -> Result<Verdict, String> {
        let state = ctx.state.now();
        let release = release_of(&state, &target_alias(target), &before.version);
        let went_live = self.went_live(target, tags, &state, &release, ctx).await?;
        let floor = floor_of(target, tags)?;
        let case = Case {
            now: ctx.now,
            window: ctx.window,
            alarm_since: ctx.alarm_since,
            release: &went_live,
            to,
            rolled_back: state.rolled_back.as_ref(),
            floor: floor.as_ref(),
        };
        match judge(&case) {
            Judgement::Hold(why) => Ok(Verdict::Held { why, quiet: false }),
            Judgement::Blame(why) => Ok(Verdict::Go(why)),
        }
    }

    /// Counts the rollback against the account's cap (`guard.max_rollbacks_per_hour`), across
    /// instances. Over it: held, and paged once an hour (the first held back).
    pub(super) async fn within_cap(
        &self,
        target: &Target,
        ctx: &Ctx<'_>,
    ) -> Result<Verdict, String> {
        let cap = self.policy.guard.max_rollbacks_per_hour;
        let account = self.account_of(target).to_string();
        let hour = hour_of(ctx.now);
        let counted = self
            .retry
            .run("UpdateItem", || {
                self.ports.state.count_rollback(&account, hour, cap)
            })
            .await
            .map_err(|e| format!("cannot count the account's rollbacks this hour: {e}"))?;
        if counted.allowed {
            return Ok(Verdict::Go(String::new()));
        }
        Ok(Verdict::Held {
            why: format!(
                "blast-radius cap: {} automatic alias rollbacks made in account {account} since {} (guard.max_rollbacks_per_hour = {cap}); {} held back so far this hour. So many at once is a shared cause, not that many bad releases; people are paged once an hour, the rest are audit events",
                counted.made,
                crate::transition::rfc3339_millis(&hour),
                counted.held
            ),
            quiet: counted.held > 1,
        })
    }

    /// When `release` went live on `target`'s alias, from the best evidence there is.
    async fn went_live(
        &self,
        target: &Target,
        tags: &BTreeMap<String, String>,
        state: &TargetState,
        release: &str,
        ctx: &Ctx<'_>,
    ) -> Result<WentLive, String> {
        if let Some(live) = state
            .live
            .as_ref()
            .filter(|l| l.version == release && l.by.is_release())
        {
            let source = match &live.by {
                LiveBy::CloudTrail(who) => Source::CloudTrail(who.clone()),
                LiveBy::Person(who) => Source::Person(who.clone()),
                LiveBy::Guard => Source::Person("the guard".into()),
            };
            return Ok(WentLive {
                version: release.into(),
                at: live.since,
                source,
            });
        }
        let function = target.function.as_str();
        let published = self
            .retry
            .run("GetFunction", || {
                self.ports.aliases.published_at(function, release)
            })
            .await
            .map_err(|e| format!("cannot tell when version {release} of {function} was published: {e}"))?
            .ok_or_else(|| format!("version {release} of {function} is not published: when it went live is unknown"))?;
        let floor = WentLive {
            version: release.into(),
            at: published,
            source: Source::Published,
        };
        if ctx.now - published <= ctx.window {
            return Ok(floor);
        }
        // Published before the window: a CodeDeploy deployment may have shifted the alias to
        // it since. Asked only then, and only of a known group.
        let Some(group) = codedeploy::group_of(target, tags) else {
            return Ok(floor);
        };
        let alias = target_alias(target);
        let deployments = &self.ports.deployments;
        // What cannot be read leaves the publish time, and says so: it only ever holds back.
        let succeeded = match self
            .retry
            .run("ListDeployments", || {
                deployments.succeeded(&group, ctx.now - ctx.window)
            })
            .await
        {
            Ok(s) => s,
            Err(e) => {
                return Ok(WentLive {
                    source: Source::PublishedOnly(e.to_string()),
                    ..floor
                })
            }
        };
        for (id, ended) in succeeded.into_iter().take(5) {
            let Ok(Some(shift)) = self
                .retry
                .run("GetDeploymentTarget", || deployments.shift(&id))
                .await
            else {
                continue;
            };
            if codedeploy::shifts(&shift, function, &alias) && shift.target_version == release {
                return Ok(WentLive {
                    version: release.into(),
                    at: ended,
                    source: Source::CodeDeploy(id),
                });
            }
        }
        Ok(floor)
    }
}

/// The release a rollback from `serving` takes traffic from: the version itself, unless the
/// guard published it with the AI off (then the version it was made from).
fn release_of(state: &TargetState, alias: &str, serving: &str) -> String {
    state
        .last
        .as_ref()
        .filter(|r| r.action == Action::DisableAi.as_str())
        .and_then(|r| r.alias.as_ref())
        .filter(|c| c.alias == alias && c.after.version == serving)
        .map_or_else(|| serving.to_string(), |c| c.before.version.clone())
}

fn target_alias(target: &Target) -> String {
    target.alias.clone().unwrap_or_default()
}

/// The floor: the policy's (`[[target]] floor`), else the function's tag. A tag that is not a
/// version number is refused: a floor only ever holds the guard back, so it must be read right.
fn floor_of(target: &Target, tags: &BTreeMap<String, String>) -> Result<Option<Floor>, String> {
    if let Some(version) = target.floor {
        return Ok(Some(Floor {
            version,
            from: "the target's floor",
        }));
    }
    match tags.get(FLOOR_TAG) {
        None => Ok(None),
        Some(v) => match v.parse::<u64>() {
            Ok(version) if version >= 1 => Ok(Some(Floor {
                version,
                from: "tag rollback-guard:floor",
            })),
            _ => Err(format!(
                "{}'s tag {FLOOR_TAG} `{v}` is not a version number: no rollback until it says which version is the floor",
                target.function
            )),
        },
    }
}

/// The hour `t` falls in, from its start (what the blast-radius cap counts by).
fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}
