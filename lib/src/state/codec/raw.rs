//! The state item's JSON as stored: every part of a target's state in the shape it is
//! written in, read back only through the checks of [`super::decode`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    pub(super) v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) claim: Option<RawClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) plan: Option<RawPlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) last: Option<RawRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) escalation: Option<RawEscalation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) reenable: Option<RawReenable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) pause: Option<RawPause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) stable: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) muted: BTreeMap<String, RawMuted>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) blind: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) live: Option<RawLive>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) rolled_back: Option<RawRolledBack>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) bad: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) observed: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLive {
    pub(super) version: String,
    pub(super) since: String,
    pub(super) by: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRolledBack {
    pub(super) from: String,
    pub(super) to: String,
    pub(super) at: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClaim {
    pub(super) cause: String,
    pub(super) at: String,
    pub(super) until: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlias {
    pub(super) version: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) weights: BTreeMap<String, f64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlan {
    pub(super) kind: String,
    pub(super) cause: String,
    pub(super) delivery: String,
    pub(super) at: String,
    pub(super) before: RawAlias,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) after: Option<RawAlias>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) deployment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) back_to: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecord {
    pub(super) event: String,
    pub(super) action: String,
    pub(super) at: String,
    pub(super) alarm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) alias: Option<RawChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) flag: Option<RawFlag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) deployment: Option<String>,
    #[serde(default)]
    pub(super) automatic: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChange {
    pub(super) alias: String,
    pub(super) before: RawAlias,
    pub(super) after: RawAlias,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlag {
    pub(super) name: String,
    pub(super) before: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEscalation {
    pub(super) step: usize,
    pub(super) due: String,
    pub(super) alarm: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReenable {
    pub(super) version: String,
    pub(super) from: String,
    pub(super) steps: Vec<u32>,
    pub(super) taken: usize,
    pub(super) every_s: i64,
    pub(super) next: String,
    pub(super) by: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPause {
    pub(super) until: String,
    pub(super) at: String,
    pub(super) by: String,
    pub(super) reason: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMuted {
    pub(super) first: String,
    pub(super) last: String,
}
