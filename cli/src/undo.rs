//! `guard undo --since`: after a storm, every automatic action of the window listed, and
//! undone with `--yes`, each only where the guard left it.

use crate::acting::{operating, ports_in};
use rollback_guard::operator::{self, OperatorError};
use rollback_guard::ports::SystemClock;
use rollback_guard::retry::RetryPolicy;
use rollback_guard::Policy;
use std::process::ExitCode;

/// `guard undo --since`: lists every automatic action of the window (in `account` only, if
/// given) and, with `yes`, undoes each in its account, only if it is still where the guard
/// left it. Fails if one could not be undone for another reason than that.
pub(crate) async fn undo_since(
    policy: &Policy,
    since: &str,
    account: Option<&str>,
    yes: bool,
    user: &str,
) -> Result<ExitCode, String> {
    let window = operator::since_duration(since).map_err(|e| e.to_string())?;
    let home = ports_in(Some(policy), None).await?;
    let from = rollback_guard::ports::Clock::now(&SystemClock) - window;
    let listed = operator::undoable_since(
        home.ports.state.as_ref(),
        &RetryPolicy::default(),
        from,
        account,
    )
    .await
    .map_err(|e| format!("cannot list the guard's actions: {e}"))?;
    let window = format!(
        "since {}",
        rollback_guard::transition::rfc3339_millis(&from)
    );
    if listed.is_empty() {
        println!("no automatic action of the guard's {window}: nothing to undo");
        return Ok(ExitCode::SUCCESS);
    }
    for item in &listed {
        println!("{item}");
    }
    if !yes {
        println!(
            "{} automatic action(s) {window}. To undo them (each only if nothing changed it since): guard undo --since {since}{} --yes",
            listed.len(),
            account.map(|a| format!(" --account {a}")).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut accounts: Vec<&str> = listed.iter().map(|i| i.key.account.as_str()).collect();
    accounts.sort_unstable();
    accounts.dedup();
    let (mut undone, mut left, mut failed) = (0, 0, 0);
    for account in accounts {
        let acting = match ports_in(Some(policy), Some(account)).await {
            Ok(a) => a,
            Err(why) => {
                let n = listed.iter().filter(|i| i.key.account == account).count();
                eprintln!("account {account}: {n} action(s) not undone: {why}");
                failed += n;
                continue;
            }
        };
        let op = operating(&acting.ports, &acting.account, user);
        for item in listed.iter().filter(|i| i.key.account == account) {
            match operator::undo_since(&op, item).await {
                Ok(done) => {
                    undone += 1;
                    println!("undone: {done}");
                }
                Err(OperatorError::Refused(why)) => {
                    left += 1;
                    println!("left as it is: {}: {why}", item.key);
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("not undone: {}: {e}", item.key);
                }
            }
        }
    }
    println!("{undone} undone, {left} left as they are (changed since), {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
