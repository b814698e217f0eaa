//! Contracts between the groups, the OpenAPI document and template.yaml: a route served
//! but undocumented, served locally but not deployed (or deployed to another function),
//! a template route no group serves, a queue configured one way here and another there —
//! each fails here. Everything is read from the one list of groups and workers.

use std::collections::BTreeSet;

use serde_yaml::Value as Yaml;
use zerodb_domain::queues::QueueName;
use zerodb_http::Group;

/// (method, path) of every served route.
fn served() -> BTreeSet<(String, String)> {
    zerodb_local::route_index()
        .into_iter()
        .map(|(_, r)| (r.method, r.path))
        .collect()
}

fn documented() -> BTreeSet<(String, String)> {
    let doc = zerodb_local::openapi_document();
    let json = serde_json::to_value(&doc).expect("document serialises");
    let mut out = BTreeSet::new();
    for (path, item) in json["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                out.insert((method.to_uppercase(), path.clone()));
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

fn template() -> Yaml {
    let text = std::fs::read_to_string(repo_file("template.yaml")).expect("read template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml parses")
}

/// `!Ref X` / `!GetAtt X.Arn` as (tag, value).
fn intrinsic(v: &Yaml) -> Option<(String, String)> {
    match v {
        Yaml::Tagged(t) => Some((t.tag.to_string(), t.value.as_str()?.to_owned())),
        _ => None,
    }
}

/// A function of the template.
#[derive(Debug)]
struct Function {
    logical_id: String,
    binary: String,
    props: Yaml,
}

fn functions(doc: &Yaml) -> Vec<Function> {
    doc["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(name, r)| Function {
            logical_id: name.as_str().expect("name").to_owned(),
            binary: r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            props: r["Properties"].clone(),
        })
        .collect()
}

/// One HttpApi route of the template and the function it goes to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct TemplateRoute {
    method: String,
    path: String,
    binary: String,
}

fn template_routes(doc: &Yaml) -> Vec<TemplateRoute> {
    let mut out = Vec::new();
    for f in functions(doc) {
        if let Some(events) = f.props["Events"].as_mapping() {
            for (_, ev) in events {
                if ev["Type"].as_str() == Some("HttpApi") {
                    let p = &ev["Properties"];
                    out.push(TemplateRoute {
                        method: p["Method"].as_str().expect("Method").to_uppercase(),
                        path: p["Path"].as_str().expect("Path").to_owned(),
                        binary: f.binary.clone(),
                    });
                }
            }
        }
    }
    out
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_start_matches('/').split('/').collect()
}

fn is_param(seg: &str) -> bool {
    seg.starts_with('{') && seg.ends_with('}')
}

/// How specifically the template route `t` matches the served route (method, path), or
/// `None` if it does not. API Gateway's order: a route without a greedy variable before
/// one with it; more literal segments (for greedy routes: a longer prefix) before fewer;
/// a method before `ANY`. A served `{param}` segment matches only a template variable,
/// since any value may come in it.
fn specificity(t: &TemplateRoute, method: &str, path: &str) -> Option<(bool, usize, bool)> {
    if t.path == "$default" || !(t.method == method || t.method == "ANY") {
        return None;
    }
    let (ts, ps) = (segments(&t.path), segments(path));
    let greedy = ts.last().is_some_and(|s| s.ends_with("+}"));
    let fixed = if greedy { &ts[..ts.len() - 1] } else { &ts[..] };
    if greedy && ps.len() <= fixed.len() || !greedy && ps.len() != ts.len() {
        return None;
    }
    let mut literal = 0;
    for (t_seg, p_seg) in fixed.iter().zip(&ps) {
        match (is_param(t_seg), is_param(p_seg)) {
            (true, _) => {}
            (false, false) if t_seg == p_seg => literal += 1,
            _ => return None,
        }
    }
    Some((!greedy, literal, t.method != "ANY"))
}

/// The one template route API Gateway sends (method, path) to; a tie is a defect.
fn owner<'a>(
    routes: &'a [TemplateRoute],
    method: &str,
    path: &str,
) -> Result<&'a TemplateRoute, String> {
    let mut ranked: Vec<_> = routes
        .iter()
        .filter_map(|t| specificity(t, method, path).map(|s| (s, t)))
        .collect();
    ranked.sort_by_key(|r| std::cmp::Reverse(r.0));
    match ranked.as_slice() {
        [] => Err(format!("{method} {path} reaches no route of template.yaml")),
        [(s1, a), (s2, b), ..] if s1 == s2 => Err(format!(
            "{method} {path} matches {} {} ({}) and {} {} ({}) equally",
            a.method, a.path, a.binary, b.method, b.path, b.binary
        )),
        [(_, t), ..] => Ok(t),
    }
}

#[test]
fn every_served_route_is_in_the_openapi_document_and_nothing_else() {
    let (served, documented) = (served(), documented());
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served but missing from OpenAPI (give the handler a #[utoipa::path]): {undocumented:?}"
    );
    let phantom: Vec<_> = documented.difference(&served).collect();
    assert!(phantom.is_empty(), "documented but not served: {phantom:?}");
}

#[test]
fn every_route_is_served_once_and_names_its_handler() {
    let index = zerodb_local::route_index();
    let mut seen = BTreeSet::new();
    for (group, r) in &index {
        assert!(
            seen.insert((r.method.clone(), r.path.clone())),
            "{} {} is served twice",
            r.method,
            r.path
        );
        let crate_name = r.handler.split("::").next().unwrap_or_default();
        let a_group_crate = repo_file(&format!(
            "functions/{}/Cargo.toml",
            crate_name.replace('_', "-")
        ))
        .exists();
        assert!(
            r.handler.matches("::").count() >= 1
                && (a_group_crate || crate_name.starts_with("zerodb_")),
            "{group}: {} {} names its handler as crate::module::fn, not {:?}",
            r.method,
            r.path,
            r.handler
        );
    }
}

#[test]
fn a_schema_name_means_one_schema_across_groups() {
    // Components are merged by name into one document: two groups naming different
    // shapes alike would document one group's answers with the other's schema (seen:
    // the graph's `StatsView` describing the vectors stats).
    let mut seen: std::collections::BTreeMap<String, (String, serde_json::Value)> =
        Default::default();
    for g in zerodb_local::served_groups() {
        let doc = serde_json::to_value(g.openapi()).unwrap();
        let Some(schemas) = doc["components"]["schemas"].as_object() else {
            continue;
        };
        for (name, schema) in schemas {
            match seen.get(name) {
                Some((other, s)) => assert_eq!(
                    s,
                    schema,
                    "schema {name} of group {} differs from group {other}'s: rename one",
                    g.name()
                ),
                None => {
                    seen.insert(name.clone(), (g.name().to_owned(), schema.clone()));
                }
            }
        }
    }
}

#[test]
fn every_reference_in_the_document_resolves() {
    let json = serde_json::to_value(zerodb_local::openapi_document()).unwrap();
    let schemas = json["components"]["schemas"].as_object().unwrap();
    let text = json.to_string();
    for piece in text.split("\"$ref\":\"").skip(1) {
        let target = piece.split('"').next().unwrap();
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {target}"));
        assert!(schemas.contains_key(name), "{target} does not resolve");
    }
}

/// Every served route reaches, by API Gateway's own precedence, a route of the function
/// whose binary serves its group; every template route is reached by some served route;
/// no route key is declared twice.
#[test]
fn template_sends_every_route_to_the_function_that_serves_it() {
    let doc = template();
    let routes = template_routes(&doc);
    let mut keys = BTreeSet::new();
    for t in &routes {
        assert!(
            keys.insert((t.method.clone(), t.path.clone())),
            "{} {} is declared twice in template.yaml",
            t.method,
            t.path
        );
    }
    let mut reached = BTreeSet::new();
    for g in zerodb_local::served_groups() {
        for r in g.routes() {
            let t = owner(&routes, &r.method, &r.path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                t.binary,
                g.binary(),
                "{} {} ({}) reaches {} {} of {} in template.yaml, but the {} group is served by {}",
                r.method,
                r.path,
                r.handler,
                t.method,
                t.path,
                t.binary,
                g.name(),
                g.binary()
            );
            reached.insert(t.clone());
        }
    }
    for t in &routes {
        if t.path == "$default" {
            assert_eq!(t.binary, "auth-api", "the JSON 404 for unknown routes");
            continue;
        }
        assert!(
            reached.contains(t),
            "template.yaml routes {} {} to {}, but no group serves it",
            t.method,
            t.path,
            t.binary
        );
    }
}

#[test]
fn one_name_everywhere_and_every_function_runs_a_group_or_a_worker() {
    let doc = template();
    let groups: Vec<Group> = zerodb_local::served_groups();
    let workers = zerodb_local::workers();
    let mut binaries: BTreeSet<&str> = groups.iter().map(Group::binary).collect();
    binaries.extend(workers.iter().map(|w| w.binary()));
    let functions = functions(&doc);
    let in_template: BTreeSet<&str> = functions.iter().map(|f| f.binary.as_str()).collect();
    assert_eq!(
        in_template, binaries,
        "template.yaml has one function per Lambda binary of the groups and workers"
    );
    for f in &functions {
        // One name everywhere: resource = PascalCase(binary) + Function.
        let pascal: String = f
            .binary
            .split('-')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect();
        assert_eq!(
            f.logical_id,
            format!("{pascal}Function"),
            "resource of {}",
            f.binary
        );
        assert!(
            repo_file(&format!("functions/{}/Cargo.toml", f.binary)).exists(),
            "functions/{} exists",
            f.binary
        );
    }
}

/// What one caller can spend is bounded before a function runs: the HTTP API throttles,
/// every function serving HTTP has reserved concurrency (the inference Function URL, not
/// behind the API, most of all) and each worker a maximum concurrency on its trigger,
/// all template parameters with defaults. The token key is in no environment: the
/// functions that serve HTTP (the ones that sign or verify tokens) get its secret's id and
/// may read that one secret; a worker gets neither.
#[test]
fn every_function_is_bounded_at_the_edge_and_only_http_functions_read_the_token_key() {
    let doc = template();
    let text = std::fs::read_to_string(repo_file("template.yaml")).unwrap();
    assert!(
        !text.contains("ZERODB_JWT_SECRET:") && !text.contains("resolve:secretsmanager"),
        "no function's environment holds the token key"
    );
    let param_default = |v: &Yaml| -> i64 {
        let (tag, name) = intrinsic(v).unwrap_or_else(|| panic!("a parameter: {v:?}"));
        assert_eq!(tag, "!Ref");
        doc["Parameters"][name.as_str()]["Default"]
            .as_i64()
            .unwrap_or_else(|| panic!("{name} has a numeric default"))
    };
    let api = &doc["Resources"]["HttpApi"]["Properties"]["DefaultRouteSettings"];
    assert!(param_default(&api["ThrottlingRateLimit"]) > 0);
    assert!(param_default(&api["ThrottlingBurstLimit"]) > 0);

    let groups = zerodb_local::served_groups();
    let http: BTreeSet<&str> = groups.iter().map(Group::binary).collect();
    let reads_token_key = |props: &Yaml| {
        props["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
            .any(|p| {
                p["Statement"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .any(|st| {
                        st["Action"].as_str() == Some("secretsmanager:GetSecretValue")
                            && intrinsic(&st["Resource"])
                                == Some(("!Ref".into(), "JwtSecret".into()))
                    })
            })
    };
    for f in functions(&doc) {
        let env = &f.props["Environment"]["Variables"]["ZERODB_JWT_SECRET_ID"];
        if http.contains(f.binary.as_str()) {
            assert_eq!(
                intrinsic(env),
                Some(("!Ref".into(), "JwtSecret".into())),
                "{} gets the token key's secret id",
                f.binary
            );
            assert!(
                reads_token_key(&f.props),
                "{} may read the token key",
                f.binary
            );
            // !If [Reserve<X>, !Ref <X>Concurrency, !Ref AWS::NoValue]
            let reserved = &f.props["ReservedConcurrentExecutions"];
            let Yaml::Tagged(t) = reserved else {
                panic!("{} has reserved concurrency: {reserved:?}", f.binary)
            };
            assert_eq!(t.tag.to_string(), "!If");
            assert!(
                param_default(&t.value[1]) > 0,
                "{}'s default reserves some",
                f.binary
            );
        } else {
            assert!(env.is_null(), "{} (a worker) has no token key", f.binary);
            assert!(
                !reads_token_key(&f.props),
                "{} may not read the token key",
                f.binary
            );
            for (_, ev) in f.props["Events"]
                .as_mapping()
                .expect("a worker has a trigger")
            {
                let max = &ev["Properties"]["ScalingConfig"]["MaximumConcurrency"];
                assert!(param_default(max) >= 2, "{}'s trigger is bounded", f.binary);
            }
        }
    }
}

/// Each queue in template.yaml is exactly its spec: visibility timeout, dead-letter
/// queue with its retention and receive limit, the alarm on it, its URL in every
/// function's environment, and one consumer, its worker, reporting partial failures
/// within the visibility timeout.
#[test]
fn queues_in_the_template_are_their_specs_with_one_consumer_each() {
    let doc = template();
    let resources = doc["Resources"].as_mapping().unwrap();
    let res = |name: &str| -> &Yaml {
        resources
            .get(name)
            .unwrap_or_else(|| panic!("template.yaml has no resource {name}"))
    };
    let mut queue_resources = BTreeSet::new();
    let workers = zerodb_local::workers();
    for q in QueueName::ALL {
        let spec = q.spec();
        let queue = res(spec.resource);
        assert_eq!(queue["Type"].as_str(), Some("AWS::SQS::Queue"));
        let p = &queue["Properties"];
        assert_eq!(
            p["VisibilityTimeout"].as_u64(),
            Some(u64::from(spec.visibility_timeout_secs)),
            "{} VisibilityTimeout",
            spec.resource
        );
        assert_eq!(
            p["RedrivePolicy"]["maxReceiveCount"].as_u64(),
            Some(u64::from(spec.max_receives)),
            "{} maxReceiveCount",
            spec.resource
        );
        let dlq = spec.dead_letter_resource();
        assert_eq!(
            intrinsic(&p["RedrivePolicy"]["deadLetterTargetArn"]),
            Some(("!GetAtt".to_owned(), format!("{dlq}.Arn"))),
            "{} dead-letters into {dlq}",
            spec.resource
        );
        assert_eq!(
            res(&dlq)["Properties"]["MessageRetentionPeriod"].as_u64(),
            Some(u64::from(spec.dead_letter_retention_secs)),
            "{dlq} retention"
        );
        let alarm = res(&spec.alarm_resource());
        assert_eq!(alarm["Type"].as_str(), Some("AWS::CloudWatch::Alarm"));
        assert_eq!(
            intrinsic(&alarm["Properties"]["Dimensions"][0]["Value"]),
            Some(("!GetAtt".to_owned(), format!("{dlq}.QueueName"))),
            "the alarm watches {dlq}"
        );
        assert_eq!(
            intrinsic(&doc["Globals"]["Function"]["Environment"]["Variables"][spec.url_env]),
            Some(("!Ref".to_owned(), spec.resource.to_owned())),
            "every function gets {} from {}",
            spec.url_env,
            spec.resource
        );
        queue_resources.insert(spec.resource.to_owned());
        queue_resources.insert(dlq);

        let consumers: Vec<(String, Yaml, Yaml)> = functions(&doc)
            .into_iter()
            .flat_map(|f| {
                let timeout = f.props["Timeout"].clone();
                f.props["Events"]
                    .as_mapping()
                    .into_iter()
                    .flatten()
                    .filter(|(_, e)| {
                        e["Type"].as_str() == Some("SQS")
                            && intrinsic(&e["Properties"]["Queue"])
                                == Some(("!GetAtt".to_owned(), format!("{}.Arn", spec.resource)))
                    })
                    .map(|(_, e)| (f.binary.clone(), e["Properties"].clone(), timeout.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let worker = workers
            .iter()
            .find(|w| w.queue() == q)
            .unwrap_or_else(|| panic!("a worker consumes {}", spec.id));
        assert_eq!(
            consumers.len(),
            1,
            "{} has one consumer: {consumers:?}",
            spec.resource
        );
        let (binary, props, timeout) = &consumers[0];
        assert_eq!(
            binary,
            worker.binary(),
            "{} is consumed by its worker",
            spec.resource
        );
        assert!(
            props["FunctionResponseTypes"]
                .as_sequence()
                .is_some_and(|t| t
                    .iter()
                    .any(|t| t.as_str() == Some("ReportBatchItemFailures"))),
            "{binary} reports partial batch failures"
        );
        let timeout = timeout
            .as_u64()
            .or_else(|| doc["Globals"]["Function"]["Timeout"].as_u64())
            .unwrap();
        assert!(
            timeout < u64::from(spec.visibility_timeout_secs),
            "{binary}'s timeout ({timeout} s) is within {}'s visibility timeout",
            spec.resource
        );
    }
    let declared: BTreeSet<String> = resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::SQS::Queue"))
        .map(|(n, _)| n.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        declared, queue_resources,
        "every queue in template.yaml is declared in zerodb_domain::queues"
    );
}

#[test]
fn openapi_is_version_3_1_and_lists_auth_errors_on_protected_operations() {
    let json = serde_json::to_value(zerodb_local::openapi_document()).unwrap();
    assert!(json["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut open = std::collections::BTreeSet::new();
    for (path, item) in json["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("security").is_none() {
                open.insert(format!("{} {path}", method.to_uppercase()));
            } else {
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
    // Everything takes a credential but health, the document itself, instant-db (open
    // account creation, off unless enabled) and the signed file URLs (the signature is
    // the credential).
    let expected: std::collections::BTreeSet<String> = [
        "GET /api/v1/health",
        "GET /api/v1/public/health",
        "GET /openapi.json",
        "POST /api/v1/public/instant-db",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert!(expected.is_subset(&open), "{expected:?} are open: {open:?}");
    let signed: Vec<&String> = open.difference(&expected).collect();
    assert!(
        signed.iter().all(|r| r.contains("/signed/")),
        "routes without a credential: {open:?}"
    );
}

/// The Lambda serves the checked-in document, so it must match the code. Regenerate
/// with `UPDATE_OPENAPI=1 cargo test -p zerodb-tests contract`.
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
        "infra/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test -p zerodb-tests contract, then rebuild auth-api"
    );
}

#[test]
fn the_precedence_rules_pick_what_api_gateway_picks() {
    let t = |m: &str, p: &str, b: &str| TemplateRoute {
        method: m.into(),
        path: p.into(),
        binary: b.into(),
    };
    let routes = vec![
        t("ANY", "/api/v1/projects/{proxy+}", "projects"),
        t(
            "POST",
            "/api/v1/projects/{project_id}/database/memory/batch/upsert",
            "memory",
        ),
        t(
            "ANY",
            "/api/v1/projects/{project_id}/database/{proxy+}",
            "database",
        ),
        t("GET", "/api/v1/items/{id}", "a"),
        t("GET", "/api/v1/items/mine", "b"),
    ];
    let who = |m: &str, p: &str| owner(&routes, m, p).map(|t| t.binary.clone());
    assert_eq!(
        who(
            "POST",
            "/api/v1/projects/{project_id}/database/memory/batch/upsert"
        )
        .unwrap(),
        "memory"
    );
    assert_eq!(
        who("GET", "/api/v1/projects/{project_id}/database/tables").unwrap(),
        "database"
    );
    assert_eq!(
        who("GET", "/api/v1/projects/{project_id}").unwrap(),
        "projects"
    );
    assert_eq!(who("GET", "/api/v1/items/mine").unwrap(), "b");
    assert_eq!(who("GET", "/api/v1/items/{id}").unwrap(), "a");
    assert!(
        who("GET", "/api/v1/projects").is_err(),
        "a greedy variable needs a segment"
    );
    assert!(who("DELETE", "/api/v1/items/{id}").is_err());
}

/// Crates that build no test harness (`test = false`, to spare CI a link of the whole
/// workspace each) must hold no tests, or those tests would silently never run.
#[test]
fn crates_without_a_test_harness_hold_no_tests() {
    let root = repo_file("");
    let mut checked = 0;
    let mut crates: Vec<std::path::PathBuf> = vec![root.join("tests")];
    for dir in ["functions", "infra", "shared"] {
        crates.extend(
            std::fs::read_dir(root.join(dir))
                .unwrap()
                .flatten()
                .map(|e| e.path()),
        );
    }
    {
        for dir in crates {
            let manifest = dir.join("Cargo.toml");
            let Ok(text) = std::fs::read_to_string(&manifest) else {
                continue;
            };
            let toml: toml::Value = toml::from_str(&text).unwrap();
            let mut no_harness: Vec<String> = Vec::new();
            if toml
                .get("lib")
                .and_then(|l| l.get("test"))
                .and_then(|t| t.as_bool())
                == Some(false)
            {
                no_harness.push("src/lib.rs".into());
                // Its modules too.
                for f in std::fs::read_dir(dir.join("src")).unwrap().flatten() {
                    let name = f.file_name().to_string_lossy().into_owned();
                    if name.ends_with(".rs") && name != "main.rs" && name != "lib.rs" {
                        no_harness.push(format!("src/{name}"));
                    }
                }
            }
            for bin in toml
                .get("bin")
                .and_then(|b| b.as_array())
                .into_iter()
                .flatten()
            {
                if bin.get("test").and_then(|t| t.as_bool()) == Some(false) {
                    let name = bin["name"].as_str().unwrap();
                    let main = dir.join("src/main.rs");
                    no_harness.push(
                        if main.exists() && dir.file_name().is_some_and(|f| f == name) {
                            "src/main.rs".into()
                        } else {
                            format!("src/bin/{name}.rs")
                        },
                    );
                }
            }
            for file in no_harness {
                let path = dir.join(&file);
                let Ok(src) = std::fs::read_to_string(&path) else {
                    continue;
                };
                checked += 1;
                for marker in ["#[test]", "#[tokio::test", "#[cfg(test)]"] {
                    assert!(
                        !src.contains(marker),
                        "{} has `{marker}` but its crate builds no test harness for it: move the test to a crate that runs its tests",
                        path.display()
                    );
                }
            }
        }
    }
    assert!(
        checked >= 10,
        "the check found the crates it guards ({checked} files)"
    );
}
