//! `#[traced(crate = path)]`: a crate that re-exports flowtrace under
//! another path traces through it (the expansion names `path::__private`,
//! see `macros/tests/ui/crate-path-not-found.rs`).

mod common;

use common::{attr_str, named, parent_of, traced_in_root};
use opentelemetry::trace::{SpanKind, Status};

/// What a facade crate does: flowtrace under its own path.
mod facade {
    pub use flowtrace::*;
}

#[flowtrace::traced(crate = crate::facade, kind = client, ret)]
async fn through_facade(n: u32) -> Result<u32, std::io::Error> {
    if n == 0 {
        return Err(std::io::Error::other("zero"));
    }
    Ok(n * 2)
}

#[flowtrace::traced(crate = crate::facade)]
fn sync_through_facade(n: u32) -> u32 {
    n + 1
}

#[tokio::test]
async fn a_reexported_flowtrace_traces_like_the_original() {
    let (out, spans) = traced_in_root(async {
        let ok = through_facade(2).await.unwrap();
        let err = through_facade(0).await.is_err();
        (ok, err, sync_through_facade(1))
    })
    .await;
    assert_eq!(out, (4, true, 2));
    let calls: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "through_facade")
        .collect();
    assert_eq!(calls.len(), 2);
    for span in &calls {
        assert_eq!(span.span_kind, SpanKind::Client);
        assert_eq!(
            parent_of(&spans, span).map(|p| p.name.as_ref()),
            Some("test-root")
        );
    }
    let ok = calls
        .iter()
        .find(|s| attr_str(s, "flowtrace.input.n").as_deref() == Some("2"))
        .expect("the Ok call");
    assert_eq!(attr_str(ok, "flowtrace.output").as_deref(), Some("4"));
    assert_eq!(ok.status, Status::Unset);
    let failed = calls
        .iter()
        .find(|s| attr_str(s, "flowtrace.input.n").as_deref() == Some("0"))
        .expect("the Err call");
    assert!(matches!(&failed.status, Status::Error { description } if description == "zero"));
    assert_eq!(
        attr_str(named(&spans, "sync_through_facade"), "code.function.name").as_deref(),
        Some("traced_crate_path::sync_through_facade")
    );
}
