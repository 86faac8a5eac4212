//! Running another program from a test with a bound on how long it may take.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// An example of the `flowtrace` package, of the test run's profile:
/// `cargo test` of the workspace builds the examples; a test run alone
/// (`--test NAME`) builds them here, once per test process.
pub fn example(name: &str) -> PathBuf {
    example_of("flowtrace", name)
}

/// An example of the workspace's `package`, as [`example`] finds it: the
/// examples, and the child programs the tests start (`tests/children/`).
pub fn example_of(package: &str, name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .to_path_buf();
    let bin = profile_dir.join("examples").join(name);
    if bin.exists() {
        return bin;
    }
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|p| p == package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "-p", package, "--examples"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        run_bounded(&mut build, Duration::from_secs(900))
            .assert_success(&format!("building the examples of {package}"));
        built.push(package.to_owned());
    }
    bin
}

/// What a finished program printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with both streams unless the program exited with 0.
    pub fn assert_success(&self, what: &str) -> &Self {
        assert!(
            self.status.success(),
            "{what} failed: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `cmd` to completion with stdin closed and stdout/stderr captured.
/// Kills it and panics with what it printed if it takes longer than
/// `timeout`.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    // Read both pipes while waiting, so a chatty program never blocks on a
    // full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let grace = Instant::now() + Duration::from_millis(500);
                let out = joined(stdout, grace);
                let err = joined(stderr, grace);
                panic!(
                    "{shown} still running after {timeout:?}; killed.\n--- stdout ---\n{out}\n--- stderr ---\n{err}"
                );
            }
            Err(e) => panic!("waiting for {shown}: {e}"),
        }
    };
    // A grandchild left running may hold the pipes open: bounded too.
    let grace = Instant::now() + Duration::from_secs(2);
    Output {
        status,
        stdout: joined(stdout, grace),
        stderr: joined(stderr, grace),
    }
}

fn joined(reader: thread::JoinHandle<String>, deadline: Instant) -> String {
    while !reader.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    if reader.is_finished() {
        reader.join().unwrap_or_default()
    } else {
        "(output not collected: a process left running still holds the pipe)".to_owned()
    }
}
