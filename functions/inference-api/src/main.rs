//! The inference-api Lambda, on lambda_http's streaming runner: behind a Function URL
//! with `InvokeMode: RESPONSE_STREAM`, SSE events reach the client as the provider sends
//! them; HTTP API events are answered too.

fn main() -> Result<(), zerodb_lambda::Error> {
    zerodb_lambda::run_streaming(vec![inference_api::group()])
}
