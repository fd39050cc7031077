//! `hardenctl profile list | show | check`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{CliError, Exit, Output, columns};
use crate::confine::seccomp;
use crate::profile::syscalls::Arch;
use crate::profile::{Profile, ProfileLoader};

/// One profile in `profile list --json`, the same whether the daemon or the local path
/// answered.
#[derive(Serialize)]
pub struct ListEntry {
    pub name: String,
    pub path: String,
    pub description: String,
    pub valid: bool,
    pub error: String,
}

/// `profile list --json`: `source` is `daemon` (its profile path, what it would confine
/// with) or `local` (the daemon is not running: this hardenctl's --profile-path).
#[derive(Serialize)]
pub struct ListDoc {
    pub source: &'static str,
    pub profiles: Vec<ListEntry>,
}

pub fn list(out: &Output, loader: &ProfileLoader) -> Result<Exit, CliError> {
    let entries: Vec<ListEntry> = loader
        .list()
        .into_iter()
        .map(|(name, path)| {
            let path_text = path.display().to_string();
            match loader.load_file(&path) {
                Ok(p) => ListEntry {
                    name,
                    path: path_text,
                    description: p.description.unwrap_or_default(),
                    valid: true,
                    error: String::new(),
                },
                Err(e) => ListEntry {
                    name,
                    path: path_text,
                    description: String::new(),
                    valid: false,
                    error: e.to_string(),
                },
            }
        })
        .collect();
    let exit = if entries.iter().any(|e| !e.valid) {
        Exit::Bad
    } else {
        Exit::Ok
    };
    if out.json {
        out.json(&ListDoc {
            source: "local",
            profiles: entries,
        });
        return Ok(exit);
    }
    let mut rows = vec![vec!["NAME".into(), "PATH".into(), "DESCRIPTION".into()]];
    for e in &entries {
        let desc = if e.valid {
            e.description.clone()
        } else {
            out.paint(&format!("invalid: {}", e.error), Some(false))
        };
        rows.push(vec![e.name.clone(), e.path.clone(), desc]);
    }
    print!("{}", columns(&rows));
    Ok(exit)
}

fn parse_arch(arch: Option<&str>) -> Result<Arch, CliError> {
    match arch {
        Some(a) => a.parse().map_err(CliError::Usage),
        None => Arch::native().ok_or_else(|| {
            CliError::Usage("this machine's architecture is not supported; pass --arch".into())
        }),
    }
}

pub fn show(
    out: &Output,
    loader: &ProfileLoader,
    name: &str,
    expand: bool,
    arch: Option<&str>,
) -> Result<Exit, CliError> {
    let profile = loader.load(name)?;
    let arch = parse_arch(arch)?;
    let expanded = if expand {
        Some(
            seccomp::allowed_syscalls(profile.seccomp.as_ref(), arch)
                .map_err(|e| CliError::Usage(e.to_string()))?,
        )
    } else {
        None
    };
    if out.json {
        let expanded = expanded.as_ref().map(|(allowed, notes)| {
            serde_json::json!({
                "arch": arch.to_string(),
                "allowed": allowed.keys().collect::<Vec<_>>(),
                "notes": notes,
            })
        });
        out.json(&serde_json::json!({
            "profile": profile,
            "policy_hash": profile.policy_hash(),
            "expanded": expanded,
        }));
        return Ok(Exit::Ok);
    }
    print!("{}", render(&profile));
    if let Some((allowed, notes)) = expanded {
        println!("\nallowed syscalls on {arch} ({}):", allowed.len());
        println!("{}", wrap(allowed.keys().copied(), 78, "  "));
        for n in notes {
            println!("  note: {n}");
        }
    }
    Ok(Exit::Ok)
}

fn list_or(set: impl IntoIterator<Item = String>, empty: &str) -> String {
    let v: Vec<String> = set.into_iter().collect();
    if v.is_empty() {
        empty.to_string()
    } else {
        v.join(" ")
    }
}

fn wrap<'a>(words: impl Iterator<Item = &'a str>, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(indent);
    for w in words {
        if line.len() + w.len() + 1 > width && !line.trim().is_empty() {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(indent);
        }
        line.push_str(w);
        line.push(' ');
    }
    out.push_str(line.trim_end());
    out
}

/// Human-readable form of a resolved profile.
pub fn render(p: &Profile) -> String {
    let mut rows: Vec<Vec<String>> = vec![
        vec!["profile".into(), p.name.clone()],
        vec!["source".into(), p.source.display().to_string()],
        vec![
            "files".into(),
            p.files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
        ],
        vec!["mode".into(), format!("{:?}", p.mode).to_lowercase()],
        vec!["policy hash".into(), p.policy_hash()],
    ];
    if let Some(d) = &p.description {
        rows.insert(1, vec!["description".into(), d.clone()]);
    }
    let paths = |s: &std::collections::BTreeSet<PathBuf>| {
        list_or(s.iter().map(|p| p.display().to_string()), "(none)")
    };
    let ports = |s: &Option<std::collections::BTreeSet<u16>>| match s {
        None => "(unrestricted)".to_string(),
        Some(s) => list_or(s.iter().map(u16::to_string), "(none allowed)"),
    };
    match &p.landlock {
        None => rows.push(vec![
            "landlock".into(),
            "(not configured: no file or network rules)".into(),
        ]),
        Some(l) => {
            rows.push(vec!["landlock".into(), format!("min_abi {}", l.min_abi)]);
            rows.push(vec!["  read".into(), paths(&l.read)]);
            rows.push(vec!["  read_exec".into(), paths(&l.read_exec)]);
            rows.push(vec!["  write".into(), paths(&l.write)]);
            rows.push(vec!["  bind_tcp".into(), ports(&l.bind_tcp)]);
            rows.push(vec!["  connect_tcp".into(), ports(&l.connect_tcp)]);
            rows.push(vec![
                "  scope".into(),
                list_or(
                    l.scope.iter().map(|s| {
                        serde_json::to_value(s)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default()
                    }),
                    "(none)",
                ),
            ]);
        }
    }
    match &p.seccomp {
        None => rows.push(vec![
            "seccomp".into(),
            "(no allow-list: every syscall but the side doors, with hardend's own rules)".into(),
        ]),
        Some(s) => {
            let action = format!("{:?}", s.default_action).to_lowercase();
            let action = if action == "errno" {
                format!("errno {}", s.errno)
            } else {
                action
            };
            rows.push(vec!["seccomp".into(), format!("default {action}")]);
            rows.push(vec![
                "  allow".into(),
                list_or(s.allow.iter().cloned(), "(only @default)"),
            ]);
            rows.push(vec![
                "  deny".into(),
                list_or(s.deny.iter().cloned(), "(none)"),
            ]);
            for o in &s.overridden {
                rows.push(vec![
                    "  override_deny".into(),
                    format!("{} (lifted by {})", o.name, o.file.display()),
                ]);
            }
            for r in &s.rules {
                let conds: Vec<String> = r
                    .allow_if
                    .iter()
                    .map(|c| {
                        let op = format!("{:?}", c.op).to_lowercase();
                        match c.mask {
                            Some(m) => format!("arg{} & {m:#x} == {}", c.arg, c.value),
                            None => format!("arg{} {op} {}", c.arg, c.value),
                        }
                    })
                    .collect();
                rows.push(vec![
                    "  rule".into(),
                    format!("{} if {}", r.syscall, conds.join(" and ")),
                ]);
            }
        }
    }
    let n = &p.network;
    rows.push(vec![
        "network".into(),
        format!(
            "families {}; inet/inet6: TCP only{}",
            list_or(n.families.iter().cloned(), "(none)"),
            if n.udp { " and UDP" } else { ", no UDP" }
        ),
    ]);
    rows.push(vec!["  unix_connect".into(), paths(&n.unix_connect)]);
    rows.push(vec![
        "process".into(),
        format!(
            "capabilities {}",
            list_or(p.process.capabilities.iter().cloned(), "(none)")
        ),
    ]);
    rows.push(vec![
        "  namespaces".into(),
        list_or(
            p.process.namespaces.iter().map(|n| n.as_str().to_string()),
            "(none)",
        ),
    ]);
    let doors: Vec<String> = crate::profile::sidedoors::SIDE_DOORS
        .iter()
        .filter(|d| crate::profile::sidedoors::granted(p.seccomp.as_ref(), d))
        .map(|d| d.name.to_string())
        .collect();
    rows.push(vec!["side doors".into(), list_or(doors, "(none granted)")]);
    columns(&rows)
}

#[derive(Serialize)]
struct CheckResult {
    file: PathBuf,
    ok: bool,
    profile: Option<String>,
    /// Every error, one per line.
    error: Option<String>,
    /// The same, as a list.
    errors: Vec<String>,
    line: Option<usize>,
    notes: Vec<String>,
    /// The input itself could not be found or read (exit 1), as opposed to a profile
    /// that is invalid (exit 3).
    #[serde(skip)]
    unreadable: bool,
}

/// What `profile check ARG` checks: a path as given, or — a bare name that is not a file
/// here — the profile of that name on the profile path.
fn check_target(
    loader: &ProfileLoader,
    arg: &Path,
) -> Result<PathBuf, crate::profile::ProfileError> {
    let text = arg.as_os_str().to_string_lossy();
    if text.contains('/') || arg.exists() {
        return Ok(arg.to_path_buf());
    }
    loader.find(&text, &[])
}

fn check_one(loader: &ProfileLoader, arg: &Path) -> CheckResult {
    use crate::profile::ProfileError;
    use crate::source::SourceError;
    let failed = |file: PathBuf, e: ProfileError, unreadable: bool| CheckResult {
        file,
        ok: false,
        profile: None,
        line: e.line(),
        errors: e.to_string().lines().map(str::to_string).collect(),
        error: Some(e.to_string()),
        notes: Vec::new(),
        unreadable,
    };
    let file = match check_target(loader, arg) {
        Ok(f) => f,
        Err(e) => return failed(arg.to_path_buf(), e, true),
    };
    match crate::confine::check_profile_file(loader, &file) {
        Ok((p, notes)) => CheckResult {
            file,
            ok: true,
            profile: Some(p.name),
            error: None,
            errors: Vec::new(),
            line: None,
            notes,
            unreadable: false,
        },
        Err(e) => {
            // the file asked for could not be read; an include that cannot be read makes
            // the profile invalid instead
            let unreadable =
                matches!(&e, ProfileError::Source(SourceError::Read { path, .. }) if path == &file);
            failed(file, e, unreadable)
        }
    }
}

/// `profile check FILE|NAME...`: every argument is checked and reported; exit 3 when one is
/// invalid, 1 when one could not be found or read.
pub fn check(out: &Output, loader: &ProfileLoader, files: &[PathBuf]) -> Result<Exit, CliError> {
    let results: Vec<CheckResult> = files.iter().map(|f| check_one(loader, f)).collect();
    let all_ok = results.iter().all(|r| r.ok);
    if out.json {
        out.json(&serde_json::json!({ "ok": all_ok, "results": results }));
    } else {
        for r in &results {
            match &r.error {
                None => {
                    println!(
                        "{} {}",
                        out.paint("ok     ", Some(true)),
                        super::safe(&r.file.display().to_string())
                    );
                    for n in &r.notes {
                        println!("        note: {n}");
                    }
                }
                Some(e) => {
                    // one line per error: a profile is fixed in one round
                    let label = if r.unreadable { "error  " } else { "invalid" };
                    for (i, line) in e.lines().enumerate() {
                        let head = if i == 0 { label } else { "       " };
                        println!("{} {}", out.paint(head, Some(false)), super::safe(line));
                    }
                }
            }
        }
    }
    Ok(if results.iter().any(|r| r.unreadable) {
        Exit::InputError
    } else if all_ok {
        Exit::Ok
    } else {
        Exit::Bad
    })
}
