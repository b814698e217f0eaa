//! The database-api Lambda: tables, events, RLHF interactions and batch queries.

fn main() -> Result<(), zerodb_lambda::Error> {
    zerodb_lambda::run_http(vec![database_api::group()])
}
