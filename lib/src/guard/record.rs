//! What the guard remembers of an action: its record in the target's state (the authority for
//! duplicates, the cooldown and undo) and, as a shortcut, the keys a warm instance has
//! settled. And what the function's owners declare in its tags: a fleet function's opt-in.

use crate::fleet::{self, NotProtected};
use crate::policy::Target;
use crate::ports::PortError;
use crate::report::{Outcome, Report};
use crate::state::ActionRecord;
use std::collections::BTreeMap;

use super::state::{Edit, Remembered};
use super::Guard;

/// Dedupe keys a warm instance remembers (about 150 bytes each).
const MAX_SETTLED_IN_MEMORY: usize = 10_000;

impl Guard {
    /// Records `record` as the target's last action (with the CodeDeploy deployment the
    /// action stopped, if it did), its plan done, and says how to undo it.
    pub(super) async fn write_record(
        &self,
        report: &mut Report,
        target: &Target,
        remembered: &Remembered,
        record: &ActionRecord,
        key: &str,
    ) {
        let record = ActionRecord {
            deployment: report.deployment.clone(),
            ..record.clone()
        };
        let by = report.alarm.clone().unwrap_or_default();
        let written = self
            .update(remembered, |s| {
                s.record(record.clone(), &by);
                if s.plan_of(key).is_some() {
                    s.plan = None;
                }
                Edit::Write(())
            })
            .await;
        if let Err(e) = written {
            report.notes.push(format!(
                "the action record could not be written ({e}): cooldown, duplicate detection and undo do not hold for this action"
            ));
        }
        self.settle_key(key);
        report.undo = Some(match (&record.deployment, &record.alias) {
            // Undoing CodeDeploy's rollback would split the alias again.
            (Some(deployment), Some(change)) if !change.before.weights.is_empty() => format!(
                "deploy again to resume the release: deployment {deployment} was stopped and rolled back (`guard undo` would split alias {} between two versions again, which later deployments fail on)",
                change.alias
            ),
            _ => format!("guard undo --target {}", target.name),
        });
    }

    /// `function`'s tags (its owners' declarations), read with retries; the error is the
    /// reason a report gives.
    pub(super) async fn read_tags_of(
        &self,
        function: &str,
    ) -> Result<BTreeMap<String, String>, String> {
        self.read_tags(function)
            .await
            .map_err(|e| format!("cannot read the tags of {function}: {e}"))
    }

    /// `function`'s tags, read with retries.
    pub(super) async fn read_tags(
        &self,
        function: &str,
    ) -> Result<BTreeMap<String, String>, PortError> {
        self.retry
            .run("GetFunction", || self.ports.aliases.tags(function))
            .await
    }

    /// A fleet target as its function's tags make it (opted in, its flag), with the tags.
    /// `Err`: what the report settles as, a function that did not opt in (or does not exist)
    /// being ignored, silently. The template lets the guard read only functions tagged
    /// `rollback-guard:protect`, so on any other AWS answers AccessDenied: not opted in too.
    pub(super) async fn opted_in(
        &self,
        target: &Target,
    ) -> Result<(Target, BTreeMap<String, String>), (Outcome, String)> {
        let function = target.function.as_str();
        let tags = match self.read_tags(function).await {
            Ok(tags) => tags,
            Err(PortError::NotFound(_)) => {
                return Err((
                    Outcome::Ignored,
                    format!("not opted in: there is no function {function}"),
                ))
            }
            Err(PortError::Denied(_)) => {
                return Err((
                    Outcome::Ignored,
                    format!(
                        "not opted in: the guard may not read {function} (AccessDenied: its role reads only functions tagged {})",
                        fleet::PROTECT_TAG
                    ),
                ))
            }
            Err(e) => {
                return Err((
                    Outcome::Failed,
                    format!("cannot read the tags of {function}: {e}"),
                ))
            }
        };
        match fleet::protected(target, &tags) {
            Ok(target) => Ok((target, tags)),
            Err(NotProtected::NotOptedIn(why)) => Err((Outcome::Ignored, why)),
            Err(NotProtected::BadFlag(why)) => Err((Outcome::Failed, why)),
        }
    }

    pub(super) fn is_settled(&self, key: &str) -> bool {
        self.settled
            .lock()
            .map(|s| s.contains(key))
            .unwrap_or(false)
    }

    pub(super) fn settle_key(&self, key: &str) {
        if let Ok(mut s) = self.settled.lock() {
            // Only a shortcut (the record in the state table is the authority), so a
            // long-lived instance simply starts over rather than grow without bound.
            if s.len() >= MAX_SETTLED_IN_MEMORY {
                s.clear();
            }
            s.insert(key.to_string());
        }
    }
}
