//! CloudWatch as the operator's commands change it, in memory: the alarms put (with their
//! tags), deleted, and the metric data a test says a function alias has.

use super::lock;
use crate::ports::{AlarmSetup, PortError};
use crate::protect::{AlarmSpec, LambdaMetric};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A metric of a function alias: (function, alias, metric name, statistic).
type MetricKey = (String, String, String, String);

#[derive(Default)]
pub struct FakeAlarmSetup {
    alarms: Mutex<BTreeMap<String, AlarmSpec>>,
    /// Alarms of that name someone else made: tags as they are.
    others: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    /// Values by (function, alias, metric name, stat).
    data: Mutex<BTreeMap<MetricKey, Vec<f64>>>,
    calls: Mutex<Vec<String>>,
}

impl FakeAlarmSetup {
    /// `function:alias`'s metric `name` (statistic `stat`) has these values.
    pub fn set_data(&self, function: &str, alias: &str, name: &str, stat: &str, values: &[f64]) {
        lock(&self.data).insert(
            (function.into(), alias.into(), name.into(), stat.into()),
            values.to_vec(),
        );
    }

    /// An alarm someone else made (in place of one of that name), with these tags.
    pub fn set_other(&self, name: &str, tags: BTreeMap<String, String>) {
        lock(&self.alarms).remove(name);
        lock(&self.others).insert(name.into(), tags);
    }

    /// The alarms put and not deleted, by name.
    pub fn alarms(&self) -> BTreeMap<String, AlarmSpec> {
        lock(&self.alarms).clone()
    }

    /// Every call, `Operation target`, in order.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }
}

#[async_trait]
impl AlarmSetup for FakeAlarmSetup {
    async fn put_alarm(&self, spec: &AlarmSpec) -> Result<(), PortError> {
        lock(&self.calls).push(format!("PutMetricAlarm {}", spec.name));
        lock(&self.others).remove(&spec.name);
        lock(&self.alarms).insert(spec.name.clone(), spec.clone());
        Ok(())
    }

    async fn alarm_tags(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, PortError> {
        if let Some(tags) = lock(&self.others).get(name) {
            return Ok(Some(tags.clone()));
        }
        Ok(lock(&self.alarms).get(name).map(|a| a.tags.clone()))
    }

    async fn delete_alarms(&self, names: &[String]) -> Result<(), PortError> {
        lock(&self.calls).push(format!("DeleteAlarms {}", names.join(",")));
        let mut alarms = lock(&self.alarms);
        let mut others = lock(&self.others);
        for name in names {
            alarms.remove(name);
            others.remove(name);
        }
        Ok(())
    }

    async fn lambda_metric(&self, m: &LambdaMetric) -> Result<Vec<f64>, PortError> {
        lock(&self.calls).push(format!(
            "GetMetricData {}:{} {}",
            m.function, m.alias, m.name
        ));
        Ok(lock(&self.data)
            .get(&(
                m.function.clone(),
                m.alias.clone(),
                m.name.clone(),
                m.stat.clone(),
            ))
            .cloned()
            .unwrap_or_default())
    }
}
