//! Projects (seed 004): create within the account's per-tier limit, list, read with real
//! usage, update, and the lifecycle ACTIVE ↔ SUSPENDED → DELETED with every transition
//! recorded. [`Projects::gate`] is the one check every project-scoped route passes: the
//! project is the caller's account's (another account's id is `PROJECT_NOT_FOUND`), not
//! deleted, and for writes not suspended.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use zerodb_domain::auth::{Credential, NewKey, Principal, parse_requested_scopes};
use zerodb_domain::clock::Clock;
use zerodb_domain::events::EventSink;
use zerodb_domain::item::{from_item, to_item};
use zerodb_domain::rate::{RateCounter, TableCounter, WINDOW_SECS};
use zerodb_domain::scope::{Permission, Service};
use zerodb_domain::store::{Condition, Item, Query, Table, TxOp, Update, Value};
use zerodb_domain::{At, Context, DomainError, Refusal, Settings, ids, keys};

/// Seed 004's tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Free,
    Starter,
    Pro,
    Enterprise,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Free, Tier::Starter, Tier::Pro, Tier::Enterprise];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Starter => "starter",
            Tier::Pro => "pro",
            Tier::Enterprise => "enterprise",
        }
    }

    /// Seed 004's `INVALID_TIER` for anything else.
    pub fn parse(s: &str) -> Result<Tier, DomainError> {
        Tier::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                DomainError::coded(
                    Refusal::BadRequest,
                    "INVALID_TIER",
                    "Invalid tier specified. Must be one of: free, starter, pro, enterprise",
                )
            })
    }
}

/// Seed 004's lifecycle: ACTIVE ↔ SUSPENDED, either → DELETED (terminal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Active,
    Suspended,
    Deleted,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Active, Status::Suspended, Status::Deleted];

    /// Seed 004's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "ACTIVE",
            Status::Suspended => "SUSPENDED",
            Status::Deleted => "DELETED",
        }
    }

    /// ainative-python's spelling.
    pub fn lower(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Deleted => "deleted",
        }
    }

    /// Either spelling, any case.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
    }

    fn may_become(self, to: Status) -> bool {
        matches!(
            (self, to),
            (Status::Active, Status::Suspended)
                | (Status::Suspended, Status::Active)
                | (Status::Active | Status::Suspended, Status::Deleted)
        )
    }
}

/// A project as stored (and shown, less `account_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub account_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub tier: Tier,
    pub status: Status,
    pub database_enabled: bool,
    /// Free-form JSON objects of ainative-python's form, kept as their text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// Epoch seconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// The key that created it.
    pub created_by: String,
}

/// One recorded status change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub id: String,
    pub project_id: String,
    /// None for creation.
    #[serde(default)]
    pub from: Option<Status>,
    pub to: Status,
    /// The key that made the change.
    pub by: String,
    pub at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What seed 004's usage block reports, from counters kept as the data is written.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    pub vectors_stored: i64,
    pub tables_created: i64,
    pub events_logged: i64,
    pub rows_stored: i64,
    pub files_stored: i64,
    pub rlhf_interactions: i64,
    pub storage_bytes: i64,
}

impl Usage {
    pub fn storage_mb(&self) -> f64 {
        (self.storage_bytes.max(0) as f64 / (1024.0 * 1024.0) * 1000.0).round() / 1000.0
    }
}

/// A new project, validated.
#[derive(Debug, Clone)]
pub struct NewProject {
    pub name: String,
    pub description: Option<String>,
    pub tier: Tier,
    pub database_enabled: bool,
    pub metadata: Option<String>,
    pub config: Option<String>,
}

/// Changes to a project's descriptive fields.
#[derive(Debug, Clone, Default)]
pub struct ProjectPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<String>,
    pub config: Option<String>,
}

/// Seed 004's name rule: 1–100 characters.
pub fn check_name(name: &str) -> Result<String, String> {
    let n = name.trim();
    match n.chars().count() {
        0 => Err("name must not be empty".into()),
        c if c > 100 => Err(format!("name is {c} characters; at most 100 are allowed")),
        _ => Ok(n.to_owned()),
    }
}

/// Seed 004's description rule: at most 500 characters.
pub fn check_description(d: &str) -> Result<String, String> {
    match d.chars().count() {
        c if c > 500 => Err(format!(
            "description is {c} characters; at most 500 are allowed"
        )),
        _ => Ok(d.to_owned()),
    }
}

/// What a route needs of its project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    /// Refused while the project is suspended.
    Write,
}

/// Per-tier project limits and instant-db's switches, read once at start.
#[derive(Debug, Clone)]
pub struct ProjectLimits {
    /// Projects an account of each tier may hold (not counting deleted ones).
    pub per_tier: BTreeMap<Tier, u32>,
    /// Whether `POST /api/v1/public/instant-db` creates accounts.
    pub instant_db: bool,
    /// Instant-db accounts per source address per minute, and in all per minute.
    pub instant_db_per_address: u32,
    pub instant_db_per_minute: u32,
    /// How long an instant-db key lives.
    pub instant_db_ttl_secs: i64,
}

impl Default for ProjectLimits {
    fn default() -> Self {
        ProjectLimits {
            per_tier: [
                (Tier::Free, 10),
                (Tier::Starter, 50),
                (Tier::Pro, 200),
                (Tier::Enterprise, 1000),
            ]
            .into(),
            instant_db: false,
            instant_db_per_address: 5,
            instant_db_per_minute: 60,
            instant_db_ttl_secs: 72 * 3600,
        }
    }
}

impl ProjectLimits {
    /// `ZERODB_PROJECT_LIMIT_<TIER>`, `ZERODB_INSTANT_DB` (on/off),
    /// `ZERODB_INSTANT_DB_PER_ADDRESS`, `ZERODB_INSTANT_DB_PER_MINUTE`.
    pub fn from_settings(s: &Settings) -> Result<Self, String> {
        let mut l = ProjectLimits::default();
        for tier in Tier::ALL {
            let name = format!("ZERODB_PROJECT_LIMIT_{}", tier.as_str().to_uppercase());
            let default = l.per_tier[&tier];
            l.per_tier.insert(tier, s.whole_number(&name, default, 1)?);
        }
        l.instant_db = match s.get("ZERODB_INSTANT_DB") {
            None => false,
            Some(v) if ["on", "true", "1", "yes"].contains(&v.to_ascii_lowercase().as_str()) => {
                true
            }
            Some(v) if ["off", "false", "0", "no"].contains(&v.to_ascii_lowercase().as_str()) => {
                false
            }
            Some(v) => return Err(format!("ZERODB_INSTANT_DB must be on or off, not '{v}'")),
        };
        l.instant_db_per_address = s.whole_number("ZERODB_INSTANT_DB_PER_ADDRESS", 5, 1)?;
        l.instant_db_per_minute = s.whole_number("ZERODB_INSTANT_DB_PER_MINUTE", 60, 1)?;
        Ok(l)
    }
}

/// What instant-db hands back.
#[derive(Debug, Clone)]
pub struct InstantDb {
    pub account_id: String,
    pub project: Project,
    pub api_key: String,
    pub key_id: String,
    pub expires_at: i64,
}

const PROJECT_COUNT: &str = "project_count";
const DEFAULT_PROJECT: &str = "default_project";
const ACCOUNT_TIER: &str = "tier";
/// Deleted project records stay this long (their id keeps answering 404, not another
/// account's data), then expire.
const DELETED_RECORD_SECS: i64 = 30 * 24 * 3600;
/// Most projects read to list an account's (the highest tier limit bounds live ones;
/// deleted ones expire).
const MAX_LISTED: usize = 5000;

/// The project service.
#[derive(Clone)]
pub struct Projects {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    events: EventSink,
    ctx: Context,
    limits: Arc<ProjectLimits>,
}

/// Seed 004's 404.
pub fn not_found() -> DomainError {
    DomainError::coded(Refusal::NotFound, "PROJECT_NOT_FOUND", "Project not found")
}

/// Whether `e` is [`not_found`]'s 404 (so a route that lists the default project can
/// answer an account with no project as an empty list).
pub fn is_project_not_found(e: &DomainError) -> bool {
    matches!(
        e,
        DomainError::Coded {
            code: "PROJECT_NOT_FOUND",
            ..
        }
    )
}

fn stamp(p: &Project) -> serde_json::Value {
    json!({"project_id": p.id, "user_id": p.account_id})
}

impl Projects {
    pub fn new(ctx: &Context, limits: ProjectLimits) -> Self {
        Projects {
            table: ctx.stores().table.clone(),
            clock: ctx.clock().clone(),
            events: ctx.events().clone(),
            ctx: ctx.clone(),
            limits: Arc::new(limits),
        }
    }

    pub fn limits(&self) -> &ProjectLimits {
        &self.limits
    }

    fn now(&self) -> i64 {
        self.clock.epoch_secs()
    }

    /// Creating and deleting projects takes `zerodb:admin` (a root key holds it).
    fn require_admin(caller: &Principal) -> Result<(), DomainError> {
        caller.require(Service::Zerodb, Permission::Admin, None)
    }

    /// Creates a project within the account's limit, as its first transition.
    #[tracing::instrument(skip_all, fields(account_id = %caller.account_id))]
    pub async fn create(
        &self,
        caller: &Principal,
        new: NewProject,
    ) -> Result<Project, DomainError> {
        Self::require_admin(caller)?;
        self.create_unchecked(caller, new).await
    }

    async fn create_unchecked(
        &self,
        caller: &Principal,
        new: NewProject,
    ) -> Result<Project, DomainError> {
        let account = self
            .table
            .get(&keys::account(&caller.account_id))
            .await?
            .ok_or_else(|| DomainError::NotFound("account not found".into()))?;
        let count = account.get(PROJECT_COUNT).and_then(Value::as_i64);
        let tier = account
            .get(ACCOUNT_TIER)
            .and_then(Value::as_str)
            .and_then(|t| Tier::parse(t).ok())
            .unwrap_or(Tier::Free);
        let limit = i64::from(self.limits.per_tier[&tier]);
        if count.unwrap_or(0) >= limit {
            return Err(DomainError::coded(
                Refusal::BadRequest,
                "PROJECT_LIMIT_EXCEEDED",
                format!(
                    "Project limit exceeded for your account tier. Current limit: {limit} projects."
                ),
            ));
        }
        let now = self.now();
        let project = Project {
            id: ids::prefixed_id("proj"),
            account_id: caller.account_id.clone(),
            name: new.name,
            description: new.description,
            tier: new.tier,
            status: Status::Active,
            database_enabled: new.database_enabled,
            metadata: new.metadata,
            config: new.config,
            created_at: now,
            updated_at: now,
            created_by: caller.key_id.clone(),
        };
        let mut account_updates = vec![Update::Set(
            PROJECT_COUNT.into(),
            Value::int(count.unwrap_or(0) + 1),
        )];
        // The account's first live project is its default; an account whose default was
        // deleted adopts its oldest live one when it next needs one (`default_gate`).
        if account.get(DEFAULT_PROJECT).is_none() && count.unwrap_or(0) <= 0 {
            account_updates.push(Update::Set(
                DEFAULT_PROJECT.into(),
                Value::S(project.id.clone()),
            ));
        }
        // The count is read, then written only if unchanged: concurrent creations cannot
        // both take the last slot.
        let count_unchanged = match count {
            Some(n) => Condition::Equals(PROJECT_COUNT.into(), Value::int(n)),
            None => Condition::AttributeNotExists(PROJECT_COUNT.into()),
        };
        let transition = self.transition(&project, None, Status::Active, caller, None)?;
        let result = self
            .table
            .transact(vec![
                TxOp::Put {
                    item: to_item(
                        &keys::project(&caller.account_id, &project.id),
                        &project,
                        None,
                    )?,
                    condition: Some(Condition::NotExists),
                },
                TxOp::Update {
                    key: keys::account(&caller.account_id),
                    updates: account_updates,
                    condition: Some(Condition::All(vec![Condition::Exists, count_unchanged])),
                },
                transition,
            ])
            .await;
        match result {
            Ok(()) => {}
            Err(zerodb_domain::store::StoreError::Conflict) => {
                return Err(DomainError::Conflict(
                    "another project was created at the same moment; retry".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(project_id = %project.id, "project created");
        let mut data = stamp(&project);
        data["status"] = json!(project.status.as_str());
        data["name"] = json!(project.name);
        self.events
            .emit(vec![(
                "zerodb.project.created".into(),
                "zerodb".into(),
                data,
            )])
            .await;
        Ok(project)
    }

    fn transition(
        &self,
        p: &Project,
        from: Option<Status>,
        to: Status,
        caller: &Principal,
        reason: Option<String>,
    ) -> Result<TxOp, DomainError> {
        let now = self.clock.now();
        let t = Transition {
            id: ids::prefixed_id("ptr"),
            project_id: p.id.clone(),
            from,
            to,
            by: caller.key_id.clone(),
            at: now.timestamp(),
            reason,
        };
        Ok(TxOp::Put {
            item: to_item(
                &keys::project_transition(&p.id, now.timestamp_millis(), &t.id),
                &t,
                None,
            )?,
            condition: None,
        })
    }

    async fn load(&self, account: &str, project_id: &str) -> Result<Project, DomainError> {
        if !valid_project_id(project_id) {
            return Err(not_found());
        }
        let item = self
            .table
            .get(&keys::project(account, project_id))
            .await?
            .ok_or_else(not_found)?;
        let p: Project = from_item(item)?;
        if p.status == Status::Deleted {
            return Err(not_found());
        }
        Ok(p)
    }

    /// One project of the caller's account (`zerodb:read`).
    pub async fn get(&self, caller: &Principal, project_id: &str) -> Result<Project, DomainError> {
        caller.require(Service::Zerodb, Permission::Read, None)?;
        self.load(&caller.account_id, project_id).await
    }

    /// The project a data route acts on: the caller's, not deleted, not suspended for
    /// writes, its database enabled. One read.
    pub async fn gate(
        &self,
        caller: &Principal,
        project_id: &str,
        access: Access,
    ) -> Result<Project, DomainError> {
        let p = self.load(&caller.account_id, project_id).await?;
        Self::admit(p, access)
    }

    /// The gate's checks of a project already read.
    fn admit(p: Project, access: Access) -> Result<Project, DomainError> {
        if access == Access::Write && p.status == Status::Suspended {
            return Err(DomainError::coded(
                Refusal::Forbidden,
                "PROJECT_SUSPENDED",
                format!(
                    "Project {} is suspended: it can be read but not written. Reactivate it with PUT /api/v1/projects/{}/status {{\"status\": \"active\"}}",
                    p.id, p.id
                ),
            ));
        }
        if !p.database_enabled {
            return Err(DomainError::coded(
                Refusal::Forbidden,
                "DATABASE_DISABLED",
                format!(
                    "Project {} was created with database_enabled false; its database routes are off",
                    p.id
                ),
            ));
        }
        Ok(p)
    }

    /// The project of ainative-agent's `/public/...` routes: `X-Project-ID` when sent,
    /// else the account's default project. An account with none yet adopts its oldest
    /// live project as its default; one with no live project gets a "Default project"
    /// made on its first write (a read is 404 `PROJECT_NOT_FOUND`: reading never creates
    /// anything, and a read-only key never causes a project).
    pub async fn default_gate(
        &self,
        caller: &Principal,
        named: Option<&str>,
        access: Access,
    ) -> Result<Project, DomainError> {
        if let Some(id) = named {
            return self.gate(caller, id, access).await;
        }
        // A few rounds at most: each one that does not answer saw another request change
        // the default at the same moment.
        for _ in 0..4 {
            if let Some(p) = self.default_project(caller, access).await? {
                return Self::admit(p, access);
            }
        }
        Err(DomainError::Conflict(
            "the account's default project changed during the request; retry".into(),
        ))
    }

    /// One round of [`Projects::default_gate`]: the default project, or `None` when a
    /// concurrent change means the account must be read again.
    async fn default_project(
        &self,
        caller: &Principal,
        access: Access,
    ) -> Result<Option<Project>, DomainError> {
        let account_key = keys::account(&caller.account_id);
        let account = self
            .table
            .get(&account_key)
            .await?
            .ok_or_else(|| DomainError::NotFound("account not found".into()))?;
        if let Some(id) = account.get(DEFAULT_PROJECT).and_then(Value::as_str) {
            match self.load(&caller.account_id, id).await {
                Ok(p) => return Ok(Some(p)),
                Err(e) if is_project_not_found(&e) => {
                    // The default was deleted while it was being chosen: forget it (if
                    // it is still the default) and choose again.
                    let still = Condition::Equals(DEFAULT_PROJECT.into(), Value::S(id.to_owned()));
                    match self
                        .table
                        .update(
                            &account_key,
                            vec![Update::Remove(DEFAULT_PROJECT.into())],
                            Some(still),
                        )
                        .await
                    {
                        Ok(_) | Err(zerodb_domain::store::StoreError::Conflict) => return Ok(None),
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        // No default yet: the oldest live project becomes it, if no other request has
        // chosen one meanwhile.
        if let Some(p) = self.live(&caller.account_id).await?.into_iter().next() {
            let unset = Condition::All(vec![
                Condition::Exists,
                Condition::AttributeNotExists(DEFAULT_PROJECT.into()),
            ]);
            return match self
                .table
                .update(
                    &account_key,
                    vec![Update::Set(DEFAULT_PROJECT.into(), Value::S(p.id.clone()))],
                    Some(unset),
                )
                .await
            {
                Ok(_) => Ok(Some(p)),
                Err(zerodb_domain::store::StoreError::Conflict) => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
        if access != Access::Write {
            return Err(not_found());
        }
        // No project at all: the first write makes the account's implicit project. The
        // caller's write scope was checked by its route; the project only names where
        // its data goes.
        let made = self
            .create_unchecked(
                caller,
                NewProject {
                    name: "Default project".into(),
                    description: Some(
                        "Made for requests that named no project (X-Project-ID)".into(),
                    ),
                    tier: Tier::Free,
                    database_enabled: true,
                    metadata: None,
                    config: None,
                },
            )
            .await;
        match made {
            Ok(p) => Ok(Some(p)),
            // Two first writes at once: the other one made it.
            Err(DomainError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The account's live projects (not deleted), oldest first.
    async fn live(&self, account: &str) -> Result<Vec<Project>, DomainError> {
        let mut out = self.query_projects(account, keys::PROJECT_PREFIX).await?;
        // Records deleted before deleted ones had a prefix of their own.
        out.retain(|p| p.status != Status::Deleted);
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    /// Every project record under `prefix` of the account's partition, at most
    /// [`MAX_LISTED`].
    async fn query_projects(
        &self,
        account: &str,
        prefix: &str,
    ) -> Result<Vec<Project>, DomainError> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .table
                .query(
                    Query::partition(keys::account_partition(account))
                        .begins_with(prefix)
                        .limit(500)
                        .after(cursor),
                )
                .await?;
            for item in page.items {
                out.push(from_item::<Project>(item)?);
            }
            match page.cursor {
                Some(c) if out.len() < MAX_LISTED => cursor = Some(c),
                _ => return Ok(out),
            }
        }
    }

    /// The account's projects, oldest first; deleted ones only when asked for by status
    /// (they are kept under a prefix of their own, so they never crowd the live ones).
    pub async fn list(
        &self,
        caller: &Principal,
        status: Option<Status>,
    ) -> Result<Vec<Project>, DomainError> {
        caller.require(Service::Zerodb, Permission::Read, None)?;
        let mut out = match status {
            Some(Status::Deleted) => {
                self.query_projects(&caller.account_id, keys::DELETED_PROJECT_PREFIX)
                    .await?
            }
            Some(s) => {
                let mut live = self.live(&caller.account_id).await?;
                live.retain(|p| p.status == s);
                live
            }
            None => self.live(&caller.account_id).await?,
        };
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    /// Changes name, description, metadata or config (`zerodb:write`; refused while
    /// suspended).
    pub async fn update(
        &self,
        caller: &Principal,
        project_id: &str,
        patch: ProjectPatch,
    ) -> Result<Project, DomainError> {
        caller.require(Service::Zerodb, Permission::Write, None)?;
        let mut p = self.load(&caller.account_id, project_id).await?;
        if p.status == Status::Suspended {
            return Err(DomainError::coded(
                Refusal::Forbidden,
                "PROJECT_SUSPENDED",
                "Project is suspended; reactivate it before changing it",
            ));
        }
        if let Some(n) = patch.name {
            p.name = n;
        }
        if let Some(d) = patch.description {
            p.description = Some(d);
        }
        if let Some(m) = patch.metadata {
            p.metadata = Some(m);
        }
        if let Some(c) = patch.config {
            p.config = Some(c);
        }
        p.updated_at = self.now();
        self.table
            .put(
                to_item(&keys::project(&p.account_id, &p.id), &p, None)?,
                Some(Condition::Equals(
                    "status".into(),
                    Value::S(p.status.as_str().into()),
                )),
            )
            .await
            .map_err(|e| match e {
                zerodb_domain::store::StoreError::Conflict => DomainError::Conflict(
                    "the project's status changed during the update; retry".into(),
                ),
                e => e.into(),
            })?;
        Ok(p)
    }

    /// Moves a project along its lifecycle (`zerodb:admin`). The same status again
    /// changes nothing; DELETED is terminal and frees the project's slot, and its data
    /// is removed afterwards by the purge.
    #[tracing::instrument(skip_all, fields(account_id = %caller.account_id, project_id))]
    pub async fn set_status(
        &self,
        caller: &Principal,
        project_id: &str,
        to: Status,
        reason: Option<String>,
    ) -> Result<Project, DomainError> {
        Self::require_admin(caller)?;
        let mut p = self.load(&caller.account_id, project_id).await?;
        let from = p.status;
        if from == to {
            return Ok(p);
        }
        if !from.may_become(to) {
            return Err(At::body("status").invalid(format!(
                "a {} project cannot become {}",
                from.as_str(),
                to.as_str()
            )));
        }
        p.status = to;
        p.updated_at = self.now();
        let status_read = Condition::Equals("status".into(), Value::S(from.as_str().into()));
        let mut ops = vec![];
        if to == Status::Deleted {
            // The live record goes (if its status is still the one read), and the
            // deleted one is kept under its own prefix until its TTL, so the id never
            // answers with data and the live projects are read without it.
            ops.push(TxOp::Delete {
                key: keys::project(&p.account_id, &p.id),
                condition: Some(status_read),
            });
            ops.push(TxOp::Put {
                item: to_item(
                    &keys::deleted_project(&p.account_id, &p.id),
                    &p,
                    Some(p.updated_at + DELETED_RECORD_SECS),
                )?,
                condition: None,
            });
            let account = self.table.get(&keys::account(&p.account_id)).await?;
            let mut updates = vec![Update::Add(PROJECT_COUNT.into(), -1)];
            if account
                .as_ref()
                .and_then(|a| a.get(DEFAULT_PROJECT))
                .and_then(Value::as_str)
                == Some(p.id.as_str())
            {
                updates.push(Update::Remove(DEFAULT_PROJECT.into()));
            }
            ops.push(TxOp::Update {
                key: keys::account(&p.account_id),
                updates,
                condition: Some(Condition::Exists),
            });
        } else {
            ops.push(TxOp::Put {
                item: to_item(&keys::project(&p.account_id, &p.id), &p, None)?,
                condition: Some(status_read),
            });
        }
        ops.push(self.transition(&p, Some(from), to, caller, reason)?);
        self.table.transact(ops).await.map_err(|e| match e {
            zerodb_domain::store::StoreError::Conflict => DomainError::Conflict(
                "the project's status changed at the same moment; read it and retry".into(),
            ),
            e => e.into(),
        })?;
        tracing::info!(
            from = from.as_str(),
            to = to.as_str(),
            "project status changed"
        );
        let mut data = stamp(&p);
        data["from"] = json!(from.as_str());
        data["to"] = json!(to.as_str());
        data["status"] = json!(to.as_str());
        let mut events = vec![(
            "zerodb.project.status_changed".into(),
            "zerodb".into(),
            data,
        )];
        if to == Status::Deleted {
            events.push(crate::purge::purge_event(&p.account_id, &p.id, None));
        }
        self.events.emit(events).await;
        Ok(p)
    }

    /// Every recorded transition of a project, oldest first (`zerodb:read`).
    pub async fn transitions(
        &self,
        caller: &Principal,
        project_id: &str,
    ) -> Result<Vec<Transition>, DomainError> {
        let p = self.get(caller, project_id).await?;
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .table
                .query(
                    Query::partition(keys::project_transition_partition(&p.id))
                        .limit(500)
                        .after(cursor),
                )
                .await?;
            for item in page.items {
                out.push(from_item(item)?);
            }
            // Bounded: a project changes status by hand, and a page is 500 of them.
            match page.cursor {
                Some(c) if out.len() < 5000 => cursor = Some(c),
                _ => return Ok(out),
            }
        }
    }

    /// Usage from the counters the data writes keep: one query of the project's
    /// catalogue (its tables and its counters item).
    pub async fn usage(&self, p: &Project) -> Result<Usage, DomainError> {
        let mut u = Usage::default();
        let mut cursor = None;
        loop {
            let page = self
                .table
                .query(
                    Query::partition(keys::database_partition(&p.id))
                        .limit(1000)
                        .after(cursor),
                )
                .await?;
            for item in &page.items {
                let n = |a: &str| item.get(a).and_then(Value::as_i64).unwrap_or(0);
                let sk = item.get(zerodb_domain::store::SK).and_then(Value::as_str);
                if sk.is_some_and(|s| s.starts_with(keys::TABLE_PREFIX)) {
                    u.tables_created += 1;
                    u.rows_stored += n(crate::tables::ROW_COUNT);
                    u.storage_bytes += n(crate::tables::BYTES);
                } else {
                    u.events_logged += n(STAT_EVENTS);
                    u.files_stored += n(STAT_FILES);
                    u.vectors_stored += n(STAT_VECTORS);
                    u.rlhf_interactions += n(STAT_RLHF);
                    u.storage_bytes +=
                        n(STAT_FILE_BYTES) + n(STAT_EVENT_BYTES) + n(STAT_RLHF_BYTES);
                }
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(u),
            }
        }
    }

    /// `POST /api/v1/public/instant-db`: a new account, its first project and a key
    /// that expires, for clients that provision themselves. Refused when the
    /// deployment has it off, and limited per source address and in all.
    pub async fn instant_db(&self, source: Option<&str>) -> Result<InstantDb, DomainError> {
        if !self.limits.instant_db {
            return Err(DomainError::coded(
                Refusal::Forbidden,
                "INSTANT_DB_DISABLED",
                "Instant databases are off on this deployment; ask its operator for an API key (ZERODB_INSTANT_DB=on enables them)",
            ));
        }
        let now = self.now();
        let window = now - now.rem_euclid(WINDOW_SECS);
        let counter = TableCounter(self.table.clone());
        let address = hex::encode(source.unwrap_or("unknown"));
        for (bucket, limit) in [
            (
                format!("instantdb-{address}"),
                self.limits.instant_db_per_address,
            ),
            ("instantdb".to_owned(), self.limits.instant_db_per_minute),
        ] {
            if counter.hit(&bucket, window).await? > u64::from(limit) {
                return Err(DomainError::RateLimited {
                    retry_after_secs: (window + WINDOW_SECS - now).max(1) as u64,
                });
            }
        }
        let auth = self.ctx.auth();
        let account = auth.create_account("instant-db").await?;
        let root = auth
            .authenticate(Credential::ApiKey(account.root_key.expose()))
            .await?;
        let project = self
            .create(
                &root,
                NewProject {
                    name: "Instant database".into(),
                    description: Some("Provisioned by instant-db".into()),
                    tier: Tier::Free,
                    database_enabled: true,
                    metadata: None,
                    config: None,
                },
            )
            .await?;
        let scopes = parse_requested_scopes(&[
            "zerodb:*".to_owned(),
            "memory:*".to_owned(),
            "file:*".to_owned(),
        ])?;
        let ttl = self.limits.instant_db_ttl_secs;
        let (key, secret) = auth
            .create_key(
                &root,
                NewKey {
                    name: zerodb_domain::auth::KeyName::parse("instant-db key")
                        .map_err(|m| DomainError::Unexpected(anyhow::anyhow!(m)))?,
                    ttl_seconds: Some(ttl),
                    scopes,
                    kind: zerodb_domain::auth::KeyKind::Scoped,
                },
            )
            .await?;
        tracing::info!(account_id = %account.account_id, project_id = %project.id, "instant database provisioned");
        Ok(InstantDb {
            account_id: account.account_id,
            project,
            api_key: secret.expose().to_owned(),
            key_id: key.id,
            expires_at: now + ttl,
        })
    }
}

/// Project ids are ours: `proj_` and base32; anything else cannot name one (and is
/// refused before it reaches a key).
pub fn valid_project_id(id: &str) -> bool {
    id.len() <= 64
        && !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Counter attributes of the project's stats item.
pub const STAT_EVENTS: &str = "events";
pub const STAT_EVENT_BYTES: &str = "event_bytes";
pub const STAT_FILES: &str = "files";
pub const STAT_FILE_BYTES: &str = "file_bytes";
pub const STAT_VECTORS: &str = "vectors";
pub const STAT_RLHF: &str = "rlhf";
pub const STAT_RLHF_BYTES: &str = "rlhf_bytes";

/// An update of the project's counters, for a transaction of the write it counts.
pub fn count(project_id: &str, adds: &[(&str, i64)]) -> TxOp {
    TxOp::Update {
        key: keys::project_stats(project_id),
        updates: adds
            .iter()
            .map(|(a, n)| Update::Add((*a).to_owned(), *n))
            .collect(),
        condition: None,
    }
}

/// An item's attribute as a number (0 when absent).
pub fn number(item: &Item, attr: &str) -> i64 {
    item.get(attr).and_then(Value::as_i64).unwrap_or(0)
}

/// Most bytes of stored text (payloads, prompts, responses) one list answers: a Lambda's
/// response carries at most 6 MB, so a list stops its page here and hands back a cursor
/// that goes on after the last item it returned.
pub const ANSWER_BYTES: usize = 5 * 1024 * 1024;

/// Bytes `s` takes as a JSON string (quotes, backslashes and control characters are
/// escaped).
pub fn json_string_bytes(s: &str) -> usize {
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// Bytes a transaction may carry here: DynamoDB's 4 MB less room for key and attribute
/// overheads the estimate leaves out.
pub const TX_BYTES: usize = zerodb_domain::store::MAX_TRANSACTION_BYTES - 256 * 1024;

/// Splits `items` into runs that each fit one transaction (≤ 100 operations, ≤
/// [`TX_BYTES`]) beside `reserve` operations of the caller's own; `cost` gives an item's
/// operations and bytes. An item too big alone still gets a run of its own (the caller
/// refuses those before writing).
pub fn transaction_runs<T>(
    items: &[T],
    reserve: usize,
    cost: impl Fn(&T) -> (usize, usize),
) -> Vec<&[T]> {
    let max_ops = zerodb_domain::store::MAX_TRANSACTION_ITEMS - reserve;
    let mut runs = Vec::new();
    let (mut start, mut ops, mut bytes) = (0, 0, 0);
    for (i, item) in items.iter().enumerate() {
        let (o, b) = cost(item);
        if i > start && (ops + o > max_ops || bytes + b > TX_BYTES) {
            runs.push(&items[start..i]);
            (start, ops, bytes) = (i, 0, 0);
        }
        ops += o;
        bytes += b;
    }
    if start < items.len() {
        runs.push(&items[start..]);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_respect_operations_and_bytes() {
        let items: Vec<(usize, usize)> = vec![(1, 10); 250];
        let runs = transaction_runs(&items, 1, |c| *c);
        assert_eq!(
            runs.iter().map(|r| r.len()).collect::<Vec<_>>(),
            vec![99, 99, 52]
        );
        let big: Vec<(usize, usize)> = vec![(1, 1024 * 1024); 10];
        let runs = transaction_runs(&big, 1, |c| *c);
        assert!(
            runs.iter()
                .all(|r| r.iter().map(|c| c.1).sum::<usize>() <= TX_BYTES)
        );
        assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), 10);
    }
}
