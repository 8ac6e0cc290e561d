//! An organisation's guard on the emulator (`make bench-accounts`, BENCHMARKS.md): the
//! process's peak RSS once clients are built for ACCOUNTS (500) member accounts, each role
//! assumed; and the first action in an account the guard has not acted in yet (AssumeRole
//! included) beside one in an account already seen, over SAMPLES accounts. One JSON object.

use guard_e2e::{forwarded, home, unique, Emulator, ACCOUNT};
use rollback_guard::adapters::{self, AssumeRoleMembers};
use rollback_guard::ports::MemberAccounts;
use rollback_guard::{Guard, Outcome, Policy};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROLE: &str = "arn:aws:iam::{account}:role/rollback-guard-member";

/// A line of /proc/self/status, in kB.
fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let accounts = env_usize("ACCOUNTS", 500);
    let samples = env_usize("SAMPLES", 10);
    let central = Emulator::connect().await;

    // Clients for every account, kept, each role assumed.
    let rss_before = status_kb("VmRSS:");
    let members = AssumeRoleMembers::new(&central.config, &home());
    let mut kept = Vec::with_capacity(accounts);
    for i in 0..accounts {
        let account = format!("{}", 600_000_000_000u64 + i as u64);
        let role = ROLE.replace("{account}", &account);
        kept.push(
            members
                .member(&account, &role)
                .await
                .expect("member clients"),
        );
    }
    let rss_after = status_kb("VmRSS:");
    let peak = status_kb("VmHWM:");

    // First action in an account, then one in the same account: two opted-in functions in
    // each of SAMPLES accounts.
    let prefix = format!("guarded-{}-", unique("org"));
    let listed: Vec<String> = (0..samples)
        .map(|i| format!("\"{}\"", 700_000_000_000u64 + i as u64))
        .chain([format!("\"{ACCOUNT}\"")])
        .collect();
    let policy = Policy::from_toml(&format!(
        "[guard]\naccounts = [{}]\nmember_role = \"{ROLE}\"\n\n[[trigger]]\nalarm = \"{prefix}*\"\ntarget = \"from-alarm\"\naction = \"rollback-alias\"\n",
        listed.join(", ")
    ))
    .expect("policy");
    let guard = Guard::new(policy, adapters::aws_ports(&central.config), home())
        .with_members(Arc::new(AssumeRoleMembers::new(&central.config, &home())));
    let (mut first, mut seen) = (Vec::new(), Vec::new());
    for i in 0..samples {
        let account = format!("{}", 700_000_000_000u64 + i as u64);
        let member = Emulator::connect_as(&account).await;
        let mut events = Vec::new();
        for f in ["one", "two"] {
            let function = format!("{prefix}{f}");
            let alarm = format!("{prefix}{f}-errors");
            member.protected(&function, &alarm).await.expect("function");
            events.push(forwarded(
                "eventbridge-fleet-alarm.json",
                "guarded-payments-error-rate",
                &function,
                &alarm,
                &account,
            ));
        }
        for (event, times) in events.iter().zip([&mut first, &mut seen]) {
            let t = Instant::now();
            let report = guard.handle(event, false).await;
            times.push(t.elapsed());
            assert_eq!(report.outcome, Outcome::Executed, "{}", report.reason);
        }
    }
    println!(
        "{}",
        json!({
            "accounts": accounts,
            "rss_kb_before_clients": rss_before,
            "rss_kb_with_clients": rss_after,
            "kb_per_account": (rss_after.saturating_sub(rss_before)) as f64 / accounts as f64,
            "peak_rss_kb": peak,
            "assume_role_calls": members.assume_role_calls(),
            "samples": samples,
            "first_action_in_new_account_ms_p50": median_ms(first),
            "action_in_seen_account_ms_p50": median_ms(seen),
            "clients_kept": kept.len(),
        })
    );
}
