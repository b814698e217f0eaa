//! The inference service: the gateway and the accounting around it, and how a process
//! builds it from its context (providers file, credits, provider keys from the settings
//! or the secret store, and when usage records are written).

use std::path::Path;
use std::sync::Arc;

use zerodb_domain::{Context, Deployment};

use crate::accounting::{Accounting, CreditPolicy, Hold, UsageRecord, Writes};
use crate::catalog::Provider;
use crate::gateway::Gateway;
use crate::provider::{ProviderClient, Providers};
use crate::stream::Tokens;
use crate::{Catalog, ProvidersFile};

/// When a call's usage record (and its cost) is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordWrites {
    /// Before the response ends (a stream's: before its last event). For Lambda, which
    /// may be frozen as soon as it has answered, so nothing may be left running.
    Inline,
    /// On a task of its own, so no call waits for a synced write (zerodb-local, a
    /// long-running process); `GET /api/v1/usage` and the credit check first wait for the
    /// account's writes in flight (`Accounting::written`), so a client still reads its own
    /// calls.
    Background,
}

/// The gateway and the accounting around it.
pub struct Inference {
    pub gateway: Gateway,
    pub accounting: Accounting,
    writes: RecordWrites,
    /// Whether a provider error may tell the client which variable or secret to set
    /// (zerodb-local, whose user is its operator); a deployment's clients get only the
    /// code and a plain message, the details going to the log.
    names_settings: bool,
}

impl Inference {
    pub fn new(gateway: Gateway, accounting: Accounting, writes: RecordWrites) -> Self {
        Inference {
            gateway,
            accounting,
            writes,
            names_settings: false,
        }
    }

    /// Lets provider errors name the variable or secret to set (zerodb-local).
    pub fn naming_settings(mut self, yes: bool) -> Self {
        self.names_settings = yes;
        self
    }

    pub fn names_settings(&self) -> bool {
        self.names_settings
    }

    /// Registers a record write of `account` in flight without waiting (a stream its
    /// client dropped); `None` when records are written inline, or see
    /// `Accounting::writing_now`.
    pub fn in_flight_now(&self, account: &str) -> Option<Writes> {
        match self.writes {
            RecordWrites::Inline => None,
            RecordWrites::Background => self.accounting.writing_now(account),
        }
    }

    /// The service over `ctx`'s table, with `catalog`'s providers keyed by `key_of`.
    pub fn build(
        ctx: &Context,
        catalog: Catalog,
        key_of: impl Fn(&Provider) -> Option<String>,
        credits: CreditPolicy,
        writes: RecordWrites,
    ) -> anyhow::Result<Self> {
        let providers = providers(&catalog, key_of)?;
        let accounting = Accounting::new(ctx.stores().table.clone(), ctx.clock().clone(), credits);
        Ok(Inference::new(
            Gateway::new(catalog, providers),
            accounting,
            writes,
        ))
    }

    /// Prices the call and writes its record, deducting the cost and releasing its hold.
    /// A failed write is logged, not returned: the client has its answer already (the
    /// hold then lapses at its expiry).
    pub async fn write_record(
        &self,
        account: String,
        record: UsageRecord,
        tokens: Tokens,
        hold: Option<Hold>,
    ) {
        self.write_record_in_flight(account, record, tokens, hold, None)
            .await
    }

    /// As `write_record`, with the in-flight mark already taken (`in_flight_now`).
    pub async fn write_record_in_flight(
        &self,
        account: String,
        mut record: UsageRecord,
        tokens: Tokens,
        hold: Option<Hold>,
        in_flight: Option<Writes>,
    ) {
        let cost = self
            .gateway
            .catalog()
            .resolve(&record.alias)
            .map(|r| r.alias.price.cost_micro(tokens.input, tokens.output))
            .unwrap_or(0);
        record.input_tokens = tokens.input;
        record.output_tokens = tokens.output;
        record.cost_micro = cost;
        // Taken before the response goes on, so a later usage read and a later call's
        // credit check of this account wait for the write.
        let held = match (self.writes, in_flight) {
            (RecordWrites::Inline, _) => None,
            (RecordWrites::Background, Some(w)) => Some(w),
            (RecordWrites::Background, None) => Some(self.accounting.writing(&account).await),
        };
        let accounting = self.accounting.clone();
        let write = async move {
            if let Err(e) = accounting.settle(&account, record, hold.as_ref()).await {
                tracing::error!(account = %account, error = %e, cost_micro = cost, "usage record not written");
            }
        };
        match held {
            None => write.await,
            Some(in_flight) => {
                tokio::spawn(async move {
                    write.await;
                    drop(in_flight);
                });
            }
        }
    }
}

/// One client per provider of the catalog, with the key `key_of` finds for it.
pub fn providers(
    catalog: &Catalog,
    key_of: impl Fn(&Provider) -> Option<String>,
) -> anyhow::Result<Providers> {
    let clients = catalog
        .providers()
        .map(|p| {
            ProviderClient::new(p.clone(), key_of(p)).map_err(|e| {
                anyhow::anyhow!("building the HTTP client of provider `{}`: {e}", p.name)
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Providers::new(clients))
}

/// The catalog: the built-in aliases, plus the providers file when one is named.
pub fn catalog(providers_file: Option<&Path>) -> anyhow::Result<Catalog> {
    match providers_file {
        None => Ok(Catalog::builtin()),
        Some(path) => {
            let file = ProvidersFile::read(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            Catalog::with_file(file).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
    }
}

/// The catalog from a providers file's text (the Lambda's `ZERODB_PROVIDERS_TOML`).
pub fn catalog_from_text(text: &str, origin: &str) -> anyhow::Result<Catalog> {
    let file = ProvidersFile::parse(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    Catalog::with_file(file).map_err(|e| anyhow::anyhow!("{origin}: {e}"))
}

/// The inference service of the process, from its settings: `ZERODB_PROVIDERS_TOML` (the
/// providers file inline) or `ZERODB_PROVIDERS` (its path), `ZERODB_CREDITS_USD`, and
/// provider keys from their variables or the secret store (`api_key_secret`,
/// `ZERODB_PROVIDER_KEYS_SECRET`). Records are written in the background locally and
/// before the response on Lambda.
pub async fn shared(ctx: &Context) -> anyhow::Result<Arc<Inference>> {
    ctx.service(|ctx| async move {
        let settings = ctx.settings();
        let mut problems = Vec::new();
        let credits = CreditPolicy::from_credits(settings.get("ZERODB_CREDITS_USD"))
            .map_err(|e| problems.push(e))
            .ok();
        let catalog = match settings
            .raw("ZERODB_PROVIDERS_TOML")
            .filter(|t| !t.trim().is_empty())
        {
            Some(text) => catalog_from_text(text, "ZERODB_PROVIDERS_TOML"),
            None => catalog(settings.get("ZERODB_PROVIDERS").map(Path::new)),
        }
        .map_err(|e| problems.push(e.to_string()))
        .ok();
        let (Some(credits), Some(catalog)) = (credits, catalog) else {
            anyhow::bail!("configuration: {}", problems.join("; "));
        };
        let keys = crate::keys::provider_keys(
            &catalog,
            settings,
            ctx.secrets().as_ref(),
            settings.get("ZERODB_PROVIDER_KEYS_SECRET"),
        )
        .await;
        let writes = match ctx.deployment() {
            // One long-running process: no call waits for its record's synced write.
            Deployment::Local => RecordWrites::Background,
            Deployment::Lambda => RecordWrites::Inline,
        };
        let inference = Inference::build(
            &ctx,
            catalog,
            |p| keys.get(&p.name).cloned(),
            credits,
            writes,
        )?
        .naming_settings(ctx.deployment() == Deployment::Local);
        Ok(Arc::new(inference))
    })
    .await
}
