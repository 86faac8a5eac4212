//! Which tracer a run's tasks use, decided once when the run (or a task
//! outside any run) starts, so no task call takes the global provider's lock.
//!
//! - [`Backend::Noop`]: the global provider is OpenTelemetry's no-op one; a
//!   task only carries its map (no span, no context change).
//! - [`Backend::Sdk`]: the global provider is one flowtrace installed
//!   (flowtrace-telemetry's `init()` or
//!   [`set_tracer_provider`](crate::set_tracer_provider)):
//!   its `SdkTracer` is used directly (no boxing), and when its sampler is
//!   parent-based a task under an unsampled parent starts no span at all.
//! - [`Backend::Global`]: any other provider, through `global::BoxedTracer`.
//!
//! Telling them apart costs one read of the global provider and, for a
//! provider flowtrace did not install, one span built under a context whose
//! telemetry is suppressed: the SDK returns an empty span for it without
//! sampling or exporting anything, the no-op tracer returns the parent's
//! span context.
//!
//! [`open`] starts a span with the tracer decided here.

use std::cell::RefCell;
use std::sync::{Arc, LazyLock};

use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider,
};
use opentelemetry::{Context, InstrumentationScope, global};
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};

use crate::custom_context::CustomContext;

/// The instrumentation scope of flowtrace's spans.
pub(crate) static SCOPE: LazyLock<InstrumentationScope> = LazyLock::new(|| {
    InstrumentationScope::builder("flowtrace")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
});

/// The scope name [`Installed`] recognises: asking the global provider for
/// a tracer of this scope tells whether flowtrace installed it.
const PROBE_NAME: &str = "flowtrace.backend-probe";

static PROBE_SCOPE: LazyLock<InstrumentationScope> =
    LazyLock::new(|| InstrumentationScope::builder(PROBE_NAME).build());

/// A span context no real tracer hands out for a suppressed parent.
static PROBE_SPAN_CONTEXT: LazyLock<SpanContext> = LazyLock::new(|| {
    SpanContext::new(
        TraceId::from_bytes(*b"flowtrace-probe!"),
        SpanId::from_bytes(*b"probe!!!"),
        TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    )
});

thread_local! {
    /// Set by [`Installed::tracer_with_scope`] for the probe scope.
    static PROBED: RefCell<Option<Arc<Backend>>> = const { RefCell::new(None) };
}

/// The tracer tasks use; see the [module docs](self).
pub(crate) enum Backend {
    Noop,
    Sdk {
        tracer: SdkTracer,
        /// The sampler drops every span whose parent is not sampled.
        skip_unsampled: bool,
    },
    Global(global::BoxedTracer),
}

static NOOP: LazyLock<Arc<Backend>> = LazyLock::new(|| Arc::new(Backend::Noop));

impl Backend {
    /// The backend for the global provider installed now.
    pub(crate) fn resolve() -> Arc<Backend> {
        let provider = global::tracer_provider();
        PROBED.with(|probed| probed.borrow_mut().take());
        let probe = provider.tracer_with_scope(PROBE_SCOPE.clone());
        if let Some(ours) = PROBED.with(|probed| probed.borrow_mut().take()) {
            return ours;
        }
        let parent = Context::new()
            .with_remote_span_context(PROBE_SPAN_CONTEXT.clone())
            .with_telemetry_suppressed();
        let span = probe.build_with_context(SpanBuilder::from_name(PROBE_NAME), &parent);
        if span.span_context() == &*PROBE_SPAN_CONTEXT {
            NOOP.clone()
        } else {
            Arc::new(Backend::Global(provider.tracer_with_scope(SCOPE.clone())))
        }
    }

    /// Whether a span under `parent` would not be recorded anyway.
    #[inline]
    pub(crate) fn skips(&self, parent: &SpanContext) -> bool {
        match self {
            Backend::Noop => true,
            Backend::Sdk { skip_unsampled, .. } => {
                *skip_unsampled && parent.is_valid() && !parent.is_sampled()
            }
            Backend::Global(_) => false,
        }
    }
}

/// Whether a sampler drops every child of an unsampled parent.
fn drops_unsampled_children(sampler: &Sampler) -> bool {
    matches!(sampler, Sampler::ParentBased(_) | Sampler::AlwaysOff)
}

/// The provider flowtrace puts into `opentelemetry::global`: the SDK
/// provider itself, recognisable by the probe scope.
struct Installed {
    provider: SdkTracerProvider,
    backend: Arc<Backend>,
}

impl TracerProvider for Installed {
    type Tracer = SdkTracer;

    fn tracer_with_scope(&self, scope: InstrumentationScope) -> SdkTracer {
        if scope.name() == PROBE_NAME {
            PROBED.with(|probed| *probed.borrow_mut() = Some(self.backend.clone()));
            if let Backend::Sdk { tracer, .. } = &*self.backend {
                return tracer.clone();
            }
        }
        self.provider.tracer_with_scope(scope)
    }
}

/// Installs `provider` as the global tracer provider, the way
/// flowtrace-telemetry's `init()` does, so `#[traced]` tasks
/// use its tracer directly instead of going through
/// `global::tracer_provider()` on every call.
///
/// `sampler` is the sampler the provider was built with: when it is
/// parent-based (the SDK's default) or always-off, a task whose parent is
/// not sampled starts no span at all, since the sampler would drop it.
/// Spans of other libraries still come from the same provider through
/// `opentelemetry::global`.
///
/// A provider installed with `opentelemetry::global::set_tracer_provider`
/// works too; runs started after it pick it up, at the cost of a boxed
/// tracer and no skipping of unsampled tasks.
///
/// ```
/// use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
///
/// let sampler = Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
/// let provider = SdkTracerProvider::builder().with_sampler(sampler.clone()).build();
/// flowtrace::set_tracer_provider(provider.clone(), &sampler);
/// # let _ = provider.shutdown();
/// ```
pub fn set_tracer_provider(provider: SdkTracerProvider, sampler: &Sampler) {
    let backend = Arc::new(Backend::Sdk {
        tracer: provider.tracer_with_scope(SCOPE.clone()),
        skip_unsampled: drops_unsampled_children(sampler),
    });
    global::set_tracer_provider(Installed { provider, backend });
}

/// The tracer of the global provider, for spans flowtrace starts outside
/// the task path (HTTP server and client spans, feedback).
pub(crate) fn tracer() -> opentelemetry::global::BoxedTracer {
    use opentelemetry::trace::TracerProvider as _;
    opentelemetry::global::tracer_provider().tracer_with_scope(crate::backend::SCOPE.clone())
}

/// A span started under `parent`, put into a context with it.
pub(crate) struct Opened {
    pub(crate) cx: Context,
    pub(crate) recording: bool,
    /// W3C Level 2: a span the sampler dropped still passes on the parent's
    /// random-trace-id flag, which the SDK clears; this is the span context
    /// a child map carries then.
    pub(crate) fixed: Option<SpanContext>,
}

impl Opened {
    /// The map a task running under this span passes on.
    pub(crate) fn child_map(&self, map: &CustomContext) -> Option<CustomContext> {
        match &self.fixed {
            Some(sc) => Some(map.with_span_context(sc.clone())),
            None if map.follows_current_span() => None,
            None => Some(map.with_current_span()),
        }
    }
}

/// Starts a span with `backend`'s tracer; `None` with no provider.
pub(crate) fn open(backend: &Backend, builder: SpanBuilder, parent: &Context) -> Option<Opened> {
    fn opened<S: opentelemetry::trace::Span + Send + Sync + 'static>(
        span: S,
        parent: &Context,
    ) -> Opened {
        let recording = span.is_recording();
        let sc = span.span_context();
        let fixed = if sc.is_sampled() {
            None
        } else {
            crate::propagation::random_flag_fix(parent.span().span_context(), sc)
        };
        Opened {
            cx: parent.with_span(span),
            recording,
            fixed,
        }
    }
    match backend {
        Backend::Noop => None,
        Backend::Sdk { tracer, .. } => {
            Some(opened(tracer.build_with_context(builder, parent), parent))
        }
        Backend::Global(tracer) => Some(opened(tracer.build_with_context(builder, parent), parent)),
    }
}
