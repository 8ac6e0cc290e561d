use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use rollback_guard::adapters;
use rollback_guard::quota::Share;

// A Lambda instance takes one invocation at a time (an SQS batch's events are handled
// together, their calls mostly waiting on AWS): one thread is enough (and starts faster, in
// less memory, than a worker pool).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // A bad policy stops the function at start, with the field named, before any event; the
    // `PolicyRejected` metric (EMF) is what the template's alarm watches.
    let config = adapters::sdk_config().await;
    let policy = match adapters::load_policy(&config).await {
        Ok(policy) => policy,
        Err(why) => {
            println!("{}", guard_function::policy_rejected_metric());
            tracing::error!(error = %why, "the guard does not start: its policy is refused");
            return Err(why.into());
        }
    };
    let insights = adapters::guard_insights(&config)?;
    let ports = adapters::aws_ports(&config);
    if adapters::state_table().is_none() {
        tracing::warn!(
            variable = adapters::ENV_STATE_TABLE,
            "no state table: what the guard remembers lives in this instance only (local runs)"
        );
    }
    let share = Share::per_instance(&policy.guard, guard_function::instances()?);
    let base = config.clone();
    let queue = adapters::SqsAlarmQueue::new(aws_sdk_sqs::Client::new(&config));
    let function = guard_function::GuardFunction::new(
        move |home| guard_function::guard(&policy, &ports, &insights, &base, share, home),
        Some(config),
    )
    .with_queue(std::sync::Arc::new(queue));
    run(service_fn(|event: LambdaEvent<guard_function::Payload>| {
        guard_function::function_handler(event, &function)
    }))
    .await
}
