//! `guard backtest`: an archive's window replayed to the guard's own rules, which only plan.

use rollback_guard::adapters::{self, EventBridgeClient};

pub(crate) async fn backtest(
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

pub(crate) fn chrono_now_compact() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().to_string())
        .unwrap_or_default()
}
