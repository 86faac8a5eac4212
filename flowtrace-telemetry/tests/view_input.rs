//! `flowtrace view` on bad input and on a file still being written: skipped
//! lines with their numbers, other formats, empty files, the exit status,
//! usage errors, and `--follow`.

mod view_common;

use std::io::{BufRead, BufReader, Write as _};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use view_common::{fixture, flowtrace, scratch, view};

fn quickstart_line() -> String {
    std::fs::read_to_string(fixture("quickstart.jsonl"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn bad_lines_are_reported_with_their_number_and_the_rest_is_shown() {
    let dir = scratch("bad-lines");
    let file = dir.join("mixed.jsonl");
    let good = quickstart_line();
    let lifecycle = std::fs::read_to_string(fixture("lifecycle.jsonl")).unwrap();
    let truncated = &good[..good.len() / 2];
    std::fs::write(
        &file,
        format!("{good}\nnot json at all\n\n{{\"resourceLogs\":[]}}\n{lifecycle}{truncated}"),
    )
    .unwrap();
    let f = file.display().to_string();
    let out = view(&[&f, "--color", "never"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "lines skipped: exit 1\n{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("{f}:2: skipped: malformed JSON at column 2")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "{f}:4: skipped: not OTLP/JSON spans: this line holds OTLP logs (resourceLogs)"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("{f}:8: skipped: truncated")),
        "the last line, cut short: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("3 lines skipped; the rest is shown"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("workflow_run") && out.stdout.contains("lifecycle_run"),
        "{}",
        out.stdout
    );
    assert!(!out.stderr.contains("panicked"));
}

#[test]
fn another_format_says_what_is_accepted() {
    let dir = scratch("other-format");
    let jaeger = dir.join("jaeger.json");
    std::fs::write(
        &jaeger,
        "{\"data\":[{\"traceID\":\"abc\",\"spans\":[]}],\"total\":1}\n",
    )
    .unwrap();
    let out = view(&[&jaeger.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("Jaeger's JSON"), "{}", out.stderr);
    assert!(out.stderr.contains("this is not a format flowtrace view reads; accepted: OTLP/JSON lines, one ExportTraceServiceRequest"), "{}", out.stderr);

    let binary = dir.join("spans.pb");
    std::fs::write(&binary, [0x0a, 0x8f, 0x01, 0xff, 0xfe, 0x00, 0x12]).unwrap();
    let out = view(&[&binary.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains(":2: skipped: malformed JSON"),
        "line 1 is blank: {}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("no line could be read; accepted: OTLP/JSON lines"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_empty_file_says_it_is_empty() {
    let dir = scratch("empty");
    for (name, content) in [("empty.jsonl", ""), ("blank.jsonl", "\n  \n")] {
        let file = dir.join(name);
        std::fs::write(&file, content).unwrap();
        let f = file.display().to_string();
        let out = view(&[&f]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert_eq!(
            out.stderr,
            format!("flowtrace: {f}: the file is empty\n"),
            "{name}"
        );
        assert_eq!(out.stdout, "");
    }
}

#[test]
fn usage_errors_exit_with_2() {
    let q = fixture("quickstart.jsonl").display().to_string();
    for (args, message) in [
        (vec![], "no file given"),
        (
            vec![q.as_str(), "--slowest", "zero"],
            "--slowest \"zero\": accepted values are positive whole numbers",
        ),
        (
            vec![q.as_str(), "--trace", "abc"],
            "accepted values are trace ids of 32 hex digits",
        ),
        (
            vec![q.as_str(), "--color", "pink"],
            "accepted values are auto, always, never",
        ),
        (vec![q.as_str(), "--bogus"], "unknown option \"--bogus\""),
        (
            vec![q.as_str(), "--follow", "--html", "x.html"],
            "cannot be used with --html",
        ),
        (
            vec!["/no/such/file.jsonl"],
            "cannot read /no/such/file.jsonl",
        ),
    ] {
        let out = view(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
    }
    let out = view(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.starts_with("usage: flowtrace view FILE..."));
}

#[test]
fn standard_input_is_read_with_a_dash() {
    let mut child = flowtrace()
        .args(["view", "-", "--color", "never"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", quickstart_line()).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("workflow_run  15.8 ms  7 spans, 1 error")
    );
}

/// `--follow` draws a trace written after it started, even one whose line
/// arrives in two writes.
#[test]
fn follow_draws_traces_as_they_are_written() {
    let dir = scratch("follow");
    let file = dir.join("live.jsonl");
    std::fs::write(&file, "").unwrap();
    let mut child = flowtrace()
        .args([
            "view",
            &file.display().to_string(),
            "--follow",
            "--color",
            "never",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str, seen: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return true;
                }
            }
        }
        false
    };
    let mut seen = Vec::new();
    std::thread::sleep(Duration::from_millis(400));
    let line = quickstart_line();
    let (first, second) = line.split_at(line.len() / 2);
    let mut append = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    append.write_all(first.as_bytes()).unwrap();
    append.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    append.write_all(format!("{second}\n").as_bytes()).unwrap();
    let drawn = wait_for("workflow_run  15.8 ms  7 spans, 1 error", &mut seen);

    let lifecycle = std::fs::read_to_string(fixture("lifecycle.jsonl")).unwrap();
    append.write_all(lifecycle.as_bytes()).unwrap();
    let second_drawn = wait_for("lifecycle_run", &mut seen);
    let _ = child.kill();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        drawn,
        "the quickstart trace, drawn while following:\n{}\n{stderr}",
        seen.join("\n")
    );
    assert!(
        second_drawn,
        "and the next one:\n{}\n{stderr}",
        seen.join("\n")
    );
    assert!(
        !stderr.contains("skipped"),
        "the line split in two writes was read whole: {stderr}"
    );
    assert!(stderr.contains("following"), "{stderr}");
    assert!(!status.success(), "it ran until stopped");
}

/// A followed file that is truncated (`> file`) is read again from the start.
#[test]
fn follow_reads_a_truncated_file_from_the_start() {
    let dir = scratch("follow-truncated");
    let file = dir.join("live.jsonl");
    std::fs::write(&file, format!("{}\n", quickstart_line())).unwrap();
    let mut child = flowtrace()
        .args([
            "view",
            &file.display().to_string(),
            "-f",
            "--color",
            "never",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                if line.contains(needle) {
                    return true;
                }
            }
        }
        false
    };
    let first = wait_for("workflow_run");
    std::fs::write(&file, "").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    std::fs::write(
        &file,
        std::fs::read_to_string(fixture("lifecycle.jsonl")).unwrap(),
    )
    .unwrap();
    let second = wait_for("lifecycle_run");
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(first, "the trace already in the file: {stderr}");
    assert!(second, "the trace written after the truncation: {stderr}");
    assert!(
        stderr.contains("was truncated; reading it from the start"),
        "{stderr}"
    );
}
