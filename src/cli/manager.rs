//! `hardenctl status | services | confine | release | reload | profile list | verity
//! status`: the daemon's Manager and Verity interfaces.

use serde::Serialize;

use super::client::{Client, bus_error};
use super::{CliError, Exit, Output, columns, safe};
use crate::api::{ServiceInfo, ServiceState, VerityState};

fn state_good(s: ServiceState) -> Option<bool> {
    match s {
        ServiceState::Enforced => Some(true),
        s if s.is_bad() => Some(false),
        _ => None,
    }
}

pub fn status(out: &Output, bus: &str) -> Result<Exit, CliError> {
    let c = Client::connect(bus)?;
    let m = c.manager()?;
    let (s,) = c.block_on(m.status()).map_err(|e| bus_error(bus, e))?;
    if out.json {
        out.json(&s);
    } else {
        let rows = vec![
            vec![
                "hardend".into(),
                format!(
                    "{} ({})",
                    s.version,
                    out.paint(s.state.as_str(), Some(!s.state.is_bad()))
                ),
            ],
            vec![
                "services".into(),
                format!(
                    "{} assigned, {} enforced, {} problems",
                    s.services, s.enforced, s.problems
                ),
            ],
            vec![
                "landlock".into(),
                format!("kernel ABI {}", s.kernel_landlock_abi),
            ],
            vec![
                "systemd".into(),
                if s.systemd {
                    "connected".into()
                } else {
                    "not on this bus (records only)".into()
                },
            ],
            vec!["verify every".into(), format!("{} s", s.verify_interval)],
            vec!["profile path".into(), s.profile_path.join(":")],
        ];
        print!("{}", columns(&rows));
        if !s.detail.is_empty() {
            println!("{}", out.paint(&safe(&s.detail), Some(false)));
        }
    }
    Ok(if s.state.is_bad() {
        Exit::Bad
    } else {
        Exit::Ok
    })
}

fn services_table(out: &Output, services: &[ServiceInfo]) -> String {
    let mut rows = vec![vec![
        "UNIT".to_string(),
        "PROFILE".into(),
        "STATE".into(),
        "PID".into(),
        "ABI".into(),
        "LANDLOCK".into(),
        "SECCOMP".into(),
        "CAPS".into(),
        "SOURCE".into(),
    ]];
    for s in services {
        rows.push(vec![
            s.unit.clone(),
            s.profile.clone(),
            out.paint(s.state.as_str(), state_good(s.state)),
            if s.pid == 0 {
                "-".into()
            } else {
                s.pid.to_string()
            },
            if s.landlock_abi == 0 {
                "-".into()
            } else {
                s.landlock_abi.to_string()
            },
            if s.landlock.is_empty() {
                "-".into()
            } else {
                s.landlock.clone()
            },
            if s.seccomp.is_empty() {
                "-".into()
            } else {
                s.seccomp.clone()
            },
            if s.pid == 0 {
                "-".into()
            } else if s.kernel.cap_effective.is_empty() {
                "none".into()
            } else {
                s.kernel
                    .cap_effective
                    .iter()
                    .map(|c| c.trim_start_matches("CAP_").to_ascii_lowercase())
                    .collect::<Vec<_>>()
                    .join(",")
            },
            s.source.clone(),
        ]);
    }
    let mut text = columns(&rows);
    for s in services
        .iter()
        .filter(|s| s.state != ServiceState::Enforced)
    {
        text.push_str(&format!("{}: {}\n", safe(&s.unit), safe(&s.detail)));
    }
    text
}

pub fn services(out: &Output, bus: &str) -> Result<Exit, CliError> {
    let c = Client::connect(bus)?;
    let m = c.manager()?;
    let list = c
        .block_on(m.list_services())
        .map_err(|e| bus_error(bus, e))?;
    if out.json {
        out.json(&serde_json::json!({ "services": list }));
    } else if list.is_empty() {
        println!("no units have a hardend profile (hardenctl confine UNIT PROFILE)");
    } else {
        print!("{}", services_table(out, &list));
    }
    Ok(if list.iter().any(|s| s.state.is_bad()) {
        Exit::Bad
    } else {
        Exit::Ok
    })
}

pub fn confine(
    out: &Output,
    bus: &str,
    unit: &str,
    profile: &str,
    runtime: bool,
    no_restart: bool,
) -> Result<Exit, CliError> {
    let c = Client::connect(bus)?;
    let m = c.manager()?;
    let (info,) = c
        .block_on(m.confine(unit, profile, runtime, no_restart))
        .map_err(|e| bus_error(bus, e))?;
    if out.json {
        out.json(&info);
    } else {
        print!("{}", services_table(out, std::slice::from_ref(&info)));
    }
    Ok(if info.state.is_bad() {
        Exit::Bad
    } else {
        Exit::Ok
    })
}

pub fn release(out: &Output, bus: &str, unit: &str, no_restart: bool) -> Result<Exit, CliError> {
    let c = Client::connect(bus)?;
    let m = c.manager()?;
    c.block_on(m.release(unit, no_restart))
        .map_err(|e| bus_error(bus, e))?;
    if out.json {
        out.json(&serde_json::json!({ "released": unit }));
    } else {
        println!("{unit}: released");
    }
    Ok(Exit::Ok)
}

pub fn reload(out: &Output, bus: &str) -> Result<Exit, CliError> {
    let c = Client::connect(bus)?;
    let m = c.manager()?;
    c.block_on(m.reload()).map_err(|e| bus_error(bus, e))?;
    if out.json {
        out.json(&serde_json::json!({ "reloaded": true }));
    } else {
        println!("reloaded");
    }
    Ok(Exit::Ok)
}

/// `profile list` through the daemon (its profile path), or `None` when it is not running.
pub fn profile_list(out: &Output, bus: &str) -> Option<Result<Exit, CliError>> {
    let c = match Client::connect(bus) {
        Ok(c) => c,
        Err(CliError::NotRunning(_)) => return None,
        Err(e) => return Some(Err(e)),
    };
    let m = match c.manager() {
        Ok(m) => m,
        Err(e) => return Some(Err(e)),
    };
    let list = match c.block_on(m.list_profiles()) {
        Ok(l) => l,
        Err(e) => return Some(Err(bus_error(bus, e))),
    };
    #[derive(Serialize)]
    struct Doc<'a> {
        source: &'static str,
        profiles: &'a [crate::api::ProfileInfo],
    }
    if out.json {
        out.json(&Doc {
            source: "daemon",
            profiles: &list,
        });
    } else {
        let mut rows = vec![vec!["NAME".into(), "PATH".into(), "DESCRIPTION".into()]];
        for p in &list {
            let d = if p.error.is_empty() {
                p.description.clone()
            } else {
                out.paint(&format!("invalid: {}", p.error), Some(false))
            };
            rows.push(vec![p.name.clone(), p.path.clone(), d]);
        }
        print!("{}", columns(&rows));
    }
    Some(Ok(if list.iter().any(|p| !p.error.is_empty()) {
        Exit::Bad
    } else {
        Exit::Ok
    }))
}

/// `hardenctl verity status` without a name: the daemon's runtime check of `/`.
pub fn verity_status(out: &Output, bus: &str) -> Result<Exit, CliError> {
    let c = Client::connect(bus)?;
    let v = c.verity()?;
    let (info,) = c.block_on(v.check()).map_err(|e| bus_error(bus, e))?;
    if out.json {
        out.json(&info);
    } else {
        let rows = vec![
            vec![
                "state".into(),
                out.paint(
                    info.state.as_str(),
                    Some(info.state == VerityState::Verified),
                ),
            ],
            vec!["mount point".into(), info.mountpoint.clone()],
            vec!["device".into(), info.device.clone()],
            vec![
                "root hash".into(),
                if info.root_hash.is_empty() {
                    "-".into()
                } else {
                    info.root_hash.clone()
                },
            ],
            vec![
                "expected".into(),
                if info.expected_root_hash.is_empty() {
                    "(none configured)".into()
                } else {
                    format!("{} ({})", info.expected_root_hash, info.expected_source)
                },
            ],
        ];
        print!("{}", columns(&rows));
        println!("{}", safe(&info.detail));
    }
    Ok(if info.state == VerityState::Verified {
        Exit::Ok
    } else {
        Exit::Bad
    })
}
