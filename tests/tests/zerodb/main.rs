//! Every black-box and adapter test of the workspace, in one test binary: each module
//! was its own binary once, and each of those linked the whole workspace again.

mod accounts_aws;
mod auth_api;
mod auth_load;
mod conformance_aws;
mod conformance_embedded;
mod contract;
mod crash;
mod database_api;
mod events_worker;
mod fake_provider;
mod fake_s3vectors;
mod files_api;
mod inference_api;
mod lambda;
mod local_server;
mod mcp_api;
mod memory_api;
mod memory_bounds;
mod memory_graph;
mod memory_meaning;
mod project_memory;
mod projects_api;
mod projects_review;
mod security_api;
mod vectors_api;
mod vectors_conformance;
