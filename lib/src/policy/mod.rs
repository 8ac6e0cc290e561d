//! The declarative policy: which alarms move which targets, and how. Read once at start and
//! validated strictly; every error names the field and what was expected.

use std::fmt;

mod settings;
mod validate;

pub use validate::{is_function_name, is_variable_name};

pub const ENV_POLICY: &str = "GUARD_POLICY";
pub const ENV_POLICY_FILE: &str = "GUARD_POLICY_FILE";
/// An SSM parameter's name holding the policy (read at cold start).
pub const ENV_POLICY_SSM: &str = "GUARD_POLICY_SSM";
/// `s3://BUCKET/KEY` of an object holding the policy (read at cold start).
pub const ENV_POLICY_S3: &str = "GUARD_POLICY_S3";
/// The policy format this guard understands (the policy's `version`, default 1).
pub const POLICY_VERSION: u32 = 1;

/// Where the policy comes from: exactly one of `GUARD_POLICY` (the TOML itself),
/// `GUARD_POLICY_FILE`, `GUARD_POLICY_SSM`, `GUARD_POLICY_S3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    Text(String),
    File(String),
    Ssm(String),
    S3 { bucket: String, key: String },
}

impl PolicySource {
    /// The one source the environment names.
    pub fn from_env() -> Result<Self, PolicyError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// The one source `var` names (an environment's variables, by name).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, PolicyError> {
        let get = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let set: Vec<(&str, String)> = [ENV_POLICY, ENV_POLICY_FILE, ENV_POLICY_SSM, ENV_POLICY_S3]
            .into_iter()
            .filter_map(|k| get(k).map(|v| (k, v)))
            .collect();
        match set.as_slice() {
            [(ENV_POLICY, text)] => Ok(Self::Text(text.clone())),
            [(ENV_POLICY_FILE, path)] => Ok(Self::File(path.clone())),
            [(ENV_POLICY_SSM, name)] => Ok(Self::Ssm(name.clone())),
            [(ENV_POLICY_S3, uri)] => Self::s3(uri),
            [] => Err(PolicyError::new(
                ENV_POLICY_FILE,
                format!("no policy: set one of {ENV_POLICY} (the TOML itself), {ENV_POLICY_FILE} (a path), {ENV_POLICY_SSM} (an SSM parameter's name), {ENV_POLICY_S3} (s3://bucket/key)"),
            )),
            several => Err(PolicyError::new(
                several[0].0,
                format!(
                    "several policies: {} are all set; set one",
                    several.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    /// `s3://BUCKET/KEY`.
    pub fn s3(uri: &str) -> Result<Self, PolicyError> {
        let refuse =
            || PolicyError::new(ENV_POLICY_S3, format!("`{uri}`: expected s3://BUCKET/KEY"));
        let rest = uri.strip_prefix("s3://").ok_or_else(refuse)?;
        let (bucket, key) = rest.split_once('/').ok_or_else(refuse)?;
        if bucket.is_empty() || key.is_empty() {
            return Err(refuse());
        }
        Ok(Self::S3 {
            bucket: bucket.into(),
            key: key.into(),
        })
    }
}

impl fmt::Display for PolicySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(_) => write!(f, "{ENV_POLICY}"),
            Self::File(path) => write!(f, "{path} ({ENV_POLICY_FILE})"),
            Self::Ssm(name) => write!(f, "SSM parameter {name} ({ENV_POLICY_SSM})"),
            Self::S3 { bucket, key } => write!(f, "s3://{bucket}/{key} ({ENV_POLICY_S3})"),
        }
    }
}
/// Set by the deployment (infra/template.yaml): the topic and bus the stack created, which the
/// guard's role may publish to.
pub const ENV_NOTIFY_TOPIC_ARN: &str = "GUARD_NOTIFY_TOPIC_ARN";
pub const ENV_EVENT_BUS: &str = "GUARD_EVENT_BUS";
pub const DEFAULT_AI_FLAG: &str = "AI_ENABLED";
/// The reserved target of fleet triggers: the function alias the alarm's metrics name, if
/// that function opted in (`crate::fleet`).
pub const FROM_ALARM: &str = "from-alarm";
/// Stands for a member account in `guard.member_role`.
pub const MEMBER_ACCOUNT: &str = "{account}";

/// A policy problem, naming the field (`trigger[1].alarm`) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy: {field}: {message}")]
pub struct PolicyError {
    pub field: String,
    pub message: String,
}

impl PolicyError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What the guard does with events replayed from an EventBridge archive (`replay-name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplayMode {
    /// Report what would have been done (`Rollback Planned`), change nothing.
    #[default]
    DryRun,
    /// Drop them.
    Ignore,
    /// Treat them as live events.
    Act,
}

/// Whether the guard changes things, or only says what it would change (`guard.mode`, and a
/// trigger's `mode`): how a team adopts it, a week of observing before acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GuardMode {
    #[default]
    Act,
    /// Decided and confirmed as now, announced as what the guard would have done; nothing
    /// changed, nothing remembered (no claim, record or cooldown).
    Observe,
}

impl GuardMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Act => "act",
            Self::Observe => "observe",
        }
    }
}

/// What a trigger does to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Move the alias back to the stable version, or abort its canary.
    RollbackAlias,
    /// Set the target's AI flag to "false", keeping every other setting.
    DisableAi,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RollbackAlias => "rollback-alias",
            Self::DisableAi => "disable-ai",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rollback-alias" => Some(Self::RollbackAlias),
            "disable-ai" => Some(Self::DisableAi),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which alarms a trigger matches: an exact name, or a prefix written `prefix*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmPattern {
    Exact(String),
    Prefix(String),
}

impl AlarmPattern {
    pub fn matches(&self, alarm: &str) -> bool {
        match self {
            Self::Exact(name) => name == alarm,
            Self::Prefix(prefix) => alarm.starts_with(prefix.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub accounts: Option<Vec<String>>,
    pub notify_topic_arn: Option<String>,
    pub event_bus: String,
    pub cooldown_minutes: u32,
    pub on_replay: ReplayMode,
    /// Sources whose `Rollback Requested` events are accepted.
    pub request_sources: Vec<String>,
    /// A watched alarm in INSUFFICIENT_DATA this long leaves the guard blind: one warning.
    pub blind_after_minutes: u32,
    /// An alarm whose actions people disabled (`disable-alarm-actions`) is not acted on
    /// either (default true). A team that disables actions for other reasons says false.
    pub honour_disabled_actions: bool,
    /// The role the guard assumes to act in another listed account, `{account}` standing for
    /// it. None: the guard acts in its own account only.
    pub member_role: Option<String>,
    /// The role operators assume in a listed member account (`guard … --account A`: infra/
    /// member.yaml's `OperatorRole`), `{account}` standing for it. None: the member role.
    pub operator_role: Option<String>,
    /// The guard's share of each account's Lambda control-plane quota (15 requests/s per
    /// account and region, shared with deploy pipelines), all its instances together.
    pub lambda_calls_per_second: u32,
    /// Its share of CloudWatch's DescribeAlarms quota (9/s per account and region).
    pub alarm_reads_per_second: u32,
    /// How long the guard waits for CodeDeploy's rollback of a deployment it stopped before it
    /// puts the alias on the deployment's starting version itself.
    pub codedeploy_wait_seconds: u32,
    /// An automatic alias rollback takes traffic only from a version that went live this
    /// recently: the guard blames a recent release, not the weather.
    pub blame_window_minutes: u32,
    /// At most this many automatic alias rollbacks an hour in one account, across instances.
    pub max_rollbacks_per_hour: u32,
    pub mode: GuardMode,
}

/// A day: a release an alarm may still blame, after the first day's traffic has met it.
pub const DEFAULT_BLAME_WINDOW_MINUTES: u32 = 1440;
/// Thirty days.
pub const MAX_BLAME_WINDOW_MINUTES: u32 = 43_200;
/// More automatic alias rollbacks than this in an hour in one account is a shared cause, not
/// twenty bad releases (see the policy reference for the reasoning).
pub const DEFAULT_MAX_ROLLBACKS_PER_HOUR: u32 = 20;
pub const MAX_ROLLBACKS_PER_HOUR: u32 = 10_000;

/// By default the guard waits two minutes for CodeDeploy's rollback.
pub const DEFAULT_CODEDEPLOY_WAIT_SECONDS: u32 = 120;
/// At most four: the guard function's timeout is five.
pub const MAX_CODEDEPLOY_WAIT_SECONDS: u32 = 240;

/// Lambda's control-plane quota per account and region: every call but GetFunction (and
/// GetPolicy). Not raisable.
pub const LAMBDA_CONTROL_PLANE_PER_SECOND: u32 = 15;
/// CloudWatch DescribeAlarms' quota per account and region.
pub const DESCRIBE_ALARMS_PER_SECOND: u32 = 9;
/// By default the guard leaves deploy pipelines 3 of the 15 requests/s.
pub const DEFAULT_LAMBDA_CALLS_PER_SECOND: u32 = 12;
/// And dashboards and other tools 3 of DescribeAlarms' 9.
pub const DEFAULT_ALARM_READS_PER_SECOND: u32 = 6;

impl Settings {
    /// The role to assume in `account`, if the guard may act there at all.
    pub fn member_role_in(&self, account: &str) -> Option<String> {
        let listed = self.accounts.as_ref()?.iter().any(|a| a == account);
        let role = self.member_role.as_ref().filter(|_| listed)?;
        Some(role.replace(MEMBER_ACCOUNT, account))
    }

    /// The role an operator's command assumes in `account`: the operator role, else the
    /// member role; none if the account is not listed.
    pub fn operator_role_in(&self, account: &str) -> Option<String> {
        let listed = self.accounts.as_ref()?.iter().any(|a| a == account);
        let role = self
            .operator_role
            .as_ref()
            .or(self.member_role.as_ref())
            .filter(|_| listed)?;
        Some(role.replace(MEMBER_ACCOUNT, account))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    /// Function name or ARN.
    pub function: String,
    pub alias: Option<String>,
    pub ai_flag: String,
    /// Read from an alarm by a fleet trigger, not named in the policy: acted on only while
    /// the function opts in with its tags.
    pub fleet: bool,
    /// The account the function is in (`None` in a policy: the guard's own, filled in by the
    /// guard; a fleet target's is its alarm's).
    pub account: Option<String>,
    /// The CodeDeploy deployment group that deploys the function's alias, when the policy
    /// names it (else the function's tags may; else the guard asks the whole account).
    pub codedeploy: Option<DeploymentGroup>,
    /// Never roll the alias back below this version (a one-way change, such as a data
    /// migration); the function's tag `rollback-guard:floor` may say so too.
    pub floor: Option<u64>,
}

/// A CodeDeploy application and one of its deployment groups (SAM makes one group per
/// function with a `DeploymentPreference`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentGroup {
    pub application: String,
    pub group: String,
}

/// Which Critical Insight events a trigger matches: from `source`, about `stream_id`, with a
/// risk of at least `min_risk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsightMatch {
    pub source: String,
    pub stream_id: String,
    pub min_risk: u8,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// Alarm triggers: the alarms they match.
    pub alarm: Option<AlarmPattern>,
    /// Insight triggers: the Critical Insight events they match.
    pub insight: Option<InsightMatch>,
    pub target: String,
    /// The escalation ladder: the first action runs on ALARM, each next one when the alarm is
    /// still in ALARM `escalate_after_minutes` after the previous one.
    pub actions: Vec<Action>,
    pub escalate_after_minutes: Option<u32>,
    /// This trigger's blame window (else `guard.blame_window_minutes`).
    pub blame_window_minutes: Option<u32>,
    /// This trigger's mode (else `guard.mode`).
    pub mode: Option<GuardMode>,
}

impl Trigger {
    /// The blame window in force for this trigger.
    pub fn blame_window(&self, settings: &Settings) -> chrono::TimeDelta {
        let minutes = self
            .blame_window_minutes
            .unwrap_or(settings.blame_window_minutes);
        chrono::TimeDelta::minutes(i64::from(minutes))
    }

    /// The mode in force for this trigger.
    pub fn mode(&self, settings: &Settings) -> GuardMode {
        self.mode.unwrap_or(settings.mode)
    }

    /// A fleet trigger: its target is the function alias the alarm names.
    pub fn from_alarm(&self) -> bool {
        self.target == FROM_ALARM
    }

    /// Whether this trigger moves `target` (a fleet trigger moves every fleet target).
    pub fn moves(&self, target: &Target) -> bool {
        if target.fleet {
            self.from_alarm()
        } else {
            self.target == target.name
        }
    }

    pub fn first_action(&self) -> Action {
        // Validation guarantees a non-empty ladder.
        self.actions
            .first()
            .copied()
            .unwrap_or(Action::RollbackAlias)
    }

    /// The action a refused `action` may fall back to at once: a later rung of the ladder.
    pub fn fallback_after(&self, action: Action) -> Option<Action> {
        let at = self.actions.iter().position(|a| *a == action)?;
        self.actions
            .get(at + 1..)?
            .iter()
            .copied()
            .find(|a| *a == Action::RollbackAlias)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub guard: Settings,
    pub targets: Vec<Target>,
    pub triggers: Vec<Trigger>,
}

/// What the deployment fixes for the policy: the notification topic and the audit events' bus
/// that the stack created and that the guard's role may publish to. A policy may leave these
/// out (the deployment's apply) or name the same ones; naming others is an error, since the
/// guard could not publish there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployment {
    pub notify_topic_arn: Option<String>,
    pub event_bus: Option<String>,
}

impl Deployment {
    /// `GUARD_NOTIFY_TOPIC_ARN` and `GUARD_EVENT_BUS`, where set.
    pub fn from_env() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self {
            notify_topic_arn: get(ENV_NOTIFY_TOPIC_ARN),
            event_bus: get(ENV_EVENT_BUS),
        }
    }
}

impl Policy {
    /// Parses and validates policy TOML.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        Self::from_toml_deployed(text, &Deployment::default())
    }

    /// Parses and validates policy TOML for a deployment that fixes the topic and the bus.
    pub fn from_toml_deployed(text: &str, deployment: &Deployment) -> Result<Self, PolicyError> {
        validate::policy(text, deployment)
    }

    /// Reads the policy from `GUARD_POLICY` (the TOML itself, for Lambda) or
    /// `GUARD_POLICY_FILE` (a path), with the deployment's topic and bus (`Deployment`).
    pub fn from_env() -> Result<Self, PolicyError> {
        let deployment = Deployment::from_env();
        if let Ok(text) = std::env::var(ENV_POLICY) {
            return Self::from_toml_deployed(&text, &deployment);
        }
        match std::env::var(ENV_POLICY_FILE) {
            Ok(path) => Self::read_file(&path, ENV_POLICY_FILE)
                .and_then(|text| Self::from_toml_deployed(&text, &deployment)),
            Err(_) => Err(PolicyError::new(
                ENV_POLICY_FILE,
                format!("not set; set {ENV_POLICY_FILE} to the policy file's path or {ENV_POLICY} to the TOML itself"),
            )),
        }
    }

    /// Reads the policy file at `path` (a command line's argument: an error names the path).
    pub fn from_file(path: &str) -> Result<Self, PolicyError> {
        Self::from_toml(&Self::read_file(path, path)?)
    }

    /// The file's text; an error names `origin`, where the path came from (the variable, or
    /// the path itself when it was given directly).
    fn read_file(path: &str, origin: &str) -> Result<String, PolicyError> {
        std::fs::read_to_string(path).map_err(|e| {
            let message = if origin == path {
                format!("cannot read the policy file: {e}")
            } else {
                format!("cannot read `{path}`: {e}")
            };
            PolicyError::new(origin, message)
        })
    }

    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// The first trigger, in file order, that matches an alarm of this name in `account`. A
    /// named trigger whose target lives in another account does not match: a member
    /// account's alarm named like a central one goes on to the triggers after it (a fleet
    /// trigger, say) instead of being refused as the central target's.
    pub fn trigger_for(&self, alarm: &str, account: &str) -> Option<&Trigger> {
        self.triggers.iter().find(|t| {
            t.alarm.as_ref().is_some_and(|p| p.matches(alarm))
                && (t.from_alarm()
                    || self
                        .target(&t.target)
                        .and_then(|target| target.account.as_deref())
                        .is_none_or(|home| home == account))
        })
    }

    /// The first insight trigger, in file order, for this source and stream, whatever the risk.
    pub fn insight_trigger_for(&self, source: &str, stream_id: &str) -> Option<&Trigger> {
        self.triggers.iter().find(|t| {
            t.insight
                .as_ref()
                .is_some_and(|m| m.source == source && m.stream_id == stream_id)
        })
    }

    /// Whether any insight trigger names this source.
    pub fn accepts_insights_from(&self, source: &str) -> bool {
        self.triggers
            .iter()
            .any(|t| t.insight.as_ref().is_some_and(|m| m.source == source))
    }
}
