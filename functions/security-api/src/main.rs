//! The security-api Lambda: quarantine.

fn main() -> Result<(), zerodb_lambda::Error> {
    zerodb_lambda::run_http(vec![security_api::group()])
}
