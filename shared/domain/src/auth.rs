//! Accounts, API keys, access tokens and request budgets, over the `Table` port.
//!
//! Key design (one table):
//! - `ACCT#<account>` / `ACCOUNT`: the account, with `key_count`, its unrevoked keys
//!   (what the per-account key cap is checked against).
//! - `ACCT#<account>` / `KEY#<key id>`: a key as its account lists it.
//! - `APIKEY#<sha256 of key>` / `APIKEY`: the same key, found by its hash, so
//!   authenticating a request is one strongly consistent `GetItem` (a secondary index
//!   would be eventually consistent, letting a just-revoked key through).
//! - `RATE#<bucket>` / `<window start>`: request counters, expiring with `ttl` (see `rate`):
//!   one per key (half its hash) and one per account (its id).
//!
//! A key's secret exists only in the response that creates it; we keep its SHA-256 and a
//! short display prefix.
//!
//! Keys form a tree: each minted key records `created_by`, the key that minted it, and
//! `ancestors`, every key above it. Revoking a key revokes its whole subtree with it (see
//! [`AuthService::revoke_key`]), so authenticating stays one `GetItem` of the key itself,
//! with no walk up its ancestors; and minting checks, in the same transaction, that the
//! minting key and every key above it are unrevoked, so nothing can be added to a tree
//! once any key above the new one is revoked (a revoked key's tokens included).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::error::{At, AuthFailure, DomainError, Loc};
use crate::ids;
use crate::scope::{Permission, Scope, ScopeSet, Service};
use crate::store::{Condition, Item, Key, Query, Table, TxOp, Update, Value};

/// Expired and revoked key records are kept this long so callers get AUTH_002/AUTH_003
/// (not AUTH_001) for a while, then DynamoDB's TTL removes them.
const TOMBSTONE_SECS: i64 = 30 * 24 * 3600;
/// Longest key lifetime a caller may ask for (ten years).
pub const MAX_KEY_TTL_SECS: i64 = 10 * 365 * 24 * 3600;
/// Most scopes on one key.
pub const MAX_SCOPES: usize = 64;
/// Longest access-token lifetime.
pub const MAX_TOKEN_TTL_SECS: i64 = 24 * 3600;
/// Access-token lifetime when the caller names none.
pub const DEFAULT_TOKEN_TTL_SECS: i64 = 900;
/// Longest credential we will even hash; anything longer is not ours.
const MAX_CREDENTIAL_LEN: usize = 512;

/// What kind of credential a key is; the prefix of its secret says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// An account's root key (`sk_`), created with the account.
    Root,
    /// A key minted through the API (`sk_`).
    Scoped,
    /// A platform agent's key (`pa_`).
    Agent,
}

impl KeyKind {
    fn prefix(self) -> &'static str {
        match self {
            KeyKind::Root | KeyKind::Scoped => "sk_",
            KeyKind::Agent => "pa_",
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            KeyKind::Root => "root",
            KeyKind::Scoped => "scoped",
            KeyKind::Agent => "agent",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "root" => Some(KeyKind::Root),
            "scoped" => Some(KeyKind::Scoped),
            "agent" => Some(KeyKind::Agent),
            _ => None,
        }
    }
}

/// A key's secret, shown once. `Debug` never prints it.
pub struct KeySecret(String);

impl KeySecret {
    fn generate(kind: KeyKind) -> Self {
        // 43 base62 characters carry 256 random bits.
        KeySecret(format!("{}{}", kind.prefix(), ids::random_base62(43)))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The display prefix kept in storage: the type prefix and six characters.
    fn display_prefix(&self) -> String {
        self.0.chars().take(9).collect()
    }
}

impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySecret(***)")
    }
}

fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The hash a key is stored under, for anything shaped like one of our keys; anything
/// else is refused before it costs a storage call.
fn key_hash(secret: &str) -> Result<String, DomainError> {
    if secret.len() > MAX_CREDENTIAL_LEN
        || !(secret.starts_with("sk_") || secret.starts_with("pa_"))
    {
        return Err(DomainError::Unauthenticated(AuthFailure::Unknown));
    }
    Ok(sha256_hex(secret))
}

/// A key's rate-limit bucket: half its hash, which identifies it without revealing it.
fn rate_bucket(hash: &str) -> &str {
    &hash[..32]
}

/// A key as stored and listed (never with its secret).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub kind: KeyKind,
    pub prefix: String,
    pub scopes: ScopeSet,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The key that minted this one (none for root keys).
    pub created_by: Option<String>,
    /// Every key above this one, the root key first and `created_by` last (empty for a
    /// root key). Minting checks each is unrevoked, in the minting transaction.
    pub ancestors: Vec<String>,
    hash: String,
}

/// A key's state at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Expired => "expired",
            KeyStatus::Revoked => "revoked",
        }
    }
}

impl ApiKey {
    pub fn status(&self, now: i64) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|e| e <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }

    fn to_item(&self, key: Key) -> Item {
        let mut item = key.item();
        item.insert("id".into(), self.id.clone().into());
        item.insert("account_id".into(), self.account_id.clone().into());
        item.insert("name".into(), self.name.clone().into());
        item.insert("kind".into(), self.kind.as_str().into());
        item.insert("prefix".into(), self.prefix.clone().into());
        item.insert(
            "scopes".into(),
            Value::L(self.scopes.to_strings().into_iter().map(Value::S).collect()),
        );
        item.insert("created_at".into(), Value::int(self.created_at));
        item.insert("hash".into(), self.hash.clone().into());
        if let Some(e) = self.expires_at {
            item.insert("expires_at".into(), Value::int(e));
            // Expired keys answer AUTH_002 for a month, then the record goes.
            item.insert(crate::store::TTL.into(), Value::int(e + TOMBSTONE_SECS));
        }
        if let Some(by) = &self.created_by {
            item.insert("created_by".into(), by.clone().into());
        }
        if !self.ancestors.is_empty() {
            item.insert(
                ANCESTORS.into(),
                Value::L(self.ancestors.iter().cloned().map(Value::S).collect()),
            );
        }
        item
    }

    fn from_item(item: &Item) -> Result<Self, DomainError> {
        let s = |name: &str| -> Result<String, DomainError> {
            item.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    DomainError::Unexpected(anyhow::anyhow!("key record lacks '{name}'"))
                })
        };
        let scopes: Vec<String> = item
            .get("scopes")
            .and_then(Value::as_list)
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        Ok(ApiKey {
            id: s("id")?,
            account_id: s("account_id")?,
            name: s("name")?,
            kind: KeyKind::parse(&s("kind")?).ok_or_else(|| {
                DomainError::Unexpected(anyhow::anyhow!("key record has an unknown kind"))
            })?,
            prefix: s("prefix")?,
            scopes: ScopeSet::parse_all(&scopes).map_err(|e| DomainError::Unexpected(e.into()))?,
            created_at: item
                .get("created_at")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            expires_at: item.get("expires_at").and_then(Value::as_i64),
            revoked_at: item.get("revoked_at").and_then(Value::as_i64),
            created_by: item
                .get("created_by")
                .and_then(Value::as_str)
                .map(str::to_owned),
            ancestors: item
                .get(ANCESTORS)
                .and_then(Value::as_list)
                .unwrap_or_default()
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            hash: s("hash")?,
        })
    }
}

/// A validated key name: 1–128 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let n = s.chars().count();
        // Whitespace as JSON Schema's `\s` counts it plus U+0085, so the documented
        // pattern and this check agree.
        if s.chars().all(|c| c.is_whitespace() || c == '\u{feff}') {
            return Err("name must not be empty".into());
        }
        if n > 128 {
            return Err(format!("name is {n} characters; the limit is 128"));
        }
        Ok(KeyName(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who is calling, once their credential checks out.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account_id: String,
    /// The key behind the request (for a token, the key that minted it).
    pub key_id: String,
    pub scopes: ScopeSet,
    /// When the credential stops working.
    pub expires_at: Option<i64>,
    pub via_token: bool,
    /// The rate-limit bucket: the key's, shared by the tokens it mints.
    pub rate_bucket: String,
}

impl Principal {
    /// PERM_001 unless the scopes grant the operation.
    pub fn require(
        &self,
        service: Service,
        permission: Permission,
        namespace: Option<&crate::Namespace>,
    ) -> Result<(), DomainError> {
        if self.scopes.grants(service, permission, namespace) {
            return Ok(());
        }
        let needed = match namespace {
            Some(ns) => format!(
                "{}:{}:{}",
                service.as_str(),
                permission.as_str(),
                ns.scope_form()
            ),
            None => format!("{}:{}", service.as_str(), permission.as_str()),
        };
        Err(DomainError::Forbidden(format!(
            "this credential lacks the scope '{needed}'"
        )))
    }
}

/// A credential as it arrived, told apart by form.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    ApiKey(&'a str),
    Token(&'a str),
}

impl<'a> Credential<'a> {
    /// Three dot-separated base64url parts is a JWT; anything else is an API key.
    pub fn classify(value: &'a str) -> Self {
        let parts: Vec<&str> = value.split('.').collect();
        let b64url = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if parts.len() == 3
            && parts[..2].iter().all(b64url)
            && (parts[2].is_empty() || b64url(&parts[2]))
        {
            Credential::Token(value)
        } else {
            Credential::ApiKey(value)
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    acct: String,
    scopes: Vec<String>,
    iat: i64,
    exp: i64,
    jti: String,
    /// The minting key's rate-limit bucket, so a token spends its key's budget.
    rlb: String,
}

const ISSUER: &str = "zerodb";

/// Default per-key request budget per minute.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 6000;
/// Default per-account request budget per minute, shared by all the account's keys.
pub const DEFAULT_ACCOUNT_RATE_LIMIT_PER_MINUTE: u32 = 30_000;
/// Default cap on an account's unrevoked keys (its root key included).
pub const DEFAULT_MAX_KEYS_PER_ACCOUNT: u32 = 1000;
/// Keys revoked per transaction: two writes each, under DynamoDB's 100, with room for
/// the account's count.
const REVOKE_BATCH: usize = 25;
/// Times a revocation re-reads the account's keys for children minted while it ran.
const REVOKE_ROUNDS: usize = 8;
/// Times minting retries when the account's key count moved under it.
const MINT_ATTEMPTS: usize = 5;

/// The problem with a token-signing secret, if it is too short for HS256.
pub fn jwt_secret_problem(secret: &[u8]) -> Option<String> {
    (secret.len() < 32).then(|| "ZERODB_JWT_SECRET must be at least 32 bytes".to_owned())
}

/// Settings of the auth service, read once at start.
#[derive(Clone)]
pub struct AuthSettings {
    /// HMAC secret for access tokens (≥ 32 bytes).
    pub jwt_secret: Vec<u8>,
    /// Requests per key per minute; 0 turns the limit off.
    pub rate_limit_per_minute: u32,
    /// Where request counts live.
    pub rate_counting: crate::rate::RateCounting,
    /// The account budget and the key cap.
    pub limits: AuthLimits,
}

/// Per-account limits, read once at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthLimits {
    /// Requests per account per minute, all its keys and tokens together; 0 turns the
    /// limit off (`ZERODB_ACCOUNT_RATE_LIMIT_PER_MINUTE`).
    pub account_rate_limit_per_minute: u32,
    /// Most unrevoked keys an account may hold, its root key included
    /// (`ZERODB_MAX_KEYS_PER_ACCOUNT`).
    pub max_keys_per_account: u32,
}

impl Default for AuthLimits {
    fn default() -> Self {
        AuthLimits {
            account_rate_limit_per_minute: DEFAULT_ACCOUNT_RATE_LIMIT_PER_MINUTE,
            max_keys_per_account: DEFAULT_MAX_KEYS_PER_ACCOUNT,
        }
    }
}

impl AuthLimits {
    /// An account budget that is counted but never spent, and no practical key cap
    /// (benchmarks: counting is part of every request's cost).
    pub fn unlimited() -> Self {
        AuthLimits {
            account_rate_limit_per_minute: u32::MAX,
            max_keys_per_account: u32::MAX,
        }
    }

    /// `ZERODB_ACCOUNT_RATE_LIMIT_PER_MINUTE` and `ZERODB_MAX_KEYS_PER_ACCOUNT`, each
    /// defaulted when unset; a bad value is named in `problems`.
    pub fn from_settings(settings: &crate::context::Settings, problems: &mut Vec<String>) -> Self {
        let mut read = |name: &str, default: u32, min: u32| {
            settings
                .whole_number(name, default, min)
                .unwrap_or_else(|problem| {
                    problems.push(problem);
                    default
                })
        };
        AuthLimits {
            account_rate_limit_per_minute: read(
                "ZERODB_ACCOUNT_RATE_LIMIT_PER_MINUTE",
                DEFAULT_ACCOUNT_RATE_LIMIT_PER_MINUTE,
                0,
            ),
            max_keys_per_account: read(
                "ZERODB_MAX_KEYS_PER_ACCOUNT",
                DEFAULT_MAX_KEYS_PER_ACCOUNT,
                1,
            ),
        }
    }
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("rate_counting", &self.rate_counting)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A newly created account and its root key.
#[derive(Debug)]
pub struct NewAccount {
    pub account_id: String,
    pub name: String,
    pub root_key_id: String,
    pub root_key: KeySecret,
}

/// A newly minted access token.
#[derive(Debug)]
pub struct AccessToken {
    pub token: String,
    pub expires_at: i64,
    pub scopes: ScopeSet,
}

/// A request to mint a key.
#[derive(Debug)]
pub struct NewKey {
    pub name: KeyName,
    pub ttl_seconds: Option<i64>,
    pub scopes: ScopeSet,
    pub kind: KeyKind,
}

/// Accounts, keys, tokens and rate limits.
pub struct AuthService {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    limiter: crate::rate::RateLimiter,
    max_keys: u32,
}

impl AuthService {
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>, settings: &AuthSettings) -> Self {
        AuthService {
            clock,
            encoding: EncodingKey::from_secret(&settings.jwt_secret),
            decoding: DecodingKey::from_secret(&settings.jwt_secret),
            limiter: crate::rate::RateLimiter::new(
                match settings.rate_counting {
                    crate::rate::RateCounting::Shared => {
                        Arc::new(crate::rate::TableCounter(table.clone()))
                    }
                    crate::rate::RateCounting::InProcess => {
                        Arc::new(crate::rate::MemoryCounter::default())
                    }
                },
                settings.rate_limit_per_minute,
                settings.limits.account_rate_limit_per_minute,
            ),
            max_keys: settings.limits.max_keys_per_account,
            table,
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.epoch_secs()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// A key for signing something other than access tokens (signed file URLs),
    /// derived from the token secret as HMAC-SHA256(secret, "zerodb-derive:" + purpose):
    /// every process of a deployment derives the same key, what it signs can never pass
    /// for a token (or the reverse), and the token secret itself never leaves here.
    pub fn derived_key(&self, purpose: &str) -> Result<Vec<u8>, DomainError> {
        use base64::Engine;
        let mac = jsonwebtoken::crypto::sign(
            format!("zerodb-derive:{purpose}").as_bytes(),
            &self.encoding,
            Algorithm::HS256,
        )
        .map_err(|e| DomainError::Unexpected(anyhow::anyhow!("deriving a key: {e}")))?;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|e| DomainError::Unexpected(anyhow::anyhow!("deriving a key: {e}")))
    }

    /// Creates an account with a root key; the key is returned once.
    #[tracing::instrument(skip_all)]
    pub async fn create_account(&self, name: &str) -> Result<NewAccount, DomainError> {
        let name =
            KeyName::parse(name).map_err(|m| At::segments(vec![Loc::from("name")]).invalid(m))?;
        let account_id = ids::prefixed_id("acct");
        let now = self.now();
        let mut account = crate::keys::account(&account_id).item();
        account.insert("name".into(), name.as_str().into());
        account.insert("created_at".into(), Value::int(now));
        account.insert(KEY_COUNT.into(), Value::int(1));
        let (key, secret) = self.build_key(
            &account_id,
            Vec::new(),
            NewKey {
                name: KeyName(format!("{} root key", name.as_str())),
                ttl_seconds: None,
                scopes: ScopeSet::root(),
                kind: KeyKind::Root,
            },
            now,
        );
        let mut ops = vec![TxOp::Put {
            item: account,
            condition: Some(Condition::NotExists),
        }];
        ops.extend(Self::key_puts(&key));
        self.table.transact(ops).await?;
        tracing::info!(account_id = %account_id, key_id = %key.id, "account created");
        Ok(NewAccount {
            account_id,
            name: name.0,
            root_key_id: key.id,
            root_key: secret,
        })
    }

    fn build_key(
        &self,
        account_id: &str,
        ancestors: Vec<String>,
        new: NewKey,
        now: i64,
    ) -> (ApiKey, KeySecret) {
        let secret = KeySecret::generate(new.kind);
        let key = ApiKey {
            id: ids::prefixed_id("key"),
            account_id: account_id.to_owned(),
            name: new.name.0,
            kind: new.kind,
            prefix: secret.display_prefix(),
            scopes: new.scopes,
            created_at: now,
            expires_at: new.ttl_seconds.map(|t| now + t),
            revoked_at: None,
            created_by: ancestors.last().cloned(),
            ancestors,
            hash: sha256_hex(secret.expose()),
        };
        (key, secret)
    }

    fn key_puts(key: &ApiKey) -> Vec<TxOp> {
        vec![
            TxOp::Put {
                item: key.to_item(crate::keys::account_key(&key.account_id, &key.id)),
                condition: Some(Condition::NotExists),
            },
            TxOp::Put {
                item: key.to_item(crate::keys::api_key_by_hash(&key.hash)),
                condition: Some(Condition::NotExists),
            },
        ]
    }

    /// Mints a key for the caller's account, below the caller's key. The caller needs
    /// `zerodb:write` (or `zerodb:admin`) on its own credential, must hold every scope it
    /// grants, and the new key cannot outlive the caller's credential; keys nest at most
    /// [`MAX_KEY_DEPTH`] levels below a root key.
    #[tracing::instrument(skip_all, fields(account_id = %caller.account_id))]
    pub async fn create_key(
        &self,
        caller: &Principal,
        new: NewKey,
    ) -> Result<(ApiKey, KeySecret), DomainError> {
        // A leaked narrow key (seed 000: "the attacker can only read and write to
        // session/run-42") must not be able to fill the account's key cap.
        if Self::management(caller, Permission::Write).is_none() {
            return Err(DomainError::Forbidden(
                "minting keys needs the scope 'zerodb:write' (keys below this credential's key) \
                 or 'zerodb:admin'; mint from a key that holds it"
                    .into(),
            ));
        }
        let now = self.now();
        for scope in new.scopes.iter() {
            if !caller.scopes.covers(scope) {
                return Err(DomainError::Forbidden(format!(
                    "cannot grant scope '{scope}': the calling credential does not hold it"
                )));
            }
        }
        if let Some(limit) = caller.expires_at {
            let remaining = limit - now;
            match new.ttl_seconds {
                Some(t) if t <= remaining => {}
                _ => {
                    return Err(At::body("ttl_seconds").invalid(format!(
                            "the calling credential expires in {remaining} s, so the new key must too: set ttl_seconds to at most {remaining}"
                        ),
                    ));
                }
            }
        }
        let mut ancestors = self
            .ancestors_of(&caller.account_id, &caller.key_id)
            .await?;
        ancestors.push(caller.key_id.clone());
        if ancestors.len() > MAX_KEY_DEPTH {
            return Err(DomainError::Forbidden(format!(
                "keys nest at most {MAX_KEY_DEPTH} levels below a root key, and this credential's key is at the deepest; mint from a key higher up"
            )));
        }
        let (key, secret) = self.build_key(&caller.account_id, ancestors, new, now);
        let account = crate::keys::account(&caller.account_id);
        for _ in 0..MINT_ATTEMPTS {
            let (count, unchanged) = self.key_count(&caller.account_id, now).await?;
            if count >= i64::from(self.max_keys) {
                return Err(DomainError::Conflict(format!(
                    "this account already holds {count} unrevoked keys, its limit \
                     (ZERODB_MAX_KEYS_PER_ACCOUNT = {}); revoke keys it no longer uses \
                     (DELETE /api/v1/auth/keys/{{key_id}}) and try again",
                    self.max_keys
                )));
            }
            let mut ops = Self::key_puts(&key);
            // The count moves only if nobody minted or revoked since we read it.
            ops.push(TxOp::Update {
                key: account.clone(),
                updates: vec![Update::Set(KEY_COUNT.into(), Value::int(count + 1))],
                condition: Some(unchanged),
            });
            // The minting key and every key above it must still stand. A token is
            // verified without reading its key, so this is what stops a revoked key's
            // tokens from minting; and once any key of a tree is revoked nothing can be
            // minted below it, so a revocation's sweep of the tree finds every key in it.
            for a in &key.ancestors {
                ops.push(TxOp::Check {
                    key: crate::keys::account_key(&caller.account_id, a),
                    condition: unrevoked(),
                });
            }
            match self.table.transact(ops).await {
                Ok(()) => {
                    tracing::info!(key_id = %key.id, "key created");
                    return Ok((key, secret));
                }
                Err(crate::store::StoreError::Conflict) => {
                    for a in key.ancestors.iter().rev() {
                        let above = self
                            .table
                            .get(&crate::keys::account_key(&caller.account_id, a))
                            .await?;
                        if above.is_none_or(|k| k.contains_key("revoked_at")) {
                            return Err(DomainError::Unauthenticated(AuthFailure::Revoked));
                        }
                    }
                    // Otherwise the count moved under us: read it again.
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(DomainError::Unavailable {
            retry_after_secs: 1,
        })
    }

    /// The keys above `key_id`, its root first: from its record, or, for a key minted
    /// before records listed them, by following `created_by` (at most
    /// [`MAX_KEY_DEPTH`] reads). A key that is gone reads as revoked.
    async fn ancestors_of(&self, account: &str, key_id: &str) -> Result<Vec<String>, DomainError> {
        let record = |id: String| async move {
            match self
                .table
                .get(&crate::keys::account_key(account, &id))
                .await?
            {
                Some(item) => ApiKey::from_item(&item),
                None => Err(DomainError::Unauthenticated(AuthFailure::Revoked)),
            }
        };
        let key = record(key_id.to_owned()).await?;
        if !key.ancestors.is_empty() || key.created_by.is_none() {
            return Ok(key.ancestors);
        }
        let mut chain = Vec::new();
        let mut next = key.created_by;
        while let Some(id) = next {
            if chain.len() >= MAX_KEY_DEPTH {
                break;
            }
            let above = record(id.clone()).await?;
            chain.push(id);
            next = above.created_by;
        }
        chain.reverse();
        Ok(chain)
    }

    /// The account's key count as stored, and the condition that it is still that.
    /// Recounted from the keys themselves when absent (an account from before the
    /// count) or at the cap, where keys that expired since they were counted free
    /// their places.
    async fn key_count(&self, account: &str, now: i64) -> Result<(i64, Condition), DomainError> {
        let stored = self
            .table
            .get(&crate::keys::account(account))
            .await?
            .and_then(|item| item.get(KEY_COUNT).and_then(Value::as_i64));
        let unchanged = match stored {
            Some(n) => Condition::Equals(KEY_COUNT.into(), Value::int(n)),
            None => Condition::AttributeNotExists(KEY_COUNT.into()),
        };
        match stored {
            Some(n) if (0..i64::from(self.max_keys)).contains(&n) => Ok((n, unchanged)),
            _ => {
                let live = self
                    .all_keys(account)
                    .await?
                    .iter()
                    .filter(|k| k.status(now) == KeyStatus::Active)
                    .count();
                Ok((live as i64, unchanged))
            }
        }
    }

    /// Every key record of the account, read in pages. Bounded by the key cap plus the
    /// revoked and expired records kept for a month.
    async fn all_keys(&self, account: &str) -> Result<Vec<ApiKey>, DomainError> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .table
                .query(
                    Query::partition(crate::keys::account_partition(account))
                        .begins_with(crate::keys::ACCOUNT_KEY_PREFIX)
                        .limit(100)
                        .after(cursor),
                )
                .await?;
            for item in &page.items {
                keys.push(ApiKey::from_item(item)?);
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(keys),
            }
        }
    }

    /// Checks a credential: AUTH_001 unknown, AUTH_002 expired, AUTH_003 revoked or a
    /// token that does not verify. Counts nothing.
    pub async fn authenticate(&self, credential: Credential<'_>) -> Result<Principal, DomainError> {
        match credential {
            Credential::ApiKey(secret) => self.lookup_key(&key_hash(secret)?).await,
            Credential::Token(token) => self.verify_token(token),
        }
    }

    /// Authenticates a request, then counts it against its key's and its account's
    /// budgets. Counting only after the credential checks out costs a key request a
    /// second round trip, and is what keeps a request with an unknown or malformed key
    /// from writing anything: it is refused after one read (or none, if it is not even
    /// shaped like a key).
    pub async fn authorize_request(
        &self,
        credential: Credential<'_>,
    ) -> Result<Principal, DomainError> {
        let principal = self.authenticate(credential).await?;
        self.limiter
            .check(&principal.rate_bucket, &principal.account_id, self.now())
            .await?;
        Ok(principal)
    }

    async fn lookup_key(&self, hash: &str) -> Result<Principal, DomainError> {
        let item = self
            .table
            .get(&crate::keys::api_key_by_hash(hash))
            .await?
            .ok_or(DomainError::Unauthenticated(AuthFailure::Unknown))?;
        let key = ApiKey::from_item(&item)?;
        // The lookup was by hash; compare in constant time anyway so a partial match in
        // storage can never be timed.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            key.hash.as_bytes(),
            hash.as_bytes(),
        )) {
            return Err(DomainError::Unauthenticated(AuthFailure::Unknown));
        }
        match key.status(self.now()) {
            KeyStatus::Revoked => Err(DomainError::Unauthenticated(AuthFailure::Revoked)),
            KeyStatus::Expired => Err(DomainError::Unauthenticated(AuthFailure::Expired)),
            KeyStatus::Active => Ok(Principal {
                rate_bucket: rate_bucket(&key.hash).to_owned(),
                account_id: key.account_id,
                key_id: key.id,
                scopes: key.scopes,
                expires_at: key.expires_at,
                via_token: false,
            }),
        }
    }

    fn verify_token(&self, token: &str) -> Result<Principal, DomainError> {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against our clock below, so tests can move time.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[ISSUER]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| DomainError::Unauthenticated(AuthFailure::InvalidToken))?;
        let claims = data.claims;
        if claims.exp <= self.now() {
            return Err(DomainError::Unauthenticated(AuthFailure::Expired));
        }
        let scopes = ScopeSet::parse_all(&claims.scopes)
            .map_err(|_| DomainError::Unauthenticated(AuthFailure::InvalidToken))?;
        Ok(Principal {
            account_id: claims.acct,
            key_id: claims.sub,
            scopes,
            expires_at: Some(claims.exp),
            via_token: true,
            rate_bucket: claims.rlb,
        })
    }

    /// Exchanges the caller's credential for a signed token carrying its account and
    /// (a subset of) its scopes. Tokens are verified without a storage read, so a
    /// revoked key's tokens live until they expire: keep them short.
    pub fn issue_token(
        &self,
        caller: &Principal,
        ttl_seconds: Option<i64>,
        scopes: Option<ScopeSet>,
    ) -> Result<AccessToken, DomainError> {
        let now = self.now();
        let ttl = ttl_seconds.unwrap_or(DEFAULT_TOKEN_TTL_SECS);
        if !(1..=MAX_TOKEN_TTL_SECS).contains(&ttl) {
            return Err(At::body("ttl_seconds").invalid(format!(
                "ttl_seconds must be between 1 and {MAX_TOKEN_TTL_SECS}"
            )));
        }
        let scopes = match scopes {
            Some(requested) => {
                if let Some(s) = requested.iter().find(|s| !caller.scopes.covers(s)) {
                    return Err(DomainError::Forbidden(format!(
                        "cannot grant scope '{s}': the calling credential does not hold it"
                    )));
                }
                requested
            }
            None => caller.scopes.clone(),
        };
        let exp = caller.expires_at.map_or(now + ttl, |e| e.min(now + ttl));
        let claims = Claims {
            iss: ISSUER.into(),
            sub: caller.key_id.clone(),
            acct: caller.account_id.clone(),
            scopes: scopes.to_strings(),
            iat: now,
            exp,
            jti: ids::time_ordered_id(),
            rlb: caller.rate_bucket.clone(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| DomainError::Unexpected(e.into()))?;
        Ok(AccessToken {
            token,
            expires_at: exp,
            scopes,
        })
    }

    /// Whether the caller may manage (`Read`: list and read, `Write`: revoke) keys:
    /// `Some(true)` every key of the account (`zerodb:admin`), `Some(false)` only the
    /// keys its own key minted (`zerodb:read` / `zerodb:write`), `None` no key at all.
    /// Judged on the presented credential's own scopes: a narrowed token has only what
    /// it names, never its key's.
    fn management(caller: &Principal, permission: Permission) -> Option<bool> {
        if caller
            .scopes
            .grants(Service::Zerodb, Permission::Admin, None)
        {
            Some(true)
        } else if caller.scopes.grants(Service::Zerodb, permission, None) {
            Some(false)
        } else {
            None
        }
    }

    fn management_forbidden(permission: Permission) -> DomainError {
        let what = match permission {
            Permission::Write => "revoking keys",
            _ => "listing or reading keys",
        };
        DomainError::Forbidden(format!(
            "this credential lacks the scope to manage keys: {what} needs 'zerodb:{}' \
             (the keys this credential's key minted) or 'zerodb:admin' (every key of the account)",
            permission.as_str()
        ))
    }

    /// Keys the caller may see: every key of the account with `zerodb:admin`, with
    /// `zerodb:read` the keys its own key minted.
    pub async fn list_keys(
        &self,
        caller: &Principal,
        cursor: Option<crate::store::Cursor>,
        limit: usize,
    ) -> Result<(Vec<ApiKey>, Option<crate::store::Cursor>), DomainError> {
        let admin = Self::management(caller, Permission::Read)
            .ok_or_else(|| Self::management_forbidden(Permission::Read))?;
        let mut found = Vec::new();
        let mut cursor = cursor;
        // Non-admins see a filtered list, so read on until the page is full.
        loop {
            let page = self
                .table
                .query(
                    Query::partition(crate::keys::account_partition(&caller.account_id))
                        .begins_with(crate::keys::ACCOUNT_KEY_PREFIX)
                        .limit(limit - found.len())
                        .after(cursor),
                )
                .await?;
            for item in &page.items {
                let key = ApiKey::from_item(item)?;
                if admin || key.created_by.as_deref() == Some(caller.key_id.as_str()) {
                    found.push(key);
                }
            }
            cursor = page.cursor;
            if found.len() >= limit || cursor.is_none() {
                return Ok((found, cursor));
            }
        }
    }

    /// A key of the caller's account that the caller may read; 404 otherwise, so other
    /// accounts' key ids are indistinguishable from unknown ones.
    pub async fn get_key(&self, caller: &Principal, key_id: &str) -> Result<ApiKey, DomainError> {
        self.managed_key(caller, key_id, Permission::Read).await
    }

    async fn managed_key(
        &self,
        caller: &Principal,
        key_id: &str,
        permission: Permission,
    ) -> Result<ApiKey, DomainError> {
        let admin = Self::management(caller, permission)
            .ok_or_else(|| Self::management_forbidden(permission))?;
        let not_found = || DomainError::NotFound(format!("API key '{key_id}' not found"));
        if key_id.len() > 64 {
            return Err(not_found());
        }
        let item = self
            .table
            .get(&crate::keys::account_key(&caller.account_id, key_id))
            .await?
            .ok_or_else(not_found)?;
        let key = ApiKey::from_item(&item)?;
        if admin || key.created_by.as_deref() == Some(caller.key_id.as_str()) {
            Ok(key)
        } else {
            Err(DomainError::Forbidden(format!(
                "this credential may only manage keys its key minted; managing '{key_id}' needs the scope 'zerodb:admin'"
            )))
        }
    }

    /// Revokes a key and, with it, every key it minted, transitively; revoking a revoked
    /// key is a no-op for the key and finishes the revocation of its subtree (so a
    /// revocation cut short is completed by repeating it). Takes effect on the next
    /// request of each key.
    ///
    /// The subtree is found from the account's key records (read in pages of 100; at
    /// most the key cap of them are unrevoked) and revoked 25 keys per transaction.
    /// Minting checks the minting key and all its ancestors unrevoked in the same
    /// transaction, so once the key itself is revoked nothing new appears below it: the
    /// first round finds the whole subtree (a key minted before the revocation is in the
    /// records it reads). Rounds repeat until one finds nothing left, a guard for keys
    /// minted before records listed their ancestors.
    #[tracing::instrument(skip_all, fields(account_id = %caller.account_id, key_id = %key_id))]
    pub async fn revoke_key(&self, caller: &Principal, key_id: &str) -> Result<(), DomainError> {
        let key = self.managed_key(caller, key_id, Permission::Write).await?;
        let now = self.now();
        if key.revoked_at.is_none() {
            self.revoke_all(&key.account_id, std::slice::from_ref(&key), now)
                .await?;
        }
        for _ in 0..REVOKE_ROUNDS {
            let all = self.all_keys(&key.account_id).await?;
            let live = descendants(&all, &key.id)
                .into_iter()
                .filter(|k| k.status(now) == KeyStatus::Active)
                .cloned()
                .collect::<Vec<_>>();
            if live.is_empty() {
                tracing::info!("key revoked");
                return Ok(());
            }
            tracing::info!(descendants = live.len(), "revoking the keys it minted");
            self.revoke_all(&key.account_id, &live, now).await?;
        }
        // Children kept appearing: some are revoked, and repeating the DELETE goes on.
        Err(DomainError::Unavailable {
            retry_after_secs: 1,
        })
    }

    /// Revokes `keys` in transactions of [`REVOKE_BATCH`], lowering the account's key
    /// count by those that were live.
    async fn revoke_all(
        &self,
        account: &str,
        keys: &[ApiKey],
        now: i64,
    ) -> Result<(), DomainError> {
        for chunk in keys.chunks(REVOKE_BATCH) {
            match self
                .table
                .transact(Self::revocation(account, chunk, now))
                .await
            {
                Ok(()) => {}
                // One of them was revoked concurrently, or expired out of storage: the
                // rest one by one, each already-gone key skipped.
                Err(crate::store::StoreError::Conflict) => {
                    for k in chunk {
                        match self
                            .table
                            .transact(Self::revocation(account, std::slice::from_ref(k), now))
                            .await
                        {
                            Ok(()) | Err(crate::store::StoreError::Conflict) => {}
                            Err(other) => return Err(other.into()),
                        }
                    }
                }
                Err(other) => return Err(other.into()),
            }
        }
        Ok(())
    }

    fn revocation(account: &str, keys: &[ApiKey], now: i64) -> Vec<TxOp> {
        let revoke = |k: Key| TxOp::Update {
            key: k,
            updates: vec![
                Update::Set("revoked_at".into(), Value::int(now)),
                Update::Set(crate::store::TTL.into(), Value::int(now + TOMBSTONE_SECS)),
            ],
            condition: Some(unrevoked()),
        };
        let mut ops = Vec::with_capacity(2 * keys.len() + 1);
        for k in keys {
            ops.push(revoke(crate::keys::account_key(account, &k.id)));
            ops.push(revoke(crate::keys::api_key_by_hash(&k.hash)));
        }
        // An expired key was already left out of the count when it was last recounted.
        let live = keys
            .iter()
            .filter(|k| k.status(now) == KeyStatus::Active)
            .count() as i64;
        if live > 0 {
            ops.push(TxOp::Update {
                key: crate::keys::account(account),
                updates: vec![Update::Add(KEY_COUNT.into(), -live)],
                condition: Some(Condition::Exists),
            });
        }
        ops
    }
}

/// The account record's count of unrevoked keys.
const KEY_COUNT: &str = "key_count";
/// A key record's list of the keys above it.
const ANCESTORS: &str = "ancestors";
/// Most levels of keys below a root key: each is a check in the minting transaction.
pub const MAX_KEY_DEPTH: usize = 16;

/// A key record that exists and is not revoked.
fn unrevoked() -> Condition {
    Condition::All(vec![
        Condition::Exists,
        Condition::AttributeNotExists("revoked_at".into()),
    ])
}

/// The keys `root` minted, and the keys they minted, and so on.
fn descendants<'a>(all: &'a [ApiKey], root: &str) -> Vec<&'a ApiKey> {
    let mut children: std::collections::HashMap<&str, Vec<&ApiKey>> = Default::default();
    for k in all {
        if let Some(parent) = k.created_by.as_deref() {
            children.entry(parent).or_default().push(k);
        }
    }
    let mut seen = std::collections::HashSet::from([root]);
    let mut stack = vec![root];
    let mut found = Vec::new();
    while let Some(id) = stack.pop() {
        for &c in children.get(id).into_iter().flatten() {
            if seen.insert(c.id.as_str()) {
                stack.push(c.id.as_str());
                found.push(c);
            }
        }
    }
    found
}

/// Epoch seconds to a timestamp.
pub fn to_datetime(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

/// Builds a scope set from request strings, reporting each bad one at its index.
pub fn parse_requested_scopes(texts: &[String]) -> Result<ScopeSet, DomainError> {
    if texts.is_empty() {
        return Err(At::body("scopes")
            .invalid("scopes must list at least one scope, e.g. \"memory:read:session/run-42\""));
    }
    if texts.len() > MAX_SCOPES {
        return Err(At::body("scopes").invalid(format!(
            "{} scopes given; a key holds at most {MAX_SCOPES}",
            texts.len()
        )));
    }
    let mut errors = Vec::new();
    let mut scopes = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        match Scope::parse(t) {
            Ok(s) => scopes.push(s),
            Err(e) => errors.push(
                At::body("scopes")
                    .index(i)
                    .problem_of(e.to_string(), "value_error.scope"),
            ),
        }
    }
    if errors.is_empty() {
        Ok(ScopeSet::new(scopes))
    } else {
        Err(DomainError::Validation(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_told_apart_by_form() {
        assert!(matches!(
            Credential::classify("sk_abc"),
            Credential::ApiKey(_)
        ));
        assert!(matches!(
            Credential::classify("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig-_"),
            Credential::Token(_)
        ));
        assert!(matches!(Credential::classify("a.b"), Credential::ApiKey(_)));
    }

    #[test]
    fn key_secrets_carry_256_bits_and_never_debug_print() {
        let s = KeySecret::generate(KeyKind::Scoped);
        assert!(s.expose().starts_with("sk_"));
        assert_eq!(s.expose().len(), 46);
        assert_eq!(format!("{s:?}"), "KeySecret(***)");
        assert_eq!(s.display_prefix().len(), 9);
        assert_eq!(sha256_hex("abc").len(), 64);
    }

    #[test]
    fn key_names_are_one_to_128_characters() {
        assert!(KeyName::parse("").is_err());
        assert!(KeyName::parse("  ").is_err());
        assert!(KeyName::parse("\u{85}\u{feff}").is_err());
        assert!(KeyName::parse(&"é".repeat(128)).is_ok());
        assert!(
            KeyName::parse(&"a".repeat(129))
                .unwrap_err()
                .contains("129")
        );
    }
}
