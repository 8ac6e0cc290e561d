//! Operator commands that change a target on purpose: recording the stable version, undoing
//! the guard's last action, pausing and resuming the guard on a target. All refuse rather than
//! guess. What they set down goes to the guard's state table, beside what the guard remembers.

use crate::fleet::{self, NotProtected};
use crate::policy::{Policy, Target};
use crate::ports::{AliasManager, Clock, FunctionSettings, PortError, StateStore};
use crate::retry::RetryPolicy;
use crate::state::{Pause, StateKey, TargetState, MAX_PAUSE};
use std::borrow::Cow;

mod protect;
mod undo;

pub use protect::{protect, silent, unprotect, Protect, Protected, Protecting, Unprotected};
pub use undo::{undo, undo_since, undoable_since, Undoable, Undone, UNDO_ACTION};

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
    /// Who runs the command (what the guard then says put a version live).
    pub by: &'a str,
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
    // A person said which version is good: the guard starts afresh on the alias.
    op.edit(function, Some(alias), |s| {
        s.stable = Some(version.clone());
        s.rolled_back = None;
        s.bad.retain(|v| *v != version);
    })
    .await?;
    Ok(version)
}

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
    let duration = duration_of("--for", text, "7d")?;
    if !pause_length_allowed(duration) {
        return Err(duration_refused("--for", text, "7d"));
    }
    Ok(duration)
}

/// `--since`: how far back `guard undo --since` looks (30m, 2h, 1d; at most 30d).
pub fn since_duration(text: &str) -> Result<chrono::TimeDelta, OperatorError> {
    let duration = duration_of("--since", text, "30d")?;
    if duration <= chrono::TimeDelta::zero() || duration > chrono::TimeDelta::days(30) {
        return Err(duration_refused("--since", text, "30d"));
    }
    Ok(duration)
}

fn duration_refused(flag: &str, text: &str, most: &str) -> OperatorError {
    OperatorError::Refused(format!(
        "{flag} `{text}`: expected a duration such as 30m, 2h or 1d, at most {most}"
    ))
}

/// Whole minutes, hours or days (`30m`, `2h`, `1d`).
fn duration_of(flag: &str, text: &str, most: &str) -> Result<chrono::TimeDelta, OperatorError> {
    let refuse = || duration_refused(flag, text, most);
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| refuse())?;
    match unit {
        "m" => chrono::TimeDelta::try_minutes(n),
        "h" => chrono::TimeDelta::try_hours(n),
        "d" => chrono::TimeDelta::try_days(n),
        _ => None,
    }
    .ok_or_else(refuse)
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
