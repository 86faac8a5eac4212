//! What the expansion must accept beyond the common shapes: a flowtrace
//! re-exported under another path (`crate = path`; the expansion names
//! `path::__private`, see `macros/tests/ui/crate-path-not-found.rs`), and
//! field values of unsized types.

mod support;

use opentelemetry::trace::{SpanKind, Status};
use support::in_memory::{attr_str, named, parent_of, traced_in_root};

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
        Some("traced_contract::sync_through_facade")
    );
}

#[flowtrace::traced(skip_all, fields(name = *name, shown = %*name, debugged = ?*name, bytes = *name.as_bytes()))]
async fn unsized_fields(name: &str) {}

#[tokio::test]
async fn field_values_may_be_unsized() {
    let (_, spans) = traced_in_root(unsized_fields("ana")).await;
    let span = named(&spans, "unsized_fields");
    assert_eq!(attr_str(span, "name").as_deref(), Some("ana"));
    assert_eq!(attr_str(span, "shown").as_deref(), Some("ana"));
    assert_eq!(attr_str(span, "debugged").as_deref(), Some("\"ana\""));
    assert_eq!(attr_str(span, "bytes").as_deref(), Some("[97,110,97]"));
}

#[derive(Debug)]
struct Outer(std::io::Error);

impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("outer")
    }
}

impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[flowtrace::traced(ret(Debug), err(Display))]
async fn forced_formats(ok: bool) -> Result<String, Outer> {
    if ok {
        Ok("hi".into())
    } else {
        Err(Outer(std::io::Error::other("inner")))
    }
}

#[flowtrace::traced]
async fn default_formats() -> Result<String, Outer> {
    Err(Outer(std::io::Error::other("inner")))
}

#[tokio::test]
async fn forced_formats_win_over_the_best_trait() {
    let (_, spans) = traced_in_root(async {
        let _ = forced_formats(true).await;
        let _ = forced_formats(false).await;
        let _ = default_formats().await;
    })
    .await;
    let calls: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "forced_formats")
        .collect();
    let ok = calls
        .iter()
        .find(|s| s.status == Status::Unset)
        .expect("the Ok call");
    assert_eq!(
        attr_str(ok, "flowtrace.output").as_deref(),
        Some("\"hi\""),
        "ret(Debug): the Debug text, not the JSON string"
    );
    let err = calls
        .iter()
        .find(|s| s.status != Status::Unset)
        .expect("the Err call");
    assert!(
        matches!(&err.status, Status::Error { description } if description == "outer"),
        "err(Display): the message alone: {:?}",
        err.status
    );
    let default = named(&spans, "default_formats");
    assert!(
        matches!(&default.status, Status::Error { description } if description == "outer: inner"),
        "an Error with its chain of sources: {:?}",
        default.status
    );
}

#[flowtrace::traced(skip_all)]
async fn leaf(x: u64) -> u64 {
    x + 1
}

/// A call's future holds what the call captured, then the running task, in
/// one place: a leaf task's future stays within 128 bytes, the size the
/// compiler still moves with a few register stores (a larger one is copied
/// with `memcpy` on every move: the return, `.await`, `tokio::spawn`).
#[cfg(target_pointer_width = "64")]
#[test]
fn a_leaf_task_future_fits_in_128_bytes() {
    let future = leaf(1);
    let size = std::mem::size_of_val(&future);
    assert!(size <= 128, "a leaf task's future is {size} bytes");
    // On a tokio runtime, not `futures::executor::block_on`: the other tests
    // of this file install a simple span processor, whose export blocks on
    // the futures executor and refuses to run inside another of its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(runtime.block_on(future), 2);
}
