//! The vectors conformance suite on every adapter: the embedded store, the AWS adapter on
//! moto (no QueryVectors there, so no query cases) and the AWS adapter on this crate's
//! S3 Vectors fake.

mod embedded {
    use zerodb_tests::support::{VectorsBackend, fresh_vectors};
    zerodb_tests::vectors_conformance_cases!(make: fresh_vectors(VectorsBackend::Embedded), query: true);
}

mod moto {
    use zerodb_tests::support::{VectorsBackend, fresh_vectors};
    zerodb_tests::vectors_conformance_cases!(make: fresh_vectors(VectorsBackend::Moto), query: false);
}

mod fake {
    use zerodb_tests::support::{VectorsBackend, fresh_vectors};
    zerodb_tests::vectors_conformance_cases!(make: fresh_vectors(VectorsBackend::Fake), query: true);
}
