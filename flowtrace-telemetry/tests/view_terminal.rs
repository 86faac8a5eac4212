//! `flowtrace view` in the terminal, run as the built binary: the waterfall
//! of the quickstart's and the lifecycle example's traces against expected
//! text (colours off), the same shape from a fresh run of each example, the
//! colour and width rules, and the filters.

mod view_common;

use std::process::Command;

use view_common::{
    RUN_TIMEOUT, assert_text, fixture, flowtrace, run_bounded, run_example, scratch, structure,
    view,
};

fn path(name: &str) -> String {
    fixture(name).display().to_string()
}

#[test]
fn the_quickstart_trace_as_a_waterfall() {
    let out = view(&[
        &path("quickstart.jsonl"),
        "--color",
        "never",
        "--width",
        "100",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert_text("quickstart.txt", &out.stdout);
    assert_eq!(out.stderr, "", "nothing to report");
}

#[test]
fn the_lifecycle_trace_as_a_waterfall() {
    let out = view(&[
        &path("lifecycle.jsonl"),
        "--color",
        "never",
        "--width",
        "100",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert_text("lifecycle.txt", &out.stdout);
    // Each lifecycle outcome is marked on its row.
    for mark in [
        "retried 2×",
        "error attempt 1",
        "ok attempt 3",
        "cached",
        "error timeout",
    ] {
        assert!(out.stdout.contains(mark), "{mark:?} in\n{}", out.stdout);
    }
}

/// A fresh run of the example, through the command its last line prints,
/// gives the same tree, statuses and marks as the expected text.
#[test]
fn a_fresh_quickstart_run_has_the_same_shape() {
    let dir = scratch("fresh-quickstart");
    let stdout = run_example("quickstart", &dir);
    let last = stdout.lines().last().expect("the quickstart prints lines");
    let command = last
        .strip_prefix("see the run: ")
        .unwrap_or_else(|| panic!("the last line is the view command: {last:?}"));
    let words: Vec<&str> = command.split(' ').collect();
    assert_eq!(words[..2], ["flowtrace", "view"], "{command}");
    let mut cmd = flowtrace();
    cmd.args(&words[1..])
        .args(["--color", "never", "--width", "100"])
        .current_dir(&dir);
    let out = run_bounded(&mut cmd, RUN_TIMEOUT);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let expected = std::fs::read_to_string(fixture("quickstart.txt")).unwrap();
    assert_eq!(structure(&out.stdout), structure(&expected));
}

#[test]
fn a_fresh_lifecycle_run_has_the_same_shape() {
    let dir = scratch("fresh-lifecycle");
    run_example("lifecycle", &dir);
    let file = dir.join("traces.jsonl").display().to_string();
    let out = view(&[&file, "--color", "never", "--width", "100"]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    let expected = std::fs::read_to_string(fixture("lifecycle.txt")).unwrap();
    assert_eq!(structure(&out.stdout), structure(&expected));
}

#[test]
fn the_collector_file_exporters_lines() {
    // Two resources in one line, a trace spread over two lines, the root last.
    let out = view(&[
        &path("collector.jsonl"),
        "--color",
        "never",
        "--width",
        "90",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert_text("collector.txt", &out.stdout);
}

/// Colours: on a terminal (a pseudo-terminal from `script`), not in a pipe,
/// not with `NO_COLOR`, always with `--color always`.
#[test]
fn colours_only_on_a_terminal_and_never_with_no_color() {
    let file = path("quickstart.jsonl");
    let red_error_row = "\x1b[31m   ├─ fetch\x1b[0m";

    let piped = view(&[&file]);
    assert!(!piped.stdout.contains('\x1b'), "no colours into a pipe");

    let forced = view(&[&file, "--color", "always"]);
    assert!(forced.stdout.contains(red_error_row), "{}", forced.stdout);

    let on_tty = |no_color: Option<&str>| {
        let mut cmd = Command::new("script");
        cmd.args(["-qec"])
            .arg(format!(
                "{} view {file} --width 100",
                env!("CARGO_BIN_EXE_flowtrace")
            ))
            .arg("/dev/null")
            .env_remove("COLUMNS")
            .env_remove("NO_COLOR");
        if let Some(value) = no_color {
            cmd.env("NO_COLOR", value);
        }
        run_bounded(&mut cmd, RUN_TIMEOUT)
    };
    let tty = on_tty(None);
    assert_eq!(
        tty.status.code(),
        Some(0),
        "script(1) from util-linux runs the view on a pty: {}",
        tty.stderr
    );
    assert!(
        tty.stdout.contains(red_error_row),
        "colours on a terminal:\n{}",
        tty.stdout
    );
    let no_color = on_tty(Some("1"));
    assert!(no_color.stdout.contains("├─ fetch"), "{}", no_color.stdout);
    assert!(
        !no_color.stdout.contains('\x1b'),
        "NO_COLOR:\n{}",
        no_color.stdout
    );
}

#[test]
fn rows_fit_columns_and_width() {
    let widest = |out: &str| out.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut cmd = flowtrace();
    cmd.args(["view", &path("lifecycle.jsonl")])
        .env("COLUMNS", "64");
    let narrow = run_bounded(&mut cmd, RUN_TIMEOUT);
    assert!(
        widest(&narrow.stdout) <= 64,
        "COLUMNS=64:\n{}",
        narrow.stdout
    );
    assert!(
        widest(&narrow.stdout) >= 60,
        "and it uses the room:\n{}",
        narrow.stdout
    );

    let mut cmd = flowtrace();
    cmd.args(["view", &path("lifecycle.jsonl"), "--width", "140"])
        .env("COLUMNS", "64");
    let wide = run_bounded(&mut cmd, RUN_TIMEOUT);
    assert!(
        widest(&wide.stdout) > 64 && widest(&wide.stdout) <= 140,
        "--width wins:\n{}",
        wide.stdout
    );

    let default = view(&[&path("lifecycle.jsonl")]);
    assert!(widest(&default.stdout) <= 100, "100 when not a terminal");
    assert!(widest(&default.stdout) > 90);
}

fn both() -> [String; 2] {
    [path("quickstart.jsonl"), path("lifecycle.jsonl")]
}

fn headers(out: &str) -> Vec<&str> {
    out.split("\n\n")
        .filter(|block| block.contains("trace "))
        .filter_map(|block| block.lines().next())
        .collect()
}

#[test]
fn filters_choose_traces_and_spans() {
    let [q, l] = both();
    let all = view(&[&q, &l, "--color", "never"]);
    assert_eq!(headers(&all.stdout).len(), 2, "{}", all.stdout);

    let errors = view(&[&q, &l, "--errors", "--color", "never"]);
    assert!(errors.stdout.contains("lifecycle_run") && errors.stdout.contains("workflow_run"));
    assert!(
        !errors.stdout.contains("parse"),
        "only error spans and their ancestors:\n{}",
        errors.stdout
    );
    assert!(
        errors.stdout.contains("3 of 7 spans, 1 error")
            && errors.stdout.contains("6 of 13 spans, 3 errors"),
        "{}",
        errors.stdout
    );

    let named = view(&[
        &q,
        &l,
        "--name",
        "fetch_index attempt *",
        "--color",
        "never",
    ]);
    assert_eq!(headers(&named.stdout).len(), 1, "{}", named.stdout);
    let rows = named
        .stdout
        .lines()
        .filter(|l| l.contains("─ fetch_index attempt "));
    assert_eq!(rows.count(), 3, "the three attempts:\n{}", named.stdout);
    assert!(
        named.stdout.contains("6 of 13 spans"),
        "with their ancestors:\n{}",
        named.stdout
    );

    let slowest = view(&[&q, &l, "--slowest", "1", "--color", "never"]);
    let h = headers(&slowest.stdout);
    assert_eq!(h.len(), 1);
    assert!(
        h[0].starts_with("lifecycle_run"),
        "the lifecycle run is the longer: {h:?}"
    );

    let trace_id = |file: &str| {
        let text = std::fs::read_to_string(file).unwrap();
        let at = text.find("\"traceId\":\"").unwrap() + 11;
        text[at..at + 32].to_owned()
    };
    let by_trace = view(&[&q, &l, "--trace", &trace_id(&q), "--color", "never"]);
    assert_eq!(
        headers(&by_trace.stdout),
        ["workflow_run  15.8 ms  7 spans, 1 error"]
    );

    let run_id = {
        let text = std::fs::read_to_string(&l).unwrap();
        let at = text
            .find("\"flowtrace.run.id\",\"value\":{\"stringValue\":\"")
            .unwrap()
            + 43;
        text[at..at + 16].to_owned()
    };
    let by_run = view(&[&q, &l, "--run", &run_id, "--color", "never"]);
    let h = headers(&by_run.stdout);
    assert_eq!(h.len(), 1, "{}", by_run.stdout);
    assert!(h[0].starts_with("lifecycle_run"));

    let none = view(&[&q, "--name", "no such span"]);
    assert_eq!(none.status.code(), Some(0));
    assert_eq!(none.stdout, "");
    assert!(
        none.stderr.contains("no trace matches the filters"),
        "{}",
        none.stderr
    );
}
