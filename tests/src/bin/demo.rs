//! The demo's three parts around `guard replay` (see scripts/demo.sh):
//!   demo provision      builds the sample account on the emulator
//!   demo files          lists the events the demo replays, in order
//!   demo show           prints the aliases, the guard's records, the notifications and the
//!                       audit events
//!   demo check FILE     checks what the demo says it shows: each replayed event's outcome
//!                       (FILE holds `guard replay`'s lines), the aliases after and what
//!                       `guard protect` put in place; exits non-zero on any difference, so a
//!                       broken demo cannot pass as a demo
//! The sample matches events/policy.toml: `orders-ai` fully shifted to a bad version 3 (with
//! version 2 recorded as stable), `checkout-ai` mid-canary (version 2 + 10 % on 3), and
//! `support-ai` on version 3 whose AI falls back to rules too often (ladder: disable-ai first).

use guard_e2e::{
    provision_sample, Emulator, ACCOUNT, SAMPLE_AUDIT_QUEUE as AUDIT, SAMPLE_INBOX as INBOX,
    SAMPLE_STATE_TABLE,
};
use rollback_guard::ports::StateStore;
use rollback_guard::state::StateKey;
use std::process::ExitCode;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const FUNCTIONS: [&str; 5] = [
    "orders-ai",
    "checkout-ai",
    "support-ai",
    "search-ai",
    "reports-ai",
];

/// What the demo replays, in order, and the outcome it shows for each: the alarm over
/// EventBridge rolls `orders-ai` back, the same alarm over SNS is a duplicate, the canary is
/// aborted, and `support-ai`'s AI is switched off. Then judgement: CloudTrail's record says
/// `search-ai`'s release went live weeks ago, so its alarm pages people and rolls nothing
/// back; `reports-ai`'s trigger observes: what the guard would do is announced, not done.
const REPLAYED: [(&str, &str); 7] = [
    ("events/eventbridge-alarm.json", "executed"),
    ("events/sns-alarm.json", "already-done"),
    ("events/eventbridge-canary-alarm.json", "executed"),
    ("events/eventbridge-fallback-rate.json", "executed"),
    ("events/cloudtrail-update-alias.json", "no-action"),
    ("events/eventbridge-old-release.json", "skipped"),
    ("events/eventbridge-observe.json", "planned"),
];

async fn provision(emu: &Emulator) -> Res<()> {
    provision_sample(emu).await?;
    println!("provisioned on the emulator:");
    print_aliases(emu, "before").await
}

async fn print_aliases(emu: &Emulator, when: &str) -> Res<()> {
    for f in FUNCTIONS {
        let version = emu.alias(f, "live").await?;
        println!("  {f}:live {when}: version {version}");
    }
    let served = emu.alias("support-ai", "live").await?;
    let env = emu.environment("support-ai", Some(&served)).await?;
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "  support-ai version {served} environment: {}",
        env.join(" ")
    );
    Ok(())
}

/// The guard's record on a function, as what it means.
async fn print_record(emu: &Emulator, function: &str) -> Res<()> {
    let table = emu.state_table(SAMPLE_STATE_TABLE).await?;
    let key = StateKey::new(ACCOUNT, function, Some("live"));
    let (state, _) = table.read(&key).await?;
    println!(
        "\nwhat the guard remembers of {function}:live (its state table, {SAMPLE_STATE_TABLE}; nothing in the function's tags):"
    );
    if let Some(stable) = &state.stable {
        println!("  stable version of alias live: {stable} (guard mark-stable)");
    }
    let Some(record) = &state.last else {
        println!("  no action recorded");
        return Ok(());
    };
    println!(
        "  last action: {} at {}, caused by {}",
        record.action, record.at, record.alarm
    );
    match &record.alias {
        Some(c) => println!("  alias {}: {} -> {}", c.alias, c.before, c.after),
        None => println!("  no alias moved"),
    }
    match &record.flag {
        Some(f) => println!(
            "  flag {} turned off (before: {})",
            f.name,
            f.before.as_deref().unwrap_or("not set")
        ),
        None => println!("  no flag changed"),
    }
    Ok(())
}

async fn show(emu: &Emulator) -> Res<()> {
    print_aliases(emu, "after").await?;
    print_record(emu, "orders-ai").await?;
    print_record(emu, "support-ai").await?;
    let inbox = emu.sqs.get_queue_url().queue_name(INBOX).send().await?;
    let notes = emu.drain(inbox.queue_url().unwrap_or_default()).await?;
    println!(
        "\n{} notification(s) on SNS topic rollback-guard:",
        notes.len()
    );
    println!(
        "  (their insights come from llm-katan, a local stand-in for Bedrock: its answers are\n   placeholders such as `test_explanation`, not an analysis of the incident)"
    );
    for n in &notes {
        println!("\n  Subject: {}", n["Subject"].as_str().unwrap_or(""));
        let body = n["Message"].as_str().unwrap_or("");
        let text = body.split("--- JSON ---").next().unwrap_or(body);
        for line in text.trim_end().lines() {
            println!("  | {line}");
        }
        println!("  | --- JSON --- (omitted here)");
    }
    let audit = emu.sqs.get_queue_url().queue_name(AUDIT).send().await?;
    let events = emu.drain(audit.queue_url().unwrap_or_default()).await?;
    println!("\n{} audit event(s) on EventBridge:", events.len());
    for e in &events {
        println!(
            "  {} — {} ({})",
            e["detail-type"].as_str().unwrap_or(""),
            e["detail"]["target"].as_str().unwrap_or(""),
            e["detail"]["reason"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// Every way the demo's result differs from what it says it shows (none: it worked).
async fn check(emu: &Emulator, replay_lines: &str) -> Res<Vec<String>> {
    let mut wrong = Vec::new();
    let lines: Vec<serde_json::Value> = replay_lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    if lines.len() != REPLAYED.len() {
        wrong.push(format!(
            "guard replay answered for {} event(s), the demo replays {}",
            lines.len(),
            REPLAYED.len()
        ));
    }
    for ((file, expected), line) in REPLAYED.iter().zip(&lines) {
        let got = line["outcome"].as_str().unwrap_or("(none)");
        if line["file"] != *file || got != *expected {
            wrong.push(format!(
                "{file}: expected {expected}, got {got} for {} ({})",
                line["file"],
                line["reason"].as_str().unwrap_or("")
            ));
        }
    }
    for (function, expected) in [
        ("orders-ai", "2"),
        ("checkout-ai", "2"),
        ("search-ai", "3"),
        ("reports-ai", "3"),
    ] {
        let now = emu.alias(function, "live").await?;
        if now != expected {
            wrong.push(format!(
                "{function}:live is on {now}, expected version {expected} with no weights"
            ));
        }
    }
    // shipping: protected by `guard protect` (the opt-in tag and its two alarms).
    let tags = emu.tags("shipping").await?;
    if tags.get("rollback-guard:protect").map(String::as_str) != Some("live") {
        wrong.push(format!(
            "shipping's tags are {tags:?}: guard protect did not opt it in"
        ));
    }
    let made = emu
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix("guarded-shipping-live-")
        .send()
        .await?;
    if made.metric_alarms().len() != 2 {
        wrong.push(format!(
            "guard protect made {} alarm(s) for shipping:live, expected 2",
            made.metric_alarms().len()
        ));
    }
    // support-ai: a new version, the same variables as version 3 but the flag.
    let served = emu.alias("support-ai", "live").await?;
    let mut before = emu.environment("support-ai", Some("3")).await?;
    let after = emu.environment("support-ai", Some(&served)).await?;
    before.insert("AI_ENABLED".into(), "false".into());
    if served == "3" || served.contains('+') {
        wrong.push(format!(
            "support-ai:live is on {served}, expected a new version with the AI off"
        ));
    }
    if after != before {
        wrong.push(format!(
            "support-ai version {served}'s environment is {after:?}, expected {before:?}"
        ));
    }
    Ok(wrong)
}

#[tokio::main]
async fn main() -> ExitCode {
    let emu = Emulator::connect().await;
    let mut args = std::env::args().skip(1);
    let result = match args.next().as_deref() {
        Some("provision") => provision(&emu).await,
        Some("show") => show(&emu).await,
        Some("files") => {
            for (file, _) in REPLAYED {
                println!("{file}");
            }
            Ok(())
        }
        Some("check") => match args.next() {
            Some(file) => match std::fs::read_to_string(&file) {
                Ok(text) => match check(&emu, &text).await {
                    Ok(wrong) if wrong.is_empty() => {
                        println!("demo checked: every outcome and alias is as shown above");
                        Ok(())
                    }
                    Ok(wrong) => Err(format!(
                        "the demo did not show what it says:\n  {}",
                        wrong.join("\n  ")
                    )
                    .into()),
                    Err(e) => Err(e),
                },
                Err(e) => Err(format!("cannot read {file}: {e}").into()),
            },
            None => Err("usage: demo check REPLAY_LINES_FILE".into()),
        },
        _ => Err("usage: demo provision|files|show|check FILE".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}
