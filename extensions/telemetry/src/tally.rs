//! What the extension counts: per second and per series (function, the invoked qualifier, the
//! executed version), invocations, errors, timeouts and durations. Pure: the run loop feeds it
//! the Extensions API's INVOKE events and the Telemetry API's records, and drains it before it
//! asks for the next event.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// Ends remembered to refuse a repeat: more than one environment's invocations between two
/// drains ever hold.
const RECENT: usize = 256;

/// One metric series: the dimensions of a line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Series {
    pub function: String,
    /// The invoked ARN's qualifier (an alias, a version or `$LATEST`); none when invoked
    /// unqualified.
    pub qualifier: Option<String>,
    /// The version this environment runs (`ExecutedVersion`).
    pub version: String,
}

/// One second of one series.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Counts {
    pub invocations: u64,
    /// Invocations that did not succeed: status error, failure or timeout. Lambda's own
    /// `Errors` counts timeouts too ("the runtime returns errors for issues such as timeouts"),
    /// and an alarm on errors / invocations must see a release that times out.
    pub errors: u64,
    pub timeouts: u64,
    /// Runtime inits that failed before any invocation of theirs was known.
    pub init_errors: u64,
    pub durations_ms: Vec<f64>,
}

/// How an invocation ended, from its `platform.runtimeDone` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// `error`, `failure`, or a status this extension does not know.
    Error,
    Timeout,
    /// The environment went away (spindown) before the invocation's record arrived: it ran,
    /// how it ended is not known.
    Unknown,
}

impl Outcome {
    pub fn from_status(status: &str) -> Self {
        match status {
            "success" => Self::Success,
            "timeout" => Self::Timeout,
            _ => Self::Error,
        }
    }
}

/// An invocation's end that arrived before its INVOKE event (the two come over different
/// connections): held until the INVOKE names its alias, or the drain.
#[derive(Debug, Clone)]
struct Early {
    outcome: Outcome,
    duration_ms: Option<f64>,
    second: i64,
}

/// The counts, and the invocations still running.
#[derive(Debug)]
pub struct Tally {
    function: String,
    version: String,
    /// Request id → the invoked qualifier, for invocations whose end has not arrived.
    running: HashMap<String, Option<String>>,
    early: HashMap<String, Early>,
    /// The last ends counted, so a record delivered twice is counted once.
    recent: VecDeque<String>,
    buckets: BTreeMap<(i64, Series), Counts>,
}

/// Which seconds a drain takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    All,
    /// Seconds before this one (a second still filling stays).
    Before(i64),
}

impl Tally {
    pub fn new(function: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            function: function.into(),
            version: version.into(),
            running: HashMap::new(),
            early: HashMap::new(),
            recent: VecDeque::new(),
            buckets: BTreeMap::new(),
        }
    }

    /// An INVOKE event: the invocation runs, on the qualifier of the ARN it was invoked by.
    pub fn invoked(&mut self, request_id: &str, invoked_arn: &str) {
        let qualifier = qualifier(invoked_arn);
        match self.early.remove(request_id) {
            Some(end) => {
                self.remember(request_id);
                self.count(qualifier, end.outcome, end.duration_ms, end.second)
            }
            None => {
                self.running.insert(request_id.to_string(), qualifier);
            }
        }
    }

    /// A `platform.runtimeDone`: the invocation ended. False when it was counted already.
    pub fn finished(
        &mut self,
        request_id: &str,
        outcome: Outcome,
        duration_ms: Option<f64>,
        second: i64,
    ) -> bool {
        if self.early.contains_key(request_id) || self.recent.iter().any(|id| id == request_id) {
            return false;
        }
        match self.running.remove(request_id) {
            Some(qualifier) => {
                self.remember(request_id);
                self.count(qualifier, outcome, duration_ms, second);
                true
            }
            None => {
                let end = Early {
                    outcome,
                    duration_ms,
                    second,
                };
                self.early.insert(request_id.to_string(), end);
                true
            }
        }
    }

    /// A `platform.initRuntimeDone` that did not succeed. During an invocation (Lambda retries
    /// a failed init at the next invoke) it ends the invocations running; before any, it is
    /// an init error of the version.
    pub fn init_failed(&mut self, second: i64) {
        if self.running.is_empty() {
            let series = self.series(None);
            self.buckets
                .entry((second, series))
                .or_default()
                .init_errors += 1;
        } else {
            self.abandon(Outcome::Error, second);
        }
    }

    /// Ends every invocation still running with `outcome` (the environment shuts down).
    pub fn abandon(&mut self, outcome: Outcome, second: i64) {
        let running: Vec<_> = self.running.drain().collect();
        for (_, qualifier) in running {
            self.count(qualifier, outcome, None, second);
        }
    }

    pub fn is_running(&self, request_id: &str) -> bool {
        self.running.contains_key(request_id)
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// The counts of the seconds asked for, oldest first, taken out. Ends that never met
    /// their INVOKE are counted unqualified once their second is drained.
    pub fn drain(&mut self, which: Drain) -> Vec<(i64, Series, Counts)> {
        let due = |second: i64| match which {
            Drain::All => true,
            Drain::Before(s) => second < s,
        };
        let orphans: Vec<String> = (self.early.iter())
            .filter(|(_, end)| due(end.second))
            .map(|(id, _)| id.clone())
            .collect();
        for id in orphans {
            if let Some(end) = self.early.remove(&id) {
                self.remember(&id);
                self.count(None, end.outcome, end.duration_ms, end.second);
            }
        }
        let keys: Vec<_> = (self.buckets.keys())
            .filter(|(second, _)| due(*second))
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|key| {
                let counts = self.buckets.remove(&key)?;
                Some((key.0, key.1, counts))
            })
            .collect()
    }

    fn remember(&mut self, request_id: &str) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(request_id.to_string());
    }

    fn series(&self, qualifier: Option<String>) -> Series {
        Series {
            function: self.function.clone(),
            qualifier,
            version: self.version.clone(),
        }
    }

    fn count(
        &mut self,
        qualifier: Option<String>,
        outcome: Outcome,
        duration_ms: Option<f64>,
        second: i64,
    ) {
        let series = self.series(qualifier);
        let counts = self.buckets.entry((second, series)).or_default();
        counts.invocations += 1;
        match outcome {
            Outcome::Success | Outcome::Unknown => {}
            Outcome::Error => counts.errors += 1,
            Outcome::Timeout => {
                counts.errors += 1;
                counts.timeouts += 1;
            }
        }
        if let Some(ms) = duration_ms.filter(|ms| ms.is_finite() && *ms >= 0.0) {
            counts.durations_ms.push(ms);
        }
    }
}

/// The qualifier of `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`.
pub fn qualifier(invoked_arn: &str) -> Option<String> {
    let parts: Vec<&str> = invoked_arn.split(':').collect();
    match parts.as_slice() {
        [_, _, _, _, _, "function", _, q] if !q.is_empty() => Some((*q).to_string()),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const LIVE: &str = "arn:aws:lambda:us-east-1:111122223333:function:pay:live";

    fn tally() -> Tally {
        Tally::new("pay", "7")
    }

    /// The series of `pay:live` at version 7 (the emf tests' too).
    pub(crate) fn live() -> Series {
        Series {
            function: "pay".into(),
            qualifier: Some("live".into()),
            version: "7".into(),
        }
    }

    #[test]
    fn the_qualifier_is_the_invoked_arns_eighth_field() {
        assert_eq!(qualifier(LIVE).as_deref(), Some("live"));
        assert_eq!(
            qualifier("arn:aws:lambda:us-east-1:111122223333:function:pay:$LATEST").as_deref(),
            Some("$LATEST")
        );
        assert_eq!(
            qualifier("arn:aws:lambda:us-east-1:111122223333:function:pay"),
            None
        );
        assert_eq!(qualifier("not an arn"), None);
    }

    #[test]
    fn each_status_counts_as_lambda_counts_it() {
        let mut t = tally();
        for (id, status) in [
            ("a", "success"),
            ("b", "error"),
            ("c", "failure"),
            ("d", "timeout"),
            ("e", "a-status-of-tomorrow"),
        ] {
            t.invoked(id, LIVE);
            assert!(t.finished(id, Outcome::from_status(status), Some(10.0), 100));
        }
        let drained = t.drain(Drain::All);
        assert_eq!(drained.len(), 1);
        let (second, series, counts) = &drained[0];
        assert_eq!((*second, series), (100, &live()));
        assert_eq!(
            (counts.invocations, counts.errors, counts.timeouts),
            (5, 4, 1)
        );
        assert_eq!(counts.durations_ms.len(), 5);
        assert!(
            t.drain(Drain::All).is_empty(),
            "a drain takes the counts out"
        );
    }

    #[test]
    fn seconds_and_qualifiers_are_separate_series() {
        let mut t = tally();
        t.invoked("a", LIVE);
        t.invoked("b", "arn:aws:lambda:us-east-1:111122223333:function:pay");
        t.invoked("c", LIVE);
        t.finished("a", Outcome::Success, None, 100);
        t.finished("b", Outcome::Error, None, 100);
        t.finished("c", Outcome::Error, None, 101);
        let drained = t.drain(Drain::Before(101));
        let seen: Vec<_> = (drained.iter())
            .map(|(s, series, c)| (*s, series.qualifier.clone(), c.invocations, c.errors))
            .collect();
        assert_eq!(
            seen,
            vec![(100, None, 1, 1), (100, Some("live".into()), 1, 0)]
        );
        let rest = t.drain(Drain::All);
        assert_eq!(rest.len(), 1);
        assert_eq!((rest[0].0, rest[0].2.errors), (101, 1));
    }

    #[test]
    fn an_end_before_its_invoke_is_counted_on_the_invokes_alias_once() {
        let mut t = tally();
        assert!(t.finished("a", Outcome::Error, Some(3.0), 100));
        assert!(!t.finished("a", Outcome::Error, Some(3.0), 100), "a repeat");
        t.invoked("a", LIVE);
        assert!(!t.is_running("a"));
        let drained = t.drain(Drain::All);
        assert_eq!(drained.len(), 1);
        assert_eq!((&drained[0].1, drained[0].2.errors), (&live(), 1));
    }

    #[test]
    fn an_end_that_never_meets_its_invoke_is_counted_unqualified() {
        let mut t = tally();
        t.finished("lost", Outcome::Success, None, 100);
        assert!(t.drain(Drain::Before(100)).is_empty());
        let drained = t.drain(Drain::Before(101));
        assert_eq!(drained.len(), 1);
        assert_eq!(drained[0].1.qualifier, None);
        assert_eq!(drained[0].2.invocations, 1);
    }

    #[test]
    fn a_second_end_of_a_counted_invocation_is_not_counted() {
        let mut t = tally();
        t.invoked("a", LIVE);
        assert!(t.finished("a", Outcome::Success, None, 100));
        assert_eq!(t.drain(Drain::All)[0].2.invocations, 1);
        // A batch delivered again.
        assert!(!t.finished("a", Outcome::Success, None, 100));
        assert!(t.drain(Drain::All).is_empty());
    }

    #[test]
    fn an_init_failure_ends_the_running_invocation_or_counts_on_its_own() {
        let mut t = tally();
        t.init_failed(99);
        t.invoked("a", LIVE);
        t.init_failed(100);
        assert_eq!(t.running(), 0);
        let drained = t.drain(Drain::All);
        let init: Vec<_> = (drained.iter())
            .map(|(s, series, c)| (*s, series.qualifier.clone(), c.init_errors, c.errors))
            .collect();
        assert_eq!(
            init,
            vec![(99, None, 1, 0), (100, Some("live".into()), 0, 1)]
        );
    }

    #[test]
    fn a_shutdown_ends_what_runs_with_its_reason() {
        let mut t = tally();
        t.invoked("a", LIVE);
        t.abandon(Outcome::Timeout, 100);
        t.invoked("b", LIVE);
        t.abandon(Outcome::Unknown, 100);
        let drained = t.drain(Drain::All);
        let c = &drained[0].2;
        assert_eq!((c.invocations, c.errors, c.timeouts), (2, 1, 1));
        assert!(c.durations_ms.is_empty());
    }

    #[test]
    fn a_duration_that_is_no_duration_is_left_out() {
        let mut t = tally();
        t.invoked("a", LIVE);
        t.finished("a", Outcome::Success, Some(f64::NAN), 100);
        t.invoked("b", LIVE);
        t.finished("b", Outcome::Success, Some(-1.0), 100);
        let drained = t.drain(Drain::All);
        assert_eq!(drained[0].2.invocations, 2);
        assert!(drained[0].2.durations_ms.is_empty());
    }
}
