"""The benchmark harness itself (`make bench` does not run in `make test`, so these keep it
honest): the Python reference decides every catalog event as the guard does and refuses to
time a wrong verdict, its rounds (and json.loads alone) time every transport, and the
same-seconds ratio is each round's Python time over the Rust time of the round just before
it."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))

import reference  # noqa: E402
import report  # noqa: E402


def test_the_reference_decides_every_catalog_event_as_the_guard_does():
    policy = reference.load_policy()
    reference.check(policy)
    expected = json.loads((reference.EVENTS / "expected.json").read_text())
    verdicts = {
        file: reference.decide_or_reject(policy, (reference.EVENTS / file).read_bytes())
        for file in expected
    }
    # The benchmarked events, and the ones the first reference got wrong: a replayed alarm is
    # only planned, an alarm no trigger names is ignored (not "no action").
    assert set(reference.TRANSPORTS.values()) <= set(verdicts)
    alarm = verdicts["eventbridge-alarm.json"]
    assert {k: alarm[k] for k in ("outcome", "action", "target")} == {
        "outcome": "act",
        "action": "rollback-alias",
        "target": "orders-ai",
    }
    # What the guard will judge when it acts, built as the Rust decision builds it.
    assert "within the last 1440 minutes (guard.blame_window_minutes)" in alarm["judgement"]
    assert verdicts["eventbridge-observe.json"]["outcome"] == "observe"
    assert verdicts["cloudtrail-update-alias.json"]["outcome"] == "no-action"
    assert verdicts["bad-cloudtrail-failed-call.json"]["outcome"] == "rejected"
    assert verdicts["eventbridge-replayed.json"]["outcome"] == "dry-run"
    assert verdicts["eventbridge-unmatched-alarm.json"]["outcome"] == "ignored"
    assert verdicts["bad-truncated.json"]["outcome"] == "rejected"
    assert verdicts["schedule.json"]["outcome"] == "no-action"


@pytest.mark.parametrize(
    "mode, outcome", [("ignore", "ignored"), ("act", "act"), ("dry-run", "dry-run")]
)
def test_the_reference_acts_on_a_replay_as_on_replay_says(mode, outcome):
    policy = reference.load_policy()
    policy["guard"]["on_replay"] = mode
    replayed = (reference.EVENTS / "eventbridge-replayed.json").read_bytes()
    assert reference.decide(policy, replayed)["outcome"] == outcome


def test_the_reference_observes_as_the_guard_or_trigger_says_and_requests_still_act():
    policy = reference.load_policy()
    policy["guard"]["mode"] = "observe"
    alarm = (reference.EVENTS / "eventbridge-alarm.json").read_bytes()
    observed = reference.decide(policy, alarm)
    assert observed["outcome"] == "observe"
    assert observed["judgement"].endswith("changes nothing.")
    request = (reference.EVENTS / "request-rollback.json").read_bytes()
    assert reference.decide(policy, request)["outcome"] == "act"
    # A trigger's own mode wins over the guard's.
    policy["trigger"][0]["mode"] = "act"
    assert reference.decide(policy, alarm)["outcome"] == "act"


def test_the_reference_refuses_to_time_a_verdict_the_catalog_does_not_expect():
    policy = reference.load_policy()
    wrong = copy.deepcopy(policy)
    for trigger in wrong["trigger"]:
        trigger["target"] = "someone-else"
    wrong["targets"]["someone-else"] = {"name": "someone-else"}
    with pytest.raises(AssertionError):
        reference.check(wrong)


@pytest.mark.parametrize("mode", ["--round", "--loads"])
def test_a_round_of_the_reference_times_every_transport(mode):
    out = subprocess.run(
        [sys.executable, str(BENCH / "reference.py"), mode],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out)
    assert set(result) == set(reference.TRANSPORTS)
    # Nanoseconds per event: more than nothing, less than a millisecond.
    assert all(0 < ns < 1e6 for ns in result.values()), result


def test_the_same_seconds_ratio_pairs_each_python_round_with_the_rust_round_before_it(
    monkeypatch,
):
    calls = []
    rust_rounds = iter([{"a": 1.0, "b": 2.0}, {"a": 2.0, "b": 1.0}, {"a": 4.0, "b": 4.0}])
    python_rounds = iter([{"a": 10.0, "b": 30.0}, {"a": 30.0, "b": 10.0}, {"a": 20.0, "b": 8.0}])
    loads_rounds = iter([{"a": 5.0, "b": 3.0}, {"a": 6.0, "b": 5.0}, {"a": 4.0, "b": 4.0}])

    def run_json(*command):
        if command[0] == str(report.DECIDE_LOOP):
            calls.append("rust")
            return next(rust_rounds)
        if command[1:] == ("bench/reference.py", "--round"):
            calls.append("python")
            return next(python_rounds)
        assert command[1:] == ("bench/reference.py", "--round", "--loads"), command
        calls.append("loads")
        return next(loads_rounds)

    monkeypatch.setattr(report, "run_json", run_json)
    monkeypatch.setattr(report, "ROUNDS", 3)
    rounds = report.same_seconds_rounds("python")
    assert calls == ["rust", "python", "loads"] * 3
    # Per transport, each round's ratio, sorted; the median is the middle one.
    ratios = report.ratios(rounds, "python", "rust")
    assert ratios == {"a": [5.0, 10.0, 15.0], "b": [2.0, 10.0, 15.0]}
    assert report.median(ratios["b"]) == 10.0
    assert report.ratios(rounds, "loads", "python") == {
        "a": [0.2, 0.2, 0.5],
        "b": [0.1, 0.5, 0.5],
    }
    assert report.median([3.0, 1.0, 2.0]) == 2.0


def edited(file, change):
    event = json.loads((reference.EVENTS / file).read_text())
    change(event)
    return json.dumps(event).encode()


@pytest.mark.parametrize(
    "raw",
    [
        # Each is rejected by the guard too (lib/tests/suite/intake.rs and triggers.rs).
        edited("eventbridge-alarm.json", lambda e: e.update(resources=[])),
        edited("eventbridge-alarm.json", lambda e: e.update(resources=e["resources"] * 2)),
        edited("schedule.json", lambda e: e.update(source="my.app")),
        edited("lambda-action-alarm.json", lambda e: e.update(source="aws.events")),
        edited("request-rollback.json", lambda e: e["detail"].update(action="delete-function")),
    ],
)
def test_the_reference_rejects_what_the_guard_rejects_beyond_the_catalog(raw):
    policy = reference.load_policy()
    assert reference.decide_or_reject(policy, raw)["outcome"] == "rejected"
