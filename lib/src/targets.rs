//! `guard targets`: what the guard protects, as it stands now. The policy's named targets, and
//! with fleet triggers every function that opted in: its alias, the version it serves (and
//! weights), the recorded stable version, the alarms that watch it, the guard's last action,
//! a pause, a re-enable in progress, a CodeDeploy deployment shifting its alias. And what leaves the guard blind or idle without anyone
//! noticing: an opted-in function no alarm watches, an alarm of a fleet trigger naming a
//! function that did not opt in, or naming no alias at all.

use crate::codedeploy::function_name;
use crate::fleet::{self, protected_alias};
use crate::operator::OperatorError;
use crate::policy::{Policy, Target};
use crate::ports::{
    AccountPorts, AlarmSetup, AlarmStatus, AliasManager, Clock, Deployments, PortError, Shift,
    StateStore,
};
use crate::retry::RetryPolicy;
use crate::rollback::AliasState;
use crate::state::{StateKey, TargetState};
use crate::transition::rfc3339_millis;
use crate::watched::WatchedAlias;
use serde::Serialize;
use std::collections::BTreeMap;

/// One protected target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetView {
    pub name: String,
    pub function: String,
    pub alias: Option<String>,
    /// `policy` (a `[[target]]`) or `fleet` (opted in by tag).
    pub source: &'static str,
    /// `act`, or `observe` (the guard says what it would do and changes nothing); `act,
    /// observe` when its triggers differ.
    pub mode: String,
    /// The alias's routing now (`None`: no alias, or it could not be read).
    pub serving: Option<AliasState>,
    /// `guard mark-stable`'s version for the alias.
    pub stable: Option<String>,
    /// The alarms whose triggers move it.
    pub alarms: Vec<String>,
    /// The guard's last action on it: what, when, for which alarm.
    pub last_action: Option<String>,
    /// The pause in force.
    pub pause: Option<String>,
    /// A re-enable in progress (`guard reenable`): where it stands.
    pub reenable: Option<String>,
    /// A CodeDeploy deployment shifting the alias: which, from and to which version.
    pub deployment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Targets {
    pub targets: Vec<TargetView>,
    pub warnings: Vec<String>,
}

/// What `guard targets` reads with: the account's ports, the guard's state table, which
/// account it is.
pub struct Seeing<'a> {
    pub ports: &'a AccountPorts,
    pub state: &'a dyn StateStore,
    pub account: &'a str,
    pub clock: &'a dyn Clock,
    pub retry: &'a RetryPolicy,
    /// The account's metrics: a target whose alias had no traffic in the last day is one its
    /// alarms cannot fire for (`None`: not checked).
    pub metrics: Option<&'a dyn AlarmSetup>,
}

/// Reads what `guard targets` shows.
pub async fn targets(policy: &Policy, seeing: &Seeing<'_>) -> Result<Targets, OperatorError> {
    let (ports, retry) = (seeing.ports, seeing.retry);
    let aliases = ports.aliases.as_ref();
    let alarms = ports.alarms.as_ref();
    let mut views = Vec::new();
    let mut warnings = Vec::new();
    let shifts = shifting(ports.deployments.as_ref(), retry, &mut warnings).await;
    for target in &policy.targets {
        let mut watching = Vec::new();
        for pattern in policy
            .triggers
            .iter()
            .filter(|t| t.target == target.name)
            .filter_map(|t| t.alarm.as_ref())
        {
            let found = retry
                .run("DescribeAlarms", || alarms.alarms(pattern))
                .await?;
            watching.extend(found.into_iter().map(|a| a.name));
        }
        match retry
            .run("GetFunction", || aliases.tags(&target.function))
            .await
        {
            Ok(_) => {}
            Err(PortError::NotFound(_)) => {
                warnings.push(format!(
                    "target `{}`: there is no function {}",
                    target.name, target.function
                ));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let view = view_of(policy, target, "policy", watching, seeing).await?;
        views.push(with_deployment(view, &shifts));
    }
    if !policy.triggers.iter().any(|t| t.from_alarm()) {
        silent_targets(&views, seeing, &mut warnings).await;
        return Ok(Targets {
            targets: views,
            warnings,
        });
    }
    let (fleet_alarms, failures) = fleet::read_alarms(policy, seeing.account, alarms, retry).await;
    if let Some(failure) = failures.into_iter().next() {
        return Err(OperatorError::Refused(failure));
    }
    let mut opted_in: BTreeMap<String, (String, BTreeMap<String, String>)> = BTreeMap::new();
    let functions = retry
        .run("ListFunctions", || aliases.list_functions())
        .await?;
    for function in functions {
        let tags = match retry.run("GetFunction", || aliases.tags(&function)).await {
            Ok(tags) => tags,
            // Deleted since it was listed; or not the operator's to read (not opted in, under
            // a policy that grants reading only opted-in functions).
            Err(PortError::NotFound(_) | PortError::Denied(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        if let Some(alias) = protected_alias(&tags).map(str::to_string) {
            opted_in.insert(function, (alias, tags));
        }
    }
    let mut watching: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for alarm in &fleet_alarms {
        match alarm.watched.alias() {
            Ok(w) => {
                let protects = opted_in.get(&w.function).map(|(a, _)| a.as_str());
                if protects != Some(w.alias.as_str()) {
                    warnings.push(not_opted_in(alarm, w, protects));
                }
                watching
                    .entry((w.function.clone(), w.alias.clone()))
                    .or_default()
                    .push(alarm.name.clone());
            }
            Err(why) => warnings.push(format!(
                "alarm `{}` matches a fleet trigger, but {why}: the guard rejects it when it fires",
                alarm.name
            )),
        }
    }
    for (function, (alias, tags)) in opted_in {
        let named = fleet::target_of(&WatchedAlias {
            function: function.clone(),
            alias: alias.clone(),
            version: None,
        });
        let target = match fleet::protected(&named, &tags) {
            Ok(t) => t,
            Err(fleet::NotProtected::NotOptedIn(why) | fleet::NotProtected::BadFlag(why)) => {
                warnings.push(why);
                named
            }
        };
        let alarms = watching.remove(&(function, alias)).unwrap_or_default();
        if alarms.is_empty() {
            warnings.push(format!(
                "blind: {}:{} is opted in, but no alarm of a fleet trigger names it",
                target.function,
                target.alias.as_deref().unwrap_or_default()
            ));
        }
        let view = view_of(policy, &target, "fleet", alarms, seeing).await?;
        views.push(with_deployment(view, &shifts));
    }
    silent_targets(&views, seeing, &mut warnings).await;
    Ok(Targets {
        targets: views,
        warnings,
    })
}

/// A warning for each watched target whose alias had no invocations in the last day: its
/// alarms treat missing data as not breaching and can never fire as they stand. Metrics that
/// cannot be read are a warning too: the rest of the view stands.
async fn silent_targets(views: &[TargetView], seeing: &Seeing<'_>, warnings: &mut Vec<String>) {
    let Some(metrics) = seeing.metrics else {
        return;
    };
    let now = seeing.clock.now();
    for view in views.iter().filter(|v| !v.alarms.is_empty()) {
        let Some(alias) = view.alias.as_deref() else {
            continue;
        };
        let function = function_name(&view.function);
        match crate::operator::silent(metrics, seeing.retry, now, function, alias).await {
            Ok(Some(warning)) => warnings.push(warning),
            Ok(None) => {}
            Err(e) => warnings.push(format!(
                "cannot tell whether {function}:{alias} has traffic ({e})"
            )),
        }
    }
}

/// The Lambda aliases CodeDeploy deployments are shifting now, in the whole account (one
/// ListDeployments, then each deployment's target). CodeDeploy not answering is a warning:
/// the rest of the view stands.
async fn shifting(
    deployments: &dyn Deployments,
    retry: &RetryPolicy,
    warnings: &mut Vec<String>,
) -> Vec<Shift> {
    let ids = match retry
        .run("ListDeployments", || deployments.unfinished(None))
        .await
    {
        Ok(ids) => ids,
        Err(e) => {
            warnings.push(format!(
                "CodeDeploy could not be asked for deployments in progress ({e}): none is shown"
            ));
            return Vec::new();
        }
    };
    let mut shifts = Vec::new();
    for id in ids {
        match retry
            .run("GetDeploymentTarget", || deployments.shift(&id))
            .await
        {
            Ok(Some(shift)) => shifts.push(shift),
            Ok(None) => {}
            Err(e) => warnings.push(format!(
                "CodeDeploy deployment {id}: its target could not be read ({e})"
            )),
        }
    }
    shifts
}

fn with_deployment(mut view: TargetView, shifts: &[Shift]) -> TargetView {
    let alias = view.alias.clone().unwrap_or_default();
    view.deployment = shifts
        .iter()
        .find(|s| crate::codedeploy::shifts(s, &view.function, &alias))
        .map(|s| {
            format!(
                "CodeDeploy deployment {} shifting {}:{} from version {} to version {}",
                s.deployment,
                function_name(&s.function),
                s.alias,
                s.current_version,
                s.target_version
            )
        });
    view
}

fn not_opted_in(alarm: &AlarmStatus, w: &WatchedAlias, protects: Option<&str>) -> String {
    let why = match protects {
        Some(other) => format!("it protects alias `{other}` instead"),
        None => format!("it has no {} tag", fleet::PROTECT_TAG),
    };
    format!(
        "alarm `{}` names {}:{}, which has not opted in ({why}): the guard ignores it",
        alarm.name, w.function, w.alias
    )
}

async fn view_of(
    policy: &Policy,
    target: &Target,
    source: &'static str,
    alarms: Vec<String>,
    seeing: &Seeing<'_>,
) -> Result<TargetView, OperatorError> {
    let (aliases, retry): (&dyn AliasManager, _) = (seeing.ports.aliases.as_ref(), seeing.retry);
    let now = seeing.clock.now();
    let key = StateKey::new(seeing.account, &target.function, target.alias.as_deref());
    let state: TargetState = retry.run("GetItem", || seeing.state.read(&key)).await?.0;
    let serving = match target.alias.as_deref() {
        Some(alias) => {
            match retry
                .run("GetAlias", || aliases.get_alias(&target.function, alias))
                .await
            {
                Ok(state) => Some(state),
                Err(PortError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            }
        }
        None => None,
    };
    let mut modes: Vec<&str> = policy
        .triggers
        .iter()
        .filter(|t| t.moves(target))
        .map(|t| t.mode(&policy.guard).as_str())
        .collect();
    modes.sort_unstable();
    modes.dedup();
    Ok(TargetView {
        name: target.name.clone(),
        function: target.function.clone(),
        alias: target.alias.clone(),
        source,
        mode: if modes.is_empty() {
            policy.guard.mode.as_str().to_string()
        } else {
            modes.join(", ")
        },
        serving,
        stable: state.stable.clone(),
        alarms,
        last_action: state.last.as_ref().map(|r| {
            format!(
                "{} at {} (alarm {})",
                r.action,
                rfc3339_millis(&r.at),
                r.alarm
            )
        }),
        pause: state.pause_at(now).map(|p| p.to_string()),
        reenable: state.reenable.as_ref().map(|r| r.describe()),
        deployment: None,
    })
}
