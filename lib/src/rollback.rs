//! Pure planning of an alias rollback: from the alias as it is, the published versions and the
//! recorded stable version, to the alias as it must become.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// An alias as the guard sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AliasState {
    /// The primary version.
    pub version: String,
    /// Additional versions and their weights (0.0-1.0): a canary in progress.
    pub weights: BTreeMap<String, f64>,
    /// Optimistic-concurrency token; `None` from backends without one.
    #[serde(skip)]
    pub revision_id: Option<String>,
}

impl AliasState {
    pub fn on(version: &str) -> Self {
        Self {
            version: version.into(),
            weights: BTreeMap::new(),
            revision_id: None,
        }
    }

    /// Whether `version` gets any of the alias's traffic.
    pub fn serves(&self, version: &str) -> bool {
        self.version == version || self.weights.contains_key(version)
    }

    /// Same routing, whatever the revision.
    pub fn same_routing(&self, other: &AliasState) -> bool {
        self.version == other.version && self.weights == other.weights
    }
}

impl fmt::Display for AliasState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "version {}", self.version)?;
        for (v, w) in &self.weights {
            write!(
                f,
                " + version {v} at {}%",
                (w * 100.0 * 100.0).round() / 100.0
            )?;
        }
        Ok(())
    }
}

/// Where the version to roll back to came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StableSource {
    /// Recorded with `guard mark-stable`.
    Recorded,
    /// The newest published version older than the current one.
    PreviousPublished,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AliasPlan {
    /// A canary: drop the additional weights, keep the primary version.
    AbortCanary { keep: String },
    /// Move the whole alias to an older version.
    MoveTo {
        from: String,
        to: String,
        source: StableSource,
    },
    /// The alias already serves the recorded stable version: nothing to do.
    AlreadyStable { version: String },
    /// The alarm watches a version the alias no longer serves: nothing to roll back.
    NotServed { version: String },
}

impl AliasPlan {
    /// The alias once the plan is carried out.
    pub fn after(&self, before: &AliasState) -> AliasState {
        match self {
            Self::AbortCanary { keep } => AliasState::on(keep),
            Self::MoveTo { to, .. } => AliasState::on(to),
            Self::AlreadyStable { .. } | Self::NotServed { .. } => before.clone(),
        }
    }

    /// One sentence for people.
    pub fn describe(&self, alias: &str, before: &AliasState) -> String {
        match self {
            Self::AbortCanary { keep } => format!(
                "canary aborted: alias {alias} now sends all traffic to version {keep} (was {before})"
            ),
            Self::MoveTo { from, to, source } => {
                let why = match source {
                    StableSource::Recorded => "the recorded stable version",
                    StableSource::PreviousPublished => "the newest published version before it",
                };
                format!("alias {alias} moved from version {from} to version {to}, {why}")
            }
            Self::AlreadyStable { version } => {
                format!("alias {alias} already serves the stable version {version}")
            }
            Self::NotServed { version } => format!(
                "alias {alias} no longer serves version {version}, the one the alarm watches ({before}): nothing to roll back"
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no published version older than {current} to roll back to")]
    NoOlderVersion { current: String },
    #[error("the recorded stable version {version} does not exist (published: {published})")]
    StableVersionMissing { version: String, published: String },
    #[error("the recorded stable version `{0}` is not a published version number")]
    StableNotAVersion(String),
}

/// `$LATEST` sorts after every published version; anything else that is not a number is not a
/// version the guard will move to.
fn version_number(v: &str) -> Option<u64> {
    v.parse().ok()
}

/// Plans the rollback. `published` are the function's published versions (never `$LATEST`).
/// `derived_from`: the version the alias's current version was published from by the guard
/// (`disable-ai`): the same release, so the rollback goes past it too.
pub fn plan_rollback(
    alias: &AliasState,
    published: &[String],
    recorded_stable: Option<&str>,
    derived_from: Option<&str>,
) -> Result<AliasPlan, PlanError> {
    if !alias.weights.is_empty() {
        return Ok(AliasPlan::AbortCanary {
            keep: alias.version.clone(),
        });
    }
    let mut numbers: Vec<u64> = published.iter().filter_map(|v| version_number(v)).collect();
    numbers.sort_unstable();
    if let Some(stable) = recorded_stable {
        let n =
            version_number(stable).ok_or_else(|| PlanError::StableNotAVersion(stable.into()))?;
        if !numbers.contains(&n) {
            return Err(PlanError::StableVersionMissing {
                version: stable.into(),
                published: join(&numbers),
            });
        }
        if alias.version == stable {
            return Ok(AliasPlan::AlreadyStable {
                version: stable.into(),
            });
        }
        return Ok(AliasPlan::MoveTo {
            from: alias.version.clone(),
            to: stable.into(),
            source: StableSource::Recorded,
        });
    }
    // With no recorded stable version, the previous published one: never `$LATEST`, which is
    // mutable and holds whatever was deployed last.
    let current = version_number(&alias.version).unwrap_or(u64::MAX);
    let current = derived_from
        .and_then(version_number)
        .map_or(current, |d| d.min(current));
    let previous = numbers.iter().rev().find(|n| **n < current);
    match previous {
        Some(n) => Ok(AliasPlan::MoveTo {
            from: alias.version.clone(),
            to: n.to_string(),
            source: StableSource::PreviousPublished,
        }),
        None => Err(PlanError::NoOlderVersion {
            current: alias.version.clone(),
        }),
    }
}

/// Plans the rollback when the alarm watches one version of the alias's traffic
/// (`ExecutedVersion`): that version's canary is aborted; if it is the primary version, the
/// alias moves as [`plan_rollback`] says, any canary with it; if the alias no longer serves it,
/// nothing is rolled back.
pub fn plan_version_rollback(
    alias: &AliasState,
    version: &str,
    published: &[String],
    recorded_stable: Option<&str>,
    derived_from: Option<&str>,
) -> Result<AliasPlan, PlanError> {
    if alias.weights.contains_key(version) {
        return Ok(AliasPlan::AbortCanary {
            keep: alias.version.clone(),
        });
    }
    if alias.version != version {
        return Ok(AliasPlan::NotServed {
            version: version.into(),
        });
    }
    let primary = AliasState::on(&alias.version);
    plan_rollback(&primary, published, recorded_stable, derived_from)
}

/// What a rollback's plan must know of the function's published versions, beyond the alias
/// and the record. Listing them (`ListVersionsByFunction`) spends the account's 15 requests/s
/// that every control-plane call shares; asking after one version (`GetFunction`) does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionsNeeded {
    /// None: a canary to abort, a version no longer served, no older version to look for.
    Nothing,
    /// Whether this version is published settles the plan: the recorded stable version, or the
    /// one numbered just before the current version (versions are numbered in order, so when
    /// it exists it is the newest before it). When it is not published, the whole list.
    Check(String),
    /// The whole list: the alias serves `$LATEST` or something else that is not a number.
    All,
}

/// What [`plan_rollback`] (or, with `watched`, [`plan_version_rollback`]) needs to know of the
/// published versions for this alias.
pub fn versions_needed(
    alias: &AliasState,
    watched: Option<&str>,
    recorded_stable: Option<&str>,
    derived_from: Option<&str>,
) -> VersionsNeeded {
    match watched {
        Some(v) if alias.weights.contains_key(v) || alias.version != v => {
            return VersionsNeeded::Nothing
        }
        Some(_) => {}
        None if !alias.weights.is_empty() => return VersionsNeeded::Nothing,
        None => {}
    }
    if let Some(stable) = recorded_stable {
        // One that is not a number is refused before any list is read.
        return match version_number(stable) {
            Some(_) => VersionsNeeded::Check(stable.into()),
            None => VersionsNeeded::Nothing,
        };
    }
    let Some(current) = version_number(&alias.version) else {
        return VersionsNeeded::All;
    };
    let current = derived_from
        .and_then(version_number)
        .map_or(current, |d| d.min(current));
    match current.checked_sub(1) {
        Some(previous) if previous >= 1 => VersionsNeeded::Check(previous.to_string()),
        _ => VersionsNeeded::Nothing,
    }
}

fn join(numbers: &[u64]) -> String {
    if numbers.is_empty() {
        return "none".into();
    }
    numbers
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_watched_version_aborts_its_canary_moves_the_primary_or_is_no_longer_served() {
        let published = versions(&["1", "2", "3"]);
        let mut canary = AliasState::on("2");
        canary.weights.insert("3".into(), 0.1);
        assert_eq!(
            plan_version_rollback(&canary, "3", &published, None, None),
            Ok(AliasPlan::AbortCanary { keep: "2".into() })
        );
        // The primary is the watched one: the alias leaves it, canary and all.
        let plan = plan_version_rollback(&canary, "2", &published, None, None).expect("plan");
        assert_eq!(
            plan,
            AliasPlan::MoveTo {
                from: "2".into(),
                to: "1".into(),
                source: StableSource::PreviousPublished
            }
        );
        assert_eq!(plan.after(&canary), AliasState::on("1"));
        let plan = plan_version_rollback(&AliasState::on("2"), "3", &published, None, None);
        assert_eq!(
            plan,
            Ok(AliasPlan::NotServed {
                version: "3".into()
            })
        );
        assert_eq!(
            plan.expect("plan").after(&AliasState::on("2")),
            AliasState::on("2")
        );
    }

    #[test]
    fn canary_is_aborted_keeping_the_primary_version() {
        let mut alias = AliasState::on("2");
        alias.weights.insert("3".into(), 0.1);
        let plan =
            plan_rollback(&alias, &versions(&["1", "2", "3"]), Some("1"), None).expect("plan");
        assert_eq!(plan, AliasPlan::AbortCanary { keep: "2".into() });
        assert_eq!(plan.after(&alias), AliasState::on("2"));
    }

    #[test]
    fn full_shift_goes_to_the_recorded_stable_version() {
        let plan = plan_rollback(
            &AliasState::on("5"),
            &versions(&["1", "2", "3", "4", "5"]),
            Some("2"),
            None,
        )
        .expect("plan");
        assert_eq!(
            plan,
            AliasPlan::MoveTo {
                from: "5".into(),
                to: "2".into(),
                source: StableSource::Recorded
            }
        );
    }

    #[test]
    fn full_shift_without_record_goes_to_the_previous_published_version() {
        // Versions can be deleted: 4 is gone, so 5 goes back to 3.
        let plan = plan_rollback(
            &AliasState::on("5"),
            &versions(&["1", "3", "5", "6"]),
            None,
            None,
        )
        .expect("plan");
        assert_eq!(
            plan,
            AliasPlan::MoveTo {
                from: "5".into(),
                to: "3".into(),
                source: StableSource::PreviousPublished
            }
        );
    }

    #[test]
    fn latest_is_never_chosen() {
        let published = versions(&["$LATEST", "1"]);
        assert_eq!(
            plan_rollback(&AliasState::on("1"), &published, None, None),
            Err(PlanError::NoOlderVersion {
                current: "1".into()
            })
        );
        assert_eq!(
            plan_rollback(&AliasState::on("1"), &published, Some("$LATEST"), None),
            Err(PlanError::StableNotAVersion("$LATEST".into()))
        );
        // An alias on $LATEST goes to the newest published version.
        let plan = plan_rollback(
            &AliasState::on("$LATEST"),
            &versions(&["1", "2"]),
            None,
            None,
        )
        .expect("plan");
        assert_eq!(plan.after(&AliasState::on("$LATEST")), AliasState::on("2"));
    }

    #[test]
    fn an_ai_off_version_rolls_back_past_the_release_it_was_made_from() {
        // Version 4 is version 3 with the AI off: the previous release is 2.
        let plan = plan_rollback(
            &AliasState::on("4"),
            &versions(&["1", "2", "3", "4"]),
            None,
            Some("3"),
        )
        .expect("plan");
        assert_eq!(plan.after(&AliasState::on("4")), AliasState::on("2"));
    }

    #[test]
    fn missing_recorded_stable_version_is_a_clear_failure() {
        let err = plan_rollback(
            &AliasState::on("3"),
            &versions(&["2", "3"]),
            Some("1"),
            None,
        )
        .expect_err("fails");
        assert_eq!(
            err.to_string(),
            "the recorded stable version 1 does not exist (published: 2, 3)"
        );
    }

    #[test]
    fn alias_already_on_stable_is_a_no_op() {
        let plan = plan_rollback(
            &AliasState::on("2"),
            &versions(&["1", "2", "3"]),
            Some("2"),
            None,
        )
        .expect("plan");
        assert_eq!(
            plan,
            AliasPlan::AlreadyStable {
                version: "2".into()
            }
        );
    }

    #[test]
    fn display_names_weights_in_percent() {
        let mut alias = AliasState::on("2");
        alias.weights.insert("3".into(), 0.1);
        assert_eq!(alias.to_string(), "version 2 + version 3 at 10%");
    }

    /// The plan made from what `versions_needed` asks for is the plan made from the whole
    /// list, for every alias, record and watched version of a small world with gaps.
    #[test]
    fn the_versions_needed_settle_the_plan_as_the_whole_list_does() {
        let lists: Vec<Vec<String>> = (0u32..32)
            .map(|mask| {
                (1..=5)
                    .filter(|v| mask & (1 << (v - 1)) != 0)
                    .map(|v: u32| v.to_string())
                    .collect()
            })
            .collect();
        let versions = ["1", "2", "3", "4", "5", "$LATEST"];
        let optional = |extra: &[&'static str]| {
            let mut v: Vec<Option<&'static str>> = vec![None];
            v.extend(["1", "3", "5"].iter().chain(extra).map(|s| Some(*s)));
            v
        };
        let mut checked = 0;
        for published in &lists {
            for current in versions {
                for canary in [None, Some("4")] {
                    let mut alias = AliasState::on(current);
                    if let Some(c) = canary {
                        alias.weights.insert(c.into(), 0.1);
                    }
                    for stable in optional(&["x"]) {
                        for derived in optional(&[]) {
                            for watched in optional(&["4"]) {
                                let plan = |list: &[String]| match watched {
                                    Some(w) => {
                                        plan_version_rollback(&alias, w, list, stable, derived)
                                    }
                                    None => plan_rollback(&alias, list, stable, derived),
                                };
                                let narrowed =
                                    match versions_needed(&alias, watched, stable, derived) {
                                        VersionsNeeded::Nothing => vec![],
                                        VersionsNeeded::Check(v) if published.contains(&v) => {
                                            vec![v]
                                        }
                                        VersionsNeeded::Check(_) | VersionsNeeded::All => {
                                            published.clone()
                                        }
                                    };
                                assert_eq!(
                                    plan(&narrowed),
                                    plan(published),
                                    "{alias} published {published:?} stable {stable:?} derived {derived:?} watched {watched:?}"
                                );
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 10_000);
    }

    #[test]
    fn versions_needed_asks_after_one_version_unless_the_alias_is_on_latest() {
        let full = AliasState::on("7");
        assert_eq!(
            versions_needed(&full, None, None, None),
            VersionsNeeded::Check("6".into())
        );
        assert_eq!(
            versions_needed(&full, None, Some("4"), None),
            VersionsNeeded::Check("4".into())
        );
        assert_eq!(
            versions_needed(&full, None, None, Some("5")),
            VersionsNeeded::Check("4".into())
        );
        let mut canary = full.clone();
        canary.weights.insert("8".into(), 0.1);
        assert_eq!(
            versions_needed(&canary, None, None, None),
            VersionsNeeded::Nothing
        );
        assert_eq!(
            versions_needed(&AliasState::on("$LATEST"), None, None, None),
            VersionsNeeded::All
        );
    }
}
