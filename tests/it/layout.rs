//! The layering of DESIGN.md, checked on the source itself: domain modules import nothing
//! above them, `api` imports neither `daemon` nor `cli`, and nothing but the daemon and its
//! binary imports `daemon`. A violation names the file and line.

use std::path::{Path, PathBuf};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("source dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Lines of `file` (comments dropped) that name one of `modules` as a path: `crate::m`,
/// `hardend::m`, `super::m` (relative imports from a sibling), `use m::` at the top.
fn uses(file: &Path, modules: &[&str]) -> Vec<String> {
    let text = std::fs::read_to_string(file).expect("read source");
    let mut hits = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for m in modules {
            let pats = [
                format!("crate::{m}::"),
                format!("crate::{m};"),
                format!("crate::{m}}}"),
                format!("hardend::{m}::"),
                format!("hardend::{m};"),
            ];
            if pats.iter().any(|p| code.contains(p.as_str())) {
                hits.push(format!(
                    "{}:{}: uses {m}: {}",
                    file.strip_prefix(repo()).unwrap_or(file).display(),
                    i + 1,
                    line.trim()
                ));
            }
        }
    }
    hits
}

fn check(dirs: &[&str], forbidden: &[&str], except: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    for d in dirs {
        let p = repo().join(d);
        if p.is_dir() {
            rust_files(&p, &mut files);
        } else if p.is_file() {
            files.push(p);
        }
    }
    files
        .iter()
        .filter(|f| {
            let rel = f.strip_prefix(repo()).unwrap_or(f);
            !except.iter().any(|e| rel.starts_with(e))
        })
        .flat_map(|f| uses(f, forbidden))
        .collect()
}

#[test]
fn only_the_daemon_and_its_binary_import_the_daemon() {
    let v = check(
        &[
            "src",
            "tests",
            "benches",
            "examples",
            "xtask",
            "core",
            "hardend-exec",
        ],
        &["daemon"],
        &["src/daemon", "src/bin/hardend.rs", "tests/it/layout.rs"],
    );
    assert!(
        v.is_empty(),
        "daemon imported outside the daemon:\n{}",
        v.join("\n")
    );
}

#[test]
fn the_wire_contract_imports_neither_daemon_nor_cli() {
    let v = check(&["src/api"], &["daemon", "cli"], &[]);
    assert!(v.is_empty(), "{}", v.join("\n"));
}

#[test]
fn domain_modules_import_nothing_above_them() {
    let v = check(
        &[
            "src/systemd",
            "src/verity",
            "src/tpm",
            "src/integrity",
            "src/config",
            "core/src",
        ],
        &["api", "cli", "daemon", "cmdline"],
        &[],
    );
    assert!(v.is_empty(), "{}", v.join("\n"));
}

#[test]
fn the_wrapper_links_no_daemon_machinery() {
    // its manifest, not just its code: `cargo tree -p hardend-exec` in CI shows the same
    let manifest =
        std::fs::read_to_string(repo().join("hardend-exec/Cargo.toml")).expect("manifest");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("dependencies")
        .split("\n[")
        .next()
        .unwrap_or("");
    let names: Vec<&str> = deps
        .lines()
        .filter_map(|l| l.split(['=', '.']).next().map(str::trim))
        .filter(|n| !n.is_empty() && !n.starts_with('#'))
        .collect();
    assert_eq!(names, ["hardend-core", "clap"], "{deps}");
    let core = std::fs::read_to_string(repo().join("core/Cargo.toml")).expect("manifest");
    for banned in ["tokio", "zbus", "tss-esapi", "clap_mangen", "clap_complete"] {
        assert!(!core.contains(banned), "hardend-core depends on {banned}");
    }
}

#[test]
fn the_checker_sees_a_violation() {
    // the attack on this test: a check that can never fail
    let dir = repo().join("target/layout-probe");
    std::fs::create_dir_all(&dir).expect("probe dir");
    let f = dir.join("x.rs");
    std::fs::write(
        &f,
        "use crate::daemon::Pillars;\n// crate::daemon::x in a comment\n",
    )
    .expect("probe file");
    let hits = uses(&f, &["daemon"]);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(
        hits[0].ends_with(":1: uses daemon: use crate::daemon::Pillars;"),
        "{hits:?}"
    );
}
