//! The catalog every subject's tests read: the policy the events are checked against
//! (`events/policy.toml`) and the events themselves (`events/*.json`).

use rollback_guard::Policy;
use serde_json::Value;

/// The catalog's policy: `orders-ai`, `checkout-ai`, `support-ai` and the fleet.
pub fn policy() -> Policy {
    Policy::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/policy.toml"
    ))
    .expect("policy")
}

/// The catalog event `events/NAME`, as text.
pub fn text(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("event")
}

/// The catalog event `events/NAME`.
pub fn event(name: &str) -> Value {
    serde_json::from_str(&text(name)).expect("json")
}
