//! The content hiding switches ([`Hide`]) of the capture settings: the
//! OpenInference variables and the GenAI one, read once, which attribute
//! keys each one covers, and what a hidden value becomes.

use std::sync::LazyLock;

use crate::attributes::{
    EMBEDDING_EMBEDDINGS, EMBEDDING_INVOCATION_PARAMETERS, GEN_AI_INPUT_MESSAGES,
    GEN_AI_OUTPUT_MESSAGES, GEN_AI_RETRIEVAL_QUERY_TEXT, GEN_AI_SYSTEM_INSTRUCTIONS,
    GEN_AI_TOOL_CALL_ARGUMENTS, GEN_AI_TOOL_CALL_RESULT, INPUT_VALUE, LLM_INPUT_MESSAGES,
    LLM_INVOCATION_PARAMETERS, LLM_OUTPUT_MESSAGES, OUTPUT_VALUE, RAG_CHUNKS, RAG_DOCUMENT,
    RAG_EMBEDDING_INPUTS, RAG_QUERY, RAG_RESPONSE, RAG_REWRITTEN_QUERY, RERANKER_QUERY,
    TRACE_INPUT, TRACE_OUTPUT,
};
use crate::capture;

/// What a hidden value is replaced with (the OpenInference placeholder).
pub const REDACTED_CONTENT: &str = "__REDACTED__";

/// What the hiding switches cover, as bits of [`Hide::mask`].
mod class {
    pub(super) const INPUT: u8 = 1;
    pub(super) const OUTPUT: u8 = 1 << 1;
    pub(super) const INPUT_MESSAGES: u8 = 1 << 2;
    pub(super) const OUTPUT_MESSAGES: u8 = 1 << 3;
    pub(super) const INVOCATION_PARAMETERS: u8 = 1 << 4;
    pub(super) const EMBEDDINGS_TEXT: u8 = 1 << 5;
    pub(super) const GENAI_CONTENT: u8 = 1 << 6;
}

/// The content hiding switches (see the [module docs](crate::openinference)).
///
/// ```
/// use flowtrace::capture::{CaptureConfig, configure};
/// use flowtrace::openinference::Hide;
///
/// configure(CaptureConfig::default().hide(Hide::none().inputs(true)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hide {
    mask: u8,
}

impl Hide {
    /// Nothing hidden.
    ///
    /// ```
    /// use flowtrace::openinference::Hide;
    /// let hide = Hide::none();
    /// assert!(hide.is_empty() && !hide.hides("input.value"));
    /// ```
    pub const fn none() -> Self {
        Self { mask: 0 }
    }

    /// The switches the environment sets (read once per process).
    ///
    /// ```
    /// use flowtrace::openinference::Hide;
    ///
    /// // `OPENINFERENCE_HIDE_INPUTS=true` and the other variables, read once.
    /// let hide = Hide::from_env();
    /// # let _ = hide;
    /// ```
    pub fn from_env() -> Self {
        *FROM_ENV
    }

    fn set(mut self, bits: u8, on: bool) -> Self {
        if on {
            self.mask |= bits;
        } else {
            self.mask &= !bits;
        }
        self
    }

    /// `OPENINFERENCE_HIDE_INPUTS`.
    ///
    /// ```
    /// use flowtrace::openinference::Hide;
    /// let hide = Hide::none().inputs(true);
    /// assert!(hide.hides("input.value") && hide.hides("flowtrace.input.query"));
    /// assert!(!hide.hides("output.value"));
    /// ```
    pub fn inputs(self, on: bool) -> Self {
        self.set(class::INPUT | class::INPUT_MESSAGES, on)
    }

    /// `OPENINFERENCE_HIDE_OUTPUTS`.
    ///
    /// ```
    /// use flowtrace::openinference::Hide;
    /// let hide = Hide::none().outputs(true);
    /// assert!(hide.hides("output.value") && hide.hides("flowtrace.output"));
    /// ```
    pub fn outputs(self, on: bool) -> Self {
        self.set(class::OUTPUT | class::OUTPUT_MESSAGES, on)
    }

    /// `OPENINFERENCE_HIDE_INPUT_MESSAGES`.
    ///
    /// ```
    /// use flowtrace::openinference::Hide;
    /// let hide = Hide::none().input_messages(true);
    /// assert!(hide.hides("llm.input_messages.0.message.content"));
    /// assert!(hide.hides("gen_ai.input.messages"));
    /// ```
    pub fn input_messages(self, on: bool) -> Self {
        self.set(class::INPUT_MESSAGES, on)
    }

    /// `OPENINFERENCE_HIDE_OUTPUT_MESSAGES`.
    ///
    /// ```
    /// use flowtrace::openinference::Hide;
    /// let hide = Hide::none().output_messages(true);
    /// assert!(hide.hides("llm.output_messages.0.message.content"));
    /// assert!(!hide.hides("llm.input_messages.0.message.content"));
    /// ```
    pub fn output_messages(self, on: bool) -> Self {
        self.set(class::OUTPUT_MESSAGES, on)
    }

    /// `OPENINFERENCE_HIDE_LLM_INVOCATION_PARAMETERS`.
    ///
    /// ```
    /// use flowtrace::openinference::Hide;
    /// let hide = Hide::none().invocation_parameters(true);
    /// assert!(hide.hides("llm.invocation_parameters"));
    /// ```
    pub fn invocation_parameters(self, on: bool) -> Self {
        self.set(class::INVOCATION_PARAMETERS, on)
    }

    /// `OPENINFERENCE_HIDE_EMBEDDINGS_TEXT`.
    ///
    /// ```
    /// use flowtrace::openinference::Hide;
    /// let hide = Hide::none().embeddings_text(true);
    /// assert!(hide.hides("embedding.embeddings.0.embedding.text"));
    /// assert!(!hide.hides("embedding.model_name"));
    /// ```
    pub fn embeddings_text(self, on: bool) -> Self {
        self.set(class::EMBEDDINGS_TEXT, on)
    }

    /// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` (`false`
    /// hides the message content).
    ///
    /// ```
    /// use flowtrace::openinference::Hide;
    /// let hide = Hide::none().capture_message_content(false);
    /// assert!(hide.hides("gen_ai.tool.call.arguments"));
    /// assert!(Hide::none().capture_message_content(true).is_empty());
    /// ```
    pub fn capture_message_content(self, on: bool) -> Self {
        self.set(
            class::INPUT_MESSAGES | class::OUTPUT_MESSAGES | class::GENAI_CONTENT,
            !on,
        )
    }

    /// Whether anything is hidden.
    ///
    /// ```
    /// use flowtrace::openinference::Hide;
    /// assert!(Hide::none().is_empty());
    /// assert!(!Hide::none().outputs(true).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.mask == 0
    }

    /// Whether the attribute `key` is hidden.
    ///
    /// ```
    /// use flowtrace::openinference::Hide;
    /// let hide = Hide::none().inputs(true);
    /// assert!(hide.hides("input.value"));
    /// assert!(!hide.hides("session.id"), "not content");
    /// ```
    pub fn hides(&self, key: &str) -> bool {
        self.mask != 0 && classes(key) & self.mask != 0
    }
}

/// The content classes of an attribute key.
fn classes(key: &str) -> u8 {
    use class::*;
    if key.starts_with(capture::INPUT_PREFIX) {
        return INPUT;
    }
    if key
        .strip_prefix(LLM_INPUT_MESSAGES)
        .is_some_and(|rest| rest.starts_with('.'))
    {
        return INPUT_MESSAGES;
    }
    if key
        .strip_prefix(LLM_OUTPUT_MESSAGES)
        .is_some_and(|rest| rest.starts_with('.'))
    {
        return OUTPUT_MESSAGES;
    }
    if key
        .strip_prefix(EMBEDDING_EMBEDDINGS)
        .is_some_and(|rest| rest.starts_with('.') && rest.ends_with(".embedding.text"))
    {
        return EMBEDDINGS_TEXT;
    }
    match key {
        INPUT_VALUE | TRACE_INPUT | RAG_DOCUMENT | RERANKER_QUERY => INPUT,
        OUTPUT_VALUE | capture::OUTPUT | TRACE_OUTPUT | RAG_CHUNKS | RAG_REWRITTEN_QUERY => OUTPUT,
        RAG_QUERY => INPUT | INPUT_MESSAGES | GENAI_CONTENT,
        GEN_AI_RETRIEVAL_QUERY_TEXT => INPUT | GENAI_CONTENT,
        GEN_AI_INPUT_MESSAGES | GEN_AI_SYSTEM_INSTRUCTIONS => INPUT_MESSAGES,
        GEN_AI_OUTPUT_MESSAGES | RAG_RESPONSE => OUTPUT_MESSAGES,
        GEN_AI_TOOL_CALL_ARGUMENTS => INPUT | GENAI_CONTENT,
        GEN_AI_TOOL_CALL_RESULT => OUTPUT | GENAI_CONTENT,
        LLM_INVOCATION_PARAMETERS | EMBEDDING_INVOCATION_PARAMETERS => INVOCATION_PARAMETERS,
        RAG_EMBEDDING_INPUTS => EMBEDDINGS_TEXT,
        _ => 0,
    }
}

/// A setter of [`Hide`], for one variable.
type Switch = fn(Hide, bool) -> Hide;

static FROM_ENV: LazyLock<Hide> = LazyLock::new(|| {
    let mut hide = Hide::none();
    let switches: [(&str, Switch); 7] = [
        ("OPENINFERENCE_HIDE_INPUTS", Hide::inputs),
        ("OPENINFERENCE_HIDE_OUTPUTS", Hide::outputs),
        ("OPENINFERENCE_HIDE_INPUT_MESSAGES", Hide::input_messages),
        ("OPENINFERENCE_HIDE_OUTPUT_MESSAGES", Hide::output_messages),
        (
            "OPENINFERENCE_HIDE_LLM_INVOCATION_PARAMETERS",
            Hide::invocation_parameters,
        ),
        ("OPENINFERENCE_HIDE_EMBEDDINGS_TEXT", Hide::embeddings_text),
        (
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
            Hide::capture_message_content,
        ),
    ];
    for (name, switch) in switches {
        let Ok(raw) = std::env::var(name) else {
            continue;
        };
        match parse_bool(&raw) {
            Some(on) => {
                // Only an explicit `false` of the GenAI switch hides anything.
                let hides = name.starts_with("OPENINFERENCE") || !on;
                if hides {
                    hide = switch(hide, on);
                }
            }
            None => tracing::warn!(
                target: "flowtrace",
                "{name}={raw:?} is not accepted: use true or false; the setting is ignored"
            ),
        }
    }
    hide
});

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_hide_their_classes_only() {
        let inputs = Hide::none().inputs(true);
        for key in [
            "input.value",
            "flowtrace.input.query",
            "llm.input_messages.0.message.content",
            "gen_ai.input.messages",
            "flowtrace.rag.query",
        ] {
            assert!(inputs.hides(key), "HIDE_INPUTS hides {key}");
        }
        for key in ["output.value", "llm.output_messages.0.message.content"] {
            assert!(!inputs.hides(key), "HIDE_INPUTS keeps {key}");
        }
        let messages = Hide::none().input_messages(true);
        assert!(messages.hides("llm.input_messages.1.message.content"));
        assert!(
            !messages.hides("input.value"),
            "message hiding keeps input.value"
        );
        let genai = Hide::none().capture_message_content(false);
        for key in [
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "gen_ai.tool.call.arguments",
            "gen_ai.retrieval.query.text",
        ] {
            assert!(genai.hides(key), "content capture off hides {key}");
        }
        assert!(Hide::none().capture_message_content(true).is_empty());
        assert!(!Hide::none().hides("input.value"));
        assert!(
            Hide::none()
                .embeddings_text(true)
                .hides("embedding.embeddings.3.embedding.text")
        );
    }

    #[test]
    fn bools_parse_like_the_spec() {
        assert_eq!(parse_bool(" TRUE "), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("1"), None);
    }
}
