//! Test support for ZeroDB's black-box and adapter tests: apps on either storage
//! backend, a request helper over `tower::ServiceExt::oneshot`, and the storage
//! conformance suite.

pub mod conformance;
pub mod support;
