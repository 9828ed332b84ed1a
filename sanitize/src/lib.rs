//! Empty on purpose. This package only carries test targets: the root crate's stress tests
//! (`tests/wake_uaf.rs`, `tests/deadlock_stress.rs`), built against `runnel` with few
//! dev-dependencies so that `.ci/sanitize` can build them with `-Zbuild-std` under
//! AddressSanitizer and ThreadSanitizer in reasonable time. See `.ci/sanitize`.
