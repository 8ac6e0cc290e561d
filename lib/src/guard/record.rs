//! What the guard remembers: its record in the target's tags (the authority for duplicates,
//! the cooldown and undo) and, as a shortcut, the keys a warm instance has settled.

use crate::fleet::{self, NotProtected};
use crate::policy::Target;
use crate::ports::PortError;
use crate::record::ActionRecord;
use crate::report::{Outcome, Report};
use std::collections::BTreeMap;

use super::Guard;

/// Dedupe keys a warm instance remembers (about 150 bytes each).
const MAX_SETTLED_IN_MEMORY: usize = 10_000;

impl Guard {
    pub(super) async fn write_record(
        &self,
        report: &mut Report,
        target: &Target,
        record: &ActionRecord,
        key: &str,
    ) {
        let function = target.function.as_str();
        // The CodeDeploy deployment the action stopped, if it did.
        let record = ActionRecord {
            deployment: report.deployment.clone(),
            ..record.clone()
        };
        let tags = record.to_tags();
        if let Err(e) = self
            .retry
            .run("TagResource", || self.ports.aliases.tag(function, &tags))
            .await
        {
            report.notes.push(format!(
                "the action record could not be written to {function}'s tags ({e}): cooldown, duplicate detection and undo do not hold for this action"
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

    /// The guard's record on `function` (its tags), read with retries; the error is the
    /// reason a report gives.
    pub(super) async fn read_record(
        &self,
        function: &str,
    ) -> Result<BTreeMap<String, String>, String> {
        self.read_tags(function)
            .await
            .map_err(|e| unreadable_record(function, &e))
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
    /// being ignored, silently.
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
            Err(e) => return Err((Outcome::Failed, unreadable_record(function, &e))),
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
            // Only a shortcut (the record in the target's tags is the authority), so a
            // long-lived instance simply starts over rather than grow without bound.
            if s.len() >= MAX_SETTLED_IN_MEMORY {
                s.clear();
            }
            s.insert(key.to_string());
        }
    }
}

/// Why a report fails when the record on `function` cannot be read.
fn unreadable_record(function: &str, e: &PortError) -> String {
    format!("cannot read the guard's record on {function}: {e}")
}
