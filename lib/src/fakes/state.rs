//! The state table in memory: items kept as the codec's text (so every read validates, as the
//! real table's does), revisions checked like DynamoDB's conditional writes, every write
//! logged, failures and outside writes injectable.

use super::lock;
use crate::ports::{rollbacks_key, Counted, PortError, StateStore};
use crate::state::{codec, StateKey, TargetState};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

/// An edit someone else makes to an item between a guard's read and its write.
type OutsideEdit = Box<dyn FnOnce(&mut TargetState) + Send>;

#[derive(Default)]
pub struct FakeState {
    /// Each item's text and revision, by key.
    items: Mutex<BTreeMap<StateKey, (String, u64)>>,
    /// What `Read` or `Write` answer next, in order (`None`: as the table would), before they
    /// go on as the table would.
    failures: Mutex<HashMap<&'static str, VecDeque<Option<PortError>>>>,
    /// An outside write to apply just before the next write of that key lands.
    interleaved: Mutex<Vec<(StateKey, OutsideEdit)>>,
    /// Every write, `key: what changed` in short.
    writes: Mutex<Vec<StateKey>>,
    /// Rollbacks made and held back, by account and hour.
    counts: Mutex<BTreeMap<String, (u32, u32)>>,
}

impl FakeState {
    /// The state of `key` as stored (default when none is).
    pub fn get(&self, key: &StateKey) -> TargetState {
        lock(&self.items)
            .get(key)
            .and_then(|(text, _)| codec::decode(key, text).ok())
            .unwrap_or_default()
    }

    /// Stores `state` as `key`'s, as an operator's command or a test's setup would.
    pub fn set(&self, key: &StateKey, state: &TargetState) {
        let mut items = lock(&self.items);
        let revision = items.get(key).map_or(0, |(_, r)| *r) + 1;
        items.insert(key.clone(), (codec::encode(state), revision));
    }

    /// Stores `text` as `key`'s item whatever it holds: what someone with access to the
    /// table could write.
    pub fn set_raw(&self, key: &StateKey, text: &str) {
        let mut items = lock(&self.items);
        let revision = items.get(key).map_or(0, |(_, r)| *r) + 1;
        items.insert(key.clone(), (text.to_string(), revision));
    }

    /// Changes `key`'s state as a racing writer would, just before the next write of it.
    pub fn edit_before_next_write(
        &self,
        key: &StateKey,
        edit: impl FnOnce(&mut TargetState) + Send + 'static,
    ) {
        lock(&self.interleaved).push((key.clone(), Box::new(edit)));
    }

    /// `Read` or `Write` fail with these errors, in order, before they succeed again.
    pub fn fail(&self, op: &'static str, errors: impl IntoIterator<Item = PortError>) {
        self.fail_after(op, 0, errors);
    }

    /// `Read` or `Write` succeed `calls` more times, then fail with these errors, in order.
    pub fn fail_after(
        &self,
        op: &'static str,
        calls: usize,
        errors: impl IntoIterator<Item = PortError>,
    ) {
        let mut failures = lock(&self.failures);
        let queue = failures.entry(op).or_default();
        queue.extend(std::iter::repeat_n(None, calls));
        queue.extend(errors.into_iter().map(Some));
    }

    /// The keys written, in order.
    pub fn writes(&self) -> Vec<StateKey> {
        lock(&self.writes).clone()
    }

    fn injected(&self, op: &'static str) -> Result<(), PortError> {
        match lock(&self.failures)
            .get_mut(op)
            .and_then(VecDeque::pop_front)
        {
            Some(Some(e)) => Err(e),
            _ => Ok(()),
        }
    }

    fn outside_edit(&self, key: &StateKey) {
        let edit = {
            let mut pending = lock(&self.interleaved);
            pending
                .iter()
                .position(|(k, _)| k == key)
                .map(|i| pending.remove(i).1)
        };
        if let Some(edit) = edit {
            let mut state = self.get(key);
            edit(&mut state);
            self.set(key, &state);
        }
    }
}

#[async_trait]
impl StateStore for FakeState {
    async fn read(&self, key: &StateKey) -> Result<(TargetState, u64), PortError> {
        // Yield like a network call would, so concurrent deliveries interleave.
        tokio::task::yield_now().await;
        self.injected("Read")?;
        match lock(&self.items).get(key) {
            None => Ok((TargetState::default(), 0)),
            Some((text, revision)) => codec::decode(key, text)
                .map(|state| (state, *revision))
                .map_err(|why| PortError::Other(format!("the state of {key} is refused: {why}"))),
        }
    }

    async fn write(
        &self,
        key: &StateKey,
        state: &TargetState,
        revision: u64,
    ) -> Result<u64, PortError> {
        tokio::task::yield_now().await;
        self.injected("Write")?;
        self.outside_edit(key);
        let mut items = lock(&self.items);
        let stored = items.get(key).map_or(0, |(_, r)| *r);
        if stored != revision {
            return Err(PortError::RevisionChanged(format!(
                "the state of {key} (revision {stored}, expected {revision})"
            )));
        }
        items.insert(key.clone(), (codec::encode(state), revision + 1));
        lock(&self.writes).push(key.clone());
        Ok(revision + 1)
    }

    async fn count_rollback(
        &self,
        account: &str,
        hour: chrono::DateTime<chrono::Utc>,
        cap: u32,
    ) -> Result<Counted, PortError> {
        tokio::task::yield_now().await;
        self.injected("Count")?;
        let mut counts = lock(&self.counts);
        let (made, held) = counts.entry(rollbacks_key(account, hour)).or_default();
        let allowed = *made < cap;
        if allowed {
            *made += 1;
        } else {
            *held += 1;
        }
        Ok(Counted {
            allowed,
            made: *made,
            held: *held,
        })
    }

    async fn all(&self) -> Result<Vec<(StateKey, TargetState)>, PortError> {
        self.injected("Read")?;
        lock(&self.items)
            .iter()
            .map(|(key, (text, _))| {
                codec::decode(key, text)
                    .map(|state| (key.clone(), state))
                    .map_err(|why| {
                        PortError::Other(format!("the state of {key} is refused: {why}"))
                    })
            })
            .collect()
    }
}
