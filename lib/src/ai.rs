//! Pure planning of `disable-ai`: the environment after the flag is turned off, and whether
//! `$LATEST` may be published as the version the alias serves with the AI off.

use std::collections::BTreeMap;

/// The value that switches the AI path off.
pub const AI_OFF: &str = "false";

/// Where a function's last configuration update stands (`LastUpdateStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateStatus {
    Successful,
    InProgress,
    Failed(String),
}

/// The parts of a function version's configuration the guard reads, compares or keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionConfig {
    pub version: String,
    pub code_sha256: String,
    pub revision_id: Option<String>,
    pub variables: BTreeMap<String, String>,
    /// Set when Lambda cannot show the variables (a KMS decrypt failure, say): writing the
    /// environment then would lose them, so the guard refuses.
    pub environment_error: Option<String>,
    pub memory_size: Option<i32>,
    pub timeout: Option<i32>,
    pub layers: Vec<String>,
    pub kms_key_arn: Option<String>,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub role: Option<String>,
    /// The rest of what publishing copies into a version (VPC, dead-letter target, tracing,
    /// ephemeral storage, SnapStart, logging, file systems, architectures), each as text:
    /// compared before `$LATEST` is published, never changed.
    pub settings: BTreeMap<&'static str, String>,
    pub last_update_status: UpdateStatus,
}

impl FunctionConfig {
    pub fn flag(&self, flag: &str) -> Option<&str> {
        self.variables.get(flag).map(String::as_str)
    }

    pub fn ai_disabled(&self, flag: &str) -> bool {
        self.flag(flag) == Some(AI_OFF)
    }
}

/// The environment with the flag off and every other variable exactly as it was.
pub fn disabled_environment(
    variables: &BTreeMap<String, String>,
    flag: &str,
) -> BTreeMap<String, String> {
    let mut out = variables.clone();
    out.insert(flag.to_string(), AI_OFF.to_string());
    out
}

/// The environment with the flag restored to `before` (`None`: the flag was not set).
pub fn restored_environment(
    variables: &BTreeMap<String, String>,
    flag: &str,
    before: Option<&str>,
) -> BTreeMap<String, String> {
    let mut out = variables.clone();
    match before {
        Some(v) => out.insert(flag.to_string(), v.to_string()),
        None => out.remove(flag),
    };
    out
}

/// What in `$LATEST` differs from the version the alias serves, and so would ship with a
/// published version. The flag itself may already be off in `$LATEST` (a previous attempt
/// that stopped before publishing): that is the one difference allowed.
pub fn unpublished_differences(
    latest: &FunctionConfig,
    served: &FunctionConfig,
    flag: &str,
) -> Vec<&'static str> {
    let mut diffs = Vec::new();
    if latest.code_sha256 != served.code_sha256 {
        diffs.push("code");
    }
    let without_flag = |c: &FunctionConfig| {
        let mut v = c.variables.clone();
        v.remove(flag);
        v
    };
    let flag_ok = latest.flag(flag) == served.flag(flag) || latest.ai_disabled(flag);
    if without_flag(latest) != without_flag(served) || !flag_ok {
        diffs.push("environment");
    }
    let checks: [(&'static str, bool); 7] = [
        ("memory size", latest.memory_size == served.memory_size),
        ("timeout", latest.timeout == served.timeout),
        ("layers", latest.layers == served.layers),
        ("KMS key", latest.kms_key_arn == served.kms_key_arn),
        ("runtime", latest.runtime == served.runtime),
        ("handler", latest.handler == served.handler),
        ("role", latest.role == served.role),
    ];
    diffs.extend(
        checks
            .iter()
            .filter(|(_, same)| !same)
            .map(|(name, _)| *name),
    );
    let names = latest.settings.keys().chain(served.settings.keys());
    let mut other: Vec<&'static str> = names
        .filter(|name| latest.settings.get(*name) != served.settings.get(*name))
        .copied()
        .collect();
    other.dedup();
    diffs.extend(other);
    diffs
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn config(version: &str, code: &str, vars: &[(&str, &str)]) -> FunctionConfig {
        FunctionConfig {
            version: version.into(),
            code_sha256: code.into(),
            revision_id: None,
            variables: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            environment_error: None,
            memory_size: Some(512),
            timeout: Some(30),
            layers: vec![],
            kms_key_arn: None,
            runtime: Some("provided.al2023".into()),
            handler: Some("bootstrap".into()),
            role: Some("arn:aws:iam::123456789012:role/r".into()),
            settings: BTreeMap::new(),
            last_update_status: UpdateStatus::Successful,
        }
    }

    /// Issue 26, finding 9: settings outside code, variables, memory, timeout, layers, key,
    /// runtime, handler and role would ship with the flag too.
    #[test]
    fn every_setting_publishing_copies_is_compared() {
        let served = config("3", "abc", &[("AI_ENABLED", "true")]);
        for (name, value) in [
            ("VPC", "vpc-1 subnets subnet-a sgs sg-1"),
            (
                "dead-letter target",
                "arn:aws:sqs:us-east-1:123456789012:dlq",
            ),
            ("tracing", "Active"),
            ("ephemeral storage", "10240 MB"),
            ("SnapStart", "PublishedVersions"),
            ("logging", "JSON app DEBUG system INFO group /aws/lambda/x"),
            ("file systems", "arn:aws:elasticfilesystem:...:/mnt/data"),
            ("architectures", "arm64"),
        ] {
            let mut latest = served.clone();
            latest.settings.insert(name, value.into());
            assert_eq!(
                unpublished_differences(&latest, &served, "AI_ENABLED"),
                vec![name],
                "{name}"
            );
            // The same on both: nothing to say.
            let mut both = served.clone();
            both.settings.insert(name, value.into());
            assert!(unpublished_differences(&latest, &both, "AI_ENABLED").is_empty());
        }
    }

    #[test]
    fn disabling_keeps_every_other_variable() {
        let c = config("3", "abc", &[("A", "1"), ("AI_ENABLED", "true"), ("B", "")]);
        let env = disabled_environment(&c.variables, "AI_ENABLED");
        assert_eq!(env.len(), 3);
        assert_eq!(env["A"], "1");
        assert_eq!(env["B"], "");
        assert_eq!(env["AI_ENABLED"], "false");
    }

    #[test]
    fn restoring_an_unset_flag_removes_it() {
        let vars = disabled_environment(&BTreeMap::from([("A".to_string(), "1".to_string())]), "F");
        let back = restored_environment(&vars, "F", None);
        assert_eq!(back, BTreeMap::from([("A".to_string(), "1".to_string())]));
        assert_eq!(restored_environment(&vars, "F", Some("yes"))["F"], "yes");
    }

    #[test]
    fn latest_with_other_code_or_settings_may_not_be_published() {
        let served = config("3", "abc", &[("A", "1"), ("AI_ENABLED", "true")]);
        assert!(unpublished_differences(&served, &served, "AI_ENABLED").is_empty());
        let mut latest = served.clone();
        latest.code_sha256 = "def".into();
        latest.memory_size = Some(1024);
        assert_eq!(
            unpublished_differences(&latest, &served, "AI_ENABLED"),
            vec!["code", "memory size"]
        );
        let mut latest = served.clone();
        latest.variables.insert("NEW".into(), "x".into());
        assert_eq!(
            unpublished_differences(&latest, &served, "AI_ENABLED"),
            vec!["environment"]
        );
    }

    #[test]
    fn latest_with_only_the_flag_already_off_may_be_published() {
        let served = config("3", "abc", &[("A", "1"), ("AI_ENABLED", "true")]);
        let mut latest = served.clone();
        latest.variables.insert("AI_ENABLED".into(), "false".into());
        assert!(unpublished_differences(&latest, &served, "AI_ENABLED").is_empty());
        latest.variables.insert("AI_ENABLED".into(), "maybe".into());
        assert_eq!(
            unpublished_differences(&latest, &served, "AI_ENABLED"),
            vec!["environment"]
        );
    }
}
