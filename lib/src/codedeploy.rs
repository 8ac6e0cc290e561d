//! Living beside CodeDeploy, decided without the SDK: which deployment group a target's alias
//! is deployed by, whether a deployment shifts that alias, and what people are told about
//! CodeDeploy and their stack's next deploy.

use crate::policy::{DeploymentGroup, Target};
use crate::ports::{PortError, Shift};
use crate::rollback::AliasState;
use std::collections::BTreeMap;

/// A function's tag naming the CodeDeploy application that deploys it (with [`GROUP_TAG`]).
pub const APPLICATION_TAG: &str = "rollback-guard:codedeploy-application";
/// A function's tag naming its CodeDeploy deployment group (with [`APPLICATION_TAG`]).
pub const GROUP_TAG: &str = "rollback-guard:codedeploy-group";
/// The tag CloudFormation puts on what a stack created.
pub const STACK_TAG: &str = "aws:cloudformation:stack-name";

/// The deployment group to ask: the policy's, else the function's tags', else none (the guard
/// then asks the whole account).
pub fn group_of(target: &Target, tags: &BTreeMap<String, String>) -> Option<DeploymentGroup> {
    target.codedeploy.clone().or_else(|| {
        Some(DeploymentGroup {
            application: tags.get(APPLICATION_TAG)?.clone(),
            group: tags.get(GROUP_TAG)?.clone(),
        })
    })
}

/// A function's name, from its name or its ARN.
pub fn function_name(reference: &str) -> &str {
    match reference.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => reference,
    }
}

/// Whether `shift` moves this function's `alias` (and not another alias of it, nor another
/// function).
pub fn shifts(shift: &Shift, function: &str, alias: &str) -> bool {
    function_name(&shift.function) == function_name(function) && shift.alias == alias
}

/// How a deployment's rollback ended, as far as the guard waited for it.
#[derive(Debug, Clone, PartialEq)]
pub enum RollbackEnd {
    Succeeded,
    /// Failed or stopped, or no rollback could be made: CodeDeploy's words.
    Failed(String),
    /// Still going after the guard's wait.
    TimedOut(u32),
    /// The guard could not follow it (GetDeployment failing past its retries).
    Unfollowed(String),
}

/// Whether the alias, as CodeDeploy's rollback left it, still needs the guard: split between
/// versions, or still on the version the deployment shifted to.
pub fn needs_putting_back(now: &AliasState, shift: &Shift) -> bool {
    !now.weights.is_empty() || now.version == shift.target_version
}

/// The deployment stopped and rolled back.
pub fn stopped(shift: &Shift, end: &RollbackEnd, now: &AliasState, wait: u32) -> String {
    let what = format!(
        "deployment {} was shifting alias {} from version {} to version {}; the guard stopped it with rollback (StopDeployment, autoRollbackEnabled)",
        shift.deployment, shift.alias, shift.current_version, shift.target_version
    );
    let how = match end {
        RollbackEnd::Succeeded => format!("CodeDeploy's rollback succeeded; alias now on {now}"),
        RollbackEnd::Failed(why) => {
            format!("CodeDeploy's rollback did not succeed ({why}); alias now on {now}")
        }
        RollbackEnd::TimedOut(_) => {
            format!("CodeDeploy's rollback had not finished after {wait} s; alias now on {now}")
        }
        RollbackEnd::Unfollowed(why) => {
            format!("the guard could not follow CodeDeploy's rollback ({why}); alias now on {now}")
        }
    };
    format!("{what}. {how}. To resume the release: fix it and deploy again (the pipeline, or `sam deploy`): a stopped deployment does not go on by itself")
}

/// The guard put the alias on the deployment's starting version itself, CodeDeploy's rollback
/// not having done it.
pub fn put_back(shift: &Shift) -> String {
    format!(
        "so the alias is not left split between two versions (later deployments fail on that), the guard put alias {} on version {} itself, with no weights",
        shift.alias, shift.current_version
    )
}

/// A deployment of the group that had not started (its target not known yet): stopped, so it
/// does not shift the alias after the guard's action.
pub fn stopped_unstarted(deployment: &str, group: &DeploymentGroup) -> String {
    format!(
        "deployment {deployment} of {}/{} had not started; the guard stopped it so that it does not shift the alias after this action; deploy again to resume",
        group.application, group.group
    )
}

/// The deployment finished before it could be stopped: the guard's own rollback follows.
pub fn completed(deployment: &str) -> String {
    format!("deployment {deployment} completed before the guard could stop it (DeploymentAlreadyCompletedException); the guard rolled back on its own from where it left the alias")
}

/// CodeDeploy could not be asked (no permission, throttled past the retries, down).
pub fn not_asked(alias: &str, e: &PortError) -> String {
    format!("the guard could not ask CodeDeploy whether a deployment is shifting alias {alias} ({e}); it acted on its own. If one is, CodeDeploy may set the alias's weights again at its next step or fail the deployment: check `aws deploy list-deployments`, and stop it with rollback")
}

/// A deployment shifting the alias could not be stopped.
pub fn not_stopped(shift: &Shift, e: &PortError) -> String {
    format!(
        "deployment {} is shifting alias {} from version {} to version {}, and the guard could not stop it ({e}); it acted on its own. CodeDeploy may set the alias's weights again at its next step or fail the deployment: stop it with `aws deploy stop-deployment --deployment-id {} --auto-rollback-enabled`",
        shift.deployment, shift.alias, shift.current_version, shift.target_version, shift.deployment
    )
}

/// What the team's next deploy of a CloudFormation stack meets after the guard moved an alias
/// the stack manages: what AWS's documentation settles, and what it does not.
pub fn stack_note(stack: &str, alias: &str, now: &str, undo: &str) -> String {
    format!(
        "the function belongs to CloudFormation stack {stack}, which does not know the guard moved alias {alias}: to CloudFormation that is drift, a change made outside the stack. A deploy that publishes a new version (SAM AutoPublishAlias) points {alias} at it, through CodeDeploy's traffic shifting where the function has a DeploymentPreference; a deploy that changes nothing in the function leaves {alias} on {now}. What CodeDeploy does when {alias} is not on the version the stack last set is not settled by AWS's documentation; SAM users report such deployments failing with INVALID_LAMBDA_CONFIGURATION (aws/serverless-application-model #291, #351). If yours does, `{undo}` puts {alias} back where the stack left it (the alarmed version serves again) before you deploy"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shift(function: &str, alias: &str) -> Shift {
        Shift {
            deployment: "d-1".into(),
            function: function.into(),
            alias: alias.into(),
            current_version: "3".into(),
            target_version: "4".into(),
        }
    }

    #[test]
    fn a_shift_is_the_targets_only_for_its_function_and_alias() {
        let arn = "arn:aws:lambda:eu-west-1:111122223333:function:pay";
        assert!(shifts(&shift("pay", "live"), "pay", "live"));
        assert!(shifts(&shift("pay", "live"), arn, "live"));
        assert!(shifts(&shift(arn, "live"), "pay", "live"));
        assert!(!shifts(&shift("pay", "beta"), "pay", "live"));
        assert!(!shifts(&shift("payments", "live"), "pay", "live"));
    }

    #[test]
    fn the_group_is_the_policys_then_the_tags() {
        let mut target = crate::fleet::requested("pay");
        let tags = BTreeMap::from([
            (APPLICATION_TAG.to_string(), "app".to_string()),
            (GROUP_TAG.to_string(), "grp".to_string()),
        ]);
        let tagged = DeploymentGroup {
            application: "app".into(),
            group: "grp".into(),
        };
        assert_eq!(group_of(&target, &tags), Some(tagged));
        let only_one = BTreeMap::from([(APPLICATION_TAG.to_string(), "app".to_string())]);
        assert_eq!(group_of(&target, &only_one), None);
        let named = DeploymentGroup {
            application: "a".into(),
            group: "g".into(),
        };
        target.codedeploy = Some(named.clone());
        assert_eq!(group_of(&target, &tags), Some(named));
    }

    #[test]
    fn the_alias_needs_putting_back_while_split_or_on_the_new_version() {
        let s = shift("pay", "live");
        let mut split = AliasState::on("3");
        split.weights.insert("4".into(), 0.1);
        assert!(needs_putting_back(&split, &s));
        assert!(needs_putting_back(&AliasState::on("4"), &s));
        assert!(!needs_putting_back(&AliasState::on("3"), &s));
        // Someone else's version: not the guard's to move.
        assert!(!needs_putting_back(&AliasState::on("2"), &s));
    }
}
