//! The library's integration tests, one module per subject, linked into one test binary
//! (each test binary links the whole AWS SDK; one keeps the build small and fast).

mod catalog;
mod claims;
mod codedeploy;
mod codedeploy_mocks;
mod disable_ai;
mod docs;
mod environment;
mod fleet;
mod grants_denied;
mod insight_in_guard;
mod insight_mocks;
mod intake;
mod intake_custom;
mod judgement;
mod judgement_holds;
mod lambda_mocks;
mod operator;
mod operator_denied;
mod organisation;
mod pipeline;
mod policy;
mod protect;
mod reenable;
mod robustness;
mod safety_review;
mod stand_down;
mod support;
mod triggers;
