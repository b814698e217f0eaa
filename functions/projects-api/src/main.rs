//! The projects-api Lambda: projects and instant databases.

fn main() -> Result<(), zerodb_lambda::Error> {
    zerodb_lambda::run_http(vec![projects_api::group()])
}
