//! `guard protect` and `guard unprotect`, in the credentials' account or a member's through
//! the policy's operator role.

use crate::acting::{ports_in, Acting};
use rollback_guard::operator::{self, OperatorError, Protect, Protecting};
use rollback_guard::ports::SystemClock;
use rollback_guard::retry::RetryPolicy;
use rollback_guard::{adapters, Policy};
use std::process::ExitCode;

fn protecting<'a>(
    acting: &'a Acting,
    alarms: &'a dyn rollback_guard::ports::AlarmSetup,
) -> Protecting<'a> {
    Protecting {
        aliases: acting.ports.aliases.as_ref(),
        alarms,
        clock: &SystemClock,
        retry: RetryPolicy::default(),
        account_flag: acting.account_flag(),
    }
}

fn failed(command: &str, e: OperatorError) -> String {
    match e {
        OperatorError::Refused(why) => format!("{command} refused: {why}"),
        e => format!("{command} failed: {e}"),
    }
}

/// `guard protect` (`undo` false) or `guard unprotect` (`undo` true): what it did, printed.
pub(crate) async fn run(
    policy: &Policy,
    account: Option<&str>,
    request: &Protect<'_>,
    undo: bool,
) -> Result<ExitCode, String> {
    let acting = ports_in(Some(policy), account).await?;
    let alarms = adapters::alarm_setup(&acting.config);
    let protecting = protecting(&acting, alarms.as_ref());
    let done = if undo {
        operator::unprotect(policy, &protecting, request)
            .await
            .map(|d| d.to_string())
            .map_err(|e| failed("unprotect", e))?
    } else {
        operator::protect(policy, &protecting, request)
            .await
            .map(|d| d.to_string())
            .map_err(|e| failed("protect", e))?
    };
    println!("{done}");
    Ok(ExitCode::SUCCESS)
}
