//! End-to-end tests against the local emulators, one module per subject, linked into one
//! test binary (each test binary links the whole AWS SDK; one keeps the build small).

mod bad_day;
mod cargo_lambda;
mod catalog_replay;
mod disable_ai;
mod elsewhere;
mod fast_lane;
mod fleet;
mod insight;
mod judgement;
mod organisation;
mod policy_source;
mod reenable;
mod rollback;
mod safety_review;
mod schedule;
mod stand_down;
