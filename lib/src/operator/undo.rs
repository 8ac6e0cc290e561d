//! `guard undo`: what the guard's last action on a target changed, restored; and after a
//! storm (`--since`), every automatic action of the window, each restored only if its alias is
//! still where the guard left it.

use super::{known_target, Operating, OperatorError};
use crate::ai::{restored_environment, AI_OFF};
use crate::flag;
use crate::policy::Policy;
use crate::ports::{PortError, StateStore};
use crate::retry::RetryPolicy;
use crate::state::{ActionRecord, AliasChange, FlagChange, StateKey, NO_ALIAS};

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
    let target = known_target(policy, op.aliases, &op.retry, target).await?;
    undo_last(op, &target.function, target.alias.as_deref(), None).await
}

/// An automatic action of the guard's that `guard undo --since` lists: the last one on its
/// target, made within the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Undoable {
    pub key: StateKey,
    pub record: ActionRecord,
}

impl std::fmt::Display for Undoable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.record;
        write!(
            f,
            "{} account {} {}: {} ({})",
            crate::transition::rfc3339_millis(&r.at),
            self.key.account,
            self.key.function,
            r.action,
            r.alarm
        )?;
        if let Some(a) = &r.alias {
            write!(f, ", alias {} {} -> {}", a.alias, a.before, a.after)?;
        }
        if let Some(flag) = &r.flag {
            write!(f, ", {} set to {AI_OFF} on $LATEST", flag.name)?;
        }
        if let Some(d) = &r.deployment {
            write!(f, ", CodeDeploy deployment {d} stopped")?;
        }
        Ok(())
    }
}

/// Every target whose last action is an automatic one of the guard's made since `since`
/// (in `account` only, if given), oldest first: what `guard undo --since` lists.
pub async fn undoable_since(
    state: &dyn StateStore,
    retry: &RetryPolicy,
    since: chrono::DateTime<chrono::Utc>,
    account: Option<&str>,
) -> Result<Vec<Undoable>, OperatorError> {
    let all = retry.run("Scan", || state.all()).await?;
    let mut listed: Vec<Undoable> = all
        .into_iter()
        .filter(|(key, _)| account.is_none_or(|a| key.account == a))
        .filter_map(|(key, s)| {
            let record = s.last?;
            let undoable = record.automatic && record.at >= since && record.action != UNDO_ACTION;
            undoable.then_some(Undoable { key, record })
        })
        .collect();
    listed.sort_by_key(|i| (i.record.at, i.key.id()));
    Ok(listed)
}

/// Undoes one listed action, in `op`'s account (the item's), if it is still the target's last
/// and its alias still where the guard left it.
pub async fn undo_since(op: &Operating<'_>, item: &Undoable) -> Result<Undone, OperatorError> {
    if item.key.account != op.account {
        return Err(OperatorError::Refused(format!(
            "{} is in account {}, not {}",
            item.key.function, item.key.account, op.account
        )));
    }
    let alias = (item.key.alias != NO_ALIAS).then_some(item.key.alias.as_str());
    undo_last(op, &item.key.function, alias, Some(&item.record)).await
}

/// Restores what the last recorded action on `function`'s `alias` changed; `expected`: only
/// if that record is still the last.
async fn undo_last(
    op: &Operating<'_>,
    function: &str,
    alias: Option<&str>,
    expected: Option<&ActionRecord>,
) -> Result<Undone, OperatorError> {
    let (aliases, functions, retry) = (op.aliases, op.functions, &op.retry);
    let (_, state, _) = op.read(function, alias).await?;
    let record = state.last.clone().ok_or_else(|| {
        OperatorError::Refused(format!(
            "the guard has no recorded action on {function}: nothing to undo"
        ))
    })?;
    if expected.is_some_and(|e| *e != record) {
        return Err(OperatorError::Refused(format!(
            "{function}'s last recorded action is no longer the one listed: now {} at {}",
            record.action,
            crate::transition::rfc3339_millis(&record.at)
        )));
    }
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
        automatic: false,
    };
    // A person put the alias back: what serves again went live now, by them, and the guard
    // starts afresh on the alias.
    let by = format!("guard undo by {}", op.by);
    let recorded = op
        .edit(function, alias, |s| s.record(undone.clone(), &by))
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

/// The action an undo is recorded as.
pub const UNDO_ACTION: &str = "undo";
