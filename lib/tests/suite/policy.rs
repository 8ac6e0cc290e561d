//! Policy validation: each mistake is one clear error naming the field.

use rollback_guard::policy::{Action, AlarmPattern, Deployment, Policy, ReplayMode};

const GOOD: &str = r#"
[guard]
accounts = ["123456789012"]
notify_topic_arn = "arn:aws:sns:us-east-1:123456789012:rollback-guard"
cooldown_minutes = 15

[[target]]
name = "orders-ai"
function = "orders-ai"
alias = "live"

[[trigger]]
alarm = "orders-ai-*"
target = "orders-ai"
action = "rollback-alias"
"#;

fn error(toml: &str) -> String {
    Policy::from_toml(toml)
        .expect_err("must be refused")
        .to_string()
}

#[test]
fn a_good_policy_parses_with_defaults() {
    let p = Policy::from_toml(GOOD).expect("valid");
    assert_eq!(p.guard.cooldown_minutes, 15);
    assert_eq!(p.guard.event_bus, "default");
    assert_eq!(p.guard.on_replay, ReplayMode::DryRun);
    assert_eq!(p.targets[0].ai_flag, "AI_ENABLED");
    assert_eq!(
        p.triggers[0].alarm,
        Some(AlarmPattern::Prefix("orders-ai-".into()))
    );
    assert_eq!(p.triggers[0].actions, vec![Action::RollbackAlias]);
    assert_eq!(p.triggers[0].escalate_after_minutes, None);
    assert_eq!(
        p.trigger_for("orders-ai-latency", "123456789012")
            .map(|t| t.target.as_str()),
        Some("orders-ai")
    );
    assert!(p.trigger_for("payments", "123456789012").is_none());
}

#[test]
fn the_catalog_policy_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/policy.toml");
    Policy::from_file(path).expect("events/policy.toml is valid");
}

#[test]
fn unknown_target_is_named() {
    let e = error(&GOOD.replace("target = \"orders-ai\"", "target = \"orders\""));
    assert_eq!(
        e,
        "policy: trigger[0].target: unknown target `orders`; expected one of the [[target]] names or \"from-alarm\""
    );
}

#[test]
fn unknown_action_is_named() {
    let e = error(&GOOD.replace("rollback-alias", "rollback"));
    assert!(
        e.starts_with("policy: trigger[0].action: unknown action `rollback`"),
        "{e}"
    );
}

#[test]
fn bad_globs_are_named() {
    for bad in ["*-error", "orders*-x", "*", "orders**"] {
        let e = error(&GOOD.replace("orders-ai-*", bad));
        assert!(e.starts_with("policy: trigger[0].alarm:"), "{bad}: {e}");
    }
}

#[test]
fn negative_cooldown_is_named() {
    let e = error(&GOOD.replace("cooldown_minutes = 15", "cooldown_minutes = -5"));
    assert_eq!(
        e,
        "policy: guard.cooldown_minutes: expected a non-negative number of minutes, got -5"
    );
}

#[test]
fn duplicate_target_names_are_named() {
    let twice = GOOD.replace(
        "[[trigger]]",
        "[[target]]\nname = \"orders-ai\"\nfunction = \"other\"\nalias = \"live\"\n\n[[trigger]]",
    );
    assert_eq!(
        error(&twice),
        "policy: target[1].name: duplicate target name `orders-ai`"
    );
}

#[test]
fn bad_accounts_topics_and_modes_are_named() {
    assert!(error(&GOOD.replace("\"123456789012\"]", "\"1234\"]"))
        .starts_with("policy: guard.accounts:"));
    assert!(error(&GOOD.replace(
        "arn:aws:sns:us-east-1:123456789012:rollback-guard",
        "rollback-guard"
    ))
    .starts_with("policy: guard.notify_topic_arn:"));
    assert!(
        error(&GOOD.replace("cooldown_minutes = 15", "on_replay = \"sometimes\""))
            .starts_with("policy: guard.on_replay:")
    );
}

#[test]
fn rollback_without_an_alias_is_refused() {
    let e = error(&GOOD.replace("alias = \"live\"\n", ""));
    assert!(
        e.starts_with("policy: trigger[0].action: rollback-alias needs an alias"),
        "{e}"
    );
}

#[test]
fn unknown_fields_and_bad_toml_are_refused() {
    assert!(
        error(&GOOD.replace("cooldown_minutes", "cooldown")).contains("unknown field `cooldown`")
    );
    assert!(error("[guard\n").starts_with("policy: toml:"));
    assert_eq!(
        error("[guard]\n"),
        "policy: trigger: expected at least one [[trigger]]"
    );
}

#[test]
fn function_names_and_arns_are_checked() {
    assert!(
        error(&GOOD.replace("function = \"orders-ai\"", "function = \"orders ai\""))
            .starts_with("policy: target[0].function:")
    );
    Policy::from_toml(&GOOD.replace(
        "function = \"orders-ai\"",
        "function = \"arn:aws:lambda:us-east-1:123456789012:function:orders-ai\"",
    ))
    .expect("an unqualified ARN is fine");
}

const LADDER: &str = r#"
[[target]]
name = "support-ai"
function = "support-ai"
alias = "live"

[[trigger]]
alarm = "support-ai-*"
target = "support-ai"
action = ["disable-ai", "rollback-alias"]
escalate_after_minutes = 10
"#;

#[test]
fn a_ladder_parses_with_its_escalation_time() {
    let p = Policy::from_toml(LADDER).expect("valid");
    assert_eq!(
        p.triggers[0].actions,
        vec![Action::DisableAi, Action::RollbackAlias]
    );
    assert_eq!(p.triggers[0].escalate_after_minutes, Some(10));
    assert_eq!(
        p.triggers[0].fallback_after(Action::DisableAi),
        Some(Action::RollbackAlias)
    );
    assert_eq!(p.triggers[0].fallback_after(Action::RollbackAlias), None);
}

#[test]
fn ladder_mistakes_are_named() {
    let no_wait = LADDER.replace("escalate_after_minutes = 10\n", "");
    assert!(
        error(&no_wait).starts_with("policy: trigger[0].escalate_after_minutes: required"),
        "{}",
        error(&no_wait)
    );
    let zero = LADDER.replace("= 10", "= 0");
    assert!(
        error(&zero).starts_with("policy: trigger[0].escalate_after_minutes: expected a positive")
    );
    let single = LADDER.replace(r#"["disable-ai", "rollback-alias"]"#, r#""disable-ai""#);
    assert!(error(&single)
        .starts_with("policy: trigger[0].escalate_after_minutes: only meaningful with a ladder"));
    let twice = LADDER.replace(
        r#"["disable-ai", "rollback-alias"]"#,
        r#"["disable-ai", "disable-ai"]"#,
    );
    assert!(error(&twice).contains("appears twice"));
    let empty = LADDER.replace(r#"["disable-ai", "rollback-alias"]"#, "[]");
    assert!(error(&empty).starts_with("policy: trigger[0].action: expected an action"));
    let unknown = LADDER.replace(r#""rollback-alias"]"#, r#""reboot"]"#);
    assert!(error(&unknown).starts_with("policy: trigger[0].action: unknown action `reboot`"));
}

#[test]
fn disable_ai_needs_no_alias_but_rollback_does() {
    let no_alias = "[[target]]\nname='a'\nfunction='a'\n[[trigger]]\nalarm='a'\ntarget='a'\naction='disable-ai'\n";
    Policy::from_toml(no_alias).expect("disable-ai on $LATEST is fine");
    let ladder = no_alias.replace(
        "action='disable-ai'",
        "action=['disable-ai','rollback-alias']\nescalate_after_minutes=5",
    );
    assert!(error(&ladder).contains("rollback-alias needs an alias"));
}

const INSIGHT: &str = r#"
[guard]
request_sources = ["rollback-guard.cli"]

[[target]]
name = "support-ai"
function = "support-ai"
alias = "live"

[[trigger]]
insight_source = "rollback-guard.insight"
target = "support-ai"
action = "disable-ai"
"#;

#[test]
fn insight_triggers_default_to_the_targets_stream_and_risk_80() {
    let p = Policy::from_toml(INSIGHT).expect("valid");
    let m = p.triggers[0].insight.as_ref().expect("insight trigger");
    assert_eq!(
        (m.source.as_str(), m.stream_id.as_str(), m.min_risk),
        ("rollback-guard.insight", "support-ai", 80)
    );
    assert_eq!(p.guard.request_sources, vec!["rollback-guard.cli"]);
    assert!(p.accepts_insights_from("rollback-guard.insight"));
    assert!(!p.accepts_insights_from("my.scraper"));
}

#[test]
fn insight_trigger_mistakes_are_named() {
    let both = INSIGHT.replace("insight_source =", "alarm = \"a\"\ninsight_source =");
    assert!(error(&both).contains("either `alarm` or `insight_source`"));
    let neither = INSIGHT.replace("insight_source = \"rollback-guard.insight\"\n", "");
    assert!(error(&neither).starts_with("policy: trigger[0].alarm: expected `alarm`"));
    let risky = INSIGHT.replace(
        "target = \"support-ai\"\naction",
        "min_risk = 101\ntarget = \"support-ai\"\naction",
    );
    assert!(error(&risky).starts_with("policy: trigger[0].min_risk:"));
    let ladder = INSIGHT.replace(
        "action = \"disable-ai\"",
        "action = [\"disable-ai\", \"rollback-alias\"]\nescalate_after_minutes = 5",
    );
    assert!(error(&ladder).contains("needs an alarm to watch"));
    let stray = GOOD.replace(
        "action = \"rollback-alias\"",
        "action = \"rollback-alias\"\nmin_risk = 50",
    );
    assert!(error(&stray).contains("belong to insight triggers"));
}

const DEPLOYED_TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:guard-notifications";

fn deployment() -> Deployment {
    Deployment {
        notify_topic_arn: Some(DEPLOYED_TOPIC.into()),
        event_bus: Some("guard-audit".into()),
    }
}

#[test]
fn the_deployment_fills_in_the_topic_and_the_bus() {
    let without = GOOD.replace(
        "notify_topic_arn = \"arn:aws:sns:us-east-1:123456789012:rollback-guard\"\n",
        "",
    );
    let p = Policy::from_toml_deployed(&without, &deployment()).expect("valid");
    assert_eq!(p.guard.notify_topic_arn.as_deref(), Some(DEPLOYED_TOPIC));
    assert_eq!(p.guard.event_bus, "guard-audit");
    // The same values named in the policy are fine too.
    let same = GOOD
        .replace(
            "arn:aws:sns:us-east-1:123456789012:rollback-guard",
            DEPLOYED_TOPIC,
        )
        .replace(
            "cooldown_minutes = 15",
            "cooldown_minutes = 15\nevent_bus = \"guard-audit\"",
        );
    let p = Policy::from_toml_deployed(&same, &deployment()).expect("valid");
    assert_eq!(p.guard.notify_topic_arn.as_deref(), Some(DEPLOYED_TOPIC));
    // Without a deployment, nothing is filled in.
    let p = Policy::from_toml(&without).expect("valid");
    assert_eq!(p.guard.notify_topic_arn, None);
    assert_eq!(p.guard.event_bus, "default");
}

#[test]
fn a_policy_naming_another_topic_or_bus_than_the_deployment_is_refused() {
    let e = Policy::from_toml_deployed(GOOD, &deployment())
        .expect_err("another topic")
        .to_string();
    assert_eq!(
        e,
        "policy: guard.notify_topic_arn: `arn:aws:sns:us-east-1:123456789012:rollback-guard` \
         differs from the deployment's `arn:aws:sns:eu-west-1:123456789012:guard-notifications` \
         (GUARD_NOTIFY_TOPIC_ARN); leave the field out or name the same one"
    );
    let other_bus = GOOD
        .replace(
            "arn:aws:sns:us-east-1:123456789012:rollback-guard",
            DEPLOYED_TOPIC,
        )
        .replace(
            "cooldown_minutes = 15",
            "cooldown_minutes = 15\nevent_bus = \"default\"",
        );
    let e = Policy::from_toml_deployed(&other_bus, &deployment())
        .expect_err("another bus")
        .to_string();
    assert!(
        e.starts_with("policy: guard.event_bus: `default` differs from the deployment's `guard-audit` (GUARD_EVENT_BUS)"),
        "{e}"
    );
}

#[test]
fn a_missing_policy_file_given_as_a_path_names_the_path_not_the_variable() {
    let e = Policy::from_file("/nonexistent/policy.toml")
        .expect_err("must be refused")
        .to_string();
    assert!(
        e.starts_with("policy: /nonexistent/policy.toml: cannot read the policy file:"),
        "{e}"
    );
    assert!(!e.contains("GUARD_POLICY_FILE"), "{e}");
}

#[test]
fn from_alarm_is_reserved_for_fleet_triggers() {
    let named = error(&GOOD.replace("name = \"orders-ai\"", "name = \"from-alarm\""));
    assert_eq!(
        named,
        "policy: target[0].name: `from-alarm` is reserved for fleet triggers (the target read from the alarm)"
    );
    let insight = error(
        r#"
[[trigger]]
insight_source = "rollback-guard.insight"
target = "from-alarm"
action = "disable-ai"
"#,
    );
    assert!(
        insight
            .starts_with("policy: trigger[0].target: `from-alarm` reads the target from an alarm"),
        "{insight}"
    );
}

#[test]
fn a_policy_may_hold_fleet_triggers_alone() {
    let p = Policy::from_toml(
        r#"
[[trigger]]
alarm = "guarded-*"
target = "from-alarm"
action = ["disable-ai", "rollback-alias"]
escalate_after_minutes = 10
"#,
    )
    .expect("valid");
    assert!(p.targets.is_empty());
    assert!(p.triggers[0].from_alarm());
}

#[test]
fn a_member_role_needs_the_accounts_listed_and_names_them_with_a_placeholder() {
    let fleet = "\n[[trigger]]\nalarm = \"guarded-*\"\ntarget = \"from-alarm\"\naction = \"rollback-alias\"\n";
    let role = |role: &str, accounts: &str| {
        format!("[guard]\n{accounts}\nmember_role = \"{role}\"\n{fleet}")
    };
    let listed = "accounts = [\"123456789012\", \"222222222222\"]";
    let p = Policy::from_toml(&role(
        "arn:aws:iam::{account}:role/rollback-guard-member",
        listed,
    ))
    .expect("valid");
    assert_eq!(
        p.guard.member_role_in("222222222222").as_deref(),
        Some("arn:aws:iam::222222222222:role/rollback-guard-member")
    );
    assert_eq!(p.guard.member_role_in("444444444444"), None, "unlisted");
    let unlisted = error(&role("arn:aws:iam::{account}:role/m", ""));
    assert!(
        unlisted.starts_with("policy: guard.member_role: needs guard.accounts"),
        "{unlisted}"
    );
    for bad in [
        "arn:aws:iam::222222222222:role/m",
        "arn:aws:iam::{account}:user/m",
        "arn:aws:sts::{account}:role/m",
        "arn:aws:iam::{account}:role/",
    ] {
        let e = error(&role(bad, listed));
        assert!(e.starts_with("policy: guard.member_role:"), "{bad}: {e}");
    }
    let elsewhere = error(&format!(
        "[guard]\n{listed}\n[[target]]\nname = \"t\"\nfunction = \"f\"\naccount = \"333333333333\"\n{fleet}"
    ));
    assert_eq!(
        elsewhere,
        "policy: target[0].account: account 333333333333 is not in guard.accounts"
    );
}

#[test]
fn the_judgements_settings_default_and_each_mistake_names_its_field() {
    use rollback_guard::policy::GuardMode;
    let p = Policy::from_toml(GOOD).expect("valid");
    assert_eq!(p.guard.blame_window_minutes, 1440);
    assert_eq!(p.guard.max_rollbacks_per_hour, 20);
    assert_eq!(p.guard.mode, GuardMode::Act);
    assert_eq!(p.targets[0].floor, None);
    assert_eq!(p.triggers[0].blame_window(&p.guard).num_minutes(), 1440);

    let set = GOOD
        .replace(
            "cooldown_minutes = 15\n",
            "cooldown_minutes = 15\nblame_window_minutes = 60\nmax_rollbacks_per_hour = 5\nmode = \"observe\"\n",
        )
        .replace("alias = \"live\"\n", "alias = \"live\"\nfloor = 3\n")
        .replace(
            "action = \"rollback-alias\"\n",
            "action = \"rollback-alias\"\nblame_window_minutes = 240\nmode = \"act\"\n",
        );
    let p = Policy::from_toml(&set).expect("valid");
    assert_eq!(
        (
            p.guard.blame_window_minutes,
            p.guard.max_rollbacks_per_hour,
            p.guard.mode
        ),
        (60, 5, GuardMode::Observe)
    );
    assert_eq!(p.targets[0].floor, Some(3));
    assert_eq!(p.triggers[0].blame_window(&p.guard).num_minutes(), 240);
    assert_eq!(p.triggers[0].mode(&p.guard), GuardMode::Act);

    let guard = |line: &str| error(&GOOD.replace("cooldown_minutes = 15\n", line));
    assert!(guard("blame_window_minutes = 0\n")
        .starts_with("policy: guard.blame_window_minutes: expected 1 to 43200 minutes"));
    assert!(guard("blame_window_minutes = 43201\n")
        .starts_with("policy: guard.blame_window_minutes: expected 1 to 43200 minutes"));
    assert!(guard("max_rollbacks_per_hour = 0\n")
        .starts_with("policy: guard.max_rollbacks_per_hour: expected 1 to 10000"));
    assert!(guard("mode = \"shadow\"\n").starts_with("policy: guard.mode: unknown mode `shadow`"));
    let floor = error(&GOOD.replace("alias = \"live\"\n", "alias = \"live\"\nfloor = 0\n"));
    assert!(
        floor.starts_with("policy: target[0].floor: expected a published version number"),
        "{floor}"
    );
    let trigger = |line: &str| {
        error(&GOOD.replace(
            "action = \"rollback-alias\"\n",
            &format!("action = \"rollback-alias\"\n{line}"),
        ))
    };
    assert!(trigger("blame_window_minutes = -5\n")
        .starts_with("policy: trigger[0].blame_window_minutes: expected 1 to 43200"));
    assert!(trigger("mode = \"Observe\"\n").starts_with("policy: trigger[0].mode: unknown mode"));
}

#[test]
fn the_policy_comes_from_exactly_one_place_and_a_newer_version_is_refused() {
    use rollback_guard::policy::PolicySource;
    let vars = |set: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            set.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    };
    assert_eq!(
        PolicySource::from_vars(vars(&[("GUARD_POLICY_SSM", "/guard/policy")])),
        Ok(PolicySource::Ssm("/guard/policy".into()))
    );
    assert_eq!(
        PolicySource::from_vars(vars(&[("GUARD_POLICY_S3", "s3://cfg/guard/policy.toml")])),
        Ok(PolicySource::S3 {
            bucket: "cfg".into(),
            key: "guard/policy.toml".into()
        })
    );
    let bad_uri = PolicySource::from_vars(vars(&[("GUARD_POLICY_S3", "cfg/policy.toml")]))
        .expect_err("not an s3 URI")
        .to_string();
    assert!(bad_uri.contains("expected s3://BUCKET/KEY"), "{bad_uri}");
    let two = PolicySource::from_vars(vars(&[
        ("GUARD_POLICY", "[guard]"),
        ("GUARD_POLICY_SSM", "/guard/policy"),
    ]))
    .expect_err("two sources")
    .to_string();
    assert!(
        two.contains("GUARD_POLICY, GUARD_POLICY_SSM are all set"),
        "{two}"
    );
    let none = PolicySource::from_vars(vars(&[]))
        .expect_err("no source")
        .to_string();
    assert!(
        none.contains("GUARD_POLICY_SSM") && none.contains("GUARD_POLICY_S3"),
        "{none}"
    );

    assert!(Policy::from_toml(&format!("version = 1\n{GOOD}")).is_ok());
    let newer = error(&format!("version = 2\n{GOOD}\n[guard.future]\nx = 1\n"));
    assert!(
        newer.starts_with(
            "policy: version: this policy is version 2; this guard understands version 1"
        ),
        "{newer}"
    );
    assert!(error(&format!("version = \"one\"\n{GOOD}")).starts_with("policy: version: expected 1"));
}
