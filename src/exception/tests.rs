use std::error::Error;
use std::fmt;

use super::*;

#[derive(Debug)]
struct Layer(&'static str, Option<Box<Layer>>);

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Error for Layer {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.1.as_deref().map(|e| e as _)
    }
}

fn chain() -> Layer {
    Layer(
        "export failed",
        Some(Box::new(Layer(
            "client error (Connect)",
            Some(Box::new(Layer("connection refused", None))),
        ))),
    )
}

#[test]
fn error_chain_joins_every_cause_in_order() {
    assert_eq!(
        error_chain(&chain()),
        "export failed: client error (Connect): connection refused"
    );
    assert_eq!(error_chain(&Layer("alone", None)), "alone");
    let unsized_error: &(dyn Error + 'static) = &chain();
    assert_eq!(error_chain(unsized_error), error_chain(&chain()));
}

#[test]
fn with_causes_keeps_its_own_head() {
    let error = chain();
    assert_eq!(
        with_causes("transport error".to_owned(), error.source()),
        "transport error: client error (Connect): connection refused"
    );
    assert_eq!(with_causes("plain".to_owned(), None), "plain");
}

#[test]
fn attributes_are_the_semconv_exception_keys() {
    let kvs = attributes("io::Error", "disk full");
    let keys: Vec<&str> = kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["exception.type", "exception.message"]);
    assert_eq!(kvs[1].value.as_str(), "disk full");
}
