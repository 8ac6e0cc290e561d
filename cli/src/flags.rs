//! Flag values checked as they are read, before any AWS call: each refusal names the flag's
//! expected form (clap prefixes the flag and the value given).

use rollback_guard::operator;

/// A 12-digit account id.
pub(crate) fn account(s: &str) -> Result<String, String> {
    if rollback_guard::transition::is_account_id(s) {
        Ok(s.to_string())
    } else {
        Err("expected an account id: 12 digits, such as 222222222222".into())
    }
}

/// A region's name (`us-east-1`).
pub(crate) fn region(s: &str) -> Result<String, String> {
    let parts: Vec<&str> = s.split('-').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(s.to_string())
    } else {
        Err("expected a region's name, such as us-east-1".into())
    }
}

/// A function's name (not an ARN: the account is --account's).
pub(crate) fn function(s: &str) -> Result<String, String> {
    if rollback_guard::policy::is_function_name(s) {
        Ok(s.to_string())
    } else {
        Err("expected a function's name: letters, digits, - and _, up to 64".into())
    }
}

/// An alias's name, not a version number.
pub(crate) fn alias(s: &str) -> Result<String, String> {
    if rollback_guard::watched::is_alias_name(s) {
        Ok(s.to_string())
    } else {
        Err("expected an alias's name, such as live (not a version number, not $LATEST)".into())
    }
}

/// A published version's number.
pub(crate) fn version(s: &str) -> Result<String, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s != "0" {
        Ok(s.to_string())
    } else {
        Err("expected a published version's number, such as 2 ($LATEST is not one)".into())
    }
}

/// Re-enable steps: percents rising to 100.
pub(crate) fn steps(s: &str) -> Result<String, String> {
    rollback_guard::reenable::parse_steps(s).map(|_| s.to_string())
}

/// The wait between re-enable steps.
pub(crate) fn every(s: &str) -> Result<String, String> {
    rollback_guard::reenable::parse_every(s).map(|_| s.to_string())
}

/// A pause's length.
pub(crate) fn pause_for(s: &str) -> Result<String, String> {
    operator::pause_duration(s)
        .map(|_| s.to_string())
        .map_err(|_| "expected a duration such as 30m, 2h or 1d, at most 7d".into())
}

/// How far back `guard undo --since` looks.
pub(crate) fn since(s: &str) -> Result<String, String> {
    operator::since_duration(s)
        .map(|_| s.to_string())
        .map_err(|_| "expected a duration such as 30m, 2h or 1d, at most 30d".into())
}

/// A positive number of milliseconds.
pub(crate) fn milliseconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(ms) if ms.is_finite() && ms > 0.0 => Ok(ms),
        _ => Err("expected a positive number of milliseconds, such as 1500".into()),
    }
}
