use rollback_guard_telemetry::{run, Config};

// One invocation at a time and a listener: one thread, the least memory in every environment.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), rollback_guard_telemetry::api::Error> {
    let config = Config::from_env(|k| std::env::var(k).ok())?;
    run(config).await
}
