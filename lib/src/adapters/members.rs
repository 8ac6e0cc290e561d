//! Clients in member accounts (`guard.member_role`): the role assumed with STS from the
//! guard's own credentials, one credentials cache per account (the SDK's shared identity cache
//! keeps 64 providers and evicts arbitrarily beyond: a guard of hundreds of accounts would
//! assume roles again and again), every client on the guard's one HTTP client (about 40 KB an
//! account instead of about 7× that).

use crate::home::Home;
use crate::ports::{AccountPorts, MemberAccounts, PortError};
use async_trait::async_trait;
use aws_config::identity::IdentityCache;
use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_credential_types::provider::{self, future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Role chaining (the guard's own credentials are a role's) caps a session at one hour.
const SESSION_LENGTH: Duration = Duration::from_secs(3600);
/// Credentials this close to their expiry are renewed before use.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// Member accounts' clients, assuming their role from the guard's own configuration.
pub struct AssumeRoleMembers {
    base: SdkConfig,
    session_name: String,
    assume_role_calls: Arc<AtomicUsize>,
}

impl AssumeRoleMembers {
    /// Sessions are named after the guard's own account, so a member's CloudTrail says who.
    pub fn new(base: &SdkConfig, home: &Home) -> Self {
        Self {
            base: base.clone(),
            session_name: format!("rollback-guard-{}", home.account),
            assume_role_calls: Arc::default(),
        }
    }

    /// How many times a role was assumed (each an STS `AssumeRole`).
    pub fn assume_role_calls(&self) -> usize {
        self.assume_role_calls.load(Ordering::SeqCst)
    }

    /// The configuration that acts in `account` as `role`, its credentials already obtained.
    pub async fn config(&self, account: &str, role: &str) -> Result<SdkConfig, PortError> {
        let provider = AssumeRoleProvider::builder(role)
            .session_name(&self.session_name)
            .session_length(SESSION_LENGTH)
            .configure(&self.base)
            .build()
            .await;
        let credentials = RoleCredentials {
            provider,
            cached: tokio::sync::Mutex::new(None),
            calls: self.assume_role_calls.clone(),
        };
        // Assumed now: a role that cannot be is an error before any action, naming both.
        credentials.provide_credentials().await.map_err(|e| {
            PortError::Other(format!(
                "cannot assume role {role} in account {account}: {}",
                aws_sdk_lambda::error::DisplayErrorContext(&e)
            ))
        })?;
        Ok(self
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .identity_cache(IdentityCache::no_cache())
            .build())
    }
}

#[async_trait]
impl MemberAccounts for AssumeRoleMembers {
    async fn member(&self, account: &str, role: &str) -> Result<AccountPorts, PortError> {
        Ok(super::account_ports(&self.config(account, role).await?))
    }
}

/// A role's credentials, kept until shortly before they expire: the one cache of an account's
/// clients.
#[derive(Debug)]
struct RoleCredentials {
    provider: AssumeRoleProvider,
    cached: tokio::sync::Mutex<Option<Credentials>>,
    calls: Arc<AtomicUsize>,
}

impl ProvideCredentials for RoleCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.current())
    }
}

impl RoleCredentials {
    async fn current(&self) -> provider::Result {
        let mut cached = self.cached.lock().await;
        let fresh = |c: &&Credentials| {
            c.expiry()
                .is_none_or(|expiry| expiry > SystemTime::now() + RENEW_BEFORE)
        };
        if let Some(credentials) = cached.as_ref().filter(fresh) {
            return Ok(credentials.clone());
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        let credentials = self.provider.provide_credentials().await?;
        *cached = Some(credentials.clone());
        Ok(credentials)
    }
}
