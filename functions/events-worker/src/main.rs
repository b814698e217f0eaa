//! The events-worker Lambda, on the events queue's SQS trigger. The model's runtime
//! first: it sets the inference threads before any other thread exists.

fn main() -> Result<(), zerodb_lambda::Error> {
    // SAFETY: first thing in main, before the runtime or anything else starts a thread.
    let runtime = unsafe { zerodb_embed::model_runtime() }?;
    zerodb_lambda::run_sqs_on(runtime, events_worker::worker())
}
