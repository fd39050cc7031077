//! `hardenctl integrity status | init | scan | events [--follow] | accept PATH... |
//! accept --from-dpkg`: the daemon's integrity monitor over D-Bus.

use std::io::IsTerminal;
use std::time::Duration;

use futures_util::StreamExt;

use super::client::{Client, bus_error};
use super::{CliError, Exit, Output, columns, safe};
use crate::api::{IntegrityInfo, IntegrityProxy, IntegrityState, ViolationInfo};

fn proxy(c: &Client) -> Result<IntegrityProxy<'static>, CliError> {
    c.integrity()
}

fn when(t: u64) -> String {
    if t == 0 {
        return "never".into();
    }
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(t)).to_string()
}

fn print_status(out: &Output, i: &IntegrityInfo) {
    let good = match i.state {
        IntegrityState::Ok => Some(true),
        s if s.is_bad() => Some(false),
        _ => None,
    };
    let rows = vec![
        vec!["state".into(), out.paint(i.state.as_str(), good)],
        vec!["violations".into(), i.violations.to_string()],
        vec![
            "baseline".into(),
            if i.baseline_created == 0 {
                "none".into()
            } else {
                format!(
                    "{} paths, made {}, generation {}, protected by a {}",
                    i.entries,
                    when(i.baseline_created),
                    i.generation,
                    if i.key == "tpm" {
                        "TPM-sealed key and the TPM's counter (no rollback)"
                    } else {
                        "root-only key file (no rollback protection)"
                    }
                )
            },
        ],
        vec!["last full scan".into(), when(i.last_scan)],
        vec![
            "real time".into(),
            format!(
                "{} inotify watches{}{}",
                i.watches,
                if i.unwatched > 0 {
                    format!(
                        ", {} paths beyond the watch budget (periodic scan only)",
                        i.unwatched
                    )
                } else {
                    String::new()
                },
                if i.rescans > 0 {
                    format!(", {} rescans after lost events", i.rescans)
                } else {
                    String::new()
                }
            ),
        ],
    ];
    print!("{}", columns(&rows));
    if !i.detail.is_empty() {
        println!("{}", safe(&i.detail));
    }
}

fn violations_table(out: &Output, v: &[ViolationInfo]) -> String {
    let mut rows = vec![vec![
        "PATH".to_string(),
        "CHANGE".into(),
        "SET".into(),
        "SEVERITY".into(),
        "EXPECTED → ACTUAL".into(),
    ]];
    for x in v {
        rows.push(vec![
            x.path.clone(),
            out.paint(x.kind.as_str(), Some(false)),
            x.set.clone(),
            x.severity.as_str().into(),
            format!(
                "{} → {}",
                if x.expected.is_empty() {
                    "-"
                } else {
                    &x.expected
                },
                if x.actual.is_empty() { "-" } else { &x.actual }
            ),
        ]);
    }
    columns(&rows)
}

/// Exit 3 for a bad state (violations, tampered, error, no baseline); `disabled` is a
/// deliberate configuration, not a bad state.
fn exit_for(i: &IntegrityInfo) -> Exit {
    if i.state.is_bad() {
        Exit::Bad
    } else {
        Exit::Ok
    }
}

/// Prints the state and every current violation (one JSON document with --json).
fn report(
    out: &Output,
    c: &Client,
    p: &IntegrityProxy<'static>,
    bus: &str,
    i: IntegrityInfo,
) -> Result<Exit, CliError> {
    let v = c
        .block_on(p.list_violations())
        .map_err(|e| bus_error(bus, e))?;
    if out.json {
        out.json(&serde_json::json!({ "status": i, "violations": v }));
    } else {
        print_status(out, &i);
        if !v.is_empty() {
            println!();
            print!("{}", violations_table(out, &v));
        }
    }
    Ok(exit_for(&i))
}

/// `status`: the monitor and every current violation; exit 3 unless `ok`.
pub fn status(out: &Output, bus: &str) -> Result<Exit, CliError> {
    let c = Client::connect(bus)?;
    let p = proxy(&c)?;
    let (i,) = c.block_on(p.status()).map_err(|e| bus_error(bus, e))?;
    report(out, &c, &p, bus, i)
}

/// Runs a long call, showing scan progress on a terminal meanwhile.
fn with_progress<T>(
    c: &Client,
    p: &IntegrityProxy<'static>,
    call: impl std::future::Future<Output = T>,
) -> T {
    let tty = std::io::stderr().is_terminal();
    c.block_on(async {
        let ticker = async {
            if !tty {
                return std::future::pending().await;
            }
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if let Ok((i,)) = p.status().await
                    && i.scanning
                {
                    eprint!(
                        "\rscanning: {}/{} files, {} MB   ",
                        i.scan_files,
                        i.scan_total,
                        i.scan_bytes / 1_000_000
                    );
                }
            }
        };
        let r = tokio::select! {
            r = call => r,
            () = ticker => unreachable!("the ticker never ends"),
        };
        if tty {
            eprint!("\r\x1b[K");
        }
        r
    })
}

/// `init`: a new baseline from a full scan.
pub fn init(out: &Output, bus: &str) -> Result<Exit, CliError> {
    let c = Client::connect(bus)?;
    let p = proxy(&c)?;
    let (i,) = with_progress(&c, &p, p.init()).map_err(|e| bus_error(bus, e))?;
    if out.json {
        out.json(&serde_json::json!({ "status": i }));
    } else {
        println!(
            "new baseline: {} paths, protected by a {} key",
            i.entries,
            if i.key == "tpm" {
                "TPM-sealed"
            } else {
                "root-only file"
            }
        );
    }
    Ok(Exit::Ok)
}

/// `scan`: a full scan now; exit 3 when something differs.
pub fn scan(out: &Output, bus: &str) -> Result<Exit, CliError> {
    let c = Client::connect(bus)?;
    let p = proxy(&c)?;
    let (i,) = with_progress(&c, &p, p.scan()).map_err(|e| bus_error(bus, e))?;
    report(out, &c, &p, bus, i)
}

/// `events [-n N] [--follow]`: the persistent log, then (with --follow) live violations.
pub fn events(out: &Output, bus: &str, count: u32, follow: bool) -> Result<Exit, CliError> {
    let c = Client::connect(bus)?;
    let p = proxy(&c)?;
    // subscribe before reading the log, so nothing falls between the two
    let mut live = if follow {
        Some(
            c.block_on(p.receive_integrity_violation())
                .map_err(|e| bus_error(bus, e))?,
        )
    } else {
        None
    };
    let ev = c.block_on(p.events(count)).map_err(|e| bus_error(bus, e))?;
    if out.json && !follow {
        out.json(&serde_json::json!({ "events": ev }));
    } else {
        for e in &ev {
            if out.json {
                out.json_line(&serde_json::json!({ "event": e }));
            } else {
                println!(
                    "{}  {:<9} {:<12} {} {}",
                    when(e.time),
                    e.event,
                    e.kind,
                    safe(&e.path),
                    if e.actual.is_empty() {
                        String::new()
                    } else {
                        format!("({})", safe(&e.actual))
                    }
                );
            }
        }
    }
    if let Some(stream) = live.as_mut() {
        c.block_on(async {
            while let Some(sig) = stream.next().await {
                let Ok(a) = sig.args() else { continue };
                if out.json {
                    out.json_line(&serde_json::json!({ "event": {
                        "time": crate::integrity::now(), "event": "violation", "path": a.path(),
                        "kind": a.kind(), "expected": a.expected(), "actual": a.actual(),
                        "set": a.set(), "severity": a.severity()
                    } }));
                } else {
                    println!(
                        "{}  violation {:<12} {} ({} → {}) [{} {}]",
                        when(crate::integrity::now()),
                        a.kind(),
                        safe(a.path()),
                        safe(a.expected()),
                        safe(a.actual()),
                        a.set(),
                        a.severity()
                    );
                }
            }
        });
    }
    Ok(Exit::Ok)
}

/// `accept PATH...` or `accept --from-dpkg`.
pub fn accept(
    out: &Output,
    bus: &str,
    paths: &[std::path::PathBuf],
    from_dpkg: bool,
    dpkg_admin: Option<&std::path::Path>,
) -> Result<Exit, CliError> {
    let c = Client::connect(bus)?;
    let p = proxy(&c)?;
    if from_dpkg {
        let admin = dpkg_admin
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let (ok, refused) = c
            .block_on(p.accept_from_dpkg(admin))
            .map_err(|e| bus_error(bus, e))?;
        if out.json {
            out.json(&serde_json::json!({ "accepted": ok, "refused": refused.iter().map(|(p, w)| serde_json::json!({"path": p, "why": w})).collect::<Vec<_>>() }));
        } else {
            for a in &ok {
                println!("accepted (dpkg): {}", safe(a));
            }
            for (p, why) in &refused {
                println!(
                    "{}: {}: {}",
                    out.paint("still a violation", Some(false)),
                    safe(p),
                    safe(why)
                );
            }
        }
        return Ok(if refused.is_empty() {
            Exit::Ok
        } else {
            Exit::Bad
        });
    }
    use crate::integrity::pathname::{from_wire, to_wire};
    let abs: Vec<String> = paths
        .iter()
        .map(|p| {
            // a name copied from hardenctl's output carries the bus escapes (`\xff`): when
            // no file has the literal name, the escaped one is meant
            let p = if std::fs::symlink_metadata(p).is_err()
                && p.as_os_str()
                    .as_encoded_bytes()
                    .windows(2)
                    .any(|w| w == b"\\x")
            {
                from_wire(&p.to_string_lossy())
            } else {
                p.clone()
            };
            std::path::absolute(&p)
                .map(|a| to_wire(&a))
                .map_err(|e| CliError::Usage(format!("{}: {e}", p.display())))
        })
        .collect::<Result<_, _>>()?;
    let n = c
        .block_on(p.accept(abs.clone()))
        .map_err(|e| bus_error(bus, e))?;
    if out.json {
        out.json(&serde_json::json!({ "accepted": abs, "count": n }));
    } else {
        println!("accepted into the baseline: {n} path(s)");
    }
    Ok(Exit::Ok)
}

/// `dpkg-hold`: the dpkg pre-invoke hook.
pub fn dpkg_hold(
    out: &Output,
    bus: &str,
    dpkg_admin: Option<&std::path::Path>,
) -> Result<Exit, CliError> {
    let c = Client::connect(bus)?;
    let p = proxy(&c)?;
    let admin = dpkg_admin
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    c.block_on(p.dpkg_hold(admin))
        .map_err(|e| bus_error(bus, e))?;
    if out.json {
        out.json(&serde_json::json!({ "held": true }));
    }
    Ok(Exit::Ok)
}
