//! Feedback by trace id at a real collector: each kind lands as a `feedback`
//! span in the run's trace (a child of and linked to the root when its id is
//! known), and refused feedback says why and emits nothing.

mod support;

use flowtrace::feedback::{self, FeedbackError, Target};
use flowtrace::with_runcontext;
use serde_json::json;
use support::{Collector, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_lands_in_the_runs_trace() {
    let collector = Collector::start();
    let telemetry = collector.grpc_telemetry("rag-feedback", &[]);
    let run = with_runcontext()
        .name("answer")
        .run(async { flowtrace::ctx().span_id() })
        .await;
    let root = run.output().clone();
    let trace = run.trace_id().to_owned();

    // As another process would: only the ids, as strings.
    let target = Target::parse(&trace)
        .and_then(|t| t.with_root_hex(&root))
        .expect("target");
    feedback::binary(target, true).expect("binary");
    feedback::numeric(target, 0.75).expect("numeric");
    feedback::categorical(target, "helpful", &["helpful", "wrong"]).expect("categorical");
    feedback::text(target, "cited the right page").expect("text");
    feedback::json(target, json!({"stars": 4, "token": "t"})).expect("json");
    // Trace id alone: a root span in the same trace.
    feedback::binary(trace.as_str(), false).expect("trace id only");

    let refused = [
        (feedback::numeric(target, 1.5), "a score above 1"),
        (feedback::numeric(target, f64::NAN), "not a number"),
        (
            feedback::categorical(target, "meh", &["helpful", "wrong"]),
            "not a category",
        ),
        (
            feedback::categorical::<&str>(target, "x", &[]),
            "no categories",
        ),
        (feedback::binary("xyz", true), "a bad trace id"),
    ];
    for (result, reason) in &refused {
        assert!(result.is_err(), "{reason}");
    }
    assert_eq!(
        refused[0].0.as_ref().unwrap_err().to_string(),
        "numeric feedback 1.5 is not accepted: scores are between 0.0 and 1.0"
    );
    assert!(matches!(
        refused[2].0,
        Err(FeedbackError::NotACategory { ref value, ref categories })
            if value == "meh" && categories == &["helpful", "wrong"]
    ));
    assert!(
        refused[4]
            .0
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("32 lowercase hex digits"),
        "the error says what is accepted"
    );

    telemetry.force_flush().expect("flush");
    let spans = collector.wait_for_trace_async(&trace, 7, WAIT).await;
    let feedback: Vec<_> = spans.iter().filter(|s| s.name == "feedback").collect();
    assert_eq!(
        feedback.len(),
        6,
        "only accepted feedback is emitted: {feedback:#?}"
    );
    let by_kind = |kind: &str| {
        feedback
            .iter()
            .filter(|s| s.attr("flowtrace.feedback.kind") == Some(kind))
            .collect::<Vec<_>>()
    };
    let binary = by_kind("binary");
    assert_eq!(binary.len(), 2);
    let with_root = binary
        .iter()
        .find(|s| s.attr("flowtrace.feedback.value") == Some("true"))
        .expect("thumbs up");
    assert_eq!(with_root.parent_span_id, root, "a child of the run's root");
    assert_eq!(with_root.links[0].span_id, root, "and linked to it");
    let alone = binary
        .iter()
        .find(|s| s.attr("flowtrace.feedback.value") == Some("false"))
        .expect("thumbs down");
    assert!(
        alone.is_root(),
        "with only the trace id: a root in the trace"
    );
    assert_eq!(
        by_kind("numeric")[0].attr("flowtrace.feedback.value"),
        Some("0.75")
    );
    let categorical = by_kind("categorical")[0];
    assert_eq!(
        categorical.attr("flowtrace.feedback.value"),
        Some("helpful")
    );
    assert!(
        categorical
            .attr("flowtrace.feedback.categories")
            .is_some_and(|c| c.contains("helpful") && c.contains("wrong")),
        "the categories are recorded: {:?}",
        categorical.attributes
    );
    assert_eq!(
        by_kind("text")[0].attr("flowtrace.feedback.value"),
        Some("cited the right page")
    );
    assert_eq!(
        by_kind("json")[0].attr("flowtrace.feedback.value"),
        Some(r#"{"stars":4,"token":"[REDACTED]"}"#)
    );
    for span in &feedback {
        assert_eq!(
            span.attr("flowtrace.feedback.trace_id"),
            Some(trace.as_str())
        );
    }
}
