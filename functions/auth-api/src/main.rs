//! The auth-api Lambda: keys and tokens, plus health, the OpenAPI document and the JSON
//! 404 for every route no other function owns.

fn main() -> Result<(), zerodb_lambda::Error> {
    zerodb_lambda::run_http(vec![
        auth_api::group(),
        auth_api::meta(auth_api::OPENAPI_JSON),
    ])
}
