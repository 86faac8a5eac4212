//! Reads the `OTEL_*` / `FLOWTRACE_*` environment (or the map a test passes
//! instead) and the builder's settings into one resolved [`Config`], plus a
//! warning per bad value. Precedence, highest first: the builder (code), the
//! per-signal variable (`…_TRACES_…`), the general variable, the spec default.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use flowtrace::attributes::SERVICE_NAME;
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::Sampler;

use super::parse::{self, Member, Propagator};
use super::redact;
use super::warning::ConfigWarning;
use super::{ExporterKind, Protocol};

/// The batch processor allocates its whole queue at start, so the queue size
/// taken from the environment is bounded (about 350 bytes a slot: ~90 MiB).
pub(crate) const MAX_QUEUE_SIZE: usize = 1 << 18;

/// Where the embedded default (the file exporter) writes, relative to the
/// current directory.
pub(crate) const DEFAULT_TRACE_FILE: &str = "flowtrace-traces.jsonl";

/// Where the file exporter writes log records when neither
/// `FLOWTRACE_LOG_FILE` nor the builder says: next to the trace file (see
/// [`log_file_beside`]).
pub(crate) const DEFAULT_LOG_FILE: &str = "flowtrace-logs.jsonl";

const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
const DEFAULT_HTTP_BASE: &str = "http://localhost:4318";

/// The names one signal's OTLP variables have, and its HTTP path.
pub(crate) struct Signal {
    endpoint: &'static str,
    protocol: &'static str,
    headers: &'static str,
    timeout: &'static str,
    certificate: &'static str,
    client_certificate: &'static str,
    client_key: &'static str,
    compression: &'static str,
    insecure: &'static str,
    /// `/v1/traces`, `/v1/logs`.
    pub(crate) path: &'static str,
}

pub(crate) const TRACES: Signal = Signal {
    endpoint: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    protocol: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    headers: "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    timeout: "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    certificate: "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
    client_certificate: "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
    client_key: "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
    compression: "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    insecure: "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
    path: "/v1/traces",
};

pub(crate) const LOGS: Signal = Signal {
    endpoint: "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    protocol: "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    headers: "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    timeout: "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
    certificate: "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
    client_certificate: "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE",
    client_key: "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY",
    compression: "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION",
    insecure: "OTEL_EXPORTER_OTLP_LOGS_INSECURE",
    path: "/v1/logs",
};

pub(crate) const METRICS: Signal = Signal {
    endpoint: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    protocol: "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    headers: "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    timeout: "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    certificate: "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
    client_certificate: "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
    client_key: "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
    compression: "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
    insecure: "OTEL_EXPORTER_OTLP_METRICS_INSECURE",
    path: "/v1/metrics",
};

/// Where settings are read from: the process environment, or (for tests) a map.
#[derive(Clone, Default)]
pub(crate) enum EnvSource {
    #[default]
    Process,
    Map(HashMap<String, String>),
}

/// The variables, with the values of those holding secrets (headers)
/// hidden.
impl std::fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvSource::Process => f.write_str("Process"),
            EnvSource::Map(vars) => {
                let mut names: Vec<&String> = vars.keys().collect();
                names.sort();
                let shown = names.into_iter().map(|name| {
                    let value = match redact::secret_var(name) {
                        true => redact::HIDDEN,
                        false => vars[name].as_str(),
                    };
                    (name, value)
                });
                f.debug_tuple("Map")
                    .field(&DebugMap(shown.collect()))
                    .finish()
            }
        }
    }
}

struct DebugMap<'a>(Vec<(&'a String, &'a str)>);

impl std::fmt::Debug for DebugMap<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.0.iter().copied()).finish()
    }
}

impl EnvSource {
    /// The trimmed value, `None` when unset or empty (spec: empty = unset);
    /// `Err(lossy)` when the process value is not Unicode.
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        let value = match self {
            EnvSource::Process => match std::env::var_os(name) {
                None => return Ok(None),
                Some(os) => os
                    .into_string()
                    .map_err(|os| os.to_string_lossy().into_owned())?,
            },
            EnvSource::Map(map) => match map.get(name) {
                None => return Ok(None),
                Some(v) => v.clone(),
            },
        };
        let trimmed = value.trim();
        Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
    }
}

/// What the builder set in code; each `Some` / non-empty overrides the env.
/// `Debug` hides credentials in the endpoint URL.
#[derive(Clone, Default)]
pub(crate) struct Overrides {
    pub(crate) service_name: Option<String>,
    pub(crate) resource: Vec<KeyValue>,
    pub(crate) exporters: Vec<ExporterKind>,
    pub(crate) console: bool,
    pub(crate) trace_file: Option<PathBuf>,
    pub(crate) log_file: Option<PathBuf>,
    pub(crate) otlp_endpoint: Option<String>,
    pub(crate) otlp_protocol: Option<Protocol>,
    pub(crate) otlp_certificate: Option<PathBuf>,
    pub(crate) otlp_client_identity: Option<(PathBuf, PathBuf)>,
    pub(crate) sampler: Option<Sampler>,
    /// Exporters the application brought (`span_exporter`, `log_exporter`):
    /// like exporters named in code, they replace the environment's choice.
    pub(crate) custom_span_exporters: usize,
    pub(crate) custom_log_exporters: usize,
    pub(crate) heartbeat: Option<Duration>,
}

impl std::fmt::Debug for Overrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overrides")
            .field("service_name", &self.service_name)
            .field("resource", &self.resource)
            .field("exporters", &self.exporters)
            .field("console", &self.console)
            .field("trace_file", &self.trace_file)
            .field("log_file", &self.log_file)
            .field(
                "otlp_endpoint",
                &self.otlp_endpoint.as_deref().map(redact::url),
            )
            .field("otlp_protocol", &self.otlp_protocol)
            .field("otlp_certificate", &self.otlp_certificate)
            .field("sampler", &self.sampler)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}

/// OTLP exporter settings, endpoint already resolved to the URL to call.
/// `Debug` shows the headers' names only.
#[derive(Clone, PartialEq)]
pub(crate) struct Otlp {
    pub(crate) endpoint: String,
    pub(crate) protocol: Protocol,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Duration,
    /// `OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE`: a PEM file of CA
    /// certificates trusted for `https` besides the platform's roots.
    pub(crate) certificate: Option<PathBuf>,
    /// `OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_{CERTIFICATE,KEY}`: the PEM files
    /// of the client's certificate chain and private key, for mutual TLS.
    pub(crate) client_identity: Option<(PathBuf, PathBuf)>,
    /// `OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION=gzip`.
    pub(crate) gzip: bool,
}

impl std::fmt::Debug for Otlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Otlp")
            .field("endpoint", &redact::url(&self.endpoint))
            .field("protocol", &self.protocol)
            .field("headers", &redact::Headers(&self.headers))
            .field("timeout", &self.timeout)
            .field("certificate", &self.certificate)
            .finish()
    }
}

/// `OTEL_BSP_*`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Batch {
    pub(crate) schedule_delay: Duration,
    pub(crate) export_timeout: Duration,
    pub(crate) max_queue_size: usize,
    pub(crate) max_export_batch_size: usize,
    /// Exports in flight at once, for an exporter that takes more than one
    /// (flowtrace's OTLP transports): `OTEL_BSP_MAX_CONCURRENT_EXPORTS`,
    /// the variable opentelemetry-rust reads for the same bound.
    pub(crate) max_concurrent_exports: usize,
}

/// Exports in flight at once by default, for flowtrace's OTLP transports
/// (BENCHMARKS.md, "Export throughput"). The batches in flight count
/// against the queue, so at the specification's sizes (2048 and 512) two
/// of them leave half the queue for the spans that arrive meanwhile. Any
/// other exporter gets one call at a time.
pub(crate) const DEFAULT_CONCURRENT_EXPORTS: usize = 2;
/// The most `OTEL_BSP_MAX_CONCURRENT_EXPORTS` accepts.
pub(crate) const MAX_CONCURRENT_EXPORTS: usize = 64;

/// Everything `init()` needs, resolved.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) service_name: String,
    /// Resource attributes other than `service.name`, env first then code
    /// (a later duplicate wins when the resource is built).
    pub(crate) resource: Vec<KeyValue>,
    /// Deduplicated, without `None`; empty means no exporter.
    pub(crate) exporters: Vec<ExporterKind>,
    pub(crate) otlp: Otlp,
    pub(crate) sampler: Sampler,
    pub(crate) batch: Batch,
    /// `OTEL_BLRP_*`: the log record processor's.
    pub(crate) log_batch: Batch,
    /// Empty means `none`.
    pub(crate) propagators: Vec<Propagator>,
    pub(crate) trace_file: PathBuf,
    pub(crate) logs: Logs,
    /// `FLOWTRACE_HEARTBEAT_INTERVAL`: heartbeats of running spans (see
    /// `flowtrace::running`); `None` is off.
    pub(crate) heartbeat: Option<Duration>,
    /// `OTEL_METRICS_EXPORTER` and co. (`crate::metrics::config`).
    pub(crate) metrics: crate::metrics::config::Metrics,
}

/// Where log records go (`OTEL_LOGS_EXPORTER`, the `…_LOGS_…` OTLP
/// variables, `FLOWTRACE_LOG_FILE`).
#[derive(Clone, Debug)]
pub(crate) struct Logs {
    /// Deduplicated, without `None`; empty means no log exporter.
    pub(crate) exporters: Vec<ExporterKind>,
    pub(crate) otlp: Otlp,
    pub(crate) file: PathBuf,
}

/// Reads one variable at a time and collects warnings on the way.
pub(crate) struct Reader<'a> {
    env: &'a EnvSource,
    pub(crate) warnings: Vec<ConfigWarning>,
}

impl Reader<'_> {
    pub(crate) fn raw(&mut self, var: &'static str) -> Option<String> {
        match self.env.get(var) {
            Ok(value) => value,
            Err(lossy) => {
                self.warnings.push(ConfigWarning::invalid(
                    var,
                    lossy,
                    "accepted values are valid Unicode",
                    "the setting is ignored",
                ));
                None
            }
        }
    }

    /// Reads and parses `var`; a rejected value is reported and ignored.
    pub(crate) fn parse<T>(
        &mut self,
        var: &'static str,
        parser: impl FnOnce(&str) -> Result<T, parse::Rejected>,
        consequence: &'static str,
    ) -> Option<T> {
        let value = self.raw(var)?;
        match parser(&value) {
            Ok(parsed) => Some(parsed),
            Err(accepted) => {
                // An endpoint is shown without the credentials in it.
                let value = match var.ends_with("_ENDPOINT") {
                    true => redact::url(&value),
                    false => value,
                };
                self.warnings
                    .push(ConfigWarning::invalid(var, value, accepted, consequence));
                None
            }
        }
    }

    /// A comma list of enum members: bad members are reported one by one and
    /// skipped. `None` when unset or when no member was usable (so the caller
    /// falls back to its default); `Some(vec![])` only for an explicit `none`.
    pub(crate) fn members<T: PartialEq>(
        &mut self,
        var: &'static str,
        accepted: &'static str,
        parser: impl Fn(&str) -> Result<T, Member>,
        none: T,
    ) -> Option<Vec<T>> {
        let value = self.raw(var)?;
        let mut found = Vec::new();
        let mut saw_none = false;
        for member in parse::list(&value) {
            match parser(member) {
                Ok(m) if m == none => saw_none = true,
                Ok(m) if !found.contains(&m) => found.push(m),
                Ok(_) => {}
                Err(Member::Unknown) => self.warnings.push(ConfigWarning::invalid(
                    var,
                    member,
                    accepted,
                    "the value is ignored",
                )),
                Err(Member::Unsupported) => self.warnings.push(ConfigWarning::unsupported(
                    var,
                    member,
                    accepted,
                    "the value is ignored",
                )),
            }
        }
        (saw_none || !found.is_empty()).then_some(found)
    }

    /// A `k=v` list; malformed members are reported, the rest kept.
    fn key_values(&mut self, var: &'static str) -> Option<Vec<(String, String)>> {
        let value = self.raw(var)?;
        let (pairs, bad) = parse::key_values(&value);
        for member in bad {
            self.warnings.push(ConfigWarning::invalid(
                var,
                member,
                parse::KEY_VALUES,
                "the member is skipped",
            ));
        }
        Some(pairs)
    }

    /// A `k=v` list of headers: as [`key_values`](Self::key_values), but a
    /// malformed member is described without its text (it may hold a
    /// secret).
    fn header_list(&mut self, var: &'static str) -> Option<Vec<(String, String)>> {
        let value = self.raw(var)?;
        let (pairs, bad) = parse::key_values(&value);
        let members: Vec<&str> = parse::list(&value).collect();
        for member in bad {
            let position = members.iter().position(|m| *m == member).unwrap_or(0) + 1;
            self.warnings.push(ConfigWarning::failed(
                var,
                format!(
                    "{}; {}",
                    redact::member_problem(&member, position),
                    parse::KEY_VALUES
                ),
                "the header is skipped",
            ));
        }
        Some(pairs)
    }
}

/// Resolves the configuration. `None` when `OTEL_SDK_DISABLED=true`.
pub(crate) fn resolve(env: &EnvSource, code: &Overrides) -> (Option<Config>, Vec<ConfigWarning>) {
    let mut r = Reader {
        env,
        warnings: Vec::new(),
    };
    let disabled = r.parse("OTEL_SDK_DISABLED", parse::boolean, "the SDK stays enabled");
    if disabled == Some(true) {
        return (None, r.warnings);
    }

    let (service_name, resource) = resource(&mut r, code);
    let otlp = otlp(&mut r, code, &TRACES);
    let endpoint_configured = code.otlp_endpoint.is_some()
        || env_has(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        || env_has(env, "OTEL_EXPORTER_OTLP_ENDPOINT");
    let from_env = r.members(
        "OTEL_TRACES_EXPORTER",
        parse::EXPORTERS,
        parse::exporter,
        ExporterKind::None,
    );
    let mut exporters = if !code.exporters.is_empty() || code.custom_span_exporters > 0 {
        code.exporters.clone()
    } else if let Some(from_env) = from_env {
        from_env
    } else if endpoint_configured {
        vec![ExporterKind::Otlp]
    } else {
        // The embedded default: spans land in a local file, nothing to run.
        vec![ExporterKind::File]
    };
    if code.console {
        exporters.push(ExporterKind::Console);
    }
    let unique = dedup(exporters);

    let sampler = sampler(&mut r, code);
    let log_batch = batch(&mut r, &BLRP);
    let batch = batch(&mut r, &BSP);
    let propagators = r
        .members(
            "OTEL_PROPAGATORS",
            parse::PROPAGATORS,
            parse::propagator,
            Propagator::None,
        )
        .unwrap_or_else(|| vec![Propagator::TraceContext, Propagator::Baggage]);
    let trace_file = code
        .trace_file
        .clone()
        .or_else(|| r.raw("FLOWTRACE_TRACE_FILE").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_TRACE_FILE));
    let logs = logs(&mut r, code, &unique, &trace_file);
    let heartbeat = code
        .heartbeat
        .or_else(|| {
            r.parse(
                "FLOWTRACE_HEARTBEAT_INTERVAL",
                parse::millis,
                "heartbeats stay off",
            )
        })
        .filter(|interval| !interval.is_zero());
    let metrics = crate::metrics::config::resolve(&mut r, code, &unique, &trace_file);

    let config = Config {
        service_name,
        resource,
        exporters: unique,
        otlp,
        sampler,
        batch,
        log_batch,
        propagators,
        trace_file,
        logs,
        heartbeat,
        metrics,
    };
    // The logs read the general OTLP variables again: one warning each.
    let mut warnings: Vec<ConfigWarning> = Vec::with_capacity(r.warnings.len());
    for warning in r.warnings {
        if !warnings.contains(&warning) {
            warnings.push(warning);
        }
    }
    (Some(config), warnings)
}

pub(crate) fn dedup(exporters: Vec<ExporterKind>) -> Vec<ExporterKind> {
    let mut unique = Vec::new();
    for e in exporters {
        if e != ExporterKind::None && !unique.contains(&e) {
            unique.push(e);
        }
    }
    unique
}

/// The log exporters: `OTEL_LOGS_EXPORTER`, else the same as the spans'.
fn logs(
    r: &mut Reader<'_>,
    code: &Overrides,
    traces: &[ExporterKind],
    trace_file: &std::path::Path,
) -> Logs {
    let from_env = r.members(
        "OTEL_LOGS_EXPORTER",
        parse::EXPORTERS,
        parse::exporter,
        ExporterKind::None,
    );
    let exporters = if code.custom_log_exporters > 0 {
        dedup(code.exporters.clone())
    } else {
        from_env.map_or_else(|| traces.to_vec(), dedup)
    };
    let file = code
        .log_file
        .clone()
        .or_else(|| r.raw("FLOWTRACE_LOG_FILE").map(PathBuf::from))
        .unwrap_or_else(|| log_file_beside(trace_file));
    Logs {
        exporters,
        otlp: otlp(r, code, &LOGS),
        file,
    }
}

/// The log file next to a trace file: `traces` in its name becomes `logs`
/// (`flowtrace-traces.jsonl` → `flowtrace-logs.jsonl`), else `.logs` goes
/// before the extension (`run.jsonl` → `run.logs.jsonl`).
pub(crate) fn log_file_beside(trace_file: &std::path::Path) -> PathBuf {
    let Some(name) = trace_file.file_name().and_then(|n| n.to_str()) else {
        return PathBuf::from(DEFAULT_LOG_FILE);
    };
    let name = if name.contains("traces") {
        name.replacen("traces", "logs", 1)
    } else {
        match name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => format!("{stem}.logs.{ext}"),
            _ => format!("{name}.logs"),
        }
    };
    trace_file.with_file_name(name)
}

/// Whether a valid value is set (an invalid endpoint does not count as
/// configured, so a typo falls back to the embedded default, with a warning).
fn env_has(env: &EnvSource, var: &str) -> bool {
    matches!(env.get(var), Ok(Some(v)) if parse::endpoint(&v).is_ok())
}

/// `service.name` and the other resource attributes.
fn resource(r: &mut Reader<'_>, code: &Overrides) -> (String, Vec<KeyValue>) {
    let env_attrs = r.key_values("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default();
    let env_service = r.raw("OTEL_SERVICE_NAME");
    let mut service = None;
    let mut attrs = Vec::new();
    for (k, v) in env_attrs {
        if k == SERVICE_NAME {
            // Spec: OTEL_SERVICE_NAME wins over service.name in the list.
            service = Some(v);
        } else {
            attrs.push(KeyValue::new(k, v));
        }
    }
    if env_service.is_some() {
        service = env_service;
    }
    for kv in &code.resource {
        if kv.key.as_str() == SERVICE_NAME {
            service = Some(kv.value.to_string());
        } else {
            attrs.push(kv.clone());
        }
    }
    if let Some(name) = &code.service_name {
        service = Some(name.clone());
    }
    let service = service.unwrap_or_else(default_service_name);
    (service, attrs)
}

/// `unknown_service:<executable name>`, per the resource specification.
fn default_service_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| {
            p.file_name()?
                .to_str()
                .map(|n| format!("unknown_service:{n}"))
        })
        .unwrap_or_else(|| "unknown_service".to_owned())
}

pub(crate) fn otlp(r: &mut Reader<'_>, code: &Overrides, vars: &Signal) -> Otlp {
    const KEPT: &str = "the setting is ignored";
    let signal_protocol = r.parse(vars.protocol, parse::protocol, KEPT);
    let base_protocol = r.parse("OTEL_EXPORTER_OTLP_PROTOCOL", parse::protocol, KEPT);
    // Spec default is http/protobuf (not gRPC, whatever older SDKs did).
    let protocol = code
        .otlp_protocol
        .or(signal_protocol)
        .or(base_protocol)
        .unwrap_or(Protocol::HttpProtobuf);
    let http = protocol != Protocol::Grpc;

    // `…_INSECURE` only decides the scheme of a gRPC endpoint given without
    // one (spec): `host:4317` is `https://host:4317` unless it is `true`.
    let insecure = r
        .parse(vars.insecure, parse::boolean, KEPT)
        .or_else(|| r.parse("OTEL_EXPORTER_OTLP_INSECURE", parse::boolean, KEPT));
    let scheme = if insecure == Some(true) {
        "http"
    } else {
        "https"
    };
    let grpc_endpoint = |value: &str| match parse::endpoint(value) {
        Err(_) if !http && !value.contains("://") => {
            parse::endpoint(&format!("{scheme}://{}", value.trim()))
        }
        parsed => parsed,
    };
    let signal = r.parse(vars.endpoint, grpc_endpoint, KEPT);
    let base = r.parse("OTEL_EXPORTER_OTLP_ENDPOINT", grpc_endpoint, KEPT);
    let from_code = code
        .otlp_endpoint
        .as_deref()
        .and_then(|url| match parse::endpoint(url) {
            Ok(url) => Some(url),
            Err(accepted) => {
                r.warnings.push(ConfigWarning::invalid(
                    "TelemetryBuilder::otlp_endpoint",
                    redact::url(url),
                    accepted,
                    "the setting is ignored",
                ));
                None
            }
        });
    let endpoint = match (from_code, signal, base) {
        // A URL with a path is a full traces URL; a bare host is a base URL.
        (Some(url), _, _) if http && !parse::endpoint_has_path(&url) => {
            parse::signal_url(&url, vars.path)
        }
        // The code's full traces URL, turned into the same signal's path.
        (Some(url), _, _) => match url.strip_suffix(TRACES.path) {
            Some(base) if http => parse::signal_url(base, vars.path),
            _ => url,
        },
        (None, Some(url), _) => url,
        (None, None, Some(url)) if http => parse::signal_url(&url, vars.path),
        (None, None, Some(url)) => url,
        (None, None, None) if http => parse::signal_url(DEFAULT_HTTP_BASE, vars.path),
        (None, None, None) => DEFAULT_GRPC_ENDPOINT.to_owned(),
    };

    // The per-signal list replaces the general one entirely (spec).
    let raw_headers = match r.header_list(vars.headers) {
        Some(h) => (vars.headers, h),
        None => (
            "OTEL_EXPORTER_OTLP_HEADERS",
            r.header_list("OTEL_EXPORTER_OTLP_HEADERS")
                .unwrap_or_default(),
        ),
    };
    let mut headers = Vec::new();
    for (name, value) in raw_headers.1 {
        match redact::header_problem(&name, &value, !http) {
            None => headers.push((name.to_ascii_lowercase(), value)),
            Some(problem) => r.warnings.push(ConfigWarning::failed(
                raw_headers.0,
                format!(
                    "{problem}; accepted headers have token names (not ending in -bin for \
                     gRPC) and visible ASCII values"
                ),
                "the header is skipped",
            )),
        }
    }

    let signal_timeout = r.parse(vars.timeout, parse::millis, KEPT);
    let base_timeout = r.parse("OTEL_EXPORTER_OTLP_TIMEOUT", parse::millis, KEPT);
    let timeout = signal_timeout
        .or(base_timeout)
        .unwrap_or(Duration::from_millis(10_000));

    // The per-signal path wins; neither is checked here: a file that cannot
    // be read is reported when the exporter is built, with the file's name.
    let certificate = code
        .otlp_certificate
        .clone()
        .or_else(|| r.raw(vars.certificate).map(PathBuf::from))
        .or_else(|| r.raw("OTEL_EXPORTER_OTLP_CERTIFICATE").map(PathBuf::from));
    let client_identity = client_identity(r, code, vars);

    let gzip = compression(r, vars.compression)
        .or_else(|| compression(r, "OTEL_EXPORTER_OTLP_COMPRESSION"))
        .unwrap_or(false);

    Otlp {
        endpoint,
        protocol,
        headers,
        timeout,
        certificate,
        client_identity,
        gzip,
    }
}

/// `gzip` or `none`; `zstd`, which the specification also names, gets the
/// warning for an unsupported value (requests go uncompressed).
fn compression(r: &mut Reader<'_>, var: &'static str) -> Option<bool> {
    let value = r.raw(var)?;
    match parse::compression(&value) {
        Ok(gzip) => Some(gzip),
        Err(accepted) if value.eq_ignore_ascii_case("zstd") => {
            r.warnings.push(ConfigWarning::unsupported(
                var,
                value,
                accepted,
                "requests are not compressed",
            ));
            None
        }
        Err(accepted) => {
            r.warnings.push(ConfigWarning::invalid(
                var,
                value,
                accepted,
                "the setting is ignored",
            ));
            None
        }
    }
}

/// The client certificate and key for mutual TLS: both or neither (one
/// alone is reported and ignored). The per-signal pair wins as a pair.
fn client_identity(
    r: &mut Reader<'_>,
    code: &Overrides,
    vars: &Signal,
) -> Option<(PathBuf, PathBuf)> {
    if let Some(pair) = &code.otlp_client_identity {
        return Some(pair.clone());
    }
    let signal = (r.raw(vars.client_certificate), r.raw(vars.client_key));
    let (names, pair) = if signal.0.is_some() || signal.1.is_some() {
        ((vars.client_certificate, vars.client_key), signal)
    } else {
        let general = (
            r.raw("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
            r.raw("OTEL_EXPORTER_OTLP_CLIENT_KEY"),
        );
        (
            (
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            ),
            general,
        )
    };
    match pair {
        (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
        (None, None) => None,
        (Some(_), None) => {
            r.warnings.push(ConfigWarning::failed(
                names.0,
                format!("is set without {}", names.1),
                "no client certificate is presented",
            ));
            None
        }
        (None, Some(_)) => {
            r.warnings.push(ConfigWarning::failed(
                names.1,
                format!("is set without {}", names.0),
                "no client certificate is presented",
            ));
            None
        }
    }
}

fn sampler(r: &mut Reader<'_>, code: &Overrides) -> Sampler {
    let default = || Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
    let Some(name) = r.raw("OTEL_TRACES_SAMPLER") else {
        return code.sampler.clone().unwrap_or_else(default);
    };
    // The argument only means something to the ratio samplers (spec: ignore otherwise).
    let ratio = if parse::sampler_takes_ratio(&name) {
        r.parse(
            "OTEL_TRACES_SAMPLER_ARG",
            parse::ratio,
            "the ratio 1.0 is used",
        )
        .unwrap_or(1.0)
    } else {
        1.0
    };
    let from_env = match parse::sampler(&name, ratio) {
        Ok(s) => Some(s),
        Err(accepted) => {
            r.warnings.push(ConfigWarning::invalid(
                "OTEL_TRACES_SAMPLER",
                name,
                accepted,
                "the setting is ignored (parentbased_always_on is used)",
            ));
            None
        }
    };
    code.sampler.clone().or(from_env).unwrap_or_else(default)
}

/// The variables of one batch processor and its default schedule delay:
/// `OTEL_BSP_*` for spans (5 s), `OTEL_BLRP_*` for log records (1 s).
struct BatchVars {
    schedule_delay: &'static str,
    export_timeout: &'static str,
    max_queue_size: &'static str,
    max_export_batch_size: &'static str,
    /// `None`: no variable, the default applies.
    max_concurrent_exports: Option<&'static str>,
    default_delay: Duration,
}

const BSP: BatchVars = BatchVars {
    schedule_delay: "OTEL_BSP_SCHEDULE_DELAY",
    export_timeout: "OTEL_BSP_EXPORT_TIMEOUT",
    max_queue_size: "OTEL_BSP_MAX_QUEUE_SIZE",
    max_export_batch_size: "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    max_concurrent_exports: Some("OTEL_BSP_MAX_CONCURRENT_EXPORTS"),
    default_delay: Duration::from_millis(5000),
};

const BLRP: BatchVars = BatchVars {
    schedule_delay: "OTEL_BLRP_SCHEDULE_DELAY",
    export_timeout: "OTEL_BLRP_EXPORT_TIMEOUT",
    max_queue_size: "OTEL_BLRP_MAX_QUEUE_SIZE",
    max_export_batch_size: "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
    max_concurrent_exports: None,
    default_delay: Duration::from_millis(1000),
};

fn batch(r: &mut Reader<'_>, vars: &BatchVars) -> Batch {
    const KEPT: &str = "the default is used";
    let schedule_delay = r
        .parse(vars.schedule_delay, parse::millis, KEPT)
        .unwrap_or(vars.default_delay);
    let export_timeout = r
        .parse(vars.export_timeout, parse::millis, KEPT)
        .unwrap_or(Duration::from_millis(30_000));
    let max_queue_size = r
        .parse(
            vars.max_queue_size,
            |v| parse::count(v, MAX_QUEUE_SIZE),
            KEPT,
        )
        .unwrap_or(2048);
    let batch_size = r.parse(
        vars.max_export_batch_size,
        |v| parse::count(v, MAX_QUEUE_SIZE),
        KEPT,
    );
    if let Some(size) = batch_size.filter(|&size| size > max_queue_size) {
        r.warnings.push(ConfigWarning::invalid(
            vars.max_export_batch_size,
            size.to_string(),
            format_args!(
                "accepted values are at most {} ({max_queue_size})",
                vars.max_queue_size
            ),
            "the queue size is used",
        ));
    }
    // The default 512 shrinks silently with a smaller queue: nothing was set wrong.
    let max_export_batch_size = batch_size.unwrap_or(512).min(max_queue_size);
    let max_concurrent_exports = vars
        .max_concurrent_exports
        .and_then(|var| r.parse(var, |v| parse::count(v, MAX_CONCURRENT_EXPORTS), KEPT))
        .unwrap_or(DEFAULT_CONCURRENT_EXPORTS);
    Batch {
        schedule_delay,
        export_timeout,
        max_queue_size,
        max_export_batch_size,
        max_concurrent_exports,
    }
}

#[cfg(test)]
mod logs_tests;
#[cfg(test)]
mod otlp_tests;
#[cfg(test)]
mod tests;
