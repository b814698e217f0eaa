//! The files-api Lambda: a project's files, their bytes in S3 and presigned URLs.

fn main() -> Result<(), zerodb_lambda::Error> {
    zerodb_lambda::run_http(vec![files_api::group()])
}
