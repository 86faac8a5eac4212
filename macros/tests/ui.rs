//! Each misuse of `#[traced]` is a compile error that names the option and
//! the accepted forms, pointing at the offending token (`ui/*.stderr`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
