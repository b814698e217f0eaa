//! Test support for ZeroDB's black-box and adapter tests: apps on either storage
//! backend, a request helper over `tower::ServiceExt::oneshot`, the storage
//! conformance suites (tables, blobs, queues; vectors), a fake LLM provider for the
//! inference gateway and a fake of Amazon S3 Vectors.

pub mod conformance;
pub mod fake_provider;
pub mod fake_s3vectors;
pub mod lambda;
pub mod support;
pub mod vectors_conformance;

/// A binary of another package of the workspace (a Lambda function, zerodb-local), from
/// the target directory this test runs from. Cargo builds other packages' binaries only
/// when asked, so the test command builds them first (`cargo build --workspace --bins`).
/// `ZERODB_BIN_DIR` points elsewhere (e.g. `target/perf`, to time optimised binaries).
pub fn workspace_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // <target>/<profile>/deps/<test binary>
    let dir = match std::env::var_os("ZERODB_BIN_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("a test binary lives in <target>/<profile>/deps")
            .to_owned(),
    };
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is not built: run `cargo build --workspace --bins` first (./infra/test.sh does)",
        bin.display()
    );
    bin
}
