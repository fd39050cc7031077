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

/// One pillar's line in `status`: its state, whether that is bad, and a few words.
#[derive(Serialize)]
struct Pillar {
    state: String,
    bad: bool,
    detail: String,
}

impl Pillar {
    fn new(state: &str, bad: bool, detail: impl Into<String>) -> Self {
        Pillar {
            state: state.to_string(),
            bad,
            detail: detail.into(),
        }
    }

    /// A pillar whose state could not be read (an unknown state string is bad).
    fn unreadable(e: impl std::fmt::Display) -> Self {
        Pillar::new("unknown", true, format!("cannot be read: {e}"))
    }
}

/// `status`'s document: the daemon, then a line per pillar.
#[derive(Serialize)]
struct StatusDoc {
    state: crate::api::DaemonState,
    detail: String,
    daemon_version: String,
    kernel_landlock_abi: u32,
    systemd: bool,
    verify_interval: u32,
    profile_path: Vec<String>,
    services: ServicesLine,
    verity: Pillar,
    identity: Pillar,
    integrity: Pillar,
    vulns: Pillar,
}

#[derive(Serialize)]
struct ServicesLine {
    state: &'static str,
    bad: bool,
    assigned: u32,
    enforced: u32,
    problems: u32,
}

fn pillar<S: Copy>(
    state: zbus::Result<String>,
    parse: fn(&str) -> Option<S>,
    is_bad: fn(S) -> bool,
    detail: impl FnOnce(S) -> String,
) -> Pillar {
    match state {
        Ok(text) => match parse(&text) {
            Some(st) => Pillar::new(&text, is_bad(st), detail(st)),
            None => Pillar::new(&text, true, "a state this hardenctl does not know"),
        },
        Err(e) => Pillar::unreadable(e),
    }
}

/// `status`: one screen — the daemon and a line per pillar (services, verity, identity,
/// integrity), the bad ones first. Exit 3 when the daemon is degraded.
pub fn status(out: &Output, bus: &str) -> Result<Exit, CliError> {
    use crate::api::{IdentityState, IntegrityState, VulnsState};
    let c = Client::connect(bus)?;
    let m = c.manager()?;
    let (s,) = c.block_on(m.status()).map_err(|e| bus_error(bus, e))?;
    // properties only (open to everyone, no TPM work, no rate limit); Verity.Check is a
    // read of the device-mapper table on the daemon's worker
    let verity = match c.verity().map(|v| c.block_on(v.check())) {
        Ok(Ok((v,))) => Pillar::new(v.state.as_str(), v.state.is_bad(), v.detail.clone()),
        Ok(Err(e)) => Pillar::unreadable(e),
        Err(e) => Pillar::unreadable(e),
    };
    let identity = match c.identity() {
        Ok(p) => {
            let fp = c.block_on(p.fingerprint()).unwrap_or_default();
            pillar(
                c.block_on(p.state()),
                IdentityState::parse,
                IdentityState::is_bad,
                |st| match st {
                    IdentityState::Ok => format!("sha256:{fp}"),
                    IdentityState::None => "no identity yet: hardenctl identity create".into(),
                    IdentityState::Disabled => "off ([identity] tcti = \"none\")".into(),
                    _ => "hardenctl identity show says why".into(),
                },
            )
        }
        Err(e) => Pillar::unreadable(e),
    };
    let integrity = match c.integrity() {
        Ok(p) => {
            let n = c.block_on(p.violations()).unwrap_or_default();
            pillar(
                c.block_on(p.state()),
                IntegrityState::parse,
                IntegrityState::is_bad,
                |st| match st {
                    IntegrityState::Ok => "every watched file matches the baseline".into(),
                    IntegrityState::Violations => {
                        format!("{n} path(s) differ from the baseline: hardenctl integrity status")
                    }
                    IntegrityState::NoBaseline => {
                        "no baseline, nothing is compared: hardenctl integrity init".into()
                    }
                    IntegrityState::Disabled => "off ([integrity] enabled = false)".into(),
                    _ => "hardenctl integrity status says why".into(),
                },
            )
        }
        Err(e) => Pillar::unreadable(e),
    };
    let vulns = match c.vulns() {
        Ok(p) => {
            let n = c.block_on(p.fix_available()).unwrap_or_default();
            pillar(
                c.block_on(p.state()),
                VulnsState::parse,
                VulnsState::is_bad,
                |st| match st {
                    VulnsState::Ok => "no installed package has a fix waiting".into(),
                    VulnsState::FixAvailable => {
                        format!("{n} CVE(s) with a fix available: hardenctl vulns")
                    }
                    VulnsState::Disabled => "off (no [vulns] feed)".into(),
                    VulnsState::Starting => "the feed is being read".into(),
                    _ => "hardenctl vulns says why".into(),
                },
            )
        }
        Err(e) => Pillar::unreadable(e),
    };
    let services_bad = s.problems > 0;
    let doc = StatusDoc {
        state: s.state,
        detail: s.detail.clone(),
        daemon_version: s.version.clone(),
        kernel_landlock_abi: s.kernel_landlock_abi,
        systemd: s.systemd,
        verify_interval: s.verify_interval,
        profile_path: s.profile_path.clone(),
        services: ServicesLine {
            state: if services_bad { "problems" } else { "ok" },
            bad: services_bad,
            assigned: s.services,
            enforced: s.enforced,
            problems: s.problems,
        },
        verity,
        identity,
        integrity,
        vulns,
    };
    if out.json {
        out.json(&doc);
    } else {
        print!("{}", status_screen(out, &doc));
    }
    Ok(if s.state.is_bad() {
        Exit::Bad
    } else {
        Exit::Ok
    })
}

fn status_screen(out: &Output, d: &StatusDoc) -> String {
    let paint = |state: &str, bad: bool| out.paint(state, Some(!bad));
    let services = Pillar::new(
        d.services.state,
        d.services.bad,
        format!(
            "{} assigned, {} enforced, {} with problems{}",
            d.services.assigned,
            d.services.enforced,
            d.services.problems,
            if d.services.bad {
                ": hardenctl services"
            } else {
                ""
            }
        ),
    );
    let mut pillars = vec![
        ("services", &services),
        ("integrity", &d.integrity),
        ("identity", &d.identity),
        ("verity", &d.verity),
        ("vulns", &d.vulns),
    ];
    // the bad ones first, otherwise in this order
    pillars.sort_by_key(|(_, p)| !p.bad);
    let mut rows = vec![vec![
        "hardend".to_string(),
        format!(
            "{} {}",
            paint(d.state.as_str(), d.state.is_bad()),
            d.daemon_version
        ),
    ]];
    for (name, p) in pillars {
        rows.push(vec![
            name.to_string(),
            format!("{}  {}", paint(&p.state, p.bad), p.detail),
        ]);
    }
    rows.push(vec![
        "landlock".into(),
        format!("kernel ABI {}", d.kernel_landlock_abi),
    ]);
    rows.push(vec![
        "systemd".into(),
        if d.systemd {
            "connected".into()
        } else {
            "not on this bus (records only)".into()
        },
    ]);
    let mut text = columns(&rows);
    if !d.detail.is_empty() {
        text.push_str(&out.paint(&safe(&d.detail), Some(false)));
        text.push('\n');
    }
    text
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

/// `mosquitto` → `mosquitto.service`, as systemctl does: a name without a unit type suffix
/// is a service.
pub fn unit_name(name: &str) -> String {
    const TYPES: &[&str] = &[
        ".service",
        ".socket",
        ".target",
        ".timer",
        ".mount",
        ".path",
        ".slice",
        ".scope",
        ".device",
        ".swap",
        ".automount",
    ];
    if TYPES.iter().any(|t| name.ends_with(t)) {
        name.to_string()
    } else {
        format!("{name}.service")
    }
}

pub fn confine(
    out: &Output,
    bus: &str,
    unit: &str,
    profile: &str,
    runtime: bool,
    no_restart: bool,
) -> Result<Exit, CliError> {
    let unit = &unit_name(unit);
    let c = Client::connect(bus)?;
    let m = c.manager()?;
    let (info,) = c
        .block_on(m.confine(unit, profile, runtime, no_restart))
        .map_err(|e| bus_error(bus, e))?;
    if out.json {
        out.json(&serde_json::json!({ "service": info }));
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
    let unit = &unit_name(unit);
    let c = Client::connect(bus)?;
    let m = c.manager()?;
    c.block_on(m.release(unit, no_restart))
        .map_err(|e| bus_error(bus, e))?;
    if out.json {
        out.json(&serde_json::json!({ "unit": unit, "released": true }));
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
    if out.json {
        let entries: Vec<super::profile::ListEntry> = list
            .iter()
            .map(|p| super::profile::ListEntry {
                name: p.name.clone(),
                path: p.path.clone(),
                description: p.description.clone(),
                valid: p.error.is_empty(),
                error: p.error.clone(),
            })
            .collect();
        out.json(&super::profile::ListDoc {
            source: "daemon",
            profiles: entries,
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
        out.json(&serde_json::json!({ "verity": info }));
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
    Ok(if info.state.is_bad() {
        Exit::Bad
    } else {
        Exit::Ok
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn bare_names_are_services() {
        assert_eq!(super::unit_name("mosquitto"), "mosquitto.service");
        assert_eq!(super::unit_name("getty@tty1"), "getty@tty1.service");
        assert_eq!(super::unit_name("web.service"), "web.service");
        assert_eq!(super::unit_name("x.socket"), "x.socket");
    }
}
