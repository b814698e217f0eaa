//! The operator command, pointed at DynamoDB (moto here): `accounts create --backend aws`
//! creates an account whose root key authenticates against that table.

use std::process::Command;
use std::sync::Arc;

use zerodb_domain::auth::{AuthService, AuthSettings, Credential};
use zerodb_domain::clock::SystemClock;
use zerodb_domain::scope::{Permission, Service};
use zerodb_store_aws::{AwsTable, provision};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_create_against_dynamodb_prints_a_working_root_key() {
    // Also sets moto's dummy credentials for this process, which the child inherits.
    let clients = zerodb_tests::support::aws_clients().await;
    let table = format!("ops-{}", zerodb_domain::ids::time_ordered_id());
    provision::create_table(&clients.dynamodb, &table)
        .await
        .expect("create table");

    let out = Command::new(zerodb_tests::workspace_bin("zerodb-local"))
        .args([
            "accounts",
            "create",
            "--name",
            "ops-account",
            "--backend",
            "aws",
        ])
        .env("ZERODB_TABLE", &table)
        .output()
        .expect("run zerodb-local");
    assert!(
        out.status.success(),
        "accounts create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .to_owned()
    };
    let (account_id, root_key) = (field("account_id"), field("root_key"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shown only once"));

    let auth = AuthService::new(
        Arc::new(AwsTable::new(clients.dynamodb, table)),
        Arc::new(SystemClock),
        &AuthSettings {
            jwt_secret: vec![1; 32],
            rate_limit_per_minute: 0,
            rate_counting: Default::default(),
            limits: Default::default(),
        },
    );
    let principal = auth
        .authenticate(Credential::ApiKey(&root_key))
        .await
        .expect("root key authenticates");
    assert_eq!(principal.account_id, account_id);
    assert!(
        principal
            .scopes
            .grants(Service::Zerodb, Permission::Admin, None),
        "a root key holds every scope"
    );
}
