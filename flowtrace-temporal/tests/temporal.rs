//! flowtrace on a real Temporal deployment: the dev server, worker processes
//! of `examples/temporal_workflow.rs`, and a real collector (rotel) in front
//! of the test's receiver. Each test has a server, a collector and a task
//! queue of its own, and stops every process it starts.

#[path = "../../tests/support/mod.rs"]
mod support;
mod temporal_support;

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use support::{Span, SpanKind, WAIT, run_bounded, span_named, summary};
use temporal_support::{Deployment, RUN_TIMEOUT, WorkerProcess, run_client};

const START_WORKFLOW: &str = "StartWorkflow:FanOutWorkflow";
const RUN_WORKFLOW: &str = "RunWorkflow:FanOutWorkflow";
const START_ACTIVITY: &str = "StartActivity:Activities::process";
const RUN_ACTIVITY: &str = "RunActivity:Activities::process";
const START_MESSAGES: &str = "StartWorkflow:MessagesWorkflow";

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn child_of<'a>(spans: &'a [Span], parent: &Span, name: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.name == name && s.parent_span_id == parent.span_id)
        .collect()
}

/// The spans below the client's `StartWorkflow` span, for `words` activities
/// of one attempt each that reported: `RunWorkflow` under `StartWorkflow`;
/// under `RunWorkflow` the workflow code's tasks `plan` and `summarize` and
/// one `StartActivity` per word; under each `StartActivity` one
/// `RunActivity`, under it `analyze`, under that `score`. Returns the
/// `RunActivity` spans.
fn assert_fan_out<'a>(
    spans: &'a [Span],
    start: &Span,
    words: usize,
    workflow_id: &str,
) -> Vec<&'a Span> {
    let all = summary(spans);
    assert!(
        spans.iter().all(|s| s.trace_id == start.trace_id),
        "one trace: {all}"
    );
    let run = span_named(spans, RUN_WORKFLOW);
    assert_eq!(
        run.parent_span_id, start.span_id,
        "RunWorkflow under StartWorkflow: {all}"
    );
    assert_eq!(run.kind, SpanKind::Server);
    assert_eq!(run.attr("temporalWorkflowID"), Some(workflow_id));
    assert!(
        run.attr("temporalRunID").is_some_and(|id| !id.is_empty()),
        "{run:?}"
    );
    assert_eq!(
        run.span_id,
        run_workflow_span_id(run),
        "RunWorkflow's span id is derived from its run id: {all}"
    );
    for task in ["plan", "summarize"] {
        assert_eq!(
            child_of(spans, run, task).len(),
            1,
            "the workflow code's {task} under RunWorkflow: {all}"
        );
    }
    let starts = child_of(spans, run, START_ACTIVITY);
    assert_eq!(
        starts.len(),
        words,
        "one StartActivity per word under RunWorkflow: {all}"
    );
    let mut runs = Vec::new();
    for start_activity in starts {
        assert_eq!(start_activity.kind, SpanKind::Client);
        assert_eq!(start_activity.attr("temporalWorkflowID"), Some(workflow_id));
        let run_activity = child_of(spans, start_activity, RUN_ACTIVITY);
        assert_eq!(
            run_activity.len(),
            1,
            "one RunActivity under {}: {all}",
            start_activity.span_id
        );
        let run_activity = run_activity[0];
        assert_eq!(run_activity.kind, SpanKind::Server);
        assert_eq!(run_activity.attr("temporalWorkflowID"), Some(workflow_id));
        assert_eq!(
            run_activity.attr("temporalRunID"),
            run.attr("temporalRunID")
        );
        assert!(
            run_activity.attr("temporalActivityID").is_some(),
            "{run_activity:?}"
        );
        let analyze = child_of(spans, run_activity, "analyze");
        assert_eq!(
            analyze.len(),
            1,
            "#[traced] analyze under RunActivity: {all}"
        );
        let score = child_of(spans, analyze[0], "score");
        assert_eq!(score.len(), 1, "#[traced] score under analyze: {all}");
        runs.push(run_activity);
    }
    runs
}

/// The span id flowtrace-temporal gives the `RunWorkflow` span of the run
/// `run` names.
fn run_workflow_span_id(run: &Span) -> String {
    let run_id = run.attr("temporalRunID").expect("temporalRunID");
    flowtrace_temporal::workflow::run_workflow_span_id(run_id).to_string()
}

fn assert_unique_span_ids(spans: &[Span]) {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    assert_eq!(ids.len(), spans.len(), "no span twice: {}", summary(spans));
}

/// Spans of `trace_id` once `count` arrived, after a pause that would let
/// duplicates arrive too.
fn settled_trace(deployment: &Deployment, trace_id: &str, count: usize) -> Vec<Span> {
    deployment.collector.wait_for_trace(trace_id, count, WAIT);
    std::thread::sleep(Duration::from_millis(500));
    support::spans_of_trace(&deployment.collector.spans(), trace_id)
}

#[test]
fn one_trace_from_the_client_to_the_deepest_task_across_two_workers() {
    let deployment = Deployment::start("one-trace");
    let mut workers = [
        deployment.worker("worker-a", &[]),
        deployment.worker("worker-b", &[]),
    ];
    let started =
        deployment.start_workflow(&["--id", "one-trace", "alpha", "beta", "gamma", "delta"]);

    // custom_context reached the workflow body, every activity and the
    // deepest #[traced] task.
    let report = &started.report;
    assert_eq!(report["team_in_workflow"], "search", "{report}");
    let words = report["words"].as_array().expect("words");
    assert_eq!(words.len(), 4);
    for word in words {
        assert_eq!(word["team_in_activity"], "search", "{word}");
        assert_eq!(word["team_in_task"], "search", "{word}");
        assert_eq!(
            word["tenant_in_task"], "acme",
            "baggage travels too: {word}"
        );
        assert_eq!(word["stage_in_task"], serde_json::Value::Null, "{word}");
        assert_eq!(word["attempt"], 1, "{word}");
    }

    // run span + StartWorkflow + RunWorkflow, plan, summarize
    // + 4 × (StartActivity, RunActivity, analyze, score)
    let spans = settled_trace(&deployment, &started.trace_id, 5 + 4 * 4);
    assert_eq!(spans.len(), 21, "{}", summary(&spans));
    assert_unique_span_ids(&spans);
    let root = span_named(&spans, "start_fan_out");
    assert!(
        root.is_root(),
        "the client's run is the root: {}",
        summary(&spans)
    );
    // The activities join the client's run: ctx() in the activity body
    // answers it, and their tasks carry it.
    let run_id = root.attr("flowtrace.run.id").expect("the client's run id");
    for word in words {
        assert_eq!(
            word["run_in_activity"],
            format!("start_fan_out {run_id}"),
            "{word}"
        );
    }
    for task in named(&spans, "analyze")
        .into_iter()
        .chain(named(&spans, "score"))
    {
        assert_eq!(task.attr("flowtrace.run.id"), Some(run_id), "{task:?}");
        assert_eq!(task.attr("flowtrace.run.name"), Some("start_fan_out"));
    }
    let start = span_named(&spans, START_WORKFLOW);
    assert_eq!(
        start.parent_span_id, root.span_id,
        "StartWorkflow under the client's run"
    );
    assert_eq!(start.kind, SpanKind::Client);
    assert_eq!(start.attr("temporalWorkflowID"), Some("one-trace"));
    assert_eq!(start.service_name, "client");
    let runs = assert_fan_out(&spans, start, 4, "one-trace");
    for run in &runs {
        assert_eq!(run.attr("flowtrace.temporal.attempt"), Some("1"));
        assert_eq!(
            run.attr("flowtrace.temporal.task_queue"),
            Some(deployment.task_queue.as_str())
        );
        assert!(
            ["worker-a", "worker-b"].contains(&run.service_name.as_str()),
            "{run:?}"
        );
    }
    // The session in the client's map is on every span in the workers: the
    // workflow and activity spans and the tasks inside the activities.
    for span in spans.iter().filter(|s| s.service_name != "client") {
        assert_eq!(
            span.attr("session.id"),
            Some("temporal-session"),
            "{}: {}",
            span.name,
            summary(&spans)
        );
    }
    // The SDK's own tracing spans (polls, activations) stay out.
    assert!(
        deployment
            .collector
            .spans()
            .iter()
            .all(|s| !s.name.starts_with("poll_")),
        "no Temporal SDK internals exported"
    );
    for worker in &mut workers {
        worker.stop();
    }
}

#[test]
fn an_activity_retried_after_its_worker_is_killed_is_attempt_2_in_the_same_trace() {
    let deployment = Deployment::start("killed-worker");
    let mut workers = vec![
        deployment.worker("worker-a", &[]),
        deployment.worker("worker-b", &[]),
    ];
    let started = std::thread::scope(|scope| {
        let cmd = deployment.client(&["--id", "killed-worker", "slow"]);
        let client = scope.spawn(move || run_client(cmd));
        // Whichever worker took the first attempt: kill it mid-activity.
        let victim = loop {
            if let Some(i) = workers.iter().position(|w| {
                w.find_line("SLOW_STARTED", Duration::from_millis(100))
                    .is_some()
            }) {
                break i;
            }
            assert!(
                !client.is_finished(),
                "the client finished before any attempt started"
            );
        };
        // SIGKILL loses what the worker has not exported yet (its batch
        // delay is 50 ms, and an eagerly dispatched activity starts within
        // milliseconds of the workflow task that scheduled it): kill it once
        // the workflow's spans are out, the activity still hanging.
        deployment
            .collector
            .wait_for("StartActivity exported", WAIT, |spans| {
                spans.iter().any(|s| s.name == START_ACTIVITY)
            });
        assert!(
            !client.is_finished(),
            "the first attempt hangs until its worker dies"
        );
        workers[victim].kill();
        let survivor = workers[1 - victim].name.clone();
        let started = client.join().expect("the client thread");
        (started, workers[victim].name.clone(), survivor)
    });
    let (started, victim, survivor) = started;

    let word = &started.report["words"][0];
    assert_eq!(word["attempt"], 2, "the retry is attempt 2: {word}");
    assert_eq!(
        word["worker"],
        survivor.as_str(),
        "the other worker completed it: {word}"
    );
    assert_eq!(word["team_in_task"], "search", "{word}");

    // The killed attempt's RunActivity never ended, so it was never exported;
    // the retry is the one RunActivity, under the same StartActivity.
    let spans = settled_trace(&deployment, &started.trace_id, 5 + 4);
    assert_eq!(spans.len(), 9, "{}", summary(&spans));
    let start = span_named(&spans, START_WORKFLOW);
    let runs = assert_fan_out(&spans, start, 1, "killed-worker");
    assert_eq!(runs[0].attr("flowtrace.temporal.attempt"), Some("2"));
    assert_eq!(runs[0].service_name, survivor);
    assert_ne!(runs[0].service_name, victim);
    for worker in &mut workers {
        if worker.name == survivor {
            worker.stop();
        }
    }
}

#[test]
fn replay_with_workflow_caching_disabled_emits_no_span_twice() {
    let deployment = Deployment::start("replay");
    // No cache: every workflow task replays the workflow from its history,
    // and with sequential activities there is one task per activity.
    let mut worker = deployment.worker("worker-nocache", &["--no-cache"]);
    let started =
        deployment.start_workflow(&["--sequential", "--id", "replay", "alpha", "beta", "gamma"]);
    assert_eq!(started.report["team_in_workflow"], "search");

    let spans = settled_trace(&deployment, &started.trace_id, 5 + 3 * 4);
    assert_eq!(spans.len(), 17, "replays add nothing: {}", summary(&spans));
    assert_unique_span_ids(&spans);
    assert_eq!(named(&spans, RUN_WORKFLOW).len(), 1);
    assert_eq!(named(&spans, START_ACTIVITY).len(), 3);
    // plan ran on each of the 4 workflow tasks (3 of them replays), and is
    // recorded once; the StartActivity spans emitted after a replay (a new
    // workflow instance each task) are under the RunWorkflow the first task
    // emitted.
    assert_eq!(named(&spans, "plan").len(), 1, "{}", summary(&spans));
    assert_eq!(named(&spans, "summarize").len(), 1);
    // Workflow code's tasks belong to the client's run, live or replayed.
    let client = span_named(&spans, "start_fan_out");
    let run_id = client
        .attr("flowtrace.run.id")
        .expect("the client's run id");
    for task in ["plan", "summarize"] {
        let span = span_named(&spans, task);
        assert_eq!(span.attr("flowtrace.run.id"), Some(run_id), "{task}");
        assert_eq!(span.attr("flowtrace.run.name"), Some("start_fan_out"));
    }
    let start = span_named(&spans, START_WORKFLOW);
    assert_fan_out(&spans, start, 3, "replay");
    worker.stop();
}

#[test]
fn a_python_client_with_the_temporalio_tracing_interceptor_is_the_parent_of_run_workflow() {
    let deployment = Deployment::start("python-client");
    let mut worker = deployment.worker("worker-a", &[]);
    let python = support::tools::python();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/start_workflow.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script)
        .args([
            deployment.server.address.as_str(),
            deployment.task_queue.as_str(),
            "python-client",
        ])
        .args(["alpha", "beta"])
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            deployment.collector.http_endpoint(),
        )
        .env("PYTHONUNBUFFERED", "1");
    let out = run_bounded(&mut cmd, RUN_TIMEOUT);
    out.assert_success("start_workflow.py");
    let printed: serde_json::Value =
        serde_json::from_str(out.stdout.lines().last().unwrap_or_default()).expect("its JSON line");
    let trace_id = printed["trace_id"].as_str().expect("trace_id");
    let span_id = printed["span_id"].as_str().expect("span_id");
    assert_eq!(
        printed["result"]["words"].as_array().map(Vec::len),
        Some(2),
        "{printed}"
    );

    // Python's StartWorkflow + RunWorkflow, plan, summarize
    // + 2 × (StartActivity, RunActivity, analyze, score)
    let spans = settled_trace(&deployment, trace_id, 4 + 2 * 4);
    assert_eq!(spans.len(), 12, "{}", summary(&spans));
    let start = span_named(&spans, START_WORKFLOW);
    assert_eq!(start.span_id, span_id);
    assert_eq!(start.service_name, "python-client");
    let run = span_named(&spans, RUN_WORKFLOW);
    assert_eq!(
        run.parent_span_id, span_id,
        "the Python span is RunWorkflow's parent"
    );
    assert_eq!(run.service_name, "worker-a");
    assert_fan_out(&spans, start, 2, "python-client");
    worker.stop();
}

#[test]
fn signal_query_update_and_child_workflow_stay_in_the_trace_and_continue_as_new_links_a_new_one() {
    let deployment = Deployment::start("messages");
    let mut worker = deployment.worker("worker-a", &[]);
    let mut cmd = deployment.command("client");
    cmd.args(["messages", "--id", "messages"]);
    let started = run_client(cmd);
    let report = &started.report;
    // The map reached the child workflow's activity and the activity of the
    // run continued as new.
    assert_eq!(report["child"]["team_in_task"], "search", "{report}");
    assert_eq!(report["next"]["team_in_task"], "search", "{report}");
    // What workflow code scoped in around start_child_workflow reached the
    // child's activity, and only it.
    assert_eq!(report["child"]["stage_in_task"], "child", "{report}");
    assert_eq!(
        report["next"]["stage_in_task"],
        serde_json::Value::Null,
        "{report}"
    );

    // client: run, StartWorkflow, SignalWorkflow, QueryWorkflow, StartWorkflowUpdate;
    // workflow: RunWorkflow, check_in, HandleSignal, HandleQuery,
    // ValidateUpdate, HandleUpdate, StartChildWorkflow; child: RunWorkflow,
    // StartActivity, RunActivity, analyze, score. The run continued as new
    // is a trace of its own: RunWorkflow, check_in, StartActivity,
    // RunActivity, analyze, score.
    let spans = settled_trace(&deployment, &started.trace_id, 5 + 7 + 5);
    let all = summary(&spans);
    assert_eq!(spans.len(), 17, "{all}");
    assert_unique_span_ids(&spans);
    let root = span_named(&spans, "messages_run");
    let parent_of = |name: &str| -> &Span {
        let span = span_named(&spans, name);
        spans
            .iter()
            .find(|s| s.span_id == span.parent_span_id)
            .unwrap_or_else(|| panic!("{name} has no parent in the trace: {all}"))
    };
    for client_call in [
        START_MESSAGES,
        "SignalWorkflow:poke",
        "QueryWorkflow:pokes",
        "StartWorkflowUpdate:bump",
    ] {
        assert_eq!(
            parent_of(client_call).span_id,
            root.span_id,
            "{client_call} under the run: {all}"
        );
        assert_eq!(span_named(&spans, client_call).kind, SpanKind::Client);
    }
    for (handler, call) in [
        ("HandleSignal:poke", "SignalWorkflow:poke"),
        ("HandleQuery:pokes", "QueryWorkflow:pokes"),
        ("ValidateUpdate:bump", "StartWorkflowUpdate:bump"),
        ("HandleUpdate:bump", "StartWorkflowUpdate:bump"),
        (
            "StartChildWorkflow:ChildWorkflow",
            "RunWorkflow:MessagesWorkflow",
        ),
        (
            "RunWorkflow:ChildWorkflow",
            "StartChildWorkflow:ChildWorkflow",
        ),
    ] {
        assert_eq!(
            parent_of(handler).name,
            call,
            "{handler} under {call}: {all}"
        );
    }
    let start = span_named(&spans, START_MESSAGES);
    let runs = named(&spans, "RunWorkflow:MessagesWorkflow");
    assert_eq!(runs.len(), 1, "the first run only: {all}");
    assert_eq!(runs[0].parent_span_id, start.span_id, "{all}");

    // Worker-side spans carry the client's run, the tasks of workflow code
    // (check_in) as well, and ctx() there answers it.
    let run_id = root.attr("flowtrace.run.id").expect("the client's run id");
    assert_eq!(
        report["run_in_workflow"],
        format!("messages_run {run_id}"),
        "{report}"
    );
    assert_eq!(
        parent_of("check_in").name,
        "RunWorkflow:MessagesWorkflow",
        "{all}"
    );
    for name in [
        "RunWorkflow:MessagesWorkflow",
        "check_in",
        "HandleSignal:poke",
        "HandleUpdate:bump",
        "StartChildWorkflow:ChildWorkflow",
        "RunWorkflow:ChildWorkflow",
        RUN_ACTIVITY,
        "analyze",
        "score",
    ] {
        let span = span_named(&spans, name);
        assert_eq!(span.attr("flowtrace.run.id"), Some(run_id), "{name}: {all}");
        assert_eq!(
            span.attr("flowtrace.run.name"),
            Some("messages_run"),
            "{name}"
        );
    }

    // Continue-as-new: a new trace whose RunWorkflow links to the previous
    // run's RunWorkflow, with no error anywhere.
    let next = deployment
        .collector
        .wait_for("the run continued as new", WAIT, |spans| {
            spans
                .iter()
                .any(|s| s.name == "RunWorkflow:MessagesWorkflow" && s.trace_id != started.trace_id)
        })
        .into_iter()
        .find(|s| s.name == "RunWorkflow:MessagesWorkflow" && s.trace_id != started.trace_id)
        .unwrap();
    assert_ne!(next.attr("temporalRunID"), runs[0].attr("temporalRunID"));
    assert_eq!(next.links.len(), 1, "{next:?}");
    assert_eq!(next.links[0].trace_id, started.trace_id);
    assert_eq!(next.links[0].span_id, runs[0].span_id);
    assert!(
        next.links[0]
            .attributes
            .iter()
            .any(|(k, v)| k == "flowtrace.link.reason" && v == "continue_as_new"),
        "{next:?}"
    );
    assert_eq!(
        next.attr("flowtrace.run.id"),
        Some(run_id),
        "still the client's run"
    );
    let next_spans = settled_trace(&deployment, &next.trace_id, 6);
    let next_all = summary(&next_spans);
    assert_eq!(next_spans.len(), 6, "{next_all}");
    let check_in = span_named(&next_spans, "check_in");
    assert_eq!(check_in.parent_span_id, next.span_id, "{next_all}");
    assert_eq!(check_in.attr("flowtrace.run.id"), Some(run_id));
    assert_eq!(check_in.attr("flowtrace.run.name"), Some("messages_run"));
    assert!(
        spans
            .iter()
            .chain(&next_spans)
            .all(|s| s.status_code != support::StatusCode::Error),
        "continue-as-new is not an error: {all}\n{next_all}"
    );
    assert!(
        named(&spans, "CompleteWorkflow:MessagesWorkflow").is_empty()
            && named(&next_spans, "CompleteWorkflow:MessagesWorkflow").is_empty()
    );
    // As in every run: StartActivity under RunWorkflow.
    let next_activity = child_of(&next_spans, &next, START_ACTIVITY);
    assert_eq!(next_activity.len(), 1, "{next_all}");
    let run_activity = child_of(&next_spans, next_activity[0], RUN_ACTIVITY);
    let analyze = child_of(&next_spans, run_activity[0], "analyze");
    assert_eq!(
        child_of(&next_spans, analyze[0], "score").len(),
        1,
        "{next_all}"
    );

    let child_run = span_named(&spans, "RunWorkflow:ChildWorkflow");
    assert_eq!(child_run.span_id, run_workflow_span_id(child_run), "{all}");
    let activity = child_of(&spans, child_run, START_ACTIVITY);
    assert_eq!(
        activity.len(),
        1,
        "one StartActivity under the child's RunWorkflow: {all}"
    );
    let run_activity = child_of(&spans, activity[0], RUN_ACTIVITY);
    assert_eq!(run_activity.len(), 1, "{all}");
    let analyze = child_of(&spans, run_activity[0], "analyze");
    assert_eq!(child_of(&spans, analyze[0], "score").len(), 1, "{all}");
    worker.stop();
}

#[test]
fn a_run_forced_sampled_is_recorded_on_workers_whose_sampler_drops_everything() {
    let deployment = Deployment::start("forced-sampled");
    let mut cmd = deployment.command("worker-off");
    cmd.arg("worker")
        .env("WORKER_NAME", "worker-off")
        .env("OTEL_TRACES_SAMPLER", "always_off");
    let mut worker = WorkerProcess::spawn("worker-off", cmd);
    let mut client = deployment.client(&["--sampled", "--id", "forced-sampled", "alpha"]);
    client.env("OTEL_TRACES_SAMPLER", "always_off");
    let started = run_client(client);

    // client: start_fan_out, StartWorkflow; workflow: RunWorkflow, plan,
    // summarize, StartActivity; activity: RunActivity, analyze, score.
    let spans = settled_trace(&deployment, &started.trace_id, 9);
    let all = summary(&spans);
    for name in [
        "start_fan_out",
        "StartWorkflow:FanOutWorkflow",
        "RunWorkflow:FanOutWorkflow",
        "plan",
        "summarize",
        START_ACTIVITY,
        RUN_ACTIVITY,
        "analyze",
        "score",
    ] {
        let span = span_named(&spans, name);
        assert!(
            span.trace_state.contains("flowtrace=s:1"),
            "{name} carries the decision: {all}"
        );
    }
    assert_eq!(
        span_named(&spans, RUN_ACTIVITY).service_name,
        "worker-off",
        "recorded by the worker whose sampler drops everything"
    );
    worker.stop();
}

#[test]
fn a_failed_workflow_ends_with_complete_workflow_in_error() {
    let deployment = Deployment::start("failing");
    let mut worker = deployment.worker("worker-a", &[]);
    let mut client = deployment.client(&["--id", "failing", "broken"]);
    let out = run_bounded(&mut client, RUN_TIMEOUT);
    assert!(
        !out.status.success(),
        "the workflow failed, and so the client: {}",
        out.stdout
    );
    let trace_id = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("trace "))
        .unwrap_or_else(|| panic!("no trace line: {}\n{}", out.stdout, out.stderr))
        .to_owned();

    // client: start_fan_out, StartWorkflow; workflow: RunWorkflow, plan,
    // StartActivity, CompleteWorkflow; activity: 5 attempts.
    let spans = settled_trace(&deployment, &trace_id, 2 + 4 + 5);
    let all = summary(&spans);
    let complete = span_named(&spans, "CompleteWorkflow:FanOutWorkflow");
    assert_eq!(complete.status_code, support::StatusCode::Error, "{all}");
    assert!(
        complete.event("exception").is_some(),
        "the failure is recorded: {all}"
    );
    assert_eq!(
        complete.parent_span_id,
        span_named(&spans, RUN_WORKFLOW).span_id,
        "under RunWorkflow: {all}"
    );
    let attempts = named(&spans, RUN_ACTIVITY);
    assert_eq!(attempts.len(), 5, "{all}");
    assert!(
        attempts
            .iter()
            .all(|a| a.status_code == support::StatusCode::Error),
        "{all}"
    );
    assert_eq!(named(&spans, "CompleteWorkflow:FanOutWorkflow").len(), 1);
    worker.stop();
}

#[test]
fn a_local_activity_runs_its_tasks_in_the_trace() {
    let deployment = Deployment::start("local");
    let mut worker = deployment.worker("worker-a", &[]);
    let started = deployment.start_workflow(&["--local", "--id", "local", "alpha"]);
    assert_eq!(started.report["words"][0]["team_in_task"], "search");

    // client: start_fan_out, StartWorkflow; workflow: RunWorkflow, plan,
    // summarize, StartActivity; the local activity: RunActivity, analyze,
    // score.
    let spans = settled_trace(&deployment, &started.trace_id, 9);
    let all = summary(&spans);
    let start = span_named(&spans, START_WORKFLOW);
    let run = span_named(&spans, RUN_WORKFLOW);
    assert_eq!(run.parent_span_id, start.span_id, "{all}");
    let scheduled = span_named(&spans, START_ACTIVITY);
    assert_eq!(scheduled.parent_span_id, run.span_id, "{all}");
    let run_activity = child_of(&spans, scheduled, RUN_ACTIVITY);
    assert_eq!(
        run_activity.len(),
        1,
        "RunActivity under StartActivity: {all}"
    );
    let analyze = child_of(&spans, run_activity[0], "analyze");
    assert_eq!(analyze.len(), 1, "{all}");
    assert_eq!(child_of(&spans, analyze[0], "score").len(), 1, "{all}");
    let run_id = span_named(&spans, "start_fan_out").attr("flowtrace.run.id");
    assert_eq!(analyze[0].attr("flowtrace.run.id"), run_id, "{all}");
    worker.stop();
}

#[test]
fn signal_with_start_and_update_with_start_parent_the_workflow_and_its_handler() {
    let deployment = Deployment::start("with-start");
    let mut worker = deployment.worker("worker-a", &[]);
    let mut cmd = deployment.command("client");
    cmd.args(["with-start", "--id", "with-start"]);
    let started = run_client(cmd);

    // client: run, SignalWithStartWorkflow, StartWorkflowUpdate,
    // StartUpdateWithStartWorkflow, SignalWorkflow; per workflow's first run:
    // RunWorkflow, check_in, HandleSignal, ValidateUpdate, HandleUpdate,
    // StartChildWorkflow, the child's RunWorkflow, StartActivity,
    // RunActivity, analyze, score.
    let spans = settled_trace(&deployment, &started.trace_id, 5 + 2 * 11);
    let all = summary(&spans);
    let root = span_named(&spans, "with_start_run");
    let signal_with_start = span_named(&spans, "SignalWithStartWorkflow:MessagesWorkflow");
    let update_with_start = span_named(&spans, "StartUpdateWithStartWorkflow:MessagesWorkflow");
    for call in [signal_with_start, update_with_start] {
        assert_eq!(call.parent_span_id, root.span_id, "{}: {all}", call.name);
        assert_eq!(call.kind, SpanKind::Client);
    }
    let parents = |name: &str| -> Vec<&str> {
        let mut parents: Vec<&str> = named(&spans, name)
            .iter()
            .map(|s| s.parent_span_id.as_str())
            .collect();
        parents.sort_unstable();
        parents
    };
    let (sws, uws) = (
        signal_with_start.span_id.as_str(),
        update_with_start.span_id.as_str(),
    );
    assert_eq!(
        parents("RunWorkflow:MessagesWorkflow"),
        sorted(vec![sws, uws]),
        "each workflow under the call that started it: {all}"
    );
    let signal = span_named(&spans, "SignalWorkflow:poke").span_id.as_str();
    assert_eq!(
        parents("HandleSignal:poke"),
        sorted(vec![sws, signal]),
        "the signal that came with the start under signal-with-start: {all}"
    );
    let update = span_named(&spans, "StartWorkflowUpdate:bump")
        .span_id
        .as_str();
    assert_eq!(
        parents("HandleUpdate:bump"),
        sorted(vec![update, uws]),
        "the update that came with the start under update-with-start: {all}"
    );
    let runs: Vec<&str> = named(&spans, "RunWorkflow:MessagesWorkflow")
        .iter()
        .map(|s| s.span_id.as_str())
        .collect();
    assert_eq!(
        parents("StartChildWorkflow:ChildWorkflow"),
        sorted(runs),
        "each workflow's command under its own RunWorkflow: {all}"
    );
    worker.stop();
}

fn sorted(mut ids: Vec<&str>) -> Vec<&str> {
    ids.sort_unstable();
    ids
}

#[test]
fn an_external_signal_parents_the_handler_on_the_signalling_workflow_and_an_untraced_one_on_run_workflow()
 {
    let deployment = Deployment::start("external");
    let mut worker = deployment.worker("worker-a", &[]);
    let mut cmd = deployment.command("client");
    cmd.args(["external", "--id", "external"]);
    let started = run_client(cmd);

    // client: run, 2 × StartWorkflow, StartWorkflowUpdate; poker:
    // RunWorkflow, SignalExternalWorkflow; messages: RunWorkflow, check_in,
    // 2 × HandleSignal, ValidateUpdate, HandleUpdate, StartChildWorkflow, the
    // child's RunWorkflow, StartActivity, RunActivity, analyze, score.
    let spans = settled_trace(&deployment, &started.trace_id, 4 + 2 + 12);
    let all = summary(&spans);
    let start_poker = span_named(&spans, "StartWorkflow:PokerWorkflow");
    let run_poker = span_named(&spans, "RunWorkflow:PokerWorkflow");
    assert_eq!(run_poker.parent_span_id, start_poker.span_id, "{all}");
    let external = span_named(&spans, "SignalExternalWorkflow:poke");
    assert_eq!(external.kind, SpanKind::Client);
    assert_eq!(
        external.parent_span_id, run_poker.span_id,
        "the signal under the workflow run that sent it: {all}"
    );
    let handled = named(&spans, "HandleSignal:poke");
    assert_eq!(handled.len(), 2, "{all}");
    let run = span_named(&spans, "RunWorkflow:MessagesWorkflow");
    let mut parents: Vec<&str> = handled.iter().map(|s| s.parent_span_id.as_str()).collect();
    parents.sort_unstable();
    assert_eq!(
        parents,
        sorted(vec![external.span_id.as_str(), run.span_id.as_str()]),
        "the handler under the external signal, and the untraced signal's \
         under RunWorkflow: {all}"
    );
    worker.stop();
}
