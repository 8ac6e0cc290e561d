//! The command line: each command, what it takes and what its help says (examples
//! included); the values each flag accepts are checked in `flags`.

use crate::flags;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "guard",
    version,
    about = "Alarm-triggered rollback guard for AWS Lambda"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Offline: what the policy decides for each event file. No AWS calls.
    #[command(
        after_help = "Examples:\n  guard evaluate --policy events/policy.toml events/*.json\n  guard evaluate --policy policy.toml --account 123456789012 --region us-east-1 alarm.json"
    )]
    Evaluate {
        /// Policy file (default: $GUARD_POLICY_FILE or $GUARD_POLICY).
        #[arg(long)]
        policy: Option<String>,
        /// Decide as a guard running in this account would (with --region): events of
        /// another account or region are rejected. Without both, each event is decided as
        /// by a guard of its own account and region.
        #[arg(long, requires = "region", value_parser = flags::account)]
        account: Option<String>,
        /// The guard's region (with --account).
        #[arg(long, requires = "account", value_parser = flags::region)]
        region: Option<String>,
        /// Plan only, as for replayed events.
        #[arg(long)]
        dry_run: bool,
        #[arg(required = true)]
        events: Vec<String>,
    },
    /// Runs each event file through the real pipeline, against AWS or $AWS_ENDPOINT_URL.
    #[command(
        after_help = "Examples:\n  guard replay --policy policy.toml --dry-run events/eventbridge-alarm.json\n  guard replay --policy policy.toml alarm.json   # acts: needs GUARD_STATE_TABLE"
    )]
    Replay {
        #[arg(long)]
        policy: Option<String>,
        /// Plan only: report what would be done, change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(required = true)]
        events: Vec<String>,
    },
    /// Checks a policy file.
    #[command(after_help = "Example:\n  guard validate policy.toml")]
    Validate { policy: String },
    /// Records the stable version of an alias (default: the version it serves now).
    #[command(
        after_help = "Examples:\n  guard mark-stable --function orders-ai --alias live\n  guard mark-stable --function orders-ai --alias live --version 2"
    )]
    MarkStable {
        #[arg(long, value_parser = flags::function)]
        function: String,
        #[arg(long, value_parser = flags::alias)]
        alias: String,
        #[arg(long, value_parser = flags::version)]
        version: Option<String>,
        /// The policy whose guard.member_role reaches --account.
        #[arg(long)]
        policy: Option<String>,
        /// Act in this account of the organisation, through the policy's guard.member_role
        /// (default: the credentials' own account).
        #[arg(long, value_parser = flags::account)]
        account: Option<String>,
    },
    /// Asks the guard for an action: puts a `Rollback Requested` event on the request bus,
    /// with who asks and the IAM identity that sends it.
    #[command(
        after_help = "Examples:\n  guard request --target orders-ai --action rollback-alias --reason \"p95 doubled after 3\"\n  guard request --target payments --action disable-ai --account 222222222222"
    )]
    Request {
        #[arg(long)]
        policy: Option<String>,
        /// The bus the guard takes requests from (the stack's RequestBus output; default:
        /// $GUARD_REQUEST_BUS, else the policy's guard.event_bus).
        #[arg(long)]
        bus: Option<String>,
        #[arg(long)]
        target: String,
        /// rollback-alias or disable-ai.
        #[arg(long, value_parser = ["rollback-alias", "disable-ai"])]
        action: String,
        #[arg(long, default_value = "")]
        reason: String,
        /// The event's source; it must be in the policy's guard.request_sources.
        #[arg(long, default_value = "rollback-guard.cli")]
        source: String,
        /// Who asks (default: $USER).
        #[arg(long)]
        requested_by: Option<String>,
        /// The member account the target is in (the guard acts there through its member role).
        #[arg(long, value_parser = flags::account)]
        account: Option<String>,
    },
    /// Replays an EventBridge archive's window to the guard's own rules on its bus: the guard
    /// plans each event (`Rollback Planned`: a replay named backtest-… is never acted on,
    /// whatever guard.on_replay says) and changes nothing; no other rule of the bus sees it.
    #[command(
        after_help = "Example:\n  guard backtest --archive rollback-guard-alarms --from 2026-11-13T00:00:00Z --to 2026-11-20T00:00:00Z --rule rollback-guard-alarm-state"
    )]
    Backtest {
        /// The archive's name.
        #[arg(long)]
        archive: String,
        /// Start of the window (RFC 3339).
        #[arg(long)]
        from: String,
        /// End of the window (RFC 3339).
        #[arg(long)]
        to: String,
        /// The guard's rule on the archived bus (name or ARN; the template's is
        /// STACK-alarm-state); repeat for several. Only these receive the replay.
        #[arg(long = "rule", required = true)]
        rules: Vec<String>,
        /// The replay's name, starting with backtest- (default: backtest-<archive>-<now>).
        #[arg(long)]
        name: Option<String>,
    },
    /// Restores what the guard's last action on a target changed; with --since, every
    /// automatic action of the window (after a storm), each only if its alias is still where
    /// the guard left it.
    #[command(
        after_help = "Examples:\n  guard undo --target orders-ai\n  guard undo --since 30m             # lists what the guard did in the last 30 minutes\n  guard undo --since 30m --yes       # and undoes it"
    )]
    Undo {
        #[arg(long)]
        policy: Option<String>,
        #[arg(long, required_unless_present = "since", conflicts_with = "since")]
        target: Option<String>,
        /// The target's account (default: the account the policy names for it, else the
        /// credentials' own), acted in through the policy's guard.member_role. With --since:
        /// only this account's actions.
        #[arg(long, value_parser = flags::account)]
        account: Option<String>,
        /// Every automatic action of the guard's in this window (30m, 2h, 1d; at most 30d),
        /// fleet and named targets: listed, and undone with --yes.
        #[arg(long, value_parser = flags::since)]
        since: Option<String>,
        /// With --since: undo what is listed (without it, only list).
        #[arg(long, requires = "since")]
        yes: bool,
    },
    /// Holds back the guard's automatic actions on a target (alarms, insights, escalations;
    /// requests still act) for a while: a maintenance window, an incident people handle.
    #[command(
        after_help = "Example:\n  guard pause --target orders-ai --for 2h --reason \"database migration\""
    )]
    Pause {
        #[arg(long)]
        policy: Option<String>,
        #[arg(long)]
        target: String,
        /// How long: 30m, 2h, 1d; at most 7d. The pause ends by itself.
        #[arg(long = "for", value_parser = flags::pause_for)]
        duration: String,
        /// Why, for the people the guard no longer protects meanwhile.
        #[arg(long)]
        reason: String,
        /// Who pauses (default: $USER).
        #[arg(long)]
        by: Option<String>,
        /// The target's account (default: the account the policy names for it, else the
        /// credentials' own), acted in through the policy's guard.member_role.
        #[arg(long, value_parser = flags::account)]
        account: Option<String>,
    },
    /// Brings the AI (or the rolled-back release) back gradually: the alias's traffic shifted to
    /// the version in steps, the first at once, each next one by the guard's schedule only
    /// while every alarm the target's triggers watch is OK; an ALARM aborts it.
    #[command(
        after_help = "Examples:\n  guard reenable --target support-ai                    # 10, 50, 100 % every 5 minutes\n  guard reenable --target support-ai --steps 5,25,100 --every 10m\n  guard reenable --target support-ai --status\n  guard reenable --target support-ai --cancel"
    )]
    Reenable {
        #[arg(long)]
        policy: Option<String>,
        #[arg(long)]
        target: String,
        /// Percent of the traffic at each step, rising to 100.
        #[arg(long, default_value = "10,50,100", value_parser = flags::steps)]
        steps: String,
        /// The wait between steps (1m to 1d).
        #[arg(long, default_value = "5m", value_parser = flags::every)]
        every: String,
        /// The version to bring back (default: the one the guard's last action moved away
        /// from); a published version, never $LATEST.
        #[arg(long, value_parser = flags::version)]
        version: Option<String>,
        /// Who starts or cancels it (default: $USER).
        #[arg(long)]
        by: Option<String>,
        /// Where the re-enable in progress stands.
        #[arg(long, conflicts_with = "cancel")]
        status: bool,
        /// Stops the re-enable in progress where it stands.
        #[arg(long)]
        cancel: bool,
    },
    /// Ends a target's pause now.
    #[command(after_help = "Example:\n  guard resume --target orders-ai")]
    Resume {
        #[arg(long)]
        policy: Option<String>,
        #[arg(long)]
        target: String,
        /// The target's account (default: the account the policy names for it, else the
        /// credentials' own), acted in through the policy's guard.member_role.
        #[arg(long, value_parser = flags::account)]
        account: Option<String>,
    },
    /// What the guard protects: the policy's targets and, with fleet triggers, every function
    /// opted in (tag rollback-guard:protect), each with its alias, the version it serves, the
    /// stable version, the alarms that watch it, the last action and a pause; then warnings.
    #[command(
        after_help = "Examples:\n  guard targets\n  guard targets --json\n  guard targets --account 222222222222"
    )]
    Targets {
        #[arg(long)]
        policy: Option<String>,
        /// One JSON document instead of lines.
        #[arg(long)]
        json: bool,
        /// Act in this account of the organisation, through the policy's guard.member_role
        /// (default: the credentials' own account).
        #[arg(long, value_parser = flags::account)]
        account: Option<String>,
    },
    /// Puts a function alias under the policy's fleet trigger: its standard alarms under the
    /// trigger's prefix (error rate above 5 % for 2 minutes, p95 duration above a threshold)
    /// and the opt-in tag rollback-guard:protect = ALIAS. Prints what it did and how to undo it.
    #[command(
        after_help = "Examples:\n  guard protect --function payments --alias live --dry-run\n  guard protect --function payments --alias live --p95-ms 1500\n  guard protect --function ledger --alias live --account 333333333333"
    )]
    Protect {
        #[arg(long)]
        policy: Option<String>,
        #[arg(long, value_parser = flags::function)]
        function: String,
        #[arg(long, value_parser = flags::alias)]
        alias: String,
        /// The p95 duration threshold in milliseconds (default: twice last week's p95, else
        /// 3000).
        #[arg(long, value_parser = flags::milliseconds)]
        p95_ms: Option<f64>,
        /// Act in this member account, through the policy's guard.operator_role.
        #[arg(long, value_parser = flags::account)]
        account: Option<String>,
        /// Say what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Takes away exactly what `guard protect` created for a function alias: its alarms (by
    /// their tags) and the opt-in tag if protect added it.
    #[command(after_help = "Example:\n  guard unprotect --function payments --alias live")]
    Unprotect {
        #[arg(long)]
        policy: Option<String>,
        #[arg(long, value_parser = flags::function)]
        function: String,
        #[arg(long, value_parser = flags::alias)]
        alias: String,
        #[arg(long, value_parser = flags::account)]
        account: Option<String>,
        #[arg(long)]
        dry_run: bool,
    },
}
