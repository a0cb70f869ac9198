//! The module arrows of docs/architecture.md as a checked rule: every `src/**/*.rs` is read,
//! its `crate::…` paths collected, and an arrow the document forbids fails the test, naming
//! file, line and arrow.

mod source;

use std::path::{Path, PathBuf};

/// Which modules `from` may not name.
struct Rule {
    from: &'static str,
    forbidden: Targets,
}

enum Targets {
    These(&'static [&'static str]),
    AllBut(&'static [&'static str]),
}

const RULES: &[Rule] = &[
    Rule {
        from: "queue",
        forbidden: Targets::These(&["storage", "acs", "ingest", "worker", "admin"]),
    },
    Rule {
        from: "storage",
        forbidden: Targets::These(&["config", "queue", "worker", "ingest", "admin"]),
    },
    Rule {
        from: "config",
        forbidden: Targets::AllBut(&["config", "storage", "secret", "acs", "azure_queue"]),
    },
    Rule {
        from: "acs",
        forbidden: Targets::These(&["queue", "storage", "worker", "ingest"]),
    },
    // The recording shape is shared by queue and ingest: it must bring in nothing outside.
    Rule {
        from: "recording",
        forbidden: Targets::AllBut(&["recording", "quote"]),
    },
    // The call-leg shape and its derived ids are shared by ingest, queue and the starter.
    Rule {
        from: "call_leg",
        forbidden: Targets::AllBut(&["call_leg"]),
    },
    // The starter calls ACS and records outcomes; it never reaches into delivery or the archive.
    Rule {
        from: "autostart",
        forbidden: Targets::These(&["ingest", "worker", "storage", "admin"]),
    },
    // Participant ids are normalised alike by the queue, the worker and lookups: a leaf.
    Rule {
        from: "participant_id",
        forbidden: Targets::AllBut(&["participant_id"]),
    },
];

/// Arrows the code still has while the change that removes them is under way. Each must still
/// be violated, so the list cannot go stale silently; empty it when they are gone.
const KNOWN_VIOLATIONS: &[(&str, &str)] = &[];

/// The top-level module a file belongs to: `src/queue/db.rs` → `queue`, `src/app.rs` → `app`.
fn module_of(relative: &Path) -> String {
    let first = relative.components().next().expect("a file under src");
    let name = first.as_os_str().to_string_lossy();
    name.strip_suffix(".rs").unwrap_or(&name).to_owned()
}

/// Test code may reach for anything: test files and test modules are left out.
fn is_test_file(relative: &Path) -> bool {
    let text = relative.to_string_lossy();
    text.ends_with("tests.rs")
        || text.contains("/tests/")
        || relative.starts_with("test_services.rs")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// Every forbidden arrow: (file, line, arrow).
fn violations() -> Vec<(String, usize, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for path in files {
        let relative = path.strip_prefix(&src).expect("under src");
        if is_test_file(relative) {
            continue;
        }
        let from = module_of(relative);
        let text = std::fs::read_to_string(&path).expect("a UTF-8 source file");
        let code = source::code_only(&text);
        let code = source::without_test_module(&code);
        let file = format!("src/{}", relative.display());
        let mut arrow = |line: usize, to: &str| {
            found.push((file.clone(), line, format!("{from} → {to}")));
        };
        for (line, to) in source::crate_paths(code) {
            if to == from {
                continue;
            }
            if from != "cli" && (to == "cli" || (to == "emulator" && from != "emulator")) {
                arrow(line, &to);
            }
            for rule in RULES.iter().filter(|rule| rule.from == from) {
                let forbidden = match rule.forbidden {
                    Targets::These(these) => these.contains(&to.as_str()),
                    Targets::AllBut(allowed) => !allowed.contains(&to.as_str()),
                };
                if forbidden {
                    arrow(line, &to);
                }
            }
        }
        // The emulator is its own crate to the lib: only the command line may name it.
        if from != "cli" && from != "emulator" {
            for (index, line) in code.lines().enumerate() {
                if line.contains("callvault_emulator") {
                    arrow(index + 1, "callvault_emulator");
                }
            }
        }
    }
    found
}

#[test]
fn no_module_names_a_module_it_must_not() {
    let found = violations();
    let unexpected: Vec<String> = found
        .iter()
        .filter(|(file, _, arrow)| !KNOWN_VIOLATIONS.contains(&(file.as_str(), arrow.as_str())))
        .map(|(file, line, arrow)| {
            format!("{file}:{line}: forbidden arrow {arrow} (docs/architecture.md)")
        })
        .collect();
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
}

#[test]
fn every_known_violation_is_still_there() {
    let found = violations();
    let gone: Vec<String> = KNOWN_VIOLATIONS
        .iter()
        .filter(|(file, arrow)| !found.iter().any(|(f, _, a)| f == file && a == arrow))
        .map(|(file, arrow)| format!("{file}: {arrow} is gone; remove it from KNOWN_VIOLATIONS"))
        .collect();
    assert!(gone.is_empty(), "{}", gone.join("\n"));
}

#[test]
fn paths_are_found_in_groups_and_not_in_comments_or_strings() {
    let text = "use crate::{\n    queue::Db,\n    storage::{Archive, layout},\n};\n// crate::admin\nlet s = \"crate::worker\";\nlet r = r#\"crate::ingest\"#;\nfn f<'a>(x: &'a str) { crate::acs::f(x) }\n";
    let code = source::code_only(text);
    let names: Vec<(usize, String)> = source::crate_paths(&code);
    assert_eq!(
        names,
        [
            (1, "queue".to_owned()),
            (1, "storage".to_owned()),
            (8, "acs".to_owned())
        ]
    );
}
