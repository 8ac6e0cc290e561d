//! `guard`: the rollback guard's operator CLI.

mod acting;
mod backtest;
mod commands;
mod flags;
mod protect;
mod request;
mod undo;

use acting::{
    acting_guard, load_policy, needs_state_table, operating, ports_in, target_ports, who,
};
use request::{request, Asked};

use clap::Parser;
use commands::{Cli, Command};
use rollback_guard::evaluate::evaluate_each;
use rollback_guard::operator::{self, OperatorError};
use rollback_guard::ports::SystemClock;
use rollback_guard::retry::RetryPolicy;
use rollback_guard::targets;
use rollback_guard::{Home, Outcome};
use serde_json::{json, Value};
use std::process::ExitCode;

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
