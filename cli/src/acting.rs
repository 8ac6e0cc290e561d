//! Where a command acts and with what: the credentials' account or a member's through the
//! policy's role, the guard the commands that act through it run, the policy, who runs it.

use rollback_guard::operator;
use rollback_guard::ports::SystemClock;
use rollback_guard::retry::RetryPolicy;
use rollback_guard::{adapters, Guard, Policy};

/// The ports a command acts with, and where.
pub(crate) struct Acting {
    pub(crate) ports: rollback_guard::Ports,
    /// The account they act in.
    pub(crate) account: String,
    /// The credentials' own account.
    pub(crate) home: String,
    /// The configuration that acts in `account` (a member's: its role's credentials).
    pub(crate) config: adapters::SdkConfig,
}

impl Acting {
    /// `--account A` when it is not the credentials' own account, for the commands people are
    /// told to run next.
    pub(crate) fn account_flag(&self) -> String {
        if self.account == self.home {
            String::new()
        } else {
            format!(" --account {}", self.account)
        }
    }
}

/// The ports acting in `account` (default: the credentials' own account): another account of
/// the organisation through the policy's `guard.operator_role` (else its `guard.member_role`);
/// the state table stays the guard's own.
pub(crate) async fn ports_in(
    policy: Option<&Policy>,
    account: Option<&str>,
) -> Result<Acting, String> {
    let config = adapters::sdk_config().await;
    let ports = adapters::aws_ports(&config);
    let home = adapters::home(&config).await?;
    let account = account.unwrap_or(&home.account).to_string();
    if account == home.account {
        return Ok(Acting {
            ports,
            account,
            home: home.account,
            config,
        });
    }
    let policy = policy.ok_or(
        "--account needs --policy: its guard.operator_role (or member_role) reaches the account",
    )?;
    let role = policy.guard.operator_role_in(&account).ok_or_else(|| {
        format!(
            "the policy may not act in account {account} (guard.accounts, and guard.operator_role or guard.member_role)"
        )
    })?;
    let member_config = adapters::AssumeRoleMembers::new(&config, &home)
        .config(&account, &role)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Acting {
        ports: ports.in_account(adapters::account_ports(&member_config)),
        account,
        home: home.account,
        config: member_config,
    })
}

/// The ports acting on `target`: in `--account`, else in the account the policy names for the
/// target, else in the credentials' own.
pub(crate) async fn target_ports(
    policy: &Policy,
    target: &str,
    account: Option<String>,
) -> Result<Acting, String> {
    let named = policy.target(target).and_then(|t| t.account.clone());
    ports_in(Some(policy), account.or(named).as_deref()).await
}

/// The guard the commands that act through it run (`replay`, `reenable`), as the function
/// builds its own: where its credentials and region are (learned from STS, never from an
/// event), with insights, the whole of the policy's share of the quotas (one process), the
/// guard's state table `GUARD_STATE_TABLE` names (what the deployed guard remembers, and
/// taking turns with its instances), and an organisation's member accounts.
pub(crate) async fn acting_guard(policy: Policy) -> Result<Guard, String> {
    let config = adapters::sdk_config().await;
    let insights = adapters::guard_insights(&config).map_err(|e| e.to_string())?;
    let home = adapters::home(&config).await?;
    let share = rollback_guard::quota::Share::per_instance(&policy.guard, 1);
    let guard = Guard::new(policy, adapters::aws_ports(&config), home)
        .with_insights(insights)
        .with_quota_share(share);
    Ok(adapters::with_member_accounts(guard, &config))
}

/// A command that reads or writes what the guard remembers needs its state table: without
/// it the command would act on a memory of its own, which the deployed guard never sees.
pub(crate) fn needs_state_table(command: &str) -> Result<(), String> {
    match adapters::state_table() {
        Some(_) => Ok(()),
        None => Err(format!(
            "{command} reads and writes what the guard remembers: set {} to the guard's state table (the stack's StateTable output)",
            adapters::ENV_STATE_TABLE
        )),
    }
}

/// An operator's command acting with `ports` in `account`, run by `by`.
pub(crate) fn operating<'a>(
    ports: &'a rollback_guard::Ports,
    account: &'a str,
    by: &'a str,
) -> operator::Operating<'a> {
    operator::Operating {
        aliases: ports.aliases.as_ref(),
        functions: ports.functions.as_ref(),
        state: ports.state.as_ref(),
        clock: &SystemClock,
        retry: RetryPolicy::default(),
        account,
        by,
    }
}

/// Who runs the command: `--by`/`--requested-by`, else $USER.
pub(crate) fn who(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}

pub(crate) fn load_policy(path: Option<&str>) -> Result<Policy, String> {
    match path {
        Some(p) => Policy::from_file(p),
        None => Policy::from_env(),
    }
    .map_err(|e| e.to_string())
}
