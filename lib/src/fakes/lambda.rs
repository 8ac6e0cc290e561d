//! Lambda in memory: aliases, versions, configurations and tags, with revision checks like
//! Lambda's, and every mutating call logged.

use super::lock;
use crate::ai::{FunctionConfig, UpdateStatus};
use crate::ports::{AliasManager, FunctionSettings, PortError};
use crate::rollback::AliasState;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

#[derive(Default, Clone)]
struct FakeFunction {
    aliases: HashMap<String, AliasState>,
    versions: Vec<String>,
    tags: BTreeMap<String, String>,
    /// Configuration by version; `$LATEST` included.
    configs: HashMap<String, FunctionConfig>,
    /// When each version was published (else [`PUBLISHED`]).
    published: HashMap<String, chrono::DateTime<chrono::Utc>>,
}

/// When a fake function's versions were published unless a test says otherwise: shortly
/// before the catalog's transitions (2026-11-20T03:12:45Z).
pub const PUBLISHED: &str = "2026-11-20T03:00:00Z";

const LATEST: &str = "$LATEST";

/// An outside change to a function's `$LATEST` configuration.
type LatestEdit = Box<dyn FnOnce(&mut FunctionConfig) + Send>;

/// The configuration a fake function starts with: release `n`'s code, the AI on.
pub fn sample_config(version: &str, code: &str) -> FunctionConfig {
    FunctionConfig {
        version: version.into(),
        code_sha256: code.into(),
        revision_id: None,
        variables: BTreeMap::from([
            ("AI_ENABLED".to_string(), "true".to_string()),
            (
                "MODEL_ID".to_string(),
                "anthropic.claude-3-haiku".to_string(),
            ),
            ("LOG_LEVEL".to_string(), "info".to_string()),
        ]),
        environment_error: None,
        memory_size: Some(512),
        timeout: Some(30),
        layers: vec!["arn:aws:lambda:us-east-1:123456789012:layer:otel:3".into()],
        kms_key_arn: Some("arn:aws:kms:us-east-1:123456789012:key/1234abcd".into()),
        runtime: Some("provided.al2023".into()),
        handler: Some("bootstrap".into()),
        role: Some("arn:aws:iam::123456789012:role/orders-ai".into()),
        settings: BTreeMap::new(),
        last_update_status: UpdateStatus::Successful,
    }
}

/// Lambda in memory: aliases, versions, configurations and tags, with revision checks like
/// Lambda's.
#[derive(Default)]
pub struct FakeLambda {
    functions: Mutex<HashMap<String, FakeFunction>>,
    revision: Mutex<u64>,
    /// Errors to return, in order, from the named operation before it succeeds.
    failures: Mutex<HashMap<&'static str, VecDeque<PortError>>>,
    /// An outside change to apply just before the next `UpdateAlias` lands.
    interleaved: Mutex<Option<(String, String, AliasState)>>,
    /// An outside change to `$LATEST` to apply just before the next
    /// `UpdateFunctionConfiguration` lands.
    interleaved_latest: Mutex<Option<(String, LatestEdit)>>,
    /// Every mutating call: `UpdateAlias function:alias -> state`, `TagResource function`.
    pub calls: Mutex<Vec<String>>,
    /// When each mutating call happened (tokio's clock, so paused-time tests can read it).
    times: Mutex<Vec<tokio::time::Instant>>,
}

impl FakeLambda {
    /// A function with published versions `1..=versions` (release `n` has code `code-n`,
    /// `$LATEST` the newest release's) and one alias.
    pub fn with_function(self, function: &str, versions: u32, alias: &str, on: AliasState) -> Self {
        {
            let mut fns = lock(&self.functions);
            let f = fns.entry(function.to_string()).or_default();
            f.versions = (1..=versions).map(|v| v.to_string()).collect();
            for v in &f.versions {
                f.configs
                    .insert(v.clone(), sample_config(v, &format!("code-{v}")));
            }
            let mut latest = sample_config(LATEST, &format!("code-{versions}"));
            latest.revision_id = Some(self.next_revision());
            f.configs.insert(LATEST.into(), latest);
            let mut on = on;
            on.revision_id = Some(self.next_revision());
            f.aliases.insert(alias.to_string(), on);
        }
        self
    }

    /// The configuration of a version, or of `$LATEST` (`None`).
    pub fn config(&self, function: &str, qualifier: Option<&str>) -> Option<FunctionConfig> {
        lock(&self.functions)
            .get(function)?
            .configs
            .get(qualifier.unwrap_or(LATEST))
            .cloned()
    }

    /// Changes every version's and `$LATEST`'s settings alike, as if each release had been
    /// published with them.
    pub fn edit_every_version(&self, function: &str, edit: impl Fn(&mut FunctionConfig)) {
        let mut fns = lock(&self.functions);
        if let Some(f) = fns.get_mut(function) {
            f.configs.values_mut().for_each(edit);
        }
    }

    /// Changes `$LATEST` as a deployment would (new code, new settings).
    pub fn edit_latest(&self, function: &str, edit: impl FnOnce(&mut FunctionConfig)) {
        let revision = self.next_revision();
        let mut fns = lock(&self.functions);
        if let Some(latest) = fns
            .get_mut(function)
            .and_then(|f| f.configs.get_mut(LATEST))
        {
            edit(latest);
            latest.revision_id = Some(revision);
        }
    }

    /// Version `version` of `function` was published at `at`.
    pub fn set_published_at(
        &self,
        function: &str,
        version: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        let mut fns = lock(&self.functions);
        fns.entry(function.to_string())
            .or_default()
            .published
            .insert(version.into(), at);
    }

    pub fn set_tag(&self, function: &str, key: &str, value: &str) {
        let mut fns = lock(&self.functions);
        fns.entry(function.to_string())
            .or_default()
            .tags
            .insert(key.into(), value.into());
    }

    /// Moves the alias as an outside party would (a deployment, a person).
    pub fn set_alias(&self, function: &str, alias: &str, mut to: AliasState) {
        to.revision_id = Some(self.next_revision());
        let mut fns = lock(&self.functions);
        fns.entry(function.to_string())
            .or_default()
            .aliases
            .insert(alias.into(), to);
    }

    /// Someone else moves the alias between the guard reading it and updating it.
    pub fn move_before_next_update(&self, function: &str, alias: &str, to: AliasState) {
        *lock(&self.interleaved) = Some((function.into(), alias.into(), to));
    }

    /// Someone else changes `$LATEST` (a deploy) between the guard reading its configuration
    /// and updating it.
    pub fn edit_latest_before_next_update(
        &self,
        function: &str,
        edit: impl FnOnce(&mut FunctionConfig) + Send + 'static,
    ) {
        *lock(&self.interleaved_latest) = Some((function.into(), Box::new(edit)));
    }

    pub fn alias(&self, function: &str, alias: &str) -> Option<AliasState> {
        lock(&self.functions)
            .get(function)?
            .aliases
            .get(alias)
            .cloned()
    }

    pub fn tags_of(&self, function: &str) -> BTreeMap<String, String> {
        lock(&self.functions)
            .get(function)
            .map(|f| f.tags.clone())
            .unwrap_or_default()
    }

    pub fn fail(&self, op: &'static str, errors: impl IntoIterator<Item = PortError>) {
        lock(&self.failures).entry(op).or_default().extend(errors);
    }

    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    /// Mutating calls with the time each happened.
    pub fn timeline(&self) -> Vec<(String, tokio::time::Instant)> {
        self.calls()
            .into_iter()
            .zip(lock(&self.times).iter().copied())
            .collect()
    }

    fn log(&self, call: String) {
        lock(&self.calls).push(call);
        lock(&self.times).push(tokio::time::Instant::now());
    }

    pub fn alias_updates(&self) -> usize {
        self.count_calls("UpdateAlias")
    }

    /// Mutating calls of one operation (`PublishVersion`, `UpdateFunctionConfiguration`…).
    pub fn count_calls(&self, operation: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.split(' ').next() == Some(operation))
            .count()
    }

    fn next_revision(&self) -> String {
        let mut r = lock(&self.revision);
        *r += 1;
        format!("rev-{r}")
    }

    fn injected(&self, op: &'static str) -> Result<(), PortError> {
        match lock(&self.failures)
            .get_mut(op)
            .and_then(VecDeque::pop_front)
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn with<T>(
        &self,
        function: &str,
        f: impl FnOnce(&mut FakeFunction) -> Result<T, PortError>,
    ) -> Result<T, PortError> {
        let mut fns = lock(&self.functions);
        let func = fns
            .get_mut(function)
            .ok_or_else(|| PortError::NotFound(format!("function {function}")))?;
        f(func)
    }
}

#[async_trait]
impl AliasManager for FakeLambda {
    async fn get_alias(&self, function: &str, alias: &str) -> Result<AliasState, PortError> {
        // Yield like a network call would, so concurrent deliveries interleave.
        tokio::task::yield_now().await;
        self.injected("GetAlias")?;
        self.with(function, |f| {
            f.aliases
                .get(alias)
                .cloned()
                .ok_or_else(|| PortError::NotFound(format!("alias {function}:{alias}")))
        })
    }

    async fn list_functions(&self) -> Result<Vec<String>, PortError> {
        self.injected("ListFunctions")?;
        let mut names: Vec<String> = lock(&self.functions).keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    async fn list_versions(&self, function: &str) -> Result<Vec<String>, PortError> {
        self.injected("ListVersionsByFunction")?;
        self.with(function, |f| Ok(f.versions.clone()))
    }

    async fn update_alias(
        &self,
        function: &str,
        alias: &str,
        to: &AliasState,
        expected_revision: Option<&str>,
    ) -> Result<AliasState, PortError> {
        tokio::task::yield_now().await;
        self.injected("UpdateAlias")?;
        let outside = lock(&self.interleaved).take();
        if let Some((f, a, to)) = outside {
            self.set_alias(&f, &a, to);
        }
        let revision = self.next_revision();
        let updated = self.with(function, |f| {
            for v in std::iter::once(&to.version).chain(to.weights.keys()) {
                if !f.versions.contains(v) {
                    return Err(PortError::NotFound(format!("version {v} of {function}")));
                }
            }
            let current = f
                .aliases
                .get_mut(alias)
                .ok_or_else(|| PortError::NotFound(format!("alias {function}:{alias}")))?;
            if let Some(expected) = expected_revision {
                if current.revision_id.as_deref() != Some(expected) {
                    return Err(PortError::RevisionChanged(format!(
                        "alias {function}:{alias}"
                    )));
                }
            }
            *current = AliasState {
                revision_id: Some(revision),
                ..to.clone()
            };
            Ok(current.clone())
        })?;
        self.log(format!("UpdateAlias {function}:{alias} -> {to}"));
        Ok(updated)
    }

    async fn tags(&self, function: &str) -> Result<BTreeMap<String, String>, PortError> {
        self.injected("GetFunction")?;
        self.with(function, |f| Ok(f.tags.clone()))
    }

    async fn is_published(&self, function: &str, version: &str) -> Result<bool, PortError> {
        self.injected("GetFunction")?;
        self.with(function, |f| Ok(f.versions.iter().any(|v| v == version)))
    }

    async fn published_at(
        &self,
        function: &str,
        version: &str,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, PortError> {
        self.injected("GetFunction")?;
        self.with(function, |f| {
            let published = version == LATEST || f.versions.iter().any(|v| v == version);
            Ok(published.then(|| {
                f.published
                    .get(version)
                    .copied()
                    .unwrap_or_else(|| PUBLISHED.parse().unwrap_or_default())
            }))
        })
    }

    async fn tag(&self, function: &str, tags: &BTreeMap<String, String>) -> Result<(), PortError> {
        self.injected("TagResource")?;
        self.with(function, |f| {
            f.tags.extend(tags.clone());
            Ok(())
        })?;
        self.log(format!("TagResource {function}"));
        Ok(())
    }

    async fn untag(&self, function: &str, keys: &[String]) -> Result<(), PortError> {
        self.injected("UntagResource")?;
        self.with(function, |f| {
            f.tags.retain(|k, _| !keys.contains(k));
            Ok(())
        })?;
        self.log(format!("UntagResource {function}"));
        Ok(())
    }
}

#[async_trait]
impl FunctionSettings for FakeLambda {
    async fn get_config(
        &self,
        function: &str,
        qualifier: Option<&str>,
    ) -> Result<FunctionConfig, PortError> {
        tokio::task::yield_now().await;
        self.injected("GetFunctionConfiguration")?;
        let key = qualifier.unwrap_or(LATEST);
        self.with(function, |f| {
            f.configs
                .get(key)
                .cloned()
                .ok_or_else(|| PortError::NotFound(format!("version {key} of {function}")))
        })
    }

    async fn set_environment(
        &self,
        function: &str,
        variables: &BTreeMap<String, String>,
        expected_revision: Option<&str>,
    ) -> Result<(), PortError> {
        tokio::task::yield_now().await;
        self.injected("UpdateFunctionConfiguration")?;
        let outside = lock(&self.interleaved_latest).take();
        if let Some((f, edit)) = outside {
            self.edit_latest(&f, edit);
        }
        let revision = self.next_revision();
        self.with(function, |f| {
            let latest = f
                .configs
                .get_mut(LATEST)
                .ok_or_else(|| PortError::NotFound(format!("function {function}")))?;
            if expected_revision.is_some() && latest.revision_id.as_deref() != expected_revision {
                return Err(PortError::RevisionChanged(format!("function {function}")));
            }
            latest.variables = variables.clone();
            latest.revision_id = Some(revision);
            Ok(())
        })?;
        self.log(format!("UpdateFunctionConfiguration {function}"));
        Ok(())
    }

    async fn publish_version(
        &self,
        function: &str,
        code_sha256: &str,
        expected_revision: Option<&str>,
        description: &str,
    ) -> Result<String, PortError> {
        tokio::task::yield_now().await;
        self.injected("PublishVersion")?;
        let version = self.with(function, |f| {
            let latest = f
                .configs
                .get(LATEST)
                .cloned()
                .ok_or_else(|| PortError::NotFound(format!("function {function}")))?;
            if expected_revision.is_some() && latest.revision_id.as_deref() != expected_revision {
                return Err(PortError::RevisionChanged(format!("function {function}")));
            }
            if latest.code_sha256 != code_sha256 {
                return Err(PortError::Other(format!(
                    "CodeSha256 {code_sha256} does not match $LATEST's"
                )));
            }
            let next = f
                .versions
                .iter()
                .filter_map(|v| v.parse::<u32>().ok())
                .max()
                .unwrap_or(0)
                + 1;
            let version = next.to_string();
            f.versions.push(version.clone());
            f.configs.insert(
                version.clone(),
                FunctionConfig {
                    version: version.clone(),
                    ..latest
                },
            );
            Ok(version)
        })?;
        self.log(format!(
            "PublishVersion {function} -> {version} ({description})"
        ));
        Ok(version)
    }
}
