//! The demo's two halves around `guard replay` (see scripts/demo.sh):
//!   demo provision  builds the sample account on the emulator
//!   demo show       prints the aliases, the notifications and the audit events
//! The sample matches events/policy.toml: `orders-ai` fully shifted to a bad version 3 (with
//! version 2 recorded as stable), `checkout-ai` mid-canary (version 2 + 10 % on 3), and
//! `support-ai` on version 3 whose AI falls back to rules too often (ladder: disable-ai first).

use guard_e2e::{provision_sample, Emulator, SAMPLE_AUDIT_QUEUE as AUDIT, SAMPLE_INBOX as INBOX};
use std::process::ExitCode;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const FUNCTIONS: [&str; 3] = ["orders-ai", "checkout-ai", "support-ai"];

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

async fn show(emu: &Emulator) -> Res<()> {
    print_aliases(emu, "after").await?;
    let tags = emu.tags("orders-ai").await?;
    println!("\nthe guard's record on orders-ai (function tags):");
    for (k, v) in tags
        .iter()
        .filter(|(k, _)| k.starts_with("rollback-guard:"))
    {
        println!("  {k} = {v}");
    }
    let inbox = emu.sqs.get_queue_url().queue_name(INBOX).send().await?;
    let notes = emu.drain(inbox.queue_url().unwrap_or_default()).await?;
    println!(
        "\n{} notification(s) on SNS topic rollback-guard:",
        notes.len()
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

#[tokio::main]
async fn main() -> ExitCode {
    let emu = Emulator::connect().await;
    let result = match std::env::args().nth(1).as_deref() {
        Some("provision") => provision(&emu).await,
        Some("show") => show(&emu).await,
        _ => Err("usage: demo provision|show".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}
