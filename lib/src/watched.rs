//! The function alias an alarm watches, read from its metrics' dimensions: what a fleet
//! trigger (`target = "from-alarm"`) acts on. Lambda's per-alias metrics (and EMF metrics that
//! use the same names) carry `FunctionName` and `Resource` = `NAME:ALIAS`, per-version ones
//! `ExecutedVersion` too. Pure. Intake keeps an event's metrics as text and they are read here
//! only when a fleet trigger matches ([`from_configuration`], [`from_sns_trigger`]); the
//! adapters reduce DescribeAlarms' metrics to the same [`MetricDimensions`].

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

pub const FUNCTION_NAME: &str = "FunctionName";
pub const RESOURCE: &str = "Resource";
pub const EXECUTED_VERSION: &str = "ExecutedVersion";

/// The function alias (and version) every metric of an alarm that names a function names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchedAlias {
    pub function: String,
    pub alias: String,
    /// `ExecutedVersion`: the alarm watches this version of the alias's traffic (a canary).
    pub version: Option<String>,
}

/// What an alarm's metrics name, as far as a fleet trigger cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Watched {
    Alias(WatchedAlias),
    /// A composite alarm, or an event that carries no metrics.
    NoMetrics,
    /// Metrics, none naming a Lambda function.
    NoFunction,
    /// Metrics naming a function, none naming an alias of it (a `Resource` `NAME:ALIAS`).
    NoAlias {
        function: String,
    },
    /// Two metrics naming different functions, aliases or versions.
    Two {
        what: &'static str,
        first: String,
        second: String,
    },
    /// One metric whose `FunctionName` and `Resource` name different functions.
    Mismatch {
        function: String,
        resource: String,
    },
    /// An `ExecutedVersion` that is no published version number (`$LATEST`).
    NotAVersion(String),
    /// The event's metrics are not of the shape CloudWatch writes.
    Unreadable(String),
}

impl Watched {
    /// The alias, or why there is none for a fleet trigger to act on.
    pub fn alias(&self) -> Result<&WatchedAlias, String> {
        match self {
            Self::Alias(a) => Ok(a),
            other => Err(other.to_string()),
        }
    }
}

impl fmt::Display for Watched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Alias(a) => {
                write!(f, "function {} alias {}", a.function, a.alias)?;
                if let Some(v) = &a.version {
                    write!(f, " version {v}")?;
                }
                Ok(())
            }
            Self::NoMetrics => f.write_str(
                "the alarm has no metrics (a composite alarm): it names no function alias",
            ),
            Self::NoFunction => f.write_str(
                "no metric of the alarm names a Lambda function (dimension `FunctionName` or `Resource`)",
            ),
            Self::NoAlias { function } => write!(
                f,
                "the alarm's metrics name function {function} but no alias of it (dimension `Resource` = `{function}:ALIAS`)"
            ),
            Self::Two {
                what,
                first,
                second,
            } => write!(
                f,
                "the alarm's metrics name two {what}s, {first} and {second}: a fleet trigger acts on one"
            ),
            Self::Mismatch { function, resource } => write!(
                f,
                "a metric names function {function} in `FunctionName` but `{resource}` in `Resource`"
            ),
            Self::NotAVersion(v) => write!(
                f,
                "`ExecutedVersion` `{v}` is not a published version number"
            ),
            Self::Unreadable(e) => write!(f, "the alarm's metrics cannot be read: {e}"),
        }
    }
}

/// The dimensions of one metric that say which function it is about; every other dimension is
/// skipped. Reads both spellings AWS uses: an object (`{"FunctionName": "f"}`, EventBridge
/// and Lambda-action payloads) and a list (`[{"name": "FunctionName", "value": "f"}]`, SNS).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MetricDimensions<'a> {
    pub function: Option<Cow<'a, str>>,
    pub resource: Option<Cow<'a, str>>,
    pub executed_version: Option<Cow<'a, str>>,
}

impl<'a> MetricDimensions<'a> {
    /// From `(name, value)` pairs.
    pub fn of<I>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut dims = Self::default();
        for (name, value) in pairs {
            dims.set(name, Cow::Borrowed(value));
        }
        dims
    }

    fn set(&mut self, name: &str, value: Cow<'a, str>) {
        match name {
            FUNCTION_NAME => self.function = Some(value),
            RESOURCE => self.resource = Some(value),
            EXECUTED_VERSION => self.executed_version = Some(value),
            _ => {}
        }
    }
}

/// What the metrics name. `metrics` holds one entry per metric (metric math expressions are
/// no metric and are left out); none at all is a composite alarm.
pub fn watched<'m, 'a: 'm>(metrics: impl IntoIterator<Item = &'m MetricDimensions<'a>>) -> Watched {
    let mut any = false;
    let mut function: Option<&str> = None;
    let mut alias: Option<&str> = None;
    let mut version: Option<&str> = None;
    for m in metrics {
        any = true;
        let (from_resource, qualifier) = match m.resource.as_deref() {
            Some(r) => match r.split_once(':') {
                Some((name, q)) => (Some(name), Some(q)),
                None => (Some(r), None),
            },
            None => (None, None),
        };
        let name = match (m.function.as_deref(), from_resource) {
            (Some(f), Some(r)) if f != r => {
                return Watched::Mismatch {
                    function: f.into(),
                    resource: m.resource.as_deref().unwrap_or_default().into(),
                }
            }
            (Some(f), _) => f,
            (None, Some(r)) => r,
            (None, None) => continue,
        };
        if let Some(two) = agree("function", &mut function, name) {
            return two;
        }
        // A numeric qualifier is a version's metric, `$LATEST` is no alias: neither names one.
        if let Some(q) = qualifier.filter(|q| is_alias_name(q)) {
            if let Some(two) = agree("alias", &mut alias, q) {
                return two;
            }
        }
        if let Some(v) = m.executed_version.as_deref() {
            if !v.bytes().all(|b| b.is_ascii_digit()) || v.is_empty() {
                return Watched::NotAVersion(v.into());
            }
            if let Some(two) = agree("version", &mut version, v) {
                return two;
            }
        }
    }
    match (any, function, alias) {
        (false, _, _) => Watched::NoMetrics,
        (true, None, _) => Watched::NoFunction,
        (true, Some(f), None) => Watched::NoAlias { function: f.into() },
        (true, Some(f), Some(a)) => Watched::Alias(WatchedAlias {
            function: f.into(),
            alias: a.into(),
            version: version.map(str::to_string),
        }),
    }
}

/// Keeps the first value seen; a different second one is [`Watched::Two`].
fn agree<'s>(what: &'static str, seen: &mut Option<&'s str>, value: &'s str) -> Option<Watched> {
    match seen {
        Some(first) if *first != value => Some(Watched::Two {
            what,
            first: (*first).into(),
            second: value.into(),
        }),
        Some(_) => None,
        None => {
            *seen = Some(value);
            None
        }
    }
}

/// A Lambda alias name: 1-128 of [a-zA-Z0-9-_], not only digits (that is a version).
pub fn is_alias_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !s.bytes().all(|b| b.is_ascii_digit())
}

/// `configuration.metrics` of EventBridge and Lambda-action payloads: a list of metrics
/// (`metricStat`) and expressions (none).
pub fn from_configuration(text: &str) -> Watched {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ConfigMetric<'a> {
        #[serde(borrow, default)]
        metric_stat: Option<MetricStat<'a>>,
    }
    match serde_json::from_str::<Vec<ConfigMetric>>(text) {
        Ok(metrics) => watched(
            metrics
                .iter()
                .filter_map(|m| m.metric_stat.as_ref())
                .map(MetricStat::dimensions),
        ),
        Err(e) => Watched::Unreadable(e.to_string()),
    }
}

/// An SNS alarm message's `Trigger`: one metric's `Dimensions`, or metric math's `Metrics`.
pub fn from_sns_trigger(text: &str) -> Watched {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct SnsTrigger<'a> {
        #[serde(borrow, default)]
        dimensions: Option<MetricDimensions<'a>>,
        #[serde(borrow, default)]
        metrics: Option<Vec<SnsMetric<'a>>>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct SnsMetric<'a> {
        #[serde(borrow, default)]
        metric_stat: Option<MetricStat<'a>>,
    }
    let trigger = match serde_json::from_str::<SnsTrigger>(text) {
        Ok(trigger) => trigger,
        Err(e) => return Watched::Unreadable(e.to_string()),
    };
    match &trigger.metrics {
        Some(metrics) => watched(
            metrics
                .iter()
                .filter_map(|m| m.metric_stat.as_ref())
                .map(MetricStat::dimensions),
        ),
        None => watched([&trigger.dimensions.unwrap_or_default()]),
    }
}

/// The accounts a metric alarm's metrics name (`accountId` in `configuration.metrics`,
/// `AccountId` in an SNS `Trigger.Metrics`): a cross-account alarm watches another account's
/// function, which the guard must not take for one of the alarm's own account. Metrics that
/// name none are the alarm's account's.
pub fn metric_accounts(text: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Metric {
        #[serde(default, alias = "AccountId", rename = "accountId")]
        account_id: Option<String>,
    }
    #[derive(Deserialize)]
    struct Trigger {
        #[serde(default, rename = "Metrics")]
        metrics: Option<Vec<Metric>>,
    }
    let metrics = serde_json::from_str::<Vec<Metric>>(text)
        .ok()
        .or_else(|| serde_json::from_str::<Trigger>(text).ok()?.metrics)
        .unwrap_or_default();
    let mut accounts: Vec<String> = metrics.into_iter().filter_map(|m| m.account_id).collect();
    accounts.sort();
    accounts.dedup();
    accounts
}

/// A metric of metric math, in either spelling (`metricStat.metric.dimensions`,
/// `MetricStat.Metric.Dimensions`).
#[derive(Deserialize)]
struct MetricStat<'a> {
    #[serde(borrow, default, alias = "Metric")]
    metric: Option<MetricOf<'a>>,
}

#[derive(Deserialize)]
struct MetricOf<'a> {
    #[serde(borrow, default, alias = "Dimensions")]
    dimensions: Option<MetricDimensions<'a>>,
}

impl<'a> MetricStat<'a> {
    fn dimensions(&self) -> &MetricDimensions<'a> {
        const NONE: &MetricDimensions<'static> = &MetricDimensions {
            function: None,
            resource: None,
            executed_version: None,
        };
        self.metric
            .as_ref()
            .and_then(|m| m.dimensions.as_ref())
            .unwrap_or(NONE)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for MetricDimensions<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DimensionsVisitor<'a>(std::marker::PhantomData<&'a ()>);

        /// A string, borrowed from the event unless it had to be unescaped.
        #[derive(Deserialize)]
        struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

        /// One entry of the list spelling.
        #[derive(Deserialize)]
        struct Pair<'a> {
            #[serde(borrow)]
            name: Cow<'a, str>,
            #[serde(borrow)]
            value: Cow<'a, str>,
        }

        impl<'de: 'a, 'a> Visitor<'de> for DimensionsVisitor<'a> {
            type Value = MetricDimensions<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "metric dimensions: an object of names and values, or a list of {name, value}",
                )
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut dims = MetricDimensions::default();
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    match &*key {
                        FUNCTION_NAME | RESOURCE | EXECUTED_VERSION => {
                            let Text(value) = map.next_value::<Text<'de>>()?;
                            dims.set(&key, value);
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(dims)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut dims = MetricDimensions::default();
                while let Some(pair) = seq.next_element::<Pair<'de>>()? {
                    dims.set(&pair.name, pair.value);
                }
                Ok(dims)
            }
        }
        d.deserialize_any(DimensionsVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accounts_a_cross_account_alarms_metrics_name_are_read_in_both_spellings() {
        let configuration = r#"[{"id":"e1","expression":"m1"},{"id":"m1","accountId":"222222222222","metricStat":{"metric":{"namespace":"AWS/Lambda","name":"Errors","dimensions":{"FunctionName":"pay","Resource":"pay:live"}}}}]"#;
        assert_eq!(metric_accounts(configuration), vec!["222222222222"]);
        let trigger =
            r#"{"Metrics":[{"Id":"m1","AccountId":"333333333333","MetricStat":{}},{"Id":"m2"}]}"#;
        assert_eq!(metric_accounts(trigger), vec!["333333333333"]);
        assert!(metric_accounts(r#"{"Dimensions":[]}"#).is_empty());
        assert!(metric_accounts("[]").is_empty());
    }

    fn dims(pairs: &[(&'static str, &'static str)]) -> MetricDimensions<'static> {
        MetricDimensions::of(pairs.iter().copied())
    }

    fn alias(function: &str, alias: &str, version: Option<&str>) -> Watched {
        Watched::Alias(WatchedAlias {
            function: function.into(),
            alias: alias.into(),
            version: version.map(str::to_string),
        })
    }

    #[test]
    fn a_per_alias_metric_names_its_function_and_alias() {
        let m = [dims(&[("FunctionName", "pay"), ("Resource", "pay:live")])];
        assert_eq!(watched(&m), alias("pay", "live", None));
    }

    #[test]
    fn metric_math_mixing_a_functions_metrics_names_that_function_and_alias() {
        // Expressions have no dimensions and are not passed; a function-level metric (no
        // Resource) of the same function agrees with the per-alias one.
        let m = [
            dims(&[("FunctionName", "pay"), ("Resource", "pay:live")]),
            dims(&[("FunctionName", "pay")]),
            dims(&[("Resource", "pay:live"), ("ExecutedVersion", "7")]),
        ];
        assert_eq!(watched(&m), alias("pay", "live", Some("7")));
    }

    #[test]
    fn two_functions_in_one_alarm_are_named_in_the_reason() {
        let m = [
            dims(&[("FunctionName", "pay"), ("Resource", "pay:live")]),
            dims(&[("FunctionName", "ship"), ("Resource", "ship:live")]),
        ];
        let w = watched(&m);
        assert_eq!(
            w.alias().expect_err("two functions"),
            "the alarm's metrics name two functions, pay and ship: a fleet trigger acts on one"
        );
    }

    #[test]
    fn two_aliases_or_two_versions_are_refused() {
        let aliases = [
            dims(&[("Resource", "pay:live")]),
            dims(&[("Resource", "pay:beta")]),
        ];
        assert!(matches!(
            watched(&aliases),
            Watched::Two { what: "alias", .. }
        ));
        let versions = [
            dims(&[("Resource", "pay:live"), ("ExecutedVersion", "3")]),
            dims(&[("Resource", "pay:live"), ("ExecutedVersion", "4")]),
        ];
        assert!(matches!(
            watched(&versions),
            Watched::Two {
                what: "version",
                ..
            }
        ));
    }

    #[test]
    fn no_metrics_no_function_no_alias_each_say_which() {
        assert_eq!(watched(&[]), Watched::NoMetrics);
        assert!(watched(&[])
            .alias()
            .expect_err("none")
            .contains("composite"));
        let other = [dims(&[("QueueName", "q")])];
        assert_eq!(watched(&other), Watched::NoFunction);
        let function_only = [dims(&[("FunctionName", "pay")])];
        assert_eq!(
            watched(&function_only),
            Watched::NoAlias {
                function: "pay".into()
            }
        );
        // A version's metric (`pay:3`) and `$LATEST` name no alias.
        let version = [dims(&[("FunctionName", "pay"), ("Resource", "pay:3")])];
        assert!(matches!(watched(&version), Watched::NoAlias { .. }));
        let latest = [dims(&[("Resource", "pay:$LATEST")])];
        assert!(matches!(watched(&latest), Watched::NoAlias { .. }));
    }

    #[test]
    fn a_metric_contradicting_itself_or_latest_as_version_is_refused() {
        let m = [dims(&[("FunctionName", "pay"), ("Resource", "ship:live")])];
        assert!(matches!(watched(&m), Watched::Mismatch { .. }));
        let m = [dims(&[
            ("Resource", "pay:live"),
            ("ExecutedVersion", "$LATEST"),
        ])];
        assert_eq!(watched(&m), Watched::NotAVersion("$LATEST".into()));
    }

    #[test]
    fn both_spellings_of_dimensions_read_the_same() {
        let object: MetricDimensions = serde_json::from_str(
            r#"{"FunctionName": "pay", "Resource": "pay:live", "Other": {"x": 1}}"#,
        )
        .expect("object");
        let list: MetricDimensions = serde_json::from_str(
            r#"[{"value": "pay", "name": "FunctionName"}, {"name": "Resource", "value": "pay:live"}, {"name": "Other", "value": "x"}]"#,
        )
        .expect("list");
        assert_eq!(object, list);
        assert_eq!(watched([&object]), alias("pay", "live", None));
        assert!(serde_json::from_str::<MetricDimensions>(r#"{"FunctionName": 3}"#).is_err());
    }
}
