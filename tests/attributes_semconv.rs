//! The semantic-convention names in `flowtrace::attributes` that are still in
//! development (spelled there, not re-exported) match the
//! `opentelemetry-semantic-conventions` crate's. The GenAI names moved to a
//! registry of their own and are deprecated in that crate, which still spells
//! them.
#![allow(deprecated)]

use flowtrace::attributes as ours;
use opentelemetry_semantic_conventions::attribute as semconv;

#[test]
fn development_names_match_the_semantic_conventions_crate() {
    let pairs = [
        (ours::SESSION_ID, semconv::SESSION_ID),
        (ours::USER_ID, semconv::USER_ID),
        (ours::OTEL_COMPONENT_TYPE, semconv::OTEL_COMPONENT_TYPE),
        (ours::GEN_AI_OPERATION_NAME, semconv::GEN_AI_OPERATION_NAME),
        (
            ours::GEN_AI_CONVERSATION_ID,
            semconv::GEN_AI_CONVERSATION_ID,
        ),
        (ours::GEN_AI_WORKFLOW_NAME, semconv::GEN_AI_WORKFLOW_NAME),
        (ours::GEN_AI_REQUEST_MODEL, semconv::GEN_AI_REQUEST_MODEL),
        (
            ours::GEN_AI_REQUEST_TEMPERATURE,
            semconv::GEN_AI_REQUEST_TEMPERATURE,
        ),
        (ours::GEN_AI_REQUEST_TOP_P, semconv::GEN_AI_REQUEST_TOP_P),
        (
            ours::GEN_AI_REQUEST_MAX_TOKENS,
            semconv::GEN_AI_REQUEST_MAX_TOKENS,
        ),
        (ours::GEN_AI_REQUEST_SEED, semconv::GEN_AI_REQUEST_SEED),
        (ours::GEN_AI_PROVIDER_NAME, semconv::GEN_AI_PROVIDER_NAME),
        (
            ours::GEN_AI_EMBEDDINGS_DIMENSION_COUNT,
            semconv::GEN_AI_EMBEDDINGS_DIMENSION_COUNT,
        ),
        (
            ours::GEN_AI_RETRIEVAL_QUERY_TEXT,
            semconv::GEN_AI_RETRIEVAL_QUERY_TEXT,
        ),
        (
            ours::GEN_AI_RETRIEVAL_DOCUMENTS,
            semconv::GEN_AI_RETRIEVAL_DOCUMENTS,
        ),
        (ours::GEN_AI_DATA_SOURCE_ID, semconv::GEN_AI_DATA_SOURCE_ID),
        (ours::GEN_AI_TOOL_NAME, semconv::GEN_AI_TOOL_NAME),
        (ours::GEN_AI_TOOL_TYPE, semconv::GEN_AI_TOOL_TYPE),
        (ours::GEN_AI_TOOL_CALL_ID, semconv::GEN_AI_TOOL_CALL_ID),
        (
            ours::GEN_AI_TOOL_CALL_ARGUMENTS,
            semconv::GEN_AI_TOOL_CALL_ARGUMENTS,
        ),
        (
            ours::GEN_AI_TOOL_CALL_RESULT,
            semconv::GEN_AI_TOOL_CALL_RESULT,
        ),
        (
            ours::GEN_AI_SYSTEM_INSTRUCTIONS,
            semconv::GEN_AI_SYSTEM_INSTRUCTIONS,
        ),
        (ours::GEN_AI_INPUT_MESSAGES, semconv::GEN_AI_INPUT_MESSAGES),
        (
            ours::GEN_AI_OUTPUT_MESSAGES,
            semconv::GEN_AI_OUTPUT_MESSAGES,
        ),
        (
            ours::GEN_AI_RESPONSE_FINISH_REASONS,
            semconv::GEN_AI_RESPONSE_FINISH_REASONS,
        ),
        (
            ours::GEN_AI_USAGE_INPUT_TOKENS,
            semconv::GEN_AI_USAGE_INPUT_TOKENS,
        ),
        (
            ours::GEN_AI_USAGE_OUTPUT_TOKENS,
            semconv::GEN_AI_USAGE_OUTPUT_TOKENS,
        ),
        (ours::GEN_AI_AGENT_NAME, semconv::GEN_AI_AGENT_NAME),
        (
            ours::GEN_AI_AGENT_DESCRIPTION,
            semconv::GEN_AI_AGENT_DESCRIPTION,
        ),
        (
            ours::GEN_AI_EVALUATION_NAME,
            semconv::GEN_AI_EVALUATION_NAME,
        ),
        (
            ours::GEN_AI_EVALUATION_SCORE_VALUE,
            semconv::GEN_AI_EVALUATION_SCORE_VALUE,
        ),
        (
            ours::GEN_AI_EVALUATION_SCORE_LABEL,
            semconv::GEN_AI_EVALUATION_SCORE_LABEL,
        ),
        (
            ours::GEN_AI_EVALUATION_EXPLANATION,
            semconv::GEN_AI_EVALUATION_EXPLANATION,
        ),
    ];
    for (ours, theirs) in pairs {
        assert_eq!(
            ours, theirs,
            "flowtrace writes `{ours}` where the conventions say `{theirs}`"
        );
    }
}

/// No two constants share a key: a key means one thing.
#[test]
fn every_flowtrace_key_is_its_own() {
    let source = include_str!("../src/attributes.rs");
    let mut seen = std::collections::HashMap::new();
    for line in source.lines().filter(|l| l.starts_with("pub const ")) {
        let (name, rest) = line["pub const ".len()..].split_once(':').unwrap();
        let value = rest.split('"').nth(1).unwrap();
        if let Some(other) = seen.insert(value, name) {
            panic!("`{value}` is both {other} and {name}");
        }
    }
    assert!(seen.len() > 100, "read {} constants", seen.len());
}
