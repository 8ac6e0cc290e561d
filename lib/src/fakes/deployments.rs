//! CodeDeploy in memory: deployments shifting a fake function's alias, stopped with a rollback
//! that moves the alias back (or fails, or never ends) as a test says.

use super::{lock, FakeLambda};
use crate::ports::{DeploymentGroup, DeploymentNow, Deployments, PortError, Shift, Stopping};
use crate::rollback::AliasState;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// What CodeDeploy's rollback of a stopped deployment comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rollback {
    /// Succeeds on the second look, the alias back on the deployment's current version.
    #[default]
    Succeeds,
    /// Fails, leaving the alias as it was.
    Fails,
    /// Never finishes.
    Hangs,
}

#[derive(Debug, Clone)]
struct FakeDeployment {
    group: Option<DeploymentGroup>,
    /// `None`: not started, its targets not known yet.
    shift: Option<Shift>,
    status: String,
    rollback: Option<String>,
    /// Looks at a rollback deployment before it ends.
    looks: u32,
    /// When it ended, once it succeeded.
    ended: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Default)]
pub struct FakeDeployments {
    lambda: Option<Arc<FakeLambda>>,
    deployments: Mutex<BTreeMap<String, FakeDeployment>>,
    rollback: Mutex<Rollback>,
    /// Deployments that complete between being found and being stopped.
    completing: Mutex<Vec<String>>,
    /// The next stop lands, but its answer is lost (the caller sees a transient failure).
    lose_stop_answer: Mutex<bool>,
    failures: Mutex<HashMap<&'static str, VecDeque<PortError>>>,
    calls: Mutex<Vec<String>>,
}

impl FakeDeployments {
    /// CodeDeploy over `lambda`'s aliases.
    pub fn over(lambda: Arc<FakeLambda>) -> Self {
        Self {
            lambda: Some(lambda),
            ..Self::default()
        }
    }

    /// Deployment `id` of `group` shifting `shift.alias` from `shift.current_version` to
    /// `shift.target_version`, `weight` of the traffic on the target now.
    pub fn shifting(&self, group: Option<DeploymentGroup>, shift: Shift, weight: f64) {
        if let Some(lambda) = &self.lambda {
            let mut split = AliasState::on(&shift.current_version);
            split.weights.insert(shift.target_version.clone(), weight);
            lambda.set_alias(&shift.function, &shift.alias, split);
        }
        self.add(shift.deployment.clone(), group, Some(shift), "InProgress");
    }

    /// Deployment `shift.deployment` of `group` that succeeded at `ended`: all traffic of the
    /// alias on its target version since then.
    pub fn succeeded_at(
        &self,
        group: DeploymentGroup,
        shift: Shift,
        ended: chrono::DateTime<chrono::Utc>,
    ) {
        if let Some(lambda) = &self.lambda {
            lambda.set_alias(
                &shift.function,
                &shift.alias,
                AliasState::on(&shift.target_version),
            );
        }
        let id = shift.deployment.clone();
        self.add(id.clone(), Some(group), Some(shift), "Succeeded");
        if let Some(d) = lock(&self.deployments).get_mut(&id) {
            d.ended = Some(ended);
        }
    }

    /// Deployment `id` of `group`, created and not started.
    pub fn not_started(&self, id: &str, group: Option<DeploymentGroup>) {
        self.add(id.to_string(), group, None, "Created");
    }

    /// Deployment `id` completes (all traffic on its target version) before it can be stopped.
    pub fn completes_before_stop(&self, id: &str) {
        lock(&self.completing).push(id.to_string());
    }

    /// The next StopDeployment takes effect, and its answer never reaches the caller.
    pub fn lose_next_stop_answer(&self) {
        *lock(&self.lose_stop_answer) = true;
    }

    pub fn rollback(&self, how: Rollback) {
        *lock(&self.rollback) = how;
    }

    pub fn fail(&self, op: &'static str, errors: impl IntoIterator<Item = PortError>) {
        lock(&self.failures).entry(op).or_default().extend(errors);
    }

    /// Every call, `Operation id` (ListDeployments: the group asked, or `*`).
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    /// CodeDeploy's status of deployment `id`.
    pub fn status(&self, id: &str) -> Option<String> {
        lock(&self.deployments).get(id).map(|d| d.status.clone())
    }

    fn add(&self, id: String, group: Option<DeploymentGroup>, shift: Option<Shift>, status: &str) {
        lock(&self.deployments).insert(
            id,
            FakeDeployment {
                group,
                shift,
                status: status.into(),
                rollback: None,
                looks: 0,
                ended: None,
            },
        );
    }

    fn call(&self, op: &'static str, what: &str) -> Result<(), PortError> {
        lock(&self.calls).push(format!("{op} {what}"));
        match lock(&self.failures)
            .get_mut(op)
            .and_then(VecDeque::pop_front)
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn missing(id: &str) -> PortError {
        PortError::Other(format!("DeploymentDoesNotExistException: {id}"))
    }

    fn set_alias(&self, shift: &Shift, to: &str) {
        if let Some(lambda) = &self.lambda {
            lambda.set_alias(&shift.function, &shift.alias, AliasState::on(to));
        }
    }
}

#[async_trait]
impl Deployments for FakeDeployments {
    async fn unfinished(&self, group: Option<&DeploymentGroup>) -> Result<Vec<String>, PortError> {
        let asked = group.map_or("*".to_string(), |g| {
            format!("{}/{}", g.application, g.group)
        });
        self.call("ListDeployments", &asked)?;
        Ok(lock(&self.deployments)
            .iter()
            .filter(|(_, d)| {
                let unfinished = matches!(
                    d.status.as_str(),
                    "Created" | "Queued" | "InProgress" | "Ready"
                );
                unfinished && (group.is_none() || d.group.as_ref() == group)
            })
            .map(|(id, _)| id.clone())
            .collect())
    }

    async fn shift(&self, deployment: &str) -> Result<Option<Shift>, PortError> {
        self.call("GetDeploymentTarget", deployment)?;
        let deployments = lock(&self.deployments);
        let d = deployments
            .get(deployment)
            .ok_or_else(|| Self::missing(deployment))?;
        Ok(d.shift.clone())
    }

    async fn stop(&self, deployment: &str) -> Result<Stopping, PortError> {
        self.call("StopDeployment", deployment)?;
        let how = *lock(&self.rollback);
        let completing = lock(&self.completing).contains(&deployment.to_string());
        let mut deployments = lock(&self.deployments);
        let d = deployments
            .get_mut(deployment)
            .ok_or_else(|| Self::missing(deployment))?;
        // A deployment stopped already is complete to CodeDeploy: a second stop is refused so.
        if d.status == "Stopped" {
            return Ok(Stopping::AlreadyCompleted);
        }
        if completing || d.status == "Succeeded" {
            d.status = "Succeeded".into();
            if let Some(shift) = d.shift.clone() {
                self.set_alias(&shift, &shift.target_version);
            }
            return Ok(Stopping::AlreadyCompleted);
        }
        d.status = "Stopped".into();
        let Some(shift) = d.shift.clone() else {
            // Not started: nothing shifted, nothing to roll back.
            return Ok(Stopping::Stopping);
        };
        let rollback = format!("{deployment}-rollback");
        d.rollback = Some(rollback.clone());
        let status = match how {
            Rollback::Fails => "Failed",
            Rollback::Succeeds | Rollback::Hangs => "InProgress",
        };
        let group = d.group.clone();
        deployments.insert(
            rollback,
            FakeDeployment {
                group,
                shift: Some(Shift {
                    current_version: shift.target_version.clone(),
                    target_version: shift.current_version.clone(),
                    ..shift
                }),
                status: status.into(),
                rollback: None,
                looks: 0,
                ended: None,
            },
        );
        if std::mem::take(&mut *lock(&self.lose_stop_answer)) {
            return Err(PortError::Transient(
                "the answer to StopDeployment was lost".into(),
            ));
        }
        Ok(Stopping::Stopping)
    }

    async fn succeeded(
        &self,
        group: &DeploymentGroup,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, PortError> {
        self.call(
            "ListDeployments",
            &format!("{}/{} Succeeded", group.application, group.group),
        )?;
        let mut ended: Vec<(String, chrono::DateTime<chrono::Utc>)> = lock(&self.deployments)
            .iter()
            .filter(|(_, d)| d.group.as_ref() == Some(group) && d.status == "Succeeded")
            .filter_map(|(id, d)| Some((id.clone(), d.ended.filter(|e| *e >= since)?)))
            .collect();
        ended.sort_by_key(|e| std::cmp::Reverse(e.1));
        Ok(ended)
    }

    async fn deployment(&self, deployment: &str) -> Result<DeploymentNow, PortError> {
        self.call("GetDeployment", deployment)?;
        let how = *lock(&self.rollback);
        let mut deployments = lock(&self.deployments);
        let d = deployments
            .get_mut(deployment)
            .ok_or_else(|| Self::missing(deployment))?;
        d.looks += 1;
        // A rollback deployment (its shift reversed) ends on its second look.
        let is_rollback = deployment.ends_with("-rollback");
        if is_rollback && how == Rollback::Succeeds && d.status == "InProgress" && d.looks >= 2 {
            d.status = "Succeeded".into();
            if let Some(shift) = d.shift.clone() {
                self.set_alias(&shift, &shift.target_version);
            }
        }
        Ok(DeploymentNow {
            status: d.status.clone(),
            rollback: d.rollback.clone(),
            rollback_message: (is_rollback && d.status == "Failed")
                .then(|| "the rollback deployment failed".to_string()),
        })
    }
}
