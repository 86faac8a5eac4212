//! Input/output capture: values become span attributes as JSON (or `Debug`
//! text), with secrets redacted and each value capped in size.
//!
//! Settings are process-wide ([`configure`]); they are read only when a span
//! records, so an unsampled task pays nothing for them.
//!
//! ```
//! use flowtrace::capture::{CaptureConfig, configure};
//!
//! configure(CaptureConfig::default().max_value_bytes(1024).redact_key("ssn"));
//! ```

use std::sync::{Arc, RwLock};

use opentelemetry::{KeyValue, Value};
use serde_json::Value as Json;

pub(crate) mod hide;

use hide::{Hide, REDACTED_CONTENT};

pub(crate) use crate::attributes::{INPUT_PREFIX, OUTPUT};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";
/// The default cap on one captured value, in bytes.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 4096;
/// Key patterns redacted by default, matched case-insensitively as substrings
/// of object keys and argument names (`-` counts as `_`).
pub const DEFAULT_REDACTED_KEYS: [&str; 6] = [
    "password",
    "secret",
    "token",
    "authorization",
    "api_key",
    "cookie",
];

/// Process-wide capture settings.
///
/// ```
/// use flowtrace::capture::CaptureConfig;
///
/// let config = CaptureConfig::default().redact_key("ssn");
/// assert!(config.is_redacted_key("user_ssn"));
/// assert!(config.is_redacted_key("api-token"), "a default pattern");
/// assert!(!config.is_redacted_key("query"));
/// ```
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    max_value_bytes: usize,
    redacted_keys: Vec<String>,
    hide: Hide,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            redacted_keys: DEFAULT_REDACTED_KEYS
                .iter()
                .map(|k| (*k).to_owned())
                .collect(),
            hide: Hide::from_env(),
        }
    }
}

impl CaptureConfig {
    /// Caps each captured value at `bytes` (at least 16); longer values are
    /// cut at a character boundary and marked `…[truncated N bytes]`.
    ///
    /// ```
    /// use flowtrace::capture::{CaptureConfig, configure};
    ///
    /// #[flowtrace::traced(ret)]
    /// async fn summarize(text: String) -> String {
    ///     text
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// configure(CaptureConfig::default().max_value_bytes(256));
    /// summarize("a long document ".repeat(100)).await; // `flowtrace.output` keeps 256 bytes
    /// # }
    /// ```
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = bytes.max(16);
        self
    }

    /// Adds a key pattern to redact.
    ///
    /// ```
    /// let config = flowtrace::capture::CaptureConfig::default().redact_key("Card-Number");
    /// assert!(config.is_redacted_key("card_number"));
    /// assert!(config.is_redacted_key("billing.CARD_NUMBER"));
    /// ```
    pub fn redact_key(mut self, pattern: impl Into<String>) -> Self {
        self.redacted_keys.push(normalize(&pattern.into()));
        self
    }

    /// Replaces the key patterns to redact (an empty list redacts nothing).
    ///
    /// ```
    /// use flowtrace::capture::CaptureConfig;
    ///
    /// let config = CaptureConfig::default().redacted_keys(["iban"]);
    /// assert!(config.is_redacted_key("iban"));
    /// assert!(!config.is_redacted_key("password"), "the defaults are replaced");
    /// assert!(!CaptureConfig::default().redacted_keys(Vec::<String>::new()).is_redacted_key("token"));
    /// ```
    pub fn redacted_keys<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.redacted_keys = patterns.into_iter().map(|p| normalize(&p.into())).collect();
        self
    }

    /// The content hiding switches (by default the ones the
    /// `OPENINFERENCE_HIDE_*` and `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`
    /// variables set; see [`crate::openinference`]).
    ///
    /// ```
    /// use flowtrace::capture::{CaptureConfig, configure};
    /// use flowtrace::openinference::Hide;
    ///
    /// // Keep the prompts and answers off the spans, whatever the environment says.
    /// configure(CaptureConfig::default().hide(Hide::none().inputs(true).outputs(true)));
    /// ```
    pub fn hide(mut self, hide: Hide) -> Self {
        self.hide = hide;
        self
    }

    /// Whether `key` matches one of the redacted patterns.
    ///
    /// ```
    /// let config = flowtrace::capture::CaptureConfig::default();
    /// assert!(config.is_redacted_key("DB_PASSWORD"));
    /// assert!(!config.is_redacted_key("database"));
    /// ```
    pub fn is_redacted_key(&self, key: &str) -> bool {
        let key = normalize(key);
        self.redacted_keys
            .iter()
            .any(|p| !p.is_empty() && key.contains(p.as_str()))
    }
}

fn normalize(key: &str) -> String {
    key.to_ascii_lowercase().replace('-', "_")
}

static CONFIG: RwLock<Option<Arc<CaptureConfig>>> = RwLock::new(None);

/// Installs process-wide capture settings.
///
/// ```
/// use flowtrace::capture::{CaptureConfig, config, configure};
///
/// configure(CaptureConfig::default().redact_key("ssn"));
/// assert!(config().is_redacted_key("ssn"));
/// ```
pub fn configure(config: CaptureConfig) {
    let mut slot = CONFIG.write().unwrap_or_else(|e| e.into_inner());
    *slot = Some(Arc::new(config));
}

/// The current capture settings.
///
/// ```
/// let settings = flowtrace::capture::config();
/// assert!(settings.is_redacted_key("secret"), "the defaults until `configure`");
/// ```
pub fn config() -> Arc<CaptureConfig> {
    let slot = CONFIG.read().unwrap_or_else(|e| e.into_inner());
    match &*slot {
        Some(config) => config.clone(),
        None => {
            drop(slot);
            let config = Arc::new(CaptureConfig::default());
            let mut slot = CONFIG.write().unwrap_or_else(|e| e.into_inner());
            slot.get_or_insert(config).clone()
        }
    }
}

/// A captured value before redaction and rendering.
///
/// ```
/// use flowtrace::capture::Captured;
///
/// let as_json = Captured::Json(serde_json::json!({"rows": 3}));
/// let as_text = Captured::Text(format!("{:?}", std::time::Duration::from_secs(1)));
/// assert!(matches!(as_json, Captured::Json(_)));
/// assert!(matches!(as_text, Captured::Text(text) if text == "1s"));
/// ```
#[derive(Debug)]
pub enum Captured {
    /// Through `Serialize`.
    Json(Json),
    /// Through `Debug` or `Display`.
    Text(String),
}

/// Redacts, renders and caps a captured value as the attribute `key`.
/// `redact_paths` are dotted paths inside the value to redact (`""` = all).
pub(crate) fn attribute(
    key: String,
    value: Captured,
    redact_paths: &[&str],
    config: &CaptureConfig,
) -> KeyValue {
    if config.hide.hides(&key) {
        return KeyValue::new(key, REDACTED_CONTENT);
    }
    let name = key.rsplit('.').next().unwrap_or(&key);
    if redact_paths.contains(&"") || config.is_redacted_key(name) {
        return KeyValue::new(key, REDACTED);
    }
    let value = match value {
        Captured::Json(mut json) => {
            for path in redact_paths {
                redact_path(&mut json, path);
            }
            redact_keys(&mut json, config);
            match json {
                Json::Bool(b) => Value::Bool(b),
                Json::Number(n) if n.is_i64() => Value::I64(n.as_i64().unwrap_or_default()),
                Json::Number(n) if n.is_f64() => Value::F64(n.as_f64().unwrap_or_default()),
                Json::String(s) => Value::from(truncate(s, config.max_value_bytes)),
                other => Value::from(truncate(other.to_string(), config.max_value_bytes)),
            }
        }
        Captured::Text(text) => Value::from(truncate(text, config.max_value_bytes)),
    };
    KeyValue::new(key, value)
}

/// Replaces the values of redacted keys at any depth.
///
/// ```
/// use flowtrace::capture::{CaptureConfig, REDACTED, redact_keys};
///
/// let mut value = serde_json::json!({"user": {"name": "ada", "password": "hunter2"}});
/// redact_keys(&mut value, &CaptureConfig::default());
/// assert_eq!(value["user"]["password"], REDACTED);
/// assert_eq!(value["user"]["name"], "ada");
/// ```
pub fn redact_keys(json: &mut Json, config: &CaptureConfig) {
    match json {
        Json::Object(map) => {
            for (key, value) in map.iter_mut() {
                if config.is_redacted_key(key) {
                    *value = Json::String(REDACTED.to_owned());
                } else {
                    redact_keys(value, config);
                }
            }
        }
        Json::Array(items) => items.iter_mut().for_each(|v| redact_keys(v, config)),
        _ => {}
    }
}

/// Replaces the value at a dotted `path` (through objects; a path step over
/// an array applies to every element).
///
/// ```
/// use flowtrace::capture::{REDACTED, redact_path};
///
/// let mut value = serde_json::json!({"items": [{"card": "4111", "sku": "a"}, {"card": "5500", "sku": "b"}]});
/// redact_path(&mut value, "items.card");
/// assert_eq!(value["items"][1]["card"], REDACTED);
/// assert_eq!(value["items"][1]["sku"], "b");
/// ```
pub fn redact_path(json: &mut Json, path: &str) {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    match json {
        Json::Object(map) => {
            if let Some(value) = map.get_mut(head) {
                match rest {
                    Some(rest) => redact_path(value, rest),
                    None => *value = Json::String(REDACTED.to_owned()),
                }
            }
        }
        Json::Array(items) => items.iter_mut().for_each(|v| redact_path(v, path)),
        _ => {}
    }
}

/// Cuts `text` to at most `max` bytes (at a character boundary) plus a marker
/// saying how much was dropped.
///
/// ```
/// let cut = flowtrace::capture::truncate("héllo wörld".to_owned(), 3);
/// assert!(cut.starts_with("hé"), "cut at a character boundary: {cut}");
/// assert!(cut.contains("truncated"));
/// assert_eq!(flowtrace::capture::truncate("short".to_owned(), 16), "short");
/// ```
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let dropped = text.len() - cut;
    text.truncate(cut);
    text.push_str(&format!("…[truncated {dropped} bytes]"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_redacted_at_any_depth() {
        let config = CaptureConfig::default();
        for (mut input, expected, reason) in [
            (
                json!({"password": "p"}),
                json!({"password": REDACTED}),
                "top level",
            ),
            (
                json!({"a": {"b": [{"Api-Key": 1}]}}),
                json!({"a": {"b": [{"Api-Key": REDACTED}]}}),
                "nested, case and dash insensitive",
            ),
            (
                json!({"access_token": "t", "n": 1}),
                json!({"access_token": REDACTED, "n": 1}),
                "substring match",
            ),
            (json!(["secret"]), json!(["secret"]), "values are not keys"),
        ] {
            redact_keys(&mut input, &config);
            assert_eq!(input, expected, "{reason}");
        }
    }

    #[test]
    fn paths_are_redacted() {
        let mut value =
            json!({"user": {"name": "n", "ssn": "1"}, "items": [{"card": 1}, {"card": 2}]});
        redact_path(&mut value, "user.ssn");
        redact_path(&mut value, "items.card");
        redact_path(&mut value, "missing.path");
        assert_eq!(
            value,
            json!({"user": {"name": "n", "ssn": REDACTED}, "items": [{"card": REDACTED}, {"card": REDACTED}]})
        );
    }

    #[test]
    fn truncation_marks_what_was_dropped() {
        assert_eq!(truncate("abc".into(), 3), "abc");
        assert_eq!(truncate("abcdef".into(), 3), "abc…[truncated 3 bytes]");
        assert_eq!(
            truncate("ééé".into(), 3),
            "é…[truncated 4 bytes]",
            "cut at a char boundary"
        );
    }

    #[test]
    fn attributes_keep_scalars_native() {
        let config = CaptureConfig::default();
        let kv = attribute(
            "flowtrace.input.n".into(),
            Captured::Json(json!(7)),
            &[],
            &config,
        );
        assert_eq!(kv.value, Value::I64(7));
        let kv = attribute(
            "flowtrace.input.s".into(),
            Captured::Json(json!("x")),
            &[],
            &config,
        );
        assert_eq!(kv.value, Value::from("x"));
        let kv = attribute(
            "flowtrace.input.token".into(),
            Captured::Json(json!("x")),
            &[],
            &config,
        );
        assert_eq!(
            kv.value,
            Value::from(REDACTED),
            "argument names are redacted too"
        );
        let kv = attribute(
            "flowtrace.input.v".into(),
            Captured::Json(json!({"a": 1})),
            &[""],
            &config,
        );
        assert_eq!(
            kv.value,
            Value::from(REDACTED),
            "redact(arg) hides the whole value"
        );
    }
}
