//! The file exporter: OTLP/JSON, one `ExportTraceServiceRequest` per line,
//! appended — the format the OpenTelemetry Collector's file exporter writes
//! and its `otlpjsonfile` receiver reads. `opentelemetry-proto` does the
//! encoding (hex ids, enums as numbers, 64-bit integers as strings).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// A file that OTLP/JSON requests are appended to, one per line; shared by
/// the span and the log record exporters.
#[derive(Debug)]
pub(crate) struct JsonLines {
    path: PathBuf,
    /// `None` once shut down: later exports are errors, as the trait requires.
    file: Mutex<Option<File>>,
    /// The line being encoded, kept between lines so that encoding does
    /// not regrow it from nothing each time.
    line: Mutex<Vec<u8>>,
}

/// A line buffer larger than this is not kept for the next line.
const KEEP_LINE_BYTES: usize = 4 << 20;

impl JsonLines {
    /// Opens (creating, appending) `path` now, so a bad path is reported by
    /// `init()` with the path in the message rather than on every export.
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            path: path.to_owned(),
            file: Mutex::new(Some(file)),
            line: Mutex::new(Vec::new()),
        })
    }

    /// Appends `request` as one line of JSON; `what` names the content in
    /// an encoding error.
    pub(crate) fn append(&self, request: &impl serde::Serialize, what: &str) -> OTelSdkResult {
        let mut line = self.line.lock().unwrap_or_else(|e| e.into_inner());
        line.clear();
        serde_json::to_writer(&mut *line, request).map_err(|e| {
            OTelSdkError::InternalFailure(format!("encoding {what} as OTLP/JSON: {e}"))
        })?;
        line.push(b'\n');
        let written = self.write_line(&line);
        if line.capacity() > KEEP_LINE_BYTES {
            *line = Vec::new();
        }
        written
    }

    fn write_line(&self, line: &[u8]) -> OTelSdkResult {
        let mut guard = self
            .file
            .lock()
            .map_err(|_| OTelSdkError::InternalFailure("file exporter lock poisoned".into()))?;
        let file = guard.as_mut().ok_or(OTelSdkError::AlreadyShutdown)?;
        // One write of the whole line: with O_APPEND, concurrent writers
        // (several processes sharing the file) do not interleave inside a line.
        file.write_all(line).map_err(|e| {
            OTelSdkError::InternalFailure(format!("writing {}: {e}", self.path.display()))
        })
    }

    pub(crate) fn flush(&self) -> OTelSdkResult {
        match self.file.lock() {
            Ok(mut guard) => match guard.as_mut() {
                Some(file) => file
                    .flush()
                    .map_err(|e| OTelSdkError::InternalFailure(e.to_string())),
                None => Err(OTelSdkError::AlreadyShutdown),
            },
            Err(_) => Err(OTelSdkError::InternalFailure(
                "file exporter lock poisoned".into(),
            )),
        }
    }

    pub(crate) fn shutdown(&self) -> OTelSdkResult {
        let file = match self.file.lock() {
            Ok(mut guard) => guard.take(),
            Err(_) => {
                return Err(OTelSdkError::InternalFailure(
                    "file exporter lock poisoned".into(),
                ));
            }
        };
        match file {
            Some(file) => file
                .sync_data()
                .or_else(|e| match e.kind() {
                    // Not every file supports fsync (e.g. /dev/stdout): the
                    // data was written, which is what matters here.
                    std::io::ErrorKind::InvalidInput | std::io::ErrorKind::Unsupported => Ok(()),
                    _ => Err(e),
                })
                .map_err(|e| {
                    OTelSdkError::InternalFailure(format!("syncing {}: {e}", self.path.display()))
                }),
            None => Err(OTelSdkError::AlreadyShutdown),
        }
    }
}

/// Appends spans to a file as OTLP/JSON lines.
#[derive(Debug)]
pub(crate) struct FileExporter {
    lines: JsonLines,
    resource: ResourceAttributesWithSchema,
}

impl FileExporter {
    /// See [`JsonLines::open`].
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            lines: JsonLines::open(path)?,
            resource: ResourceAttributesWithSchema::default(),
        })
    }

    fn write(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if batch.is_empty() {
            return Ok(());
        }
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        };
        self.lines.append(&request, "spans")
    }
}

impl SpanExporter for FileExporter {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        // Local file writes are quick and blocking anyway: do the work now and
        // hand back a ready future, so no async runtime is needed.
        std::future::ready(self.write(batch))
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.lines.flush()
    }

    fn shutdown_with_timeout(&self, _timeout: std::time::Duration) -> OTelSdkResult {
        self.lines.shutdown()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{span, temp_path};
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{SpanKind, Status};
    use serde_json::Value;

    fn export(exporter: &FileExporter, batch: Vec<SpanData>) -> OTelSdkResult {
        futures::executor::block_on(exporter.export(batch))
    }

    #[test]
    fn writes_collector_compatible_json_lines() {
        let path = temp_path("file-format");
        let mut exporter = FileExporter::open(&path).unwrap();
        exporter.set_resource(&Resource::builder_empty().with_service_name("svc").build());
        let mut root = span("root", 1, 0);
        root.span_kind = SpanKind::Server;
        root.status = Status::error("boom");
        root.attributes.push(KeyValue::new("count", 42_i64));
        let child = span("child", 2, 1);
        export(&exporter, vec![child, root]).unwrap();
        export(&exporter, vec![span("later", 3, 0)]).unwrap();
        exporter.shutdown().unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "one request per export, one per line");
        let request: Value = serde_json::from_str(lines[0]).unwrap();
        let resource_spans = &request["resourceSpans"][0];
        assert_eq!(
            resource_spans["resource"]["attributes"][0]["value"]["stringValue"], "svc",
            "the resource set by the provider is written"
        );
        let spans = &resource_spans["scopeSpans"][0]["spans"];
        let root = &spans[1];
        assert_eq!(
            root["traceId"], "0000000000000000000000000000002a",
            "traceId is lowercase hex, not base64"
        );
        assert_eq!(root["spanId"], "0000000000000001", "spanId is hex");
        assert_eq!(root["kind"], 2, "kind is a number (SERVER = 2)");
        assert!(
            root["startTimeUnixNano"].is_string(),
            "64-bit times are strings"
        );
        assert_eq!(
            root["status"]["code"], 2,
            "status code is a number (ERROR = 2)"
        );
        assert_eq!(
            root["attributes"][0]["value"]["intValue"], "42",
            "64-bit ints are strings"
        );
        assert_eq!(
            spans[0]["parentSpanId"], "0000000000000001",
            "the child points at its parent"
        );
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn appends_to_an_existing_file() {
        let path = temp_path("file-append");
        std::fs::write(&path, "existing\n").unwrap();
        let exporter = FileExporter::open(&path).unwrap();
        export(&exporter, vec![span("s", 1, 0)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("existing\n"), "earlier content is kept");
        assert_eq!(text.lines().count(), 2, "the request is appended as a line");
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn errors_are_returned_not_panicked() {
        let dir = std::env::temp_dir()
            .join("flowtrace-no-such-dir-9f3a")
            .join("x.jsonl");
        assert!(
            FileExporter::open(&dir).is_err(),
            "a missing directory fails at open"
        );

        let path = temp_path("file-after-shutdown");
        let exporter = FileExporter::open(&path).unwrap();
        exporter.shutdown().unwrap();
        assert!(
            matches!(
                export(&exporter, vec![span("s", 1, 0)]),
                Err(OTelSdkError::AlreadyShutdown)
            ),
            "export after shutdown is an error"
        );
        assert!(
            exporter.shutdown().is_err(),
            "a second shutdown is an error at this level"
        );
        std::fs::remove_file(&path).ok();

        #[cfg(target_os = "linux")]
        {
            // /dev/full accepts the open and fails every write with ENOSPC.
            let full = FileExporter::open(Path::new("/dev/full")).unwrap();
            let err = export(&full, vec![span("s", 1, 0)]).unwrap_err();
            assert!(
                err.to_string().contains("/dev/full"),
                "the error names the file: {err}"
            );
        }
    }

    #[test]
    fn empty_batch_writes_nothing() {
        let path = temp_path("file-empty");
        let exporter = FileExporter::open(&path).unwrap();
        export(&exporter, vec![]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "",
            "no empty request lines"
        );
        std::fs::remove_file(&path).ok();
    }
}
