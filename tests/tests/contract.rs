//! Contracts between the routers, the OpenAPI document and template.yaml: a route served
//! but undocumented, or served locally but not deployed (or the reverse), fails here.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value as Yaml;
use zerodb_http::RouteInfo;

fn served() -> BTreeSet<RouteInfo> {
    zerodb_local::all_routes()
        .served()
        .iter()
        .cloned()
        .collect()
}

fn documented() -> BTreeSet<RouteInfo> {
    let doc = zerodb_local::openapi_document();
    let json = serde_json::to_value(&doc).expect("document serialises");
    let mut out = BTreeSet::new();
    for (path, item) in json["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                out.insert(RouteInfo {
                    method: method.to_uppercase(),
                    path: path.clone(),
                });
            }
        }
    }
    out
}

fn repo_file(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

/// (function logical id, its binary) -> the routes its HttpApi events declare.
fn template_routes() -> BTreeMap<(String, String), BTreeSet<RouteInfo>> {
    let text = std::fs::read_to_string(repo_file("template.yaml")).expect("read template.yaml");
    let doc: Yaml = serde_yaml::from_str(&text).expect("template.yaml parses");
    let mut out = BTreeMap::new();
    for (name, res) in doc["Resources"].as_mapping().expect("Resources") {
        if res["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = res["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut routes = BTreeSet::new();
        if let Some(events) = res["Properties"]["Events"].as_mapping() {
            for (_, ev) in events {
                if ev["Type"].as_str() == Some("HttpApi") {
                    let p = &ev["Properties"];
                    routes.insert(RouteInfo {
                        method: p["Method"].as_str().expect("Method").to_uppercase(),
                        path: p["Path"].as_str().expect("Path").to_owned(),
                    });
                }
            }
        }
        out.insert((name.as_str().expect("name").to_owned(), binary), routes);
    }
    out
}

fn show(set: &BTreeSet<&RouteInfo>) -> String {
    set.iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn every_served_route_is_in_the_openapi_document_and_nothing_else() {
    let (served, documented) = (served(), documented());
    let undocumented: BTreeSet<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served but missing from OpenAPI (add them to the group's #[openapi(paths(...))]): {}",
        show(&undocumented)
    );
    let phantom: BTreeSet<_> = documented.difference(&served).collect();
    assert!(
        phantom.is_empty(),
        "documented but not served: {}",
        show(&phantom)
    );
}

#[test]
fn template_deploys_exactly_the_served_routes() {
    let template = template_routes();
    let deployed: BTreeSet<RouteInfo> = template
        .values()
        .flatten()
        .filter(|r| r.path != "$default")
        .cloned()
        .collect();
    let served = served();
    let missing: BTreeSet<_> = served.difference(&deployed).collect();
    assert!(
        missing.is_empty(),
        "served but missing from template.yaml: {}",
        show(&missing)
    );
    let extra: BTreeSet<_> = deployed.difference(&served).collect();
    assert!(
        extra.is_empty(),
        "in template.yaml but not served by any router: {}",
        show(&extra)
    );
}

#[test]
fn each_function_declares_exactly_what_its_router_serves() {
    let template = template_routes();
    for (binary, routes) in [
        ("auth-api", auth_api::lambda_routes()),
        ("memory-api", memory_api::lambda_routes()),
        ("security-api", security_api::lambda_routes()),
        ("inference-api", inference_api::lambda_routes()),
    ] {
        let served: BTreeSet<RouteInfo> = routes.served().iter().cloned().collect();
        let declared = template
            .iter()
            .find(|((_, bin), _)| bin == binary)
            .map(|(_, r)| {
                r.iter()
                    .filter(|r| r.path != "$default")
                    .cloned()
                    .collect::<BTreeSet<_>>()
            })
            .unwrap_or_else(|| panic!("template.yaml has the {binary} function"));
        assert_eq!(
            declared, served,
            "the {binary} function's events must match its lambda_routes()"
        );
    }
    // One name everywhere: resource = PascalCase(binary) + Function.
    for (name, bin) in template.keys() {
        let pascal: String = bin
            .split('-')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect();
        assert_eq!(
            name,
            &format!("{pascal}Function"),
            "resource name for binary {bin}"
        );
        assert!(
            repo_file(&format!("functions/{bin}/Cargo.toml")).exists(),
            "functions/{bin} exists"
        );
    }
}

#[test]
fn openapi_is_version_3_1_and_lists_auth_errors_on_protected_operations() {
    let json = serde_json::to_value(zerodb_local::openapi_document()).unwrap();
    assert!(json["openapi"].as_str().unwrap().starts_with("3.1"));
    for (path, item) in json["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("security").is_some() {
                for code in ["401", "403", "429"] {
                    assert!(
                        op["responses"].get(code).is_some(),
                        "{method} {path} must document {code}"
                    );
                }
            }
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} documents responses"
            );
        }
    }
}

/// The Lambda serves the checked-in document, so it must match the code. Regenerate
/// with `UPDATE_OPENAPI=1 cargo test -p zerodb-tests --test contract`.
#[test]
fn checked_in_openapi_json_matches_the_code() {
    let generated = zerodb_local::openapi_document().to_pretty_json().unwrap() + "\n";
    let path = repo_file("infra/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write infra/openapi.json");
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "infra/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test -p zerodb-tests --test contract, then rebuild auth-api"
    );
}
