//! Operator commands that change a target on purpose: recording the stable version, undoing
//! the guard's last action, pausing and resuming the guard on a target. All refuse rather than
//! guess. What they set down goes to the guard's state table, beside what the guard remembers.

use crate::ai::{restored_environment, AI_OFF};
use crate::flag;
use crate::fleet::{self, NotProtected};
use crate::policy::{Policy, Target};
use crate::ports::{AliasManager, Clock, FunctionSettings, PortError, StateStore};
use crate::retry::RetryPolicy;
use crate::state::{
    ActionRecord, AliasChange, FlagChange, Pause, StateKey, TargetState, MAX_PAUSE,
};
use std::borrow::Cow;

/// What an operator's command acts with: the target account's Lambda, the guard's state
/// table, the clock, and which account the target is in.
pub struct Operating<'a> {
    pub aliases: &'a dyn AliasManager,
    pub functions: &'a dyn FunctionSettings,
    pub state: &'a dyn StateStore,
    pub clock: &'a dyn Clock,
    pub retry: RetryPolicy,
    /// The account the command acts in.
    pub account: &'a str,
}

impl Operating<'_> {
    /// The state of `function`'s `alias`, and its revision.
    async fn read(
        &self,
        function: &str,
        alias: Option<&str>,
    ) -> Result<(StateKey, TargetState, u64), OperatorError> {
        let key = StateKey::new(self.account, function, alias);
        let (state, revision) = self.retry.run("GetItem", || self.state.read(&key)).await?;
        Ok((key, state, revision))
    }

    /// Applies `edit` to the state of `function`'s `alias` and writes it; someone (the guard)
    /// wrote it meanwhile: read again and edit again.
    async fn edit<T>(
        &self,
        function: &str,
        alias: Option<&str>,
        mut edit: impl FnMut(&mut TargetState) -> T,
    ) -> Result<T, OperatorError> {
        for _ in 0..EDIT_ATTEMPTS {
            let (key, mut state, revision) = self.read(function, alias).await?;
            let result = edit(&mut state);
            match self
                .retry
                .run("PutItem", || self.state.write(&key, &state, revision))
                .await
            {
                Ok(_) => return Ok(result),
                Err(PortError::RevisionChanged(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OperatorError::Refused(format!(
            "the guard's state of {function} kept changing while this command ran: try again"
        )))
    }
}

/// How many times an operator's edit is made again after the guard wrote the state meanwhile.
const EDIT_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Backend(#[from] PortError),
}

/// Records `version` (default: the version the alias serves now) as the alias's stable
/// version. Refuses `$LATEST`, versions that do not exist, and an alias mid-canary without an
/// explicit version.
pub async fn mark_stable(
    op: &Operating<'_>,
    function: &str,
    alias: &str,
    version: Option<&str>,
) -> Result<String, OperatorError> {
    let (aliases, retry) = (op.aliases, &op.retry);
    let version = match version {
        Some(v) => v.to_string(),
        None => {
            let current = retry
                .run("GetAlias", || aliases.get_alias(function, alias))
                .await?;
            if !current.weights.is_empty() {
                return Err(OperatorError::Refused(format!(
                    "alias {alias} is mid-canary ({current}); pass --version to say which one is stable"
                )));
            }
            current.version
        }
    };
    if version == "$LATEST" {
        return Err(OperatorError::Refused(
            "$LATEST is mutable and cannot be a stable version; publish a version first".into(),
        ));
    }
    let published = retry
        .run("ListVersionsByFunction", || aliases.list_versions(function))
        .await?;
    if !published.contains(&version) {
        return Err(OperatorError::Refused(format!(
            "version {version} of {function} does not exist (published: {})",
            published.join(", ")
        )));
    }
    op.edit(function, Some(alias), |s| s.stable = Some(version.clone()))
        .await?;
    Ok(version)
}

/// What `guard undo` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Undone {
    pub function: String,
    /// The alias: `before` as the guard had left it, `after` as it is again.
    pub alias: Option<AliasChange>,
    /// The flag on `$LATEST`, with the value it has again (`None`: unset again).
    pub flag: Option<FlagChange>,
}

impl std::fmt::Display for Undone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:", self.function)?;
        if let Some(a) = &self.alias {
            write!(
                f,
                " alias {} restored to {} (was {})",
                a.alias, a.after, a.before
            )?;
        }
        if let Some(flag) = &self.flag {
            match &flag.before {
                Some(v) => write!(f, " {}={v} again on $LATEST", flag.name)?,
                None => write!(f, " {} unset again on $LATEST", flag.name)?,
            }
        }
        Ok(())
    }
}

/// Restores what the guard's last action on `target` changed (the alias's version and
/// weights, the AI flag), if nothing else changed the target since. Everything is checked
/// before anything is changed.
pub async fn undo(
    policy: &Policy,
    op: &Operating<'_>,
    target: &str,
) -> Result<Undone, OperatorError> {
    let (aliases, functions, retry) = (op.aliases, op.functions, &op.retry);
    let target = known_target(policy, aliases, retry, target).await?;
    let function = target.function.as_str();
    let (_, state, _) = op.read(function, target.alias.as_deref()).await?;
    let record = state.last.clone().ok_or_else(|| {
        OperatorError::Refused(format!(
            "the guard has no recorded action on {function}: nothing to undo"
        ))
    })?;
    if let (Some(deployment), Some(change)) = (&record.deployment, &record.alias) {
        if !change.before.weights.is_empty() {
            return Err(OperatorError::Refused(format!(
                "the guard's last action on {function} stopped CodeDeploy deployment {deployment}, whose rollback put alias {} on {}: undoing it would split the alias between two versions again, which later deployments fail on. Deploy again to resume the release",
                change.alias, change.after
            )));
        }
    }
    if record.action == UNDO_ACTION {
        return Err(OperatorError::Refused(format!(
            "the last recorded change to {function} already was an undo, at {}",
            record.at
        )));
    }
    let mut revision = None;
    if let Some(change) = &record.alias {
        let current = retry
            .run("GetAlias", || aliases.get_alias(function, &change.alias))
            .await?;
        if !current.same_routing(&change.after) {
            return Err(OperatorError::Refused(format!(
                "alias {} is on {current}, but the guard left it on {}: something else changed it since, so undo would overwrite that change",
                change.alias, change.after
            )));
        }
        revision = current.revision_id;
    }
    if let Some(change) = &record.flag {
        let latest = flag::settled(functions, retry, function).await?;
        if !latest.ai_disabled(&change.name) {
            return Err(OperatorError::Refused(format!(
                "{} on $LATEST of {function} is {}, but the guard left it at {AI_OFF}: something else changed it since",
                change.name,
                latest.flag(&change.name).unwrap_or("unset")
            )));
        }
    }
    // The alias first: traffic goes back to what served before as soon as possible.
    if let Some(change) = &record.alias {
        retry
            .run("UpdateAlias", || {
                aliases.update_alias(function, &change.alias, &change.before, revision.as_deref())
            })
            .await
            .map_err(|e| match e {
                PortError::RevisionChanged(_) => OperatorError::Refused(format!(
                    "alias {} changed while undoing; nothing was restored",
                    change.alias
                )),
                other => OperatorError::Backend(other),
            })?;
    }
    if let Some(change) = &record.flag {
        flag::update_environment(functions, retry, function, |vars| {
            restored_environment(vars, &change.name, change.before.as_deref())
        })
        .await
        .map_err(|e| {
            let done = match &record.alias {
                Some(a) => format!("alias {} was restored to {}, but ", a.alias, a.before),
                None => String::new(),
            };
            OperatorError::Backend(PortError::Other(format!(
                "{done}{} could not be restored on $LATEST: {e}",
                change.name
            )))
        })?;
    }
    let undone = ActionRecord {
        event: UNDO_ACTION.into(),
        action: UNDO_ACTION.into(),
        at: op.clock.now(),
        alarm: record.alarm.clone(),
        alias: record.alias.as_ref().map(|a| AliasChange {
            alias: a.alias.clone(),
            before: a.after.clone(),
            after: a.before.clone(),
        }),
        flag: record.flag.as_ref().map(|f| FlagChange {
            name: f.name.clone(),
            before: Some(AI_OFF.into()),
        }),
        deployment: None,
    };
    let recorded = op
        .edit(function, target.alias.as_deref(), |s| {
            s.last = Some(undone.clone())
        })
        .await;
    if let Err(e) = recorded {
        return Err(OperatorError::Backend(PortError::Other(format!(
            "the guard's change to {function} was undone, but the undo could not be recorded ({e}): the guard's cooldown does not hold after it"
        ))));
    }
    Ok(Undone {
        function: function.into(),
        alias: record.alias.map(|a| AliasChange {
            alias: a.alias,
            before: a.after,
            after: a.before,
        }),
        flag: record.flag,
    })
}

const UNDO_ACTION: &str = "undo";

/// The policy's target of this name or, under a fleet trigger, the function of this name
/// that opted in (`rollback-guard:protect`); else the refusal that names the targets there are.
pub async fn known_target<'p>(
    policy: &'p Policy,
    aliases: &dyn AliasManager,
    retry: &RetryPolicy,
    target: &str,
) -> Result<Cow<'p, Target>, OperatorError> {
    if let Some(t) = policy.target(target) {
        return Ok(Cow::Borrowed(t));
    }
    let names: Vec<&str> = policy.targets.iter().map(|t| t.name.as_str()).collect();
    let unknown = |more: &str| {
        OperatorError::Refused(format!(
            "unknown target `{target}` in the policy (targets: {}){more}",
            names.join(", ")
        ))
    };
    if !policy.triggers.iter().any(|t| t.from_alarm()) {
        return Err(unknown(""));
    }
    let tags = match retry.run("GetFunction", || aliases.tags(target)).await {
        Ok(tags) => tags,
        Err(PortError::NotFound(_)) => {
            return Err(unknown(", and there is no function of that name"))
        }
        Err(PortError::Denied(why)) => {
            return Err(unknown(&format!(
                ", and function {target} cannot be read with these credentials ({why})"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    // As for a request: the alias is the one the function's tag names.
    match fleet::protected(&fleet::requested(target), &tags) {
        Ok(t) => Ok(Cow::Owned(t)),
        Err(NotProtected::NotOptedIn(_)) => Err(unknown(&format!(
            ", and function {target} has not opted in ({})",
            fleet::PROTECT_TAG
        ))),
        Err(NotProtected::BadFlag(why)) => Err(OperatorError::Refused(why)),
    }
}

/// `--for`: whole minutes, hours or days (`30m`, `2h`, `1d`), more than none and at most
/// [`MAX_PAUSE`].
pub fn pause_duration(text: &str) -> Result<chrono::TimeDelta, OperatorError> {
    let refuse = || {
        OperatorError::Refused(format!(
            "--for `{text}`: expected a duration such as 30m, 2h or 1d, at most 7d"
        ))
    };
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| refuse())?;
    let duration = match unit {
        "m" => chrono::TimeDelta::try_minutes(n),
        "h" => chrono::TimeDelta::try_hours(n),
        "d" => chrono::TimeDelta::try_days(n),
        _ => None,
    }
    .ok_or_else(refuse)?;
    if !pause_length_allowed(duration) {
        return Err(refuse());
    }
    Ok(duration)
}

/// More than nothing, and at most [`MAX_PAUSE`]: the one bound `--for` and [`pause`] share.
fn pause_length_allowed(duration: chrono::TimeDelta) -> bool {
    duration > chrono::TimeDelta::zero() && duration <= MAX_PAUSE
}

/// What `guard pause` is asked for: how long, by whom, and why.
#[derive(Debug, Clone)]
pub struct PauseRequest<'a> {
    pub duration: chrono::TimeDelta,
    pub by: &'a str,
    pub reason: &'a str,
}

/// `guard pause`: the target's automatic actions (alarms, insights, escalations) stand down
/// for `duration`, with who and why kept in its state; a person's request still acts. Ends by
/// itself. A second pause replaces the first.
pub async fn pause(
    policy: &Policy,
    op: &Operating<'_>,
    target: &str,
    request: &PauseRequest<'_>,
) -> Result<Pause, OperatorError> {
    let PauseRequest {
        duration,
        by,
        reason,
    } = *request;
    let target = known_target(policy, op.aliases, &op.retry, target).await?;
    if reason.trim().is_empty() {
        return Err(OperatorError::Refused(
            "a pause needs a --reason: the people the guard no longer protects read it".into(),
        ));
    }
    if !pause_length_allowed(duration) {
        return Err(OperatorError::Refused(format!(
            "a pause lasts more than nothing and at most 7 days, not {duration}"
        )));
    }
    let now = op.clock.now();
    let pause = Pause {
        until: now + duration,
        at: now,
        by: by.to_string(),
        reason: reason.to_string(),
    };
    op.edit(&target.function, target.alias.as_deref(), |s| {
        s.pause = Some(pause.clone())
    })
    .await?;
    Ok(pause)
}

/// `guard resume`: ends the target's pause now. Returns the pause that was in force, if one
/// was.
pub async fn resume(
    policy: &Policy,
    op: &Operating<'_>,
    target: &str,
) -> Result<Option<Pause>, OperatorError> {
    let target = known_target(policy, op.aliases, &op.retry, target).await?;
    let now = op.clock.now();
    let was = op
        .edit(&target.function, target.alias.as_deref(), |s| {
            s.pause.take().filter(|p| p.holds(now))
        })
        .await?;
    Ok(was)
}
