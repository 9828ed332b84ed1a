//! What `#[runnel::main]` and `#[runnel::test]` refuse, and the errors they give
//! (`tests/ui/*.rs` with their `.stderr`); and what must compile: shadowed names,
//! `Result` returns, kept attributes (`tests/ui/pass/*.rs`, built and run).
//!
//! After changing a message, regenerate with `TRYBUILD=overwrite cargo test --test
//! macros_ui` and review every changed `.stderr` by eye: each message must say what
//! to write instead.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
