//! The whole event catalog through the guard on the sample account (what `make replay`
//! prints as a table): every outcome as `events/expected.json` records it.

use guard_e2e::{provision_sample, replay_catalog, Emulator};

#[tokio::test]
async fn every_catalog_event_replays_as_recorded() {
    let emu = Emulator::connect().await;
    provision_sample(&emu).await.expect("sample account");
    let rows = replay_catalog(&emu).await.expect("replay");
    assert!(rows.len() >= 29, "{} events", rows.len());
    let mismatches: Vec<String> = rows
        .iter()
        .filter(|r| r.expected != r.got)
        .map(|r| {
            format!(
                "{}: expected {}, got {} ({})",
                r.file, r.expected, r.got, r.reason
            )
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // The judgement's events are held for their own reasons, not another's.
    for (file, needle) in [
        (
            "eventbridge-old-release.json",
            "version 3 went live at 2026-11-06T09:00:00.000Z (CloudTrail: UpdateAlias by arn:aws:sts::123456789012:assumed-role/deployer/pipeline), more than 1440 minutes ago",
        ),
        (
            "eventbridge-below-floor.json",
            "would go below the floor, version 3 (tag rollback-guard:floor)",
        ),
        ("eventbridge-observe.json", "would be done: alias live"),
    ] {
        let row = rows.iter().find(|r| r.file == file).expect(file);
        assert!(row.reason.contains(needle), "{file}: {}", row.reason);
    }
}
