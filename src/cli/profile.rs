//! `hardenctl profile list | show | check`.

use std::path::PathBuf;

use serde::Serialize;

use super::{CliError, Exit, Output, columns};
use crate::confine::seccomp;
use crate::profile::syscalls::Arch;
use crate::profile::{Profile, ProfileLoader};

pub fn list(out: &Output, loader: &ProfileLoader) -> Result<Exit, CliError> {
    #[derive(Serialize)]
    struct Entry {
        name: String,
        path: PathBuf,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    }
    let entries: Vec<Entry> = loader
        .list()
        .into_iter()
        .map(|(name, path)| match loader.load_file(&path) {
            Ok(p) => Entry {
                name,
                path,
                description: p.description,
                error: None,
            },
            Err(e) => Entry {
                name,
                path,
                description: None,
                error: Some(e.to_string()),
            },
        })
        .collect();
    if out.json {
        out.json(&serde_json::json!({ "profiles": entries }));
    } else {
        let mut rows = vec![vec!["NAME".into(), "PATH".into(), "DESCRIPTION".into()]];
        for e in &entries {
            let desc = match (&e.error, &e.description) {
                (Some(err), _) => out.paint(&format!("invalid: {err}"), Some(false)),
                (None, Some(d)) => d.clone(),
                (None, None) => String::new(),
            };
            rows.push(vec![e.name.clone(), e.path.display().to_string(), desc]);
        }
        print!("{}", columns(&rows));
    }
    Ok(if entries.iter().any(|e| e.error.is_some()) {
        Exit::Bad
    } else {
        Exit::Ok
    })
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
        let mut v = serde_json::to_value(&profile).unwrap_or_default();
        v["policy_hash"] = profile.policy_hash().into();
        if let Some((allowed, notes)) = &expanded {
            v["expanded"] = serde_json::json!({
                "arch": arch.to_string(),
                "allowed": allowed.keys().collect::<Vec<_>>(),
                "notes": notes,
            });
        }
        out.json(&v);
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
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
}

pub fn check(out: &Output, loader: &ProfileLoader, files: &[PathBuf]) -> Result<Exit, CliError> {
    let results: Vec<CheckResult> = files
        .iter()
        .map(|f| match crate::confine::check_profile_file(loader, f) {
            Ok((p, notes)) => CheckResult {
                file: f.clone(),
                ok: true,
                profile: Some(p.name),
                error: None,
                line: None,
                notes,
            },
            Err(e) => CheckResult {
                file: f.clone(),
                ok: false,
                profile: None,
                line: e.line(),
                error: Some(e.to_string()),
                notes: Vec::new(),
            },
        })
        .collect();
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
                Some(e) => println!("{} {}", out.paint("invalid", Some(false)), super::safe(e)),
            }
        }
    }
    Ok(if all_ok { Exit::Ok } else { Exit::Bad })
}
