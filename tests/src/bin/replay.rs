//! `make replay`: the whole event catalog through the guard on the sample account, each
//! outcome beside its recorded expectation; fails on any mismatch.

use guard_e2e::{provision_sample, replay_catalog, Emulator};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let emu = Emulator::connect().await;
    let rows = match async {
        provision_sample(&emu).await?;
        replay_catalog(&emu).await
    }
    .await
    {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("replay: {e}");
            return ExitCode::FAILURE;
        }
    };
    let width = rows.iter().map(|r| r.file.len()).max().unwrap_or(4);
    println!("{:width$}  {:12}  {:12}  ok", "event", "expected", "got");
    for r in &rows {
        let ok = if r.expected == r.got { "yes" } else { "NO" };
        println!("{:width$}  {:12}  {:12}  {ok}", r.file, r.expected, r.got);
    }
    let bad: Vec<_> = rows.iter().filter(|r| r.expected != r.got).collect();
    println!("{} passed, {} failed", rows.len() - bad.len(), bad.len());
    for r in &bad {
        println!("  {}: {}", r.file, r.reason);
    }
    if bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
