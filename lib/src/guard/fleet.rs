//! The every-minute check for fleet triggers (`target = "from-alarm"`). Their targets are not
//! in the policy: they are the function aliases the matched alarms name. The alarms are read
//! once, with their dimensions; only a function one of them calls for is looked at (its tags
//! read, once): an alarm in ALARM or just out of it under a ladder (an escalation due, or to
//! cancel), or one blind too long. A function that did not opt in is passed over in silence.

use crate::fleet::target_of;
use crate::ports::AlarmStatus;
use crate::report::{Outcome, Report};
use crate::transition::AlarmState;
use crate::watched::WatchedAlias;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

use super::sweep::MUTED_GAP;
use super::Guard;

impl Guard {
    pub(super) async fn sweep_fleet(&self, now: DateTime<Utc>) -> Vec<Report> {
        let mut steps = Vec::new();
        let (alarms, failures) = crate::fleet::read_alarms(
            &self.policy,
            &self.home.account,
            self.ports.alarms.as_ref(),
            &self.retry,
        )
        .await;
        steps.extend(failures.into_iter().map(|why| {
            let mut r = Report::rejected(why);
            r.outcome = Outcome::Failed;
            r
        }));
        let mut by_alias: BTreeMap<(String, String), Vec<AlarmStatus>> = BTreeMap::new();
        for alarm in alarms {
            // An alarm that names no single alias is rejected when it fires; `guard targets`
            // lists it.
            if let Ok(w) = alarm.watched.alias() {
                let key = (w.function.clone(), w.alias.clone());
                by_alias.entry(key).or_default().push(alarm);
            }
        }
        for ((function, alias), alarms) in by_alias {
            let ladder = alarms.iter().any(|a| {
                self.policy
                    .trigger_for(&a.name, &self.home.account)
                    .is_some_and(|t| t.actions.len() > 1)
            });
            let escalating = ladder
                && alarms
                    .iter()
                    .any(|a| a.state == AlarmState::Alarm || now - a.since <= MUTED_GAP);
            if !escalating && !self.may_be_blind(&alarms, now) {
                continue;
            }
            let mut named = target_of(&WatchedAlias {
                function,
                alias,
                version: None,
            });
            named.account = Some(self.home.account.clone());
            let (target, tags) = match self.opted_in(&named).await {
                Ok(opted_in) => opted_in,
                Err((Outcome::Ignored, _)) => continue,
                Err((_, why)) => {
                    steps.push(Report::failed_on(&named, why));
                    continue;
                }
            };
            let remembered = match self.remember(&target).await {
                Ok(r) => r,
                Err(why) => {
                    steps.push(Report::failed_on(&target, why));
                    continue;
                }
            };
            steps.extend(self.warn_blind(&target, &alarms, &remembered, now).await);
            let due = remembered.now().escalation.filter(|e| e.due <= now);
            if let Some(pending) = due.filter(|_| escalating) {
                if let Some(mut r) = self
                    .escalate_with(&target, &tags, &remembered, pending, now)
                    .await
                {
                    self.announce(&mut r).await;
                    steps.push(r);
                }
            }
        }
        steps
    }
}
