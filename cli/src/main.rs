//! `guard`: the rollback guard's operator CLI.

mod acting;
mod backtest;
mod flags;
mod protect;
mod request;
mod undo;

use acting::{
    acting_guard, load_policy, needs_state_table, operating, ports_in, target_ports, who,
};
use request::{request, Asked};

use clap::{Parser, Subcommand};
use rollback_guard::decision::evaluate_each;
use rollback_guard::operator::{self, OperatorError};
use rollback_guard::ports::SystemClock;
use rollback_guard::retry::RetryPolicy;
use rollback_guard::targets;
use rollback_guard::{Home, Outcome};
use serde_json::{json, Value};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "guard",
    version,
    about = "Alarm-triggered rollback guard for AWS Lambda"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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

fn line(file: &str, report: Value) -> String {
    let mut out = json!({ "file": file });
    if let (Some(o), Value::Object(r)) = (out.as_object_mut(), report) {
        o.extend(r);
    }
    out.to_string()
}

async fn run(command: Command) -> Result<ExitCode, String> {
    let user = who(None);
    match command {
        Command::Evaluate {
            policy,
            account,
            region,
            dry_run,
            events,
        } => {
            let policy = load_policy(policy.as_deref())?;
            let home = match (account, region) {
                (Some(account), Some(region)) => Some(Home::new(&account, &region)?),
                _ => None,
            };
            for file in events {
                let bytes = std::fs::read(&file).map_err(|e| format!("cannot read {file}: {e}"))?;
                // An SNS event with several records: a line per record, each its own delivery.
                for verdict in evaluate_each(&policy, home.as_ref(), &bytes, dry_run) {
                    println!(
                        "{}",
                        line(
                            &file,
                            serde_json::to_value(verdict).map_err(|e| e.to_string())?
                        )
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            policy,
            dry_run,
            events,
        } => {
            if !dry_run {
                needs_state_table("guard replay (without --dry-run)")?;
            }
            let guard = acting_guard(load_policy(policy.as_deref())?).await?;
            let mut failed = false;
            for file in events {
                let bytes = std::fs::read(&file).map_err(|e| format!("cannot read {file}: {e}"))?;
                let report = guard.handle_bytes(&bytes, dry_run).await;
                failed |= report.outcome == Outcome::Failed || !report.notes.is_empty();
                println!(
                    "{}",
                    line(
                        &file,
                        serde_json::to_value(&report).map_err(|e| e.to_string())?
                    )
                );
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Validate { policy } => {
            let p = load_policy(Some(&policy))?;
            let fleet = p.triggers.iter().filter(|t| t.from_alarm()).count();
            let observing = p
                .triggers
                .iter()
                .filter(|t| t.mode(&p.guard) == rollback_guard::policy::GuardMode::Observe)
                .count();
            println!(
                "policy OK: {} target(s), {} trigger(s) ({fleet} fleet: target read from the alarm; {observing} observing, changing nothing), cooldown {} min, blame window {} min, at most {} automatic rollbacks an hour an account",
                p.targets.len(),
                p.triggers.len(),
                p.guard.cooldown_minutes,
                p.guard.blame_window_minutes,
                p.guard.max_rollbacks_per_hour
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::MarkStable {
            function,
            alias,
            version,
            policy,
            account,
        } => {
            needs_state_table("guard mark-stable")?;
            let policy = match (&policy, &account) {
                (None, None) => None,
                _ => Some(load_policy(policy.as_deref())?),
            };
            let acting = ports_in(policy.as_ref(), account.as_deref()).await?;
            let op = operating(&acting.ports, &acting.account, &user);
            let v = operator::mark_stable(&op, &function, &alias, version.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            println!("{function}:{alias}: stable version is now {v}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Request {
            policy,
            bus,
            target,
            action,
            reason,
            source,
            requested_by,
            account,
        } => {
            let policy = load_policy(policy.as_deref())?;
            let bus = bus
                .or_else(|| {
                    std::env::var("GUARD_REQUEST_BUS")
                        .ok()
                        .filter(|b| !b.is_empty())
                })
                .unwrap_or_else(|| policy.guard.event_bus.clone());
            let asked = Asked {
                target: &target,
                action: &action,
                reason: &reason,
                source: &source,
                bus: &bus,
                account: account.as_deref(),
            };
            request(&policy, &asked, requested_by).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Backtest {
            archive,
            from,
            to,
            rules,
            name,
        } => {
            backtest::backtest(&archive, &from, &to, &rules, name).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Undo {
            policy,
            target,
            account,
            since,
            yes,
        } => {
            needs_state_table("guard undo")?;
            let policy = load_policy(policy.as_deref())?;
            let Some(target) = target else {
                let since = since.unwrap_or_default();
                return undo::undo_since(&policy, &since, account.as_deref(), yes, &user).await;
            };
            let acting = target_ports(&policy, &target, account).await?;
            let result = operator::undo(
                &policy,
                &operating(&acting.ports, &acting.account, &user),
                &target,
            )
            .await;
            match result {
                Ok(undone) => {
                    println!("{undone}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(OperatorError::Refused(why)) => Err(format!("undo refused: {why}")),
                Err(e) => Err(format!("undo failed: {e}")),
            }
        }
        Command::Pause {
            policy,
            target,
            duration,
            reason,
            by,
            account,
        } => {
            needs_state_table("guard pause")?;
            let policy = load_policy(policy.as_deref())?;
            let duration = operator::pause_duration(&duration).map_err(|e| e.to_string())?;
            let acting = target_ports(&policy, &target, account).await?;
            let by = who(by);
            let request = operator::PauseRequest {
                duration,
                by: &by,
                reason: &reason,
            };
            let op = operating(&acting.ports, &acting.account, &user);
            let pause = operator::pause(&policy, &op, &target, &request)
                .await
                .map_err(|e| format!("pause refused: {e}"))?;
            println!("{target}: {pause}; resume early with: guard resume --target {target}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Reenable {
            policy,
            target,
            steps,
            every,
            version,
            by,
            status,
            cancel,
        } => {
            needs_state_table("guard reenable")?;
            let guard = acting_guard(load_policy(policy.as_deref())?).await?;
            let by = who(by);
            if status {
                match guard.reenable_status(&target).await? {
                    Some(plan) => println!("{target}: {}", plan.describe()),
                    None => println!("{target}: no re-enable in progress"),
                }
                return Ok(ExitCode::SUCCESS);
            }
            let report = if cancel {
                guard.cancel_reenable(&target, &by).await
            } else {
                let request = rollback_guard::guard::ReenableRequest {
                    steps: rollback_guard::reenable::parse_steps(&steps)?,
                    every: rollback_guard::reenable::parse_every(&every)?,
                    version,
                    by,
                };
                guard.start_reenable(&target, &request).await
            }
            .map_err(|e| format!("reenable refused: {e}"))?;
            println!("{target}: {}: {}", report.outcome.as_str(), report.reason);
            for note in &report.notes {
                println!("{target}: note: {note}");
            }
            if report.outcome == Outcome::Failed || !report.notes.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Resume {
            policy,
            target,
            account,
        } => {
            needs_state_table("guard resume")?;
            let policy = load_policy(policy.as_deref())?;
            let acting = target_ports(&policy, &target, account).await?;
            let op = operating(&acting.ports, &acting.account, &user);
            let was = operator::resume(&policy, &op, &target)
                .await
                .map_err(|e| format!("resume refused: {e}"))?;
            match was {
                Some(p) => println!("{target}: resumed (was {p})"),
                None => println!("{target}: was not paused; the guard acts on it"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Protect {
            policy,
            function,
            alias,
            p95_ms,
            account,
            dry_run,
        } => {
            let request = operator::Protect {
                function: &function,
                alias: &alias,
                p95_ms,
                dry_run,
            };
            let policy = load_policy(policy.as_deref())?;
            protect::run(&policy, account.as_deref(), &request, false).await
        }
        Command::Unprotect {
            policy,
            function,
            alias,
            account,
            dry_run,
        } => {
            let request = operator::Protect {
                function: &function,
                alias: &alias,
                p95_ms: None,
                dry_run,
            };
            let policy = load_policy(policy.as_deref())?;
            protect::run(&policy, account.as_deref(), &request, true).await
        }
        Command::Targets {
            policy,
            json,
            account,
        } => {
            needs_state_table("guard targets")?;
            let mut policy = load_policy(policy.as_deref())?;
            let acting = ports_in(Some(&policy), account.as_deref()).await?;
            let ports = acting.ports;
            // The account's own targets: those the policy puts there (none named: the
            // credentials' own account's).
            policy
                .targets
                .retain(|t| t.account.as_deref().unwrap_or(&acting.home) == acting.account);
            let metrics = rollback_guard::adapters::alarm_setup(&acting.config);
            let seeing = targets::Seeing {
                ports: &ports.own_account(),
                state: ports.state.as_ref(),
                account: &acting.account,
                clock: &SystemClock,
                retry: &RetryPolicy::default(),
                metrics: Some(metrics.as_ref()),
            };
            let seen = targets::targets(&policy, &seeing)
                .await
                .map_err(|e| format!("cannot read the targets: {e}"))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&seen).map_err(|e| e.to_string())?
                );
                return Ok(ExitCode::SUCCESS);
            }
            for t in &seen.targets {
                println!("{}", target_line(t));
            }
            for w in &seen.warnings {
                println!("warning: {w}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `name  function:alias  guarded|paused…  serving …  stable …  alarms …  last …`, a
/// re-enable and a CodeDeploy deployment in progress, tab-separated.
fn target_line(t: &targets::TargetView) -> String {
    let alias = t.alias.as_deref().unwrap_or("(no alias)");
    let state = t.pause.as_deref().unwrap_or(match t.mode.as_str() {
        "observe" => "observed (observe mode: announces, changes nothing)",
        "act" => "guarded",
        _ => "guarded by some triggers, observed by others",
    });
    let serving = t
        .serving
        .as_ref()
        .map_or("(alias not found)".to_string(), ToString::to_string);
    let alarms = if t.alarms.is_empty() {
        "no alarm".to_string()
    } else {
        t.alarms.join(",")
    };
    let mut line = format!(
        "{}\t{}:{alias}\t{state}\t{} serving {serving}\tstable {}\talarms {alarms}\tlast {}",
        t.name,
        t.function,
        t.source,
        t.stable.as_deref().unwrap_or("none"),
        t.last_action.as_deref().unwrap_or("none"),
    );
    if let Some(plan) = &t.reenable {
        line.push_str(&format!("\t{plan}"));
    }
    if let Some(deployment) = &t.deployment {
        line.push_str(&format!("\t{deployment}"));
    }
    line
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match run(Cli::parse().command).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("guard: {message}");
            ExitCode::from(2)
        }
    }
}
