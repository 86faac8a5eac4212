//! Table-driven tests of `config::resolve`, `(env, expectation, reason)` rows:
//! sampler, batch processor, propagators, resource, trace file, and the
//! warning text.

use super::otlp_tests::{Env, env, resolve_env, resolve_with};
use super::*;

#[test]
fn samplers() {
    let cases: [(Env, &str, usize, &str); 8] = [
        (
            &[],
            "ParentBased(AlwaysOn)",
            0,
            "default parentbased_always_on",
        ),
        (
            &[("OTEL_TRACES_SAMPLER", "always_off")],
            "AlwaysOff",
            0,
            "always_off",
        ),
        (
            &[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ],
            "TraceIdRatioBased(0.25)",
            0,
            "ratio from the arg",
        ),
        (
            &[("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")],
            "ParentBased(TraceIdRatioBased(1.0))",
            0,
            "missing arg: 1.0",
        ),
        (
            &[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ],
            "TraceIdRatioBased(1.0)",
            1,
            "out-of-range arg: warned, 1.0",
        ),
        (
            &[
                ("OTEL_TRACES_SAMPLER", "always_on"),
                ("OTEL_TRACES_SAMPLER_ARG", "junk"),
            ],
            "AlwaysOn",
            0,
            "the arg is ignored for samplers without a ratio",
        ),
        (
            &[("OTEL_TRACES_SAMPLER", "sometimes")],
            "ParentBased(AlwaysOn)",
            1,
            "unknown sampler: warned, default",
        ),
        (
            &[("OTEL_TRACES_SAMPLER", " ALWAYS_OFF ")],
            "AlwaysOff",
            0,
            "trimmed, case-insensitive",
        ),
    ];
    for (pairs, expected, warnings, reason) in cases {
        let (config, got) = resolve_env(pairs);
        assert_eq!(format!("{:?}", config.sampler), expected, "{reason}");
        assert_eq!(got.len(), warnings, "{reason}: {got:?}");
    }
    let code = Overrides {
        sampler: Some(Sampler::AlwaysOff),
        ..Default::default()
    };
    let (config, _) = resolve_with(&[("OTEL_TRACES_SAMPLER", "always_on")], &code);
    assert_eq!(
        format!("{:?}", config.sampler),
        "AlwaysOff",
        "the sampler set in code wins"
    );
}

#[test]
fn batch_settings() {
    type Expected = (u64, u64, usize, usize);
    let cases: [(Env, Expected, usize, &str); 6] = [
        (&[], (5000, 30_000, 2048, 512), 0, "spec defaults"),
        (
            &[
                ("OTEL_BSP_SCHEDULE_DELAY", "100"),
                ("OTEL_BSP_EXPORT_TIMEOUT", "200"),
                ("OTEL_BSP_MAX_QUEUE_SIZE", "64"),
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "8"),
            ],
            (100, 200, 64, 8),
            0,
            "all four set",
        ),
        (
            &[
                ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "200"),
            ],
            (5000, 30_000, 100, 100),
            1,
            "a batch larger than the queue is reported and clamped",
        ),
        (
            &[("OTEL_BSP_MAX_QUEUE_SIZE", "100")],
            (5000, 30_000, 100, 100),
            0,
            "the default batch shrinks silently with a small queue",
        ),
        (
            &[("OTEL_BSP_MAX_QUEUE_SIZE", "99999999999")],
            (5000, 30_000, 2048, 512),
            1,
            "an absurd queue size is rejected",
        ),
        (
            &[
                ("OTEL_BSP_SCHEDULE_DELAY", "-5"),
                ("OTEL_BSP_EXPORT_TIMEOUT", "0"),
            ],
            (5000, 30_000, 2048, 512),
            2,
            "negative and zero durations are rejected",
        ),
    ];
    for (pairs, (delay, timeout, queue, batch), warnings, reason) in cases {
        let (config, got) = resolve_env(pairs);
        let b = config.batch;
        assert_eq!(b.schedule_delay, Duration::from_millis(delay), "{reason}");
        assert_eq!(b.export_timeout, Duration::from_millis(timeout), "{reason}");
        assert_eq!(b.max_queue_size, queue, "{reason}");
        assert_eq!(b.max_export_batch_size, batch, "{reason}");
        assert_eq!(got.len(), warnings, "{reason}: {got:?}");
    }
}

#[test]
fn concurrent_exports() {
    let cases: [(Env, usize, usize, &str); 4] = [
        (&[], DEFAULT_CONCURRENT_EXPORTS, 0, "the default"),
        (
            &[("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "1")],
            1,
            0,
            "one at a time",
        ),
        (
            &[("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "0")],
            DEFAULT_CONCURRENT_EXPORTS,
            1,
            "zero is rejected",
        ),
        (
            &[("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "65")],
            DEFAULT_CONCURRENT_EXPORTS,
            1,
            "more than 64 is rejected",
        ),
    ];
    for (pairs, expected, warnings, reason) in cases {
        let (config, got) = resolve_env(pairs);
        assert_eq!(config.batch.max_concurrent_exports, expected, "{reason}");
        assert_eq!(got.len(), warnings, "{reason}: {got:?}");
        if warnings > 0 {
            let text = got[0].to_string();
            assert!(
                text.contains("OTEL_BSP_MAX_CONCURRENT_EXPORTS") && text.contains("from 1 to 64"),
                "{reason}: {text}"
            );
        }
    }
    // Log records have no such variable: the default.
    let (config, _) = resolve_env(&[("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "3")]);
    assert_eq!(
        config.log_batch.max_concurrent_exports,
        DEFAULT_CONCURRENT_EXPORTS
    );
}

#[test]
fn propagators() {
    use Propagator::*;
    let cases: [(Env, &[Propagator], usize, &str); 6] = [
        (
            &[],
            &[TraceContext, Baggage],
            0,
            "default tracecontext,baggage",
        ),
        (&[("OTEL_PROPAGATORS", "baggage")], &[Baggage], 0, "one"),
        (
            &[("OTEL_PROPAGATORS", "none")],
            &[],
            0,
            "none installs nothing",
        ),
        (
            &[("OTEL_PROPAGATORS", "b3,tracecontext")],
            &[TraceContext],
            1,
            "b3 is recognised but unsupported: warned, rest kept",
        ),
        (
            &[("OTEL_PROPAGATORS", "xray")],
            &[TraceContext, Baggage],
            1,
            "nothing usable left: the default",
        ),
        (
            &[("OTEL_PROPAGATORS", "TraceContext, tracecontext")],
            &[TraceContext],
            0,
            "case-insensitive, deduplicated",
        ),
    ];
    for (pairs, expected, warnings, reason) in cases {
        let (config, got) = resolve_env(pairs);
        assert_eq!(config.propagators, expected, "{reason}");
        assert_eq!(got.len(), warnings, "{reason}: {got:?}");
    }
    let (_, got) = resolve_env(&[("OTEL_PROPAGATORS", "b3")]);
    assert_eq!(
        got[0],
        "OTEL_PROPAGATORS=\"b3\" is not supported by flowtrace: accepted values are \
         tracecontext, baggage, none; the value is ignored",
        "the warning names the value and the accepted ones"
    );
}

#[test]
fn resource_and_service_name() {
    type Case<'a> = (
        &'a [(&'a str, &'a str)],
        Overrides,
        &'a str,
        &'a [(&'a str, &'a str)],
        usize,
        &'a str,
    );
    let cases: [Case; 6] = [
        (
            &[("OTEL_SERVICE_NAME", "svc")],
            Overrides::default(),
            "svc",
            &[],
            0,
            "OTEL_SERVICE_NAME",
        ),
        (
            &[(
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=from-attrs,team=a%2Cb",
            )],
            Overrides::default(),
            "from-attrs",
            &[("team", "a,b")],
            0,
            "service.name inside the attributes, values decoded",
        ),
        (
            &[
                ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"),
                ("OTEL_SERVICE_NAME", "svc"),
            ],
            Overrides::default(),
            "svc",
            &[],
            0,
            "OTEL_SERVICE_NAME wins over the attribute",
        ),
        (
            &[("OTEL_SERVICE_NAME", "svc")],
            Overrides {
                service_name: Some("code".into()),
                ..Default::default()
            },
            "code",
            &[],
            0,
            "the builder wins over the env",
        ),
        (
            &[("OTEL_RESOURCE_ATTRIBUTES", "a=1,broken,b=2")],
            Overrides {
                resource: vec![KeyValue::new("c", "3")],
                ..Default::default()
            },
            "",
            &[("a", "1"), ("b", "2"), ("c", "3")],
            1,
            "a malformed member is reported, the rest kept; code attributes added",
        ),
        (
            &[("OTEL_SERVICE_NAME", "  ")],
            Overrides::default(),
            "",
            &[],
            0,
            "blank counts as unset: the default name",
        ),
    ];
    for (pairs, code, service, attrs, warnings, reason) in cases {
        let (config, got) = resolve_with(pairs, &code);
        if service.is_empty() {
            assert!(
                config.service_name.starts_with("unknown_service"),
                "{reason}"
            );
        } else {
            assert_eq!(config.service_name, service, "{reason}");
        }
        let got_attrs: Vec<(String, String)> = config
            .resource
            .iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect();
        let want: Vec<(String, String)> = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got_attrs, want, "{reason}");
        assert_eq!(got.len(), warnings, "{reason}: {got:?}");
    }
}

#[test]
fn trace_file() {
    let cases: [(Env, Option<&str>, &str, &str); 3] = [
        (
            &[],
            None,
            DEFAULT_TRACE_FILE,
            "default in the current directory",
        ),
        (
            &[("FLOWTRACE_TRACE_FILE", "/tmp/t.jsonl")],
            None,
            "/tmp/t.jsonl",
            "from the env",
        ),
        (
            &[("FLOWTRACE_TRACE_FILE", "/tmp/t.jsonl")],
            Some("code.jsonl"),
            "code.jsonl",
            "the builder wins",
        ),
    ];
    for (pairs, code, expected, reason) in cases {
        let code = Overrides {
            trace_file: code.map(PathBuf::from),
            ..Default::default()
        };
        assert_eq!(
            resolve_with(pairs, &code).0.trace_file,
            PathBuf::from(expected),
            "{reason}"
        );
    }
}

#[test]
fn warning_text_names_variable_value_and_accepted_values() {
    let (_, got) = resolve_env(&[("OTEL_TRACES_SAMPLER", "sometimes")]);
    assert_eq!(
        got,
        [
            "OTEL_TRACES_SAMPLER=\"sometimes\" is not valid: accepted values are always_on, \
          always_off, traceidratio, parentbased_always_on, parentbased_always_off, \
          parentbased_traceidratio; the setting is ignored (parentbased_always_on is used)"
        ],
        "the example message of the design"
    );
    let (_, got) = resolve_env(&[("OTEL_TRACES_EXPORTER", "kafka")]);
    assert_eq!(
        got,
        [
            "OTEL_TRACES_EXPORTER=\"kafka\" is not valid: accepted values are otlp, console, \
          file, none; the value is ignored"
        ],
        "an unknown exporter is named with the accepted values"
    );
}

#[test]
fn hostile_values_never_panic() {
    let values = [
        "",
        " ",
        ",",
        "=",
        "%",
        "%%",
        "%ZZ",
        "\u{0}",
        "\u{1b}[2J",
        "🦀",
        "a=%F0%9F",
        "-0",
        "1e309",
        "NaN",
        "18446744073709551616",
        "http://",
        "http://[::1",
        ",,,=,,=",
    ];
    let vars = [
        "OTEL_SDK_DISABLED",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_BSP_SCHEDULE_DELAY",
        "OTEL_BSP_EXPORT_TIMEOUT",
        "OTEL_BSP_MAX_QUEUE_SIZE",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        "OTEL_BSP_MAX_CONCURRENT_EXPORTS",
        "OTEL_PROPAGATORS",
        "FLOWTRACE_TRACE_FILE",
    ];
    for value in values {
        let pairs: Vec<(&str, &str)> = vars.iter().map(|v| (*v, value)).collect();
        let _ = resolve(&env(&pairs), &Overrides::default());
        let pairs = [
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", value),
        ];
        let _ = resolve(&env(&pairs), &Overrides::default());
    }
}
