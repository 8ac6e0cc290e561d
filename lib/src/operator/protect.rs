//! `guard protect` and `guard unprotect`: a function alias put under the policy's fleet trigger
//! in one command — the standard alarms under the trigger's prefix, then the opt-in tag — and
//! exactly what that created taken away again. The operator's credentials; the guard itself
//! never tags a function or writes an alarm.

use super::OperatorError;
use crate::fleet::PROTECT_TAG;
use crate::policy::Policy;
use crate::ports::{AlarmSetup, AliasManager, Clock, PortError};
use crate::protect::{
    alarm_names, alarms, created_for, fleet_prefix, p95_threshold, AlarmSpec, LambdaMetric,
    TAGGED_TAG,
};
use crate::retry::RetryPolicy;
use std::collections::BTreeMap;
use std::fmt;

/// What `guard protect` and `unprotect` act with, in the function's account.
pub struct Protecting<'a> {
    pub aliases: &'a dyn AliasManager,
    pub alarms: &'a dyn AlarmSetup,
    pub clock: &'a dyn Clock,
    pub retry: RetryPolicy,
    /// `--account A` as the undo command should say it (empty: the credentials' own).
    pub account_flag: String,
}

/// A function alias to protect or unprotect.
#[derive(Debug, Clone)]
pub struct Protect<'a> {
    pub function: &'a str,
    pub alias: &'a str,
    /// The p95 duration threshold (else derived from last week's).
    pub p95_ms: Option<f64>,
    /// Say what would be done, do nothing.
    pub dry_run: bool,
}

/// What `guard protect` did (or would do).
#[derive(Debug, Clone)]
pub struct Protected {
    pub function: String,
    pub alias: String,
    /// Whether the function carried the opt-in tag already.
    pub already_opted_in: bool,
    pub alarms: Vec<AlarmSpec>,
    /// How the p95 threshold was chosen.
    pub p95: String,
    /// What people should know: a metric with no data (an alarm that cannot fire).
    pub warnings: Vec<String>,
    pub dry_run: bool,
    pub undo: String,
}

impl fmt::Display for Protected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, tag_verb) = if self.dry_run {
            ("would create", "would tag")
        } else {
            ("created", "tagged")
        };
        let target = format!("{}:{}", self.function, self.alias);
        for a in &self.alarms {
            writeln!(f, "{verb} alarm {}: {}", a.name, a.description)?;
        }
        writeln!(f, "p95 threshold: {}", self.p95)?;
        if self.already_opted_in {
            writeln!(
                f,
                "{} already carries {PROTECT_TAG} = {}",
                self.function, self.alias
            )?;
        } else {
            writeln!(
                f,
                "{tag_verb} {} with {PROTECT_TAG} = {}",
                self.function, self.alias
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        if self.dry_run {
            write!(
                f,
                "dry run: nothing changed; run again without --dry-run to protect {target}"
            )
        } else {
            write!(
                f,
                "{target} is under the guard's fleet trigger. To undo: {}",
                self.undo
            )
        }
    }
}

/// Refusals that name what is wrong.
fn refused(why: impl Into<String>) -> OperatorError {
    OperatorError::Refused(why.into())
}

/// `guard protect`: the standard alarms for `function:alias` under the fleet trigger's prefix,
/// then the opt-in tag. Refuses a function or alias that does not exist, a policy without a
/// fleet trigger, a function opted in for another alias.
pub async fn protect(
    policy: &Policy,
    op: &Protecting<'_>,
    request: &Protect<'_>,
) -> Result<Protected, OperatorError> {
    let Protect {
        function,
        alias,
        p95_ms,
        dry_run,
    } = *request;
    let prefix = fleet_prefix(policy).map_err(refused)?;
    let tags = existing(op, function, alias).await?;
    let already_opted_in = match tags.get(PROTECT_TAG) {
        Some(a) if a == alias => true,
        Some(other) => {
            return Err(refused(format!(
                "{function} is opted in for alias `{other}` ({PROTECT_TAG} = {other}): the guard moves one alias a function; `guard unprotect --function {function} --alias {other}` first"
            )))
        }
        None => false,
    };
    if let Some(ms) = p95_ms.filter(|ms| !(ms.is_finite() && *ms > 0.0)) {
        return Err(refused(format!(
            "--p95-ms `{ms}`: expected a positive number of milliseconds, such as 1500"
        )));
    }
    let now = op.clock.now();
    let week = metric(
        function,
        alias,
        "Duration",
        "p95",
        86_400,
        now - chrono::TimeDelta::days(7),
        now,
    );
    let last_week = match p95_ms {
        Some(_) => None,
        None => op
            .retry
            .run("GetMetricData", || op.alarms.lambda_metric(&week))
            .await?
            .into_iter()
            .reduce(f64::max),
    };
    let (p95, how) = p95_threshold(p95_ms, last_week);
    let warnings = silent(op.alarms, &op.retry, now, function, alias)
        .await?
        .into_iter()
        .collect();
    let specs = alarms(&prefix, function, alias, p95, !already_opted_in);
    let protected = Protected {
        function: function.into(),
        alias: alias.into(),
        already_opted_in,
        alarms: specs,
        p95: how,
        warnings,
        dry_run,
        undo: format!(
            "guard unprotect --function {function} --alias {alias}{}",
            op.account_flag
        ),
    };
    if dry_run {
        return Ok(protected);
    }
    // The alarms first: one alarm of a function not opted in acts on nothing.
    for spec in &protected.alarms {
        op.retry
            .run("PutMetricAlarm", || op.alarms.put_alarm(spec))
            .await?;
    }
    if !already_opted_in {
        let tag = BTreeMap::from([(PROTECT_TAG.to_string(), alias.to_string())]);
        op.retry
            .run("TagResource", || op.aliases.tag(function, &tag))
            .await
            .map_err(|e| {
                OperatorError::Backend(PortError::Other(format!(
                    "the alarms were created but {function} could not be tagged ({e}): the guard does not act on it yet. Try again, or remove the alarms with {}",
                    protected.undo
                )))
            })?;
    }
    Ok(protected)
}

/// The function's tags, once it and its alias are known to exist.
async fn existing(
    op: &Protecting<'_>,
    function: &str,
    alias: &str,
) -> Result<BTreeMap<String, String>, OperatorError> {
    if !crate::policy::is_function_name(function) {
        return Err(refused(format!(
            "--function `{function}`: expected a function's name (letters, digits, - and _)"
        )));
    }
    if !crate::watched::is_alias_name(alias) {
        return Err(refused(format!(
            "--alias `{alias}`: expected an alias's name, such as live (not a version number)"
        )));
    }
    let tags = match op
        .retry
        .run("GetFunction", || op.aliases.tags(function))
        .await
    {
        Ok(tags) => tags,
        Err(PortError::NotFound(_)) => {
            return Err(refused(format!(
                "function {function} does not exist in this account and region"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    match op
        .retry
        .run("GetAlias", || op.aliases.get_alias(function, alias))
        .await
    {
        Ok(_) => Ok(tags),
        Err(PortError::NotFound(_)) => Err(refused(format!(
            "function {function} has no alias `{alias}`: create it (or name the one its traffic goes through)"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// A Lambda metric of `function:alias` over `[since, until)`.
fn metric(
    function: &str,
    alias: &str,
    name: &str,
    stat: &str,
    period_s: i32,
    since: chrono::DateTime<chrono::Utc>,
    until: chrono::DateTime<chrono::Utc>,
) -> LambdaMetric {
    LambdaMetric {
        function: function.into(),
        alias: alias.into(),
        name: name.into(),
        stat: stat.into(),
        period_s,
        since,
        until,
    }
}

/// A warning when `function:alias` had no invocations in the last day (to `now`): alarms on
/// its metrics treat missing data as not breaching, and cannot fire until it serves traffic.
pub async fn silent(
    metrics: &dyn AlarmSetup,
    retry: &RetryPolicy,
    now: chrono::DateTime<chrono::Utc>,
    function: &str,
    alias: &str,
) -> Result<Option<String>, PortError> {
    let day = metric(
        function,
        alias,
        "Invocations",
        "Sum",
        3600,
        now - chrono::TimeDelta::days(1),
        now,
    );
    let values = retry
        .run("GetMetricData", || metrics.lambda_metric(&day))
        .await?;
    Ok((values.iter().sum::<f64>() <= 0.0).then(|| {
        format!(
            "silent: {function}:{alias} had no invocations in the last day: alarms on its metrics treat missing data as not breaching and cannot fire until traffic goes through the alias"
        )
    }))
}

/// What `guard unprotect` removed (or would remove), and what it left, saying why.
#[derive(Debug, Clone, Default)]
pub struct Unprotected {
    pub deleted: Vec<String>,
    pub untagged: bool,
    pub left: Vec<String>,
    pub dry_run: bool,
}

impl fmt::Display for Unprotected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (deleted, untagged) = if self.dry_run {
            ("would delete", "would remove")
        } else {
            ("deleted", "removed")
        };
        for name in &self.deleted {
            writeln!(f, "{deleted} alarm {name}")?;
        }
        if self.untagged {
            writeln!(f, "{untagged} the tag {PROTECT_TAG}")?;
        }
        for why in &self.left {
            writeln!(f, "left: {why}")?;
        }
        if self.dry_run {
            write!(f, "dry run: nothing changed")
        } else {
            write!(f, "done")
        }
    }
}

/// `guard unprotect`: the alarms `guard protect` created for `function:alias` (by their tags),
/// and the opt-in tag if `protect` added it and it still names the alias. Anything else is
/// left, and said.
pub async fn unprotect(
    policy: &Policy,
    op: &Protecting<'_>,
    request: &Protect<'_>,
) -> Result<Unprotected, OperatorError> {
    let (function, alias) = (request.function, request.alias);
    let prefix = fleet_prefix(policy).map_err(refused)?;
    let mut done = Unprotected {
        dry_run: request.dry_run,
        ..Unprotected::default()
    };
    let mut tagged_by_protect = false;
    for name in alarm_names(&prefix, function, alias) {
        match op
            .retry
            .run("ListTagsForResource", || op.alarms.alarm_tags(&name))
            .await?
        {
            Some(tags) if created_for(&tags, function, alias) => {
                tagged_by_protect |= tags.get(TAGGED_TAG).map(String::as_str) == Some("true");
                done.deleted.push(name);
            }
            Some(_) => done.left.push(format!(
                "alarm {name}: not created by guard protect for {function}:{alias} (its tags say otherwise)"
            )),
            None => {}
        }
    }
    let tags = match op
        .retry
        .run("GetFunction", || op.aliases.tags(function))
        .await
    {
        Ok(tags) => tags,
        Err(PortError::NotFound(_)) => BTreeMap::new(),
        Err(e) => return Err(e.into()),
    };
    match tags.get(PROTECT_TAG) {
        Some(a) if a == alias && tagged_by_protect => done.untagged = true,
        Some(a) if a == alias => done.left.push(format!(
            "the tag {PROTECT_TAG} = {alias}: it was there before guard protect (remove it yourself to opt {function} out)"
        )),
        _ => {}
    }
    if done.deleted.is_empty() && !done.untagged {
        return Err(refused(format!(
            "guard protect created nothing for {function}:{alias} under the prefix `{prefix}`{}",
            if done.left.is_empty() {
                String::new()
            } else {
                format!(" ({})", done.left.join("; "))
            }
        )));
    }
    if request.dry_run {
        return Ok(done);
    }
    op.retry
        .run("DeleteAlarms", || op.alarms.delete_alarms(&done.deleted))
        .await?;
    if done.untagged {
        let key = [PROTECT_TAG.to_string()];
        op.retry
            .run("UntagResource", || op.aliases.untag(function, &key))
            .await?;
    }
    Ok(done)
}
