//! Every shape of function `#[traced]` goes on, each asserted on its span.
//! Compiled under `clippy -D warnings`, so the generated code is lint-clean
//! for each shape.

mod support;

use std::future::Future;
use std::sync::Arc;

use flowtrace::traced;
use opentelemetry::trace::Status;
use support::in_memory::{attr_str, named, parent_of, traced_in_root};

#[derive(Debug)]
struct Error(&'static str);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Error {}

struct Counter {
    n: u32,
}

impl Counter {
    /// Doc comments and other attributes are kept.
    #[must_use]
    #[traced]
    async fn get(&self) -> u32 {
        self.n
    }

    #[traced]
    async fn bump(&mut self) {
        self.n += 1;
    }

    #[traced]
    async fn shared(self: Arc<Self>) -> u32 {
        self.n
    }
}

#[traced]
async fn generic<T: serde::Serialize + Send + Clone>(value: T) -> T {
    value
}

#[traced]
async fn impl_arg(value: impl std::fmt::Display + Send) -> String {
    value.to_string()
}

#[traced]
async fn borrows<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.strip_prefix(prefix).unwrap_or(text)
}

fn parse_number(s: &str) -> Result<u32, Error> {
    s.parse().map_err(|_| Error("not a number"))
}

#[traced]
async fn question_mark(s: &str) -> Result<u32, Error> {
    let n = parse_number(s)?;
    Ok(n * 2)
}

#[traced]
async fn early_return(n: u32) -> &'static str {
    if n == 0 {
        return "zero";
    }
    "other"
}

#[traced]
async fn unit() {}

#[traced]
fn returns_impl_future(n: u32) -> impl Future<Output = u32> {
    async move { n + 1 }
}

#[traced]
fn synchronous(n: u32) -> Result<u32, Error> {
    if n == 0 {
        return Err(Error("zero"));
    }
    Ok(n)
}

trait Store {
    fn load(&self, key: &str) -> impl Future<Output = Option<String>> + Send;
}

struct Memory;

impl Store for Memory {
    #[traced]
    async fn load(&self, key: &str) -> Option<String> {
        Some(key.to_uppercase())
    }
}

trait Native {
    async fn native(&self) -> u8;
}

impl Native for Memory {
    #[traced]
    async fn native(&self) -> u8 {
        9
    }
}

#[async_trait::async_trait]
trait Legacy {
    async fn legacy(&self, n: u32) -> Result<u32, Error>;
}

#[async_trait::async_trait]
impl Legacy for Memory {
    #[traced]
    async fn legacy(&self, n: u32) -> Result<u32, Error> {
        if n == 0 {
            return Err(Error("legacy zero"));
        }
        Ok(n)
    }
}

#[tokio::test]
async fn every_shape_is_a_child_span_of_its_caller() {
    let ((), spans) = traced_in_root(async {
        let mut counter = Counter { n: 1 };
        assert_eq!(counter.get().await, 1);
        counter.bump().await;
        assert_eq!(Arc::new(counter).shared().await, 2);
        assert_eq!(generic(vec![1, 2]).await, vec![1, 2]);
        assert_eq!(impl_arg(5).await, "5");
        assert_eq!(borrows("flow-trace", "flow-").await, "trace");
        assert_eq!(question_mark("21").await.unwrap(), 42);
        assert!(question_mark("x").await.is_err());
        assert_eq!(early_return(0).await, "zero");
        unit().await;
        assert_eq!(returns_impl_future(1).await, 2);
        assert_eq!(synchronous(3).unwrap(), 3);
        assert!(synchronous(0).is_err());
        assert_eq!(Memory.load("k").await.as_deref(), Some("K"));
        assert_eq!(Memory.native().await, 9);
        assert_eq!(Memory.legacy(4).await.unwrap(), 4);
        assert!(Memory.legacy(0).await.is_err());
    })
    .await;
    let root = named(&spans, "test-root");
    for name in [
        "get",
        "bump",
        "shared",
        "generic",
        "impl_arg",
        "borrows",
        "early_return",
        "unit",
        "returns_impl_future",
        "load",
        "native",
    ] {
        let span = named(&spans, name);
        assert_eq!(
            parent_of(&spans, span).map(|p| p.name.as_ref()),
            Some("test-root"),
            "{name}"
        );
        assert_eq!(span.status, Status::Unset, "{name}");
    }
    let _ = root;
    for (name, expected_errors) in [("question_mark", 1), ("synchronous", 1), ("legacy", 1)] {
        let all: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
        assert_eq!(all.len(), 2, "{name}");
        let errors = all
            .iter()
            .filter(|s| matches!(s.status, Status::Error { .. }))
            .count();
        assert_eq!(errors, expected_errors, "{name}: Err recorded once");
    }
    assert_eq!(
        attr_str(named(&spans, "shared"), "code.function.name").as_deref(),
        Some("traced_shapes::Counter::shared")
    );
    assert_eq!(
        attr_str(named(&spans, "generic"), "flowtrace.input.value").as_deref(),
        Some("[1,2]")
    );
    assert_eq!(
        attr_str(named(&spans, "borrows"), "flowtrace.input.text").as_deref(),
        Some("flow-trace")
    );
    assert_eq!(
        attr_str(named(&spans, "load"), "flowtrace.input.key").as_deref(),
        Some("k")
    );
}

#[traced]
async fn spawns_sync_child() -> u32 {
    synchronous(5).unwrap()
}

#[tokio::test]
async fn a_synchronous_span_nests_like_an_async_one() {
    let (_, spans) = traced_in_root(spawns_sync_child()).await;
    let child = named(&spans, "synchronous");
    assert_eq!(
        parent_of(&spans, child).map(|p| p.name.as_ref()),
        Some("spawns_sync_child")
    );
}

#[test]
fn futures_stay_send() {
    fn assert_send<T: Send>(_: T) {}
    let counter = Counter { n: 0 };
    assert_send(counter.get());
    assert_send(generic(1u8));
    assert_send(question_mark("1"));
    assert_send(Memory.legacy(1));
    assert_send(returns_impl_future(1));
}
