//! rollback-guard: the core of a rollback guard for AWS Lambda.
//!
//! When a CloudWatch alarm that watches a deployed function goes into ALARM, the guard decides
//! from a declarative [`policy`] whether to roll the function's alias back, does it exactly
//! once, and tells people what it did.
//!
//! Reading order: [`transition`] (the one normalised event), [`intake`] (three transports into
//! it; [`watched`] reads the function alias an alarm's metrics name), [`policy`], [`home`]
//! (where the guard may act), [`fleet`] (opt-in by tag), [`decision`] (pure), [`rollback`]
//! (pure alias planning), [`codedeploy`] (living beside CodeDeploy), [`quota`] (the guard's share of AWS's API quotas), then [`guard`] (the pipeline over the [`ports`], a module per step;
//! the [`report`] they share), [`operator`] and [`targets`] (the CLI's commands), [`adapters`]
//! (AWS SDK) and [`fakes`] (in memory).

pub mod adapters;
pub mod ai;
pub mod codedeploy;
pub mod decision;
pub mod emf;
pub mod evaluate;
pub mod fakes;
pub mod flag;
pub mod fleet;
pub mod guard;
pub mod home;
pub mod insight;
pub mod intake;
pub mod judgement;
pub mod notify;
pub mod operator;
pub mod policy;
pub mod ports;
pub mod protect;
pub mod quota;
pub mod reenable;
pub mod report;
pub mod retry;
pub mod rollback;
pub mod state;
pub mod targets;
pub mod transition;
pub mod watched;

pub use decision::{decide, Decision, Mode};
pub use guard::{Guard, Outcome, Ports, Report};
pub use home::Home;
pub use policy::Policy;
pub use transition::Transition;
