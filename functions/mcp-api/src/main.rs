//! The mcp-api Lambda. The model's runtime first (generate_embeddings runs the embedder
//! in process): it sets the inference threads before any other thread exists.

fn main() -> Result<(), zerodb_lambda::Error> {
    // SAFETY: first thing in main, before the runtime or anything else starts a thread.
    let runtime = unsafe { zerodb_embed::model_runtime() }?;
    zerodb_lambda::run_http_on(runtime, vec![mcp_api::group()])
}
