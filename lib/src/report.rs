//! What the guard did with one event, and why: the [`Report`] every step of the pipeline fills
//! in and the announcements are made from, and its [`Outcome`]. Below the pipeline's steps and
//! the announcements, so that neither imports the other.

use crate::insight::Insight;
use crate::policy::{Action, Target};
use crate::rollback::AliasState;
use crate::transition::{AlarmState, Transition};
use serde::Serialize;

/// How one event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The action was carried out.
    Executed,
    /// Dry-run or replayed event: what would have been done.
    Planned,
    /// A duplicate delivery, or the target already is where the action would take it.
    AlreadyDone,
    /// Held back by the cooldown.
    Skipped,
    NoAction,
    Ignored,
    Rejected,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Executed => "executed",
            Self::Planned => "planned",
            Self::AlreadyDone => "already-done",
            Self::Skipped => "skipped",
            Self::NoAction => "no-action",
            Self::Ignored => "ignored",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }
}

/// What the guard did with one event, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub outcome: Outcome,
    pub action: Option<&'static str>,
    pub target: Option<String>,
    pub function: Option<String>,
    pub alias: Option<String>,
    /// The account the target is in (the guard's own, or a member account's).
    pub account: Option<String>,
    pub alarm: Option<String>,
    pub state: Option<AlarmState>,
    pub transport: Option<&'static str>,
    pub dedupe_key: Option<String>,
    pub reason: String,
    pub alias_before: Option<AliasState>,
    pub alias_after: Option<AliasState>,
    /// Names (never values) of the environment variables kept as they were.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preserved_variables: Vec<String>,
    /// The exact command that reverts what was done.
    pub undo: Option<String>,
    /// The CodeDeploy deployment the guard stopped (its rollback moved the alias).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// What CodeDeploy and the team's next deploy make of the action: a deployment stopped,
    /// one that could not be asked after or stopped, the stack the function belongs to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub codedeploy: Vec<String>,
    /// The ladder's next rung, when one is pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<String>,
    /// Things that went wrong after the outcome was settled (an announcement that failed).
    pub notes: Vec<String>,
    /// What the insight path makes of the incident (model, or rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insight: Option<Insight>,
    /// Why the insight came from the rules, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insight_fallback: Option<String>,
    /// Earlier reports this one follows from: a refused action before its fallback, the
    /// escalations of a scheduled check.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Report>,
    #[serde(skip)]
    pub transition: Option<Transition>,
    /// The action was refused before anything changed (a fallback may follow).
    #[serde(skip)]
    pub(crate) refused: bool,
    /// The action left the target where the ladder's next rung may follow.
    #[serde(skip)]
    pub(crate) ladder_continues: bool,
    /// The guard stood down because people said so (suppressed or disabled alarm actions, a
    /// pause): announced to machines (the audit event), nobody paged.
    #[serde(skip)]
    pub(crate) quiet: bool,
    /// Observe mode: what the guard would have done, announced to people and machines.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub observe: bool,
}

impl Report {
    /// A check on `target` that could not be made: reported, with the target it was about.
    pub(crate) fn failed_on(target: &Target, reason: String) -> Self {
        Self {
            outcome: Outcome::Failed,
            target: Some(target.name.clone()),
            account: target.account.clone(),
            ..Self::rejected(reason)
        }
    }

    pub(crate) fn rejected(reason: String) -> Self {
        Self {
            outcome: Outcome::Rejected,
            action: None,
            target: None,
            function: None,
            alias: None,
            account: None,
            alarm: None,
            state: None,
            transport: None,
            dedupe_key: None,
            reason,
            alias_before: None,
            alias_after: None,
            preserved_variables: Vec::new(),
            undo: None,
            deployment: None,
            codedeploy: Vec::new(),
            escalation: None,
            insight: None,
            insight_fallback: None,
            notes: Vec::new(),
            steps: Vec::new(),
            transition: None,
            refused: false,
            ladder_continues: false,
            quiet: false,
            observe: false,
        }
    }

    /// One report for the deliveries one event held (an SNS event's records), each a step:
    /// the outcome that most needs attention, every step's outcome in the reason, every
    /// step's notes.
    pub(crate) fn of_deliveries(steps: Vec<Report>) -> Self {
        // Most pressing first: what failed or was refused, then what changed something.
        const ORDER: [Outcome; 8] = [
            Outcome::Failed,
            Outcome::Rejected,
            Outcome::Executed,
            Outcome::Planned,
            Outcome::Skipped,
            Outcome::AlreadyDone,
            Outcome::NoAction,
            Outcome::Ignored,
        ];
        let outcome = ORDER
            .into_iter()
            .find(|o| steps.iter().any(|s| s.outcome == *o))
            .unwrap_or(Outcome::Rejected);
        let outcomes: Vec<String> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("record {i}: {} ({})", s.outcome.as_str(), s.reason))
            .collect();
        let mut report = Self::rejected(format!(
            "SNS event with {} records, each its own delivery; {}",
            steps.len(),
            outcomes.join("; ")
        ));
        report.outcome = outcome;
        report.notes = steps
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.notes.iter().map(move |n| format!("record {i}: {n}")))
            .collect();
        report.steps = steps;
        report
    }

    pub(crate) fn about(t: &Transition, outcome: Outcome, reason: String) -> Self {
        Self {
            outcome,
            alarm: Some(t.alarm_name.clone()),
            state: Some(t.new_state),
            transport: Some(t.transport.as_str()),
            dedupe_key: Some(t.dedupe_key()),
            transition: Some(t.clone()),
            ..Self::rejected(reason)
        }
    }

    pub(crate) fn on_target(mut self, target: &Target, action: Action) -> Self {
        self.action = Some(action.as_str());
        self.target = Some(target.name.clone());
        self.function = Some(target.function.clone());
        self.alias = target.alias.clone();
        self.account = target.account.clone();
        self
    }

    pub(crate) fn settle(mut self, outcome: Outcome, reason: impl Into<String>) -> Self {
        self.outcome = outcome;
        self.reason = reason.into();
        self
    }

    /// What an alarm that could not be confirmed settles: a skip (its actions silenced) is the
    /// guard standing down, anything else as it says.
    pub(crate) fn settle_unconfirmed(self, outcome: Outcome, reason: String) -> Self {
        match outcome {
            Outcome::Skipped => self.stand_down(reason),
            _ => self.settle(outcome, reason),
        }
    }

    /// Observe mode: planned, and announced to people as what the guard would have done.
    pub(crate) fn observed(mut self, reason: impl Into<String>) -> Self {
        self.observe = true;
        self.settle(Outcome::Planned, reason)
    }

    /// Skipped because people said "not now": recorded for machines, nobody paged.
    pub(crate) fn stand_down(mut self, reason: impl Into<String>) -> Self {
        self.quiet = true;
        self.settle(Outcome::Skipped, reason)
    }

    /// Whether people are told over SNS, besides the audit event: actions, failures, and
    /// alarms the cooldown held back. Duplicates and no-ops are audit events only, so one
    /// transition makes one notification; so is a guard standing down as people asked.
    pub fn pages(&self) -> bool {
        !self.quiet
            && (matches!(
                self.outcome,
                Outcome::Executed | Outcome::Failed | Outcome::Skipped
            ) || (self.observe && self.outcome == Outcome::Planned))
    }

    pub(crate) fn refuse(mut self, reason: impl Into<String>) -> Self {
        self.refused = true;
        self.settle(Outcome::Failed, reason)
    }

    /// The handler fails (so Lambda's retries and failure destination take over) when the
    /// input was refused, the action failed, or the announcement of an action failed.
    pub fn is_error(&self) -> bool {
        matches!(self.outcome, Outcome::Rejected | Outcome::Failed) || !self.notes.is_empty()
    }
}
