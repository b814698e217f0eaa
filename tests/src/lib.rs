//! Test support for ZeroDB's black-box and adapter tests: apps on either storage
//! backend, a request helper over `tower::ServiceExt::oneshot`, the storage
//! conformance suite, and a fake LLM provider for the inference gateway.

pub mod conformance;
pub mod fake_provider;
pub mod support;
