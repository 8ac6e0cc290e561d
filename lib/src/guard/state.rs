//! Reading and writing what the guard remembers about a target (its item in the state
//! table): read once as an action begins, then changed by small edits, each written only if
//! nobody wrote the item since this guard last saw it (else read again and the edit decided
//! anew on what is there now).

use crate::policy::Target;
use crate::ports::PortError;
use crate::state::{StateKey, TargetState};
use std::sync::Mutex;
use tracing::warn;

use super::Guard;

/// How many times an edit is decided again after losing a race before the guard gives up.
const EDIT_ATTEMPTS: u32 = 8;

/// A target's state as this guard last read or wrote it.
pub(super) struct Remembered {
    pub key: StateKey,
    seen: Mutex<(TargetState, u64)>,
}

impl Remembered {
    /// The state as last seen.
    pub fn now(&self) -> TargetState {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    fn seen(&self) -> (TargetState, u64) {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn saw(&self, state: TargetState, revision: u64) {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = (state, revision);
    }
}

/// What an edit makes of the state it is given.
pub(super) enum Edit<T> {
    /// The state as edited is to be written; then `T`.
    Write(T),
    /// Nothing to write: `T` as things are.
    Keep(T),
}

impl Guard {
    /// The account `target` is in: the guard's own unless it names another.
    pub(super) fn account_of<'t>(&'t self, target: &'t Target) -> &'t str {
        target.account.as_deref().unwrap_or(&self.home.account)
    }

    /// The state table's key of `target`: its account (the guard's own unless it names
    /// another), function and alias.
    pub(super) fn key_of(&self, target: &Target) -> StateKey {
        StateKey::new(
            self.account_of(target),
            &target.function,
            target.alias.as_deref(),
        )
    }

    /// `target`'s state, read now. The error is the reason a report gives.
    pub(super) async fn remember(&self, target: &Target) -> Result<Remembered, String> {
        let key = self.key_of(target);
        let (state, revision) = self.read_state(&key).await?;
        Ok(Remembered {
            key,
            seen: Mutex::new((state, revision)),
        })
    }

    async fn read_state(&self, key: &StateKey) -> Result<(TargetState, u64), String> {
        self.retry
            .run("GetItem", || self.ports.state.read(key))
            .await
            .map_err(|e| format!("cannot read what the guard remembers of {key}: {e}"))
    }

    /// Applies `edit` to the state and writes it, unless the edit keeps it as it is. Lost a
    /// race (someone wrote the item since): reads it again and decides the edit again.
    pub(super) async fn update<T>(
        &self,
        remembered: &Remembered,
        mut edit: impl FnMut(&mut TargetState) -> Edit<T>,
    ) -> Result<T, String> {
        let key = &remembered.key;
        for _ in 0..EDIT_ATTEMPTS {
            let (mut state, revision) = remembered.seen();
            let result = match edit(&mut state) {
                Edit::Keep(result) => return Ok(result),
                Edit::Write(result) => result,
            };
            let written = self
                .retry
                .run("PutItem", || self.ports.state.write(key, &state, revision))
                .await;
            match written {
                Ok(next) => {
                    remembered.saw(state, next);
                    return Ok(result);
                }
                Err(PortError::RevisionChanged(_)) => {
                    let (state, revision) = self.read_state(key).await?;
                    remembered.saw(state, revision);
                }
                Err(e) => {
                    return Err(format!(
                        "cannot write what the guard remembers of {key}: {e}"
                    ))
                }
            }
        }
        warn!(target = %key, "the state kept changing under the guard");
        Err(format!(
            "cannot write what the guard remembers of {key}: it changed under the guard {EDIT_ATTEMPTS} times running"
        ))
    }
}
