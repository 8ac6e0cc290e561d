//! Changing `$LATEST`'s environment (`flag::update_environment`, behind disable-ai and its
//! undo): what it does when the variables cannot be read, when someone else changes the
//! function between its read and its write, and when Lambda's update does not settle.

use rollback_guard::ai::{FunctionConfig, UpdateStatus};
use rollback_guard::fakes::FakeLambda;
use rollback_guard::flag::update_environment;
use rollback_guard::ports::PortError;
use rollback_guard::retry::RetryPolicy;
use rollback_guard::rollback::AliasState;
use std::collections::BTreeMap;
use std::time::Duration;

const FUNCTION: &str = "orders-ai";

fn lambda() -> FakeLambda {
    FakeLambda::default().with_function(FUNCTION, 3, "live", AliasState::on("3"))
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        jitter: false,
    }
}

fn ai_off(vars: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut vars = vars.clone();
    vars.insert("AI_ENABLED".into(), "false".into());
    vars
}

fn latest(lambda: &FakeLambda) -> FunctionConfig {
    lambda.config(FUNCTION, None).expect("$LATEST")
}

#[tokio::test]
async fn the_flag_changes_and_every_other_variable_stays() {
    let lambda = lambda();
    let before = latest(&lambda).variables;
    let config = update_environment(&lambda, &fast(), FUNCTION, ai_off)
        .await
        .expect("updated");
    assert_eq!(config.variables, ai_off(&before));
    assert_eq!(latest(&lambda).variables, ai_off(&before));
    assert_eq!(lambda.count_calls("UpdateFunctionConfiguration"), 1);
    // Already as wanted: nothing is written again.
    update_environment(&lambda, &fast(), FUNCTION, ai_off)
        .await
        .expect("no change");
    assert_eq!(lambda.count_calls("UpdateFunctionConfiguration"), 1);
}

/// Lambda shows no variables when it cannot decrypt them (a KMS error): writing the merge
/// would replace every variable with the flag alone.
#[tokio::test]
async fn variables_that_cannot_be_read_are_never_overwritten() {
    let lambda = lambda();
    lambda.edit_latest(FUNCTION, |c| {
        c.environment_error = Some("KMSAccessDeniedException: access denied".into());
        c.variables.clear();
    });
    let error = update_environment(&lambda, &fast(), FUNCTION, ai_off)
        .await
        .expect_err("refused");
    assert!(
        error.to_string().contains("cannot be read")
            && error.to_string().contains("KMSAccessDeniedException"),
        "{error}"
    );
    assert_eq!(lambda.count_calls("UpdateFunctionConfiguration"), 0);
    assert!(latest(&lambda).variables.is_empty());
}

/// Someone deploys between the guard's read and its write: the write is refused on the
/// revision, and the change is merged again onto what is there now, keeping theirs.
#[tokio::test]
async fn a_change_made_between_read_and_write_is_kept() {
    let lambda = lambda();
    let before = latest(&lambda).variables;
    lambda.edit_latest_before_next_update(FUNCTION, |c| {
        c.variables.insert("FEATURE_X".into(), "on".into());
        c.variables.insert("LOG_LEVEL".into(), "debug".into());
    });
    update_environment(&lambda, &fast(), FUNCTION, ai_off)
        .await
        .expect("updated on the second try");
    let mut theirs = before.clone();
    theirs.insert("FEATURE_X".into(), "on".into());
    theirs.insert("LOG_LEVEL".into(), "debug".into());
    assert_eq!(latest(&lambda).variables, ai_off(&theirs));
    assert_eq!(
        lambda.count_calls("UpdateFunctionConfiguration"),
        1,
        "the refused write changed nothing"
    );
}

#[tokio::test]
async fn a_revision_that_keeps_changing_is_an_error_after_the_attempts() {
    let lambda = lambda();
    let before = latest(&lambda).variables;
    lambda.fail(
        "UpdateFunctionConfiguration",
        (0..3).map(|_| PortError::RevisionChanged(FUNCTION.into())),
    );
    let error = update_environment(&lambda, &fast(), FUNCTION, ai_off)
        .await
        .expect_err("gave up");
    assert!(matches!(error, PortError::RevisionChanged(_)), "{error}");
    assert_eq!(latest(&lambda).variables, before);
}

#[tokio::test]
async fn an_update_lambda_reports_failed_is_an_error_not_a_success() {
    let lambda = lambda();
    lambda.edit_latest(FUNCTION, |c| {
        c.last_update_status = UpdateStatus::Failed("EniLimitExceeded".into());
    });
    let error = update_environment(&lambda, &fast(), FUNCTION, ai_off)
        .await
        .expect_err("failed");
    assert!(error.to_string().contains("EniLimitExceeded"), "{error}");
    assert_eq!(lambda.count_calls("UpdateFunctionConfiguration"), 0);
}

#[tokio::test]
async fn an_update_still_in_progress_after_the_budget_is_an_error() {
    let lambda = lambda();
    lambda.edit_latest(FUNCTION, |c| {
        c.last_update_status = UpdateStatus::InProgress;
    });
    let error = update_environment(&lambda, &fast(), FUNCTION, ai_off)
        .await
        .expect_err("still in progress");
    assert!(
        matches!(&error, PortError::Transient(m) if m.contains("still in progress")),
        "{error}"
    );
    assert_eq!(lambda.count_calls("UpdateFunctionConfiguration"), 0);
}
