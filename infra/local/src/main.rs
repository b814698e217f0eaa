//! zerodb-local's entry point; everything lives in the library.

fn main() -> anyhow::Result<()> {
    // SAFETY: first thing in main, before the runtime or anything else starts a thread.
    unsafe { zerodb_embed::model_runtime() }?.block_on(async {
        zerodb_http::telemetry::init();
        zerodb_local::cli::run().await
    })
}
