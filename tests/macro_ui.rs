//! Compile-fail UI tests for `#[volttron::agent]`, `#[volttron::main]` and
//! `#[volttron::test]`: each case under `tests/ui/` must fail with exactly the error in its
//! `.stderr`. Regenerate with `TRYBUILD=overwrite cargo test --test macro_ui`.

#[test]
fn macro_ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
