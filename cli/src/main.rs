//! `guard`: the rollback guard's operator CLI.

use clap::{Parser, Subcommand};
use rollback_guard::adapters::{EventBridgeAuditBus, EventBridgeClient};
use rollback_guard::decision::evaluate_each;
use rollback_guard::intake::ROLLBACK_REQUESTED;
use rollback_guard::notify::AuditEvent;
use rollback_guard::operator::{self, OperatorError};
use rollback_guard::policy::Action;
use rollback_guard::ports::SystemClock;
use rollback_guard::ports::{AuditBus, MemberAccounts};
use rollback_guard::retry::RetryPolicy;
use rollback_guard::targets;
use rollback_guard::{adapters, Guard, Home, Outcome, Policy};
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
    Evaluate {
        /// Policy file (default: $GUARD_POLICY_FILE or $GUARD_POLICY).
        #[arg(long)]
        policy: Option<String>,
        /// Decide as a guard running in this account would (with --region): events of
        /// another account or region are rejected. Without both, each event is decided as
        /// by a guard of its own account and region.
        #[arg(long, requires = "region")]
        account: Option<String>,
        /// The guard's region (with --account).
        #[arg(long, requires = "account")]
        region: Option<String>,
        /// Plan only, as for replayed events.
        #[arg(long)]
        dry_run: bool,
        #[arg(required = true)]
        events: Vec<String>,
    },
    /// Runs each event file through the real pipeline, against AWS or $AWS_ENDPOINT_URL.
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
    Validate { policy: String },
    /// Records the stable version of an alias (default: the version it serves now).
    MarkStable {
        #[arg(long)]
        function: String,
        #[arg(long)]
        alias: String,
        #[arg(long)]
        version: Option<String>,
        /// The policy whose guard.member_role reaches --account.
        #[arg(long)]
        policy: Option<String>,
        /// Act in this account of the organisation, through the policy's guard.member_role
        /// (default: the credentials' own account).
        #[arg(long)]
        account: Option<String>,
    },
    /// Asks the guard for an action: puts a `Rollback Requested` event on the request bus,
    /// with who asks and the IAM identity that sends it.
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
        #[arg(long)]
        action: String,
        #[arg(long, default_value = "")]
        reason: String,
        /// The event's source; it must be in the policy's guard.request_sources.
        #[arg(long, default_value = "rollback-guard.cli")]
        source: String,
        /// Who asks (default: $USER).
        #[arg(long)]
        requested_by: Option<String>,
    },
    /// Replays an EventBridge archive's window to the guard's own rules on its bus: the guard
    /// plans each event (`Rollback Planned`: a replay named backtest-… is never acted on,
    /// whatever guard.on_replay says) and changes nothing; no other rule of the bus sees it.
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
    /// Restores what the guard's last action on a target changed.
    Undo {
        #[arg(long)]
        policy: Option<String>,
        #[arg(long)]
        target: String,
        /// The target's account (default: the account the policy names for it, else the
        /// credentials' own), acted in through the policy's guard.member_role.
        #[arg(long)]
        account: Option<String>,
    },
    /// Holds back the guard's automatic actions on a target (alarms, insights, escalations;
    /// requests still act) for a while: a maintenance window, an incident people handle.
    Pause {
        #[arg(long)]
        policy: Option<String>,
        #[arg(long)]
        target: String,
        /// How long: 30m, 2h, 1d; at most 7d. The pause ends by itself.
        #[arg(long = "for")]
        duration: String,
        /// Why, for the people the guard no longer protects meanwhile.
        #[arg(long)]
        reason: String,
        /// Who pauses (default: $USER).
        #[arg(long)]
        by: Option<String>,
        /// The target's account (default: the account the policy names for it, else the
        /// credentials' own), acted in through the policy's guard.member_role.
        #[arg(long)]
        account: Option<String>,
    },
    /// Brings the AI (or the rolled-back release) back gradually: the alias's traffic shifted to
    /// the version in steps, the first at once, each next one by the guard's schedule only
    /// while every alarm the target's triggers watch is OK; an ALARM aborts it.
    Reenable {
        #[arg(long)]
        policy: Option<String>,
        #[arg(long)]
        target: String,
        /// Percent of the traffic at each step, rising to 100.
        #[arg(long, default_value = "10,50,100")]
        steps: String,
        /// The wait between steps (1m to 1d).
        #[arg(long, default_value = "5m")]
        every: String,
        /// The version to bring back (default: the one the guard's last action moved away
        /// from); a published version, never $LATEST.
        #[arg(long)]
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
    Resume {
        #[arg(long)]
        policy: Option<String>,
        #[arg(long)]
        target: String,
        /// The target's account (default: the account the policy names for it, else the
        /// credentials' own), acted in through the policy's guard.member_role.
        #[arg(long)]
        account: Option<String>,
    },
    /// What the guard protects: the policy's targets and, with fleet triggers, every function
    /// opted in (tag rollback-guard:protect), each with its alias, the version it serves, the
    /// stable version, the alarms that watch it, the last action and a pause; then warnings.
    Targets {
        #[arg(long)]
        policy: Option<String>,
        /// One JSON document instead of lines.
        #[arg(long)]
        json: bool,
        /// Act in this account of the organisation, through the policy's guard.member_role
        /// (default: the credentials' own account).
        #[arg(long)]
        account: Option<String>,
    },
}

/// The ports a command acts with, and where.
struct Acting {
    ports: rollback_guard::Ports,
    /// The account they act in.
    account: String,
    /// The credentials' own account.
    home: String,
}

/// The ports acting in `account` (default: the credentials' own account): another account of
/// the organisation through the policy's `guard.member_role`, as the guard itself would.
async fn ports_in(policy: Option<&Policy>, account: Option<&str>) -> Result<Acting, String> {
    let config = adapters::sdk_config().await;
    let ports = adapters::aws_ports(&config);
    let home = adapters::home(&config).await?;
    let account = account.unwrap_or(&home.account).to_string();
    if account == home.account {
        return Ok(Acting {
            ports,
            account,
            home: home.account,
        });
    }
    let policy =
        policy.ok_or("--account needs --policy: its guard.member_role reaches the account")?;
    let role = policy.guard.member_role_in(&account).ok_or_else(|| {
        format!(
            "the policy may not act in account {account} (guard.accounts and guard.member_role)"
        )
    })?;
    let member = adapters::AssumeRoleMembers::new(&config, &home)
        .member(&account, &role)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Acting {
        ports: ports.in_account(member),
        account,
        home: home.account,
    })
}

/// The ports acting on `target`: in `--account`, else in the account the policy names for the
/// target, else in the credentials' own.
async fn target_ports(
    policy: &Policy,
    target: &str,
    account: Option<String>,
) -> Result<Acting, String> {
    let named = policy.target(target).and_then(|t| t.account.clone());
    ports_in(Some(policy), account.or(named).as_deref()).await
}

/// The guard the commands that act through it run (`replay`, `reenable`), as the function
/// builds its own: where its credentials and region are (learned from STS, never from an
/// event), with insights, the whole of the policy's share of the quotas (one process), the
/// guard's state table `GUARD_STATE_TABLE` names (what the deployed guard remembers, and
/// taking turns with its instances), and an organisation's member accounts.
async fn acting_guard(policy: Policy) -> Result<Guard, String> {
    let config = adapters::sdk_config().await;
    let insights = adapters::guard_insights(&config).map_err(|e| e.to_string())?;
    let home = adapters::home(&config).await?;
    let share = rollback_guard::quota::Share::per_instance(&policy.guard, 1);
    let guard = Guard::new(policy, adapters::aws_ports(&config), home)
        .with_insights(insights)
        .with_quota_share(share);
    Ok(adapters::with_member_accounts(guard, &config))
}

/// A command that reads or writes what the guard remembers needs its state table: without
/// it the command would act on a memory of its own, which the deployed guard never sees.
fn needs_state_table(command: &str) -> Result<(), String> {
    match adapters::state_table() {
        Some(_) => Ok(()),
        None => Err(format!(
            "{command} reads and writes what the guard remembers: set {} to the guard's state table (the stack's StateTable output)",
            adapters::ENV_STATE_TABLE
        )),
    }
}

/// An operator's command acting with `ports` in `account`.
fn operating<'a>(ports: &'a rollback_guard::Ports, account: &'a str) -> operator::Operating<'a> {
    operator::Operating {
        aliases: ports.aliases.as_ref(),
        functions: ports.functions.as_ref(),
        state: ports.state.as_ref(),
        clock: &SystemClock,
        retry: RetryPolicy::default(),
        account,
    }
}

/// Who runs the command: `--by`/`--requested-by`, else $USER.
fn who(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}

fn load_policy(path: Option<&str>) -> Result<Policy, String> {
    match path {
        Some(p) => Policy::from_file(p),
        None => Policy::from_env(),
    }
    .map_err(|e| e.to_string())
}

fn line(file: &str, report: Value) -> String {
    let mut out = json!({ "file": file });
    if let (Some(o), Value::Object(r)) = (out.as_object_mut(), report) {
        o.extend(r);
    }
    out.to_string()
}

async fn run(command: Command) -> Result<ExitCode, String> {
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
            println!(
                "policy OK: {} target(s), {} trigger(s) ({fleet} fleet: target read from the alarm), cooldown {} min",
                p.targets.len(),
                p.triggers.len(),
                p.guard.cooldown_minutes
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
            let op = operating(&acting.ports, &acting.account);
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
            backtest(&archive, &from, &to, &rules, name).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Undo {
            policy,
            target,
            account,
        } => {
            needs_state_table("guard undo")?;
            let policy = load_policy(policy.as_deref())?;
            let acting = target_ports(&policy, &target, account).await?;
            let result =
                operator::undo(&policy, &operating(&acting.ports, &acting.account), &target).await;
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
            let op = operating(&acting.ports, &acting.account);
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
            let op = operating(&acting.ports, &acting.account);
            let was = operator::resume(&policy, &op, &target)
                .await
                .map_err(|e| format!("resume refused: {e}"))?;
            match was {
                Some(p) => println!("{target}: resumed (was {p})"),
                None => println!("{target}: was not paused; the guard acts on it"),
            }
            Ok(ExitCode::SUCCESS)
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
            let seeing = targets::Seeing {
                ports: &ports.own_account(),
                state: ports.state.as_ref(),
                account: &acting.account,
                clock: &SystemClock,
                retry: &RetryPolicy::default(),
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
    let state = t.pause.as_deref().unwrap_or("guarded");
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

async fn backtest(
    archive: &str,
    from: &str,
    to: &str,
    rules: &[String],
    name: Option<String>,
) -> Result<(), String> {
    let time = |flag: &str, v: &str| {
        rollback_guard::transition::parse_timestamp(v)
            .ok_or_else(|| format!("--{flag}: `{v}` is not an RFC 3339 time"))
    };
    let (from, to) = (time("from", from)?, time("to", to)?);
    if from >= to {
        return Err("--from must be before --to".into());
    }
    let prefix = rollback_guard::decision::BACKTEST_PREFIX;
    let name = name.unwrap_or_else(|| format!("{prefix}{archive}-{}", chrono_now_compact()));
    if !name.starts_with(prefix) {
        return Err(format!(
            "--name `{name}`: a backtest's replay is named {prefix}…, so that the guard only plans its events"
        ));
    }
    let config = adapters::sdk_config().await;
    let replays = adapters::EventBridgeReplays::new(EventBridgeClient::new(&config));
    let state = replays
        .start(archive, from, to, &name, rules)
        .await
        .map_err(|e| format!("replay not started: {e}"))?;
    println!("replay {name} of archive {archive} ({from} to {to}): {state}");
    // A replay runs on its own; follow it for a while so the operator sees how it ended.
    for _ in 0..60 {
        let (state, reason) = replays.state(&name).await.map_err(|e| e.to_string())?;
        match state.as_str() {
            "COMPLETED" => {
                println!("replay {name}: COMPLETED; the guard reported each event as Rollback Planned on its bus");
                return Ok(());
            }
            "FAILED" | "CANCELLED" => {
                return Err(format!(
                    "replay {name}: {state}: {}",
                    reason.unwrap_or_default()
                ))
            }
            _ => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
        }
    }
    println!("replay {name} still running; follow it with `aws events describe-replay --replay-name {name}`");
    Ok(())
}

fn chrono_now_compact() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().to_string())
        .unwrap_or_default()
}

/// What `guard request` asks for, and where it sends it.
struct Asked<'a> {
    target: &'a str,
    action: &'a str,
    reason: &'a str,
    source: &'a str,
    bus: &'a str,
}

/// Sends a request the guard will accept, or says why it would not.
async fn request(
    policy: &Policy,
    asked: &Asked<'_>,
    requested_by: Option<String>,
) -> Result<(), String> {
    let Asked {
        target,
        action,
        reason,
        source,
        bus: bus_name,
    } = *asked;
    let config = adapters::sdk_config().await;
    let aliases = adapters::aws_ports(&config).aliases;
    // The policy's target, or a function opted in to a fleet trigger (read from its tag).
    let t = operator::known_target(policy, aliases.as_ref(), &RetryPolicy::default(), target)
        .await
        .map_err(|e| format!("request refused: {e}"))?;
    let a = Action::parse(action).ok_or_else(|| {
        format!("unknown action `{action}`; expected rollback-alias or disable-ai")
    })?;
    if a == Action::RollbackAlias && t.alias.is_none() {
        return Err(format!("target `{target}` has no alias to roll back"));
    }
    if !policy.guard.request_sources.iter().any(|s| s == source) {
        return Err(format!("source `{source}` is not in the policy's guard.request_sources: the guard would reject the request"));
    }
    let requested_by = who(requested_by);
    // EventBridge names no principal on a custom event: the identity that sends it goes in.
    let sender = adapters::caller_arn(&config).await?;
    let event = AuditEvent {
        source: source.into(),
        detail_type: ROLLBACK_REQUESTED.into(),
        resources: Vec::new(),
        detail: json!({ "target": target, "action": action, "reason": reason, "requested_by": requested_by, "sender": sender }),
    };
    let bus = EventBridgeAuditBus::new(EventBridgeClient::new(&config));
    RetryPolicy::default()
        .run("PutEvents", || bus.put(bus_name, &event))
        .await
        .map_err(|e| format!("request not sent: {e}"))?;
    println!("requested {action} on {target} (bus {bus_name}, source {source}, by {requested_by} as {sender})");
    Ok(())
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
