//! User feedback on a run, given after the fact — later in the same process
//! or from another one — by trace id.
//!
//! Each piece of feedback is a small span named `feedback` in the run's
//! trace, with `flowtrace.feedback.*` attributes, so it reaches any OTLP
//! backend next to the trace it is about. Given the run's root span id too
//! (a `traceparent`, or [`Target::with_root`]), the feedback span is a child
//! of the root and links to it; given only the trace id, it is a root span
//! in that trace (which needs the provider's id generator to honour the
//! trace id: [`RunIdGenerator`](crate::RunIdGenerator), which
//! `flowtrace_telemetry::init()` installs).
//!
//! | function | value | recorded as `flowtrace.feedback.value` |
//! |---|---|---|
//! | [`binary`] | `bool` | boolean |
//! | [`numeric`] | `f64` in `0.0..=1.0` (else [`FeedbackError::OutOfRange`]) | double |
//! | [`categorical`] | one of the given categories (else [`FeedbackError::NotACategory`]) | string, with `flowtrace.feedback.categories` |
//! | [`text`] | free text | string (capped like captured values) |
//! | [`json`] | anything `Serialize` | JSON text (redacted and capped) |
//! | [`evaluation`] | an [`Evaluation`]: name, score and/or label, explanation | the score, else the label |
//!
//! Every feedback span is an OpenInference `EVALUATOR` span and carries the
//! result as a GenAI `gen_ai.evaluation.result` span event
//! (`gen_ai.evaluation.name`, `.score.value`, `.score.label`,
//! `.explanation`; see [`Feedback::evaluation`] for the names the simple
//! kinds get) and as OpenInference trace-scoped evaluation attributes
//! (`trace.evaluations.0.evaluation.*`). The same event is also emitted as
//! a log record in the context of the evaluated span — the run's root when
//! its id is known — as the GenAI conventions place it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), flowtrace::feedback::FeedbackError> {
//! use flowtrace::feedback;
//!
//! let run = flowtrace::with_runcontext()
//!     .run(async { flowtrace::ctx().span_id() }) // the run's root span, inside the run
//!     .await;
//! println!("keep {} and {}", run.trace_id(), run.output());
//!
//! // Later, maybe in another process that only kept the ids:
//! let (trace_id, root_span_id) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
//! let target = feedback::Target::parse(trace_id)?.with_root_hex(root_span_id)?;
//! feedback::binary(target, true)?;
//! feedback::numeric(target, 0.8)?;
//! feedback::categorical(target, "helpful", &["helpful", "wrong", "offensive"])?;
//! feedback::text(target, "cited the right page")?;
//!
//! let err = feedback::numeric(target, 1.5).unwrap_err();
//! assert!(err.to_string().contains("between 0.0 and 1.0"));
//! # Ok(()) }
//! ```

use std::fmt;

use opentelemetry::trace::{
    Link, Span as _, SpanBuilder, SpanContext, SpanKind, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _,
};
use opentelemetry::{Context, KeyValue, StringValue, Value};
use serde::Serialize;

use crate::capture::{self, Captured};

mod target;

pub use target::{IntoTarget, Target};

/// The name of the feedback span.
pub const FEEDBACK_SPAN: &str = "feedback";
use crate::attributes::{
    FEEDBACK_CATEGORIES, FEEDBACK_KIND, FEEDBACK_TRACE_ID, FEEDBACK_VALUE,
    GEN_AI_EVALUATION_EXPLANATION, GEN_AI_EVALUATION_NAME, GEN_AI_EVALUATION_RESULT,
    GEN_AI_EVALUATION_SCORE_LABEL, GEN_AI_EVALUATION_SCORE_VALUE, TRACE_EVALUATION_ANNOTATOR_KIND,
    TRACE_EVALUATION_EXPLANATION, TRACE_EVALUATION_LABEL, TRACE_EVALUATION_NAME,
    TRACE_EVALUATION_SCORE,
};

/// A named evaluation result: a score, a label, or both, and an
/// explanation (what LLM judges and annotation tools give).
///
/// ```
/// use flowtrace::feedback::{self, Evaluation};
///
/// let result = Evaluation::new("relevance").score(0.9).label("relevant")
///     .explanation("cites the retrieved chunk");
/// feedback::evaluation("4bf92f3577b34da6a3ce929d0e0e4736", result).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluation {
    /// What was evaluated (`gen_ai.evaluation.name`): `relevance`, ….
    pub name: String,
    /// The score (`gen_ai.evaluation.score.value`), any finite number.
    pub score: Option<f64>,
    /// The label (`gen_ai.evaluation.score.label`), low cardinality.
    pub label: Option<String>,
    /// Why (`gen_ai.evaluation.explanation`; capped like captured values).
    pub explanation: Option<String>,
}

impl Evaluation {
    /// An evaluation named `name`, with no result yet.
    ///
    /// ```
    /// use flowtrace::feedback::Evaluation;
    /// let e = Evaluation::new("relevance");
    /// assert_eq!((e.name.as_str(), e.score, e.label), ("relevance", None, None));
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// The score.
    ///
    /// ```
    /// let e = flowtrace::feedback::Evaluation::new("faithfulness").score(0.8);
    /// assert_eq!(e.score, Some(0.8));
    /// ```
    pub fn score(mut self, score: f64) -> Self {
        self.score = Some(score);
        self
    }

    /// The label.
    ///
    /// ```
    /// let e = flowtrace::feedback::Evaluation::new("relevance").label("relevant");
    /// assert_eq!(e.label.as_deref(), Some("relevant"));
    /// ```
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The explanation.
    ///
    /// ```
    /// let e = flowtrace::feedback::Evaluation::new("relevance").explanation("cites the right section");
    /// assert_eq!(e.explanation.as_deref(), Some("cites the right section"));
    /// ```
    pub fn explanation(mut self, explanation: impl Into<String>) -> Self {
        self.explanation = Some(explanation.into());
        self
    }
}

/// What was wrong with a piece of feedback or its target.
///
/// ```
/// use flowtrace::feedback::{self, Feedback, FeedbackError};
///
/// let err = feedback::submit("4bf92f3577b34da6a3ce929d0e0e4736", Feedback::Numeric(1.5)).unwrap_err();
/// assert_eq!(err, FeedbackError::OutOfRange(1.5));
/// assert!(matches!(feedback::submit("nope", Feedback::Binary(true)), Err(FeedbackError::InvalidTraceId(_))));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum FeedbackError {
    /// The trace id is not 32 lowercase hex digits (not all zeros), nor a
    /// `traceparent`.
    InvalidTraceId(String),
    /// The root span id is not 16 lowercase hex digits (not all zeros).
    InvalidSpanId(String),
    /// A numeric score outside `0.0..=1.0`, or not a number.
    OutOfRange(f64),
    /// A categorical value that is not one of the categories.
    NotACategory {
        /// The value given.
        value: String,
        /// The categories accepted.
        categories: Vec<String>,
    },
    /// Categorical feedback with no categories.
    NoCategories,
    /// JSON feedback that does not serialize.
    NotJson(String),
    /// An evaluation with no name, no result (neither score nor label), or
    /// a score that is not a finite number.
    InvalidEvaluation(String),
    /// Without a root span id, the installed provider's id generator did
    /// not give the feedback span the target's trace id (use
    /// [`crate::RunIdGenerator`], or pass the root span id).
    TraceIdNotHonoured {
        /// The trace the feedback was for.
        wanted: TraceId,
        /// The trace the span landed in.
        got: TraceId,
    },
}

impl fmt::Display for FeedbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedbackError::InvalidTraceId(v) => write!(
                f,
                "feedback target {v:?} is not accepted: give a trace id of 32 lowercase hex digits \
                 (not all zeros) or a traceparent (00-<trace id>-<span id>-<flags>)"
            ),
            FeedbackError::InvalidSpanId(v) => write!(
                f,
                "root span id {v:?} is not accepted: give 16 lowercase hex digits (not all zeros)"
            ),
            FeedbackError::OutOfRange(v) => write!(
                f,
                "numeric feedback {v} is not accepted: scores are between 0.0 and 1.0"
            ),
            FeedbackError::NotACategory { value, categories } => write!(
                f,
                "categorical feedback {value:?} is not accepted: the categories are {categories:?}"
            ),
            FeedbackError::NoCategories => write!(
                f,
                "categorical feedback needs at least one category to choose from"
            ),
            FeedbackError::NotJson(reason) => write!(
                f,
                "JSON feedback is not representable as JSON ({reason}); accepted values \
                 serialize to JSON with string map keys"
            ),
            FeedbackError::InvalidEvaluation(reason) => write!(
                f,
                "evaluation is not accepted: {reason}; an evaluation has a name and a finite \
                 score, a label, or both"
            ),
            FeedbackError::TraceIdNotHonoured { wanted, got } => write!(
                f,
                "the feedback for trace {wanted} landed in trace {got}: the tracer provider's id \
                 generator ignores flowtrace's; install flowtrace::RunIdGenerator or pass the \
                 run's root span id"
            ),
        }
    }
}

impl std::error::Error for FeedbackError {}

/// One piece of feedback, before it is checked and sent.
///
/// ```
/// use flowtrace::feedback::Feedback;
///
/// let choice = Feedback::Categorical { value: "wrong".into(), categories: vec!["right".into(), "wrong".into()] };
/// assert!(choice.validate().is_ok());
/// assert_eq!(choice.kind(), "categorical");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Feedback {
    /// Thumbs up (`true`) or down.
    Binary(bool),
    /// A score in `0.0..=1.0`.
    Numeric(f64),
    /// One of `categories`.
    Categorical {
        /// The value chosen.
        value: String,
        /// The values accepted.
        categories: Vec<String>,
    },
    /// Free text.
    Text(String),
    /// Free JSON.
    Json(serde_json::Value),
    /// A named evaluation result.
    Evaluation(Evaluation),
}

impl Feedback {
    /// `binary`, `numeric`, `categorical`, `text` or `json`.
    ///
    /// ```
    /// use flowtrace::feedback::Feedback;
    /// assert_eq!(Feedback::Binary(true).kind(), "binary");
    /// assert_eq!(Feedback::Json(serde_json::json!({"stars": 4})).kind(), "json");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Feedback::Binary(_) => "binary",
            Feedback::Numeric(_) => "numeric",
            Feedback::Categorical { .. } => "categorical",
            Feedback::Text(_) => "text",
            Feedback::Json(_) => "json",
            Feedback::Evaluation(_) => "evaluation",
        }
    }

    /// Checks the value: a score within range, a value among its categories.
    ///
    /// ```
    /// use flowtrace::feedback::{Feedback, FeedbackError};
    /// assert!(Feedback::Numeric(0.5).validate().is_ok());
    /// assert_eq!(Feedback::Numeric(f64::NAN).validate().is_err(), true);
    /// let bad = Feedback::Categorical { value: "maybe".into(), categories: vec!["yes".into()] };
    /// assert!(matches!(bad.validate(), Err(FeedbackError::NotACategory { .. })));
    /// ```
    pub fn validate(&self) -> Result<(), FeedbackError> {
        match self {
            Feedback::Numeric(v) if !(0.0..=1.0).contains(v) => Err(FeedbackError::OutOfRange(*v)),
            Feedback::Categorical { categories, .. } if categories.is_empty() => {
                Err(FeedbackError::NoCategories)
            }
            Feedback::Categorical { value, categories } if !categories.contains(value) => {
                Err(FeedbackError::NotACategory {
                    value: value.clone(),
                    categories: categories.clone(),
                })
            }
            Feedback::Evaluation(e) if e.name.trim().is_empty() => Err(
                FeedbackError::InvalidEvaluation("the name is empty".to_owned()),
            ),
            Feedback::Evaluation(e) if e.score.is_some_and(|s| !s.is_finite()) => Err(
                FeedbackError::InvalidEvaluation(format!("the score {:?} is not finite", e.score)),
            ),
            Feedback::Evaluation(e) if e.score.is_none() && e.label.is_none() => Err(
                FeedbackError::InvalidEvaluation("it has neither a score nor a label".to_owned()),
            ),
            _ => Ok(()),
        }
    }

    /// The GenAI evaluation result this feedback is: its name, score, label
    /// and explanation. Binary feedback is `thumbs` (score 1 or 0, label `up`
    /// or `down`), numeric `score`, categorical `category` (the value as
    /// label), text `comment` and JSON `feedback` (the text as explanation).
    ///
    /// ```
    /// use flowtrace::feedback::Feedback;
    /// let e = Feedback::Binary(false).evaluation();
    /// assert_eq!((e.name.as_str(), e.score, e.label.as_deref()), ("thumbs", Some(0.0), Some("down")));
    /// ```
    pub fn evaluation(&self) -> Evaluation {
        match self {
            Feedback::Binary(v) => Evaluation::new("thumbs")
                .score(if *v { 1.0 } else { 0.0 })
                .label(if *v { "up" } else { "down" }),
            Feedback::Numeric(v) => Evaluation::new("score").score(*v),
            Feedback::Categorical { value, .. } => Evaluation::new("category").label(value.clone()),
            Feedback::Text(text) => Evaluation::new("comment").explanation(text.clone()),
            Feedback::Json(json) => Evaluation::new("feedback").explanation(json.to_string()),
            Feedback::Evaluation(e) => e.clone(),
        }
    }

    fn attributes(self) -> Vec<KeyValue> {
        let config = capture::config();
        let mut out = vec![KeyValue::new(FEEDBACK_KIND, self.kind())];
        match self {
            Feedback::Binary(v) => out.push(KeyValue::new(FEEDBACK_VALUE, v)),
            Feedback::Numeric(v) => out.push(KeyValue::new(FEEDBACK_VALUE, v)),
            Feedback::Categorical { value, categories } => {
                out.push(KeyValue::new(FEEDBACK_VALUE, value));
                let categories: Vec<StringValue> =
                    categories.into_iter().map(StringValue::from).collect();
                out.push(KeyValue::new(
                    FEEDBACK_CATEGORIES,
                    Value::Array(categories.into()),
                ));
            }
            Feedback::Text(text) => out.push(capture::attribute(
                FEEDBACK_VALUE.to_owned(),
                Captured::Text(text),
                &[],
                &config,
            )),
            Feedback::Json(json) => out.push(capture::attribute(
                FEEDBACK_VALUE.to_owned(),
                Captured::Json(json),
                &[],
                &config,
            )),
            Feedback::Evaluation(e) => match (e.score, e.label) {
                (Some(score), _) => out.push(KeyValue::new(FEEDBACK_VALUE, score)),
                (None, Some(label)) => out.push(KeyValue::new(FEEDBACK_VALUE, label)),
                (None, None) => {}
            },
        }
        out
    }
}

/// The `gen_ai.evaluation.result` attributes of an evaluation, and the same
/// result as OpenInference trace-scoped evaluation attributes
/// (`trace.evaluations.0.evaluation.*`, annotator `HUMAN`).
fn evaluation_attributes(e: &Evaluation) -> (Vec<KeyValue>, Vec<KeyValue>) {
    let config = capture::config();
    let mut event = vec![KeyValue::new(GEN_AI_EVALUATION_NAME, e.name.clone())];
    let mut span = vec![
        KeyValue::new(TRACE_EVALUATION_NAME, e.name.clone()),
        KeyValue::new(TRACE_EVALUATION_ANNOTATOR_KIND, "HUMAN"),
    ];
    if let Some(score) = e.score {
        event.push(KeyValue::new(GEN_AI_EVALUATION_SCORE_VALUE, score));
        span.push(KeyValue::new(TRACE_EVALUATION_SCORE, score));
    }
    if let Some(label) = &e.label {
        event.push(KeyValue::new(GEN_AI_EVALUATION_SCORE_LABEL, label.clone()));
        span.push(KeyValue::new(TRACE_EVALUATION_LABEL, label.clone()));
    }
    if let Some(explanation) = &e.explanation {
        let kv = capture::attribute(
            GEN_AI_EVALUATION_EXPLANATION.to_owned(),
            Captured::Text(explanation.clone()),
            &[],
            &config,
        );
        span.push(KeyValue::new(
            TRACE_EVALUATION_EXPLANATION,
            kv.value.clone(),
        ));
        event.push(kv);
    }
    (event, span)
}

/// Checks `feedback` and emits it as a `feedback` span in the target's trace,
/// through the global tracer provider; returns the feedback span's context.
/// Nothing is emitted when the feedback is refused.
///
/// ```
/// use flowtrace::feedback::{self, Feedback};
/// use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// // flowtrace-telemetry's `init()` installs the same id generator.
/// let provider = SdkTracerProvider::builder()
///     .with_id_generator(flowtrace::RunIdGenerator::default())
///     .build();
/// flowtrace::set_tracer_provider(provider.clone(), &Sampler::AlwaysOn);
/// // Later, when the user clicks thumbs-up on the answer of that trace:
/// let answered = "4bf92f3577b34da6a3ce929d0e0e4736";
/// let span = feedback::submit(answered, Feedback::Binary(true)).unwrap();
/// assert_eq!(span.trace_id().to_string(), answered);
/// # let _ = provider.shutdown();
/// # }
/// ```
pub fn submit(target: impl IntoTarget, feedback: Feedback) -> Result<SpanContext, FeedbackError> {
    let target = target.into_target()?;
    feedback.validate()?;
    let evaluation = feedback.evaluation();
    let (event, oi_evaluation) = evaluation_attributes(&evaluation);
    let mut attributes = feedback.attributes();
    attributes.push(KeyValue::new(
        FEEDBACK_TRACE_ID,
        target.trace_id.to_string(),
    ));
    attributes.push(crate::openinference::SpanKind::Evaluator.attribute());
    attributes.extend(oi_evaluation);
    let tracer = crate::backend::tracer();
    let mut builder = SpanBuilder::from_name(FEEDBACK_SPAN)
        .with_kind(SpanKind::Internal)
        .with_attributes(attributes);
    let mut span = match target.root {
        Some(root) => {
            let root = SpanContext::new(
                target.trace_id,
                root,
                TraceFlags::SAMPLED,
                true,
                TraceState::NONE,
            );
            builder = builder.with_links(vec![Link::with_context(root.clone())]);
            tracer.build_with_context(builder, &Context::new().with_remote_span_context(root))
        }
        None => {
            let _next = crate::run::NextTraceId::set(target.trace_id);
            tracer.build_with_context(builder, &Context::new())
        }
    };
    let sc = span.span_context().clone();
    if sc.is_valid() && sc.trace_id() != target.trace_id {
        // Landed in another trace: not ended, so never exported (an SDK
        // span exports when it ends or is dropped, hence the forget; its
        // data is a few hundred bytes, once per refused submission).
        std::mem::forget(span);
        return Err(FeedbackError::TraceIdNotHonoured {
            wanted: target.trace_id,
            got: sc.trace_id(),
        });
    }
    span.add_event(GEN_AI_EVALUATION_RESULT, event.clone());
    span.end();
    if sc.is_valid() {
        // The GenAI event, parented to the evaluated span: the run's root
        // when known, else the feedback span.
        let evaluated = target.root.unwrap_or(sc.span_id());
        crate::log::emit_event(GEN_AI_EVALUATION_RESULT, target.trace_id, evaluated, &event);
    }
    Ok(sc)
}

/// A named evaluation result (an LLM judge's or an annotation tool's);
/// one without a name, without a score or label, or with a score that is
/// not finite is [`FeedbackError::InvalidEvaluation`].
///
/// ```
/// use flowtrace::feedback::{self, Evaluation, FeedbackError};
/// let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
/// assert!(feedback::evaluation(trace, Evaluation::new("faithfulness").score(0.7)).is_ok());
/// assert!(matches!(
///     feedback::evaluation(trace, Evaluation::new("faithfulness")),
///     Err(FeedbackError::InvalidEvaluation(_))
/// ));
/// ```
pub fn evaluation(
    target: impl IntoTarget,
    result: Evaluation,
) -> Result<SpanContext, FeedbackError> {
    submit(target, Feedback::Evaluation(result))
}

/// Thumbs up or down.
///
/// ```
/// let sc = flowtrace::feedback::binary("4bf92f3577b34da6a3ce929d0e0e4736", true).unwrap();
/// # drop(sc);
/// ```
pub fn binary(target: impl IntoTarget, value: bool) -> Result<SpanContext, FeedbackError> {
    submit(target, Feedback::Binary(value))
}

/// A score between 0.0 and 1.0; anything else is [`FeedbackError::OutOfRange`].
///
/// ```
/// use flowtrace::feedback::{self, FeedbackError};
/// let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
/// assert!(feedback::numeric(trace, 0.5).is_ok());
/// assert_eq!(feedback::numeric(trace, -0.1), Err(FeedbackError::OutOfRange(-0.1)));
/// assert!(feedback::numeric(trace, f64::NAN).is_err());
/// ```
pub fn numeric(target: impl IntoTarget, value: f64) -> Result<SpanContext, FeedbackError> {
    submit(target, Feedback::Numeric(value))
}

/// One of `categories`; anything else is [`FeedbackError::NotACategory`].
///
/// ```
/// use flowtrace::feedback;
/// let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
/// assert!(feedback::categorical(trace, "good", &["good", "bad"]).is_ok());
/// let err = feedback::categorical(trace, "meh", &["good", "bad"]).unwrap_err();
/// assert_eq!(err.to_string(), r#"categorical feedback "meh" is not accepted: the categories are ["good", "bad"]"#);
/// ```
pub fn categorical<S: AsRef<str>>(
    target: impl IntoTarget,
    value: &str,
    categories: &[S],
) -> Result<SpanContext, FeedbackError> {
    submit(
        target,
        Feedback::Categorical {
            value: value.to_owned(),
            categories: categories.iter().map(|c| c.as_ref().to_owned()).collect(),
        },
    )
}

/// Free text (capped like captured values).
///
/// ```
/// flowtrace::feedback::text("4bf92f3577b34da6a3ce929d0e0e4736", "too long").unwrap();
/// ```
pub fn text(target: impl IntoTarget, value: &str) -> Result<SpanContext, FeedbackError> {
    submit(target, Feedback::Text(value.to_owned()))
}

/// Free JSON (redacted and capped like captured values).
///
/// ```
/// let value = serde_json::json!({"rating": 4, "tags": ["concise"]});
/// flowtrace::feedback::json("4bf92f3577b34da6a3ce929d0e0e4736", value).unwrap();
/// ```
pub fn json(target: impl IntoTarget, value: impl Serialize) -> Result<SpanContext, FeedbackError> {
    let value = serde_json::to_value(value).map_err(|e| FeedbackError::NotJson(e.to_string()))?;
    submit(target, Feedback::Json(value))
}
