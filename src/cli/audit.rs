//! `hardenctl audit [UNIT]`: per service, systemd's exposure (recomputed with the table of
//! the systemd on this device) next to the combined score with hardend's proven layers,
//! the biggest improvements with the command that makes them, and the device checks.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use zbus::zvariant::OwnedValue;

use super::client::Client;
use super::{CliError, Exit, Output, columns, safe};
use crate::api::ServiceInfo;
use crate::audit::device::{self, Check, Severity, Status, Target};
use crate::audit::exposure::assess::{tenths_number, tenths_text};
use crate::audit::exposure::{Exposure, Level, Policy, SecurityInfo, assess};
use crate::audit::layers::{self, Basis, Credit, Evidence};
use crate::audit::sockets::{self, Listener};
use crate::audit::syscalls::{self, Resolver};
use crate::profile::{Profile, ProfileLoader};

/// What the command was asked.
pub struct Request<'a> {
    pub unit: Option<&'a str>,
    pub root: &'a Path,
    pub config: &'a Path,
    pub bus: &'a str,
    pub threshold: Option<f64>,
    pub fail_on: Option<Severity>,
}

#[derive(Serialize)]
pub(crate) struct SystemdView {
    pub(crate) reachable: bool,
    pub(crate) version: Option<String>,
    /// The exposure table used (systemd version it comes from).
    pub(crate) table: Option<u32>,
    pub(crate) syscall_names: syscalls::Source,
    pub(crate) detail: String,
}

#[derive(Serialize)]
pub(crate) struct Confinement {
    /// enforced | partial | not-enforced | stale | inactive | failed | unconfined
    pub(crate) state: String,
    pub(crate) profile: Option<String>,
    pub(crate) detail: String,
}

#[derive(Serialize)]
pub(crate) struct LayersView {
    pub(crate) landlock: String,
    pub(crate) seccomp: String,
    pub(crate) no_new_privs: bool,
    pub(crate) capabilities: Vec<String>,
    pub(crate) namespaces: Vec<String>,
    pub(crate) families: Vec<String>,
}

#[derive(Serialize)]
pub(crate) struct RowView {
    pub(crate) id: String,
    pub(crate) json_field: String,
    pub(crate) weight: u64,
    pub(crate) range: u64,
    pub(crate) badness: Option<u64>,
    pub(crate) exposure: f64,
    pub(crate) hardend_badness: Option<u64>,
    pub(crate) hardend_exposure: f64,
    /// Filter rows: a syscall of the group the filter lets through (null otherwise).
    pub(crate) example: String,
}

#[derive(Serialize, Clone)]
pub(crate) struct Remedy {
    pub(crate) command: String,
    /// The combined exposure the unit would have (projected from the profile).
    pub(crate) exposure: f64,
}

#[derive(Serialize)]
pub(crate) struct UnitView {
    pub(crate) unit: String,
    pub(crate) systemd_exposure: f64,
    pub(crate) systemd_level: Level,
    pub(crate) exposure: f64,
    pub(crate) level: Level,
    pub(crate) confinement: Confinement,
    pub(crate) user: Option<String>,
    pub(crate) runs_as_root: bool,
    pub(crate) pid: u32,
    pub(crate) listening: Vec<String>,
    pub(crate) layers: Option<LayersView>,
    pub(crate) credits: Vec<Credit>,
    pub(crate) remedy: Option<Remedy>,
    pub(crate) rows: Vec<RowView>,
    #[serde(skip)]
    pub(crate) tenths: u64,
    #[serde(skip)]
    pub(crate) systemd_tenths: u64,
}

#[derive(Serialize)]
pub(crate) struct Improvement {
    pub(crate) unit: String,
    pub(crate) from: f64,
    pub(crate) to: Option<f64>,
    pub(crate) command: Option<String>,
    pub(crate) why: String,
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Verdict {
    Ok,
    Bad,
    Incomplete,
}

#[derive(Serialize)]
pub(crate) struct Stats {
    pub(crate) units: usize,
    pub(crate) elapsed_ms: u64,
    pub(crate) max_rss_kib: u64,
}

#[derive(Serialize)]
pub(crate) struct Report {
    pub(crate) systemd: SystemdView,
    pub(crate) hardend_reachable: bool,
    pub(crate) threshold: f64,
    pub(crate) fail_on: Severity,
    pub(crate) units: Vec<UnitView>,
    pub(crate) improvements: Vec<Improvement>,
    pub(crate) device: Vec<Check>,
    pub(crate) verdict: Verdict,
    pub(crate) stats: Stats,
}

const SYSTEMD: &str = "org.freedesktop.systemd1";

/// The version number at the front of "252.39-1~deb12u2".
fn major(version: &str) -> Option<u32> {
    version
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|s| s.parse().ok())
}

fn service_name(unit: &str) -> Result<String, CliError> {
    let name = if unit.contains('.') {
        unit.to_string()
    } else {
        format!("{unit}.service")
    };
    if !name.ends_with(".service") {
        return Err(CliError::Usage(format!(
            "{unit} is not a service unit (only services are assessed)"
        )));
    }
    Ok(name)
}

struct SystemdUnits {
    version: String,
    units: Vec<SecurityInfo>,
}

async fn systemd_units(one: Option<&str>) -> Result<SystemdUnits, String> {
    let conn = zbus::connection::Builder::system()
        .map_err(|e| e.to_string())?
        .build()
        .await
        .map_err(|e| format!("cannot connect to the system bus: {e}"))?;
    let mgr = "/org/freedesktop/systemd1";
    let reply = conn
        .call_method(
            Some(SYSTEMD),
            mgr,
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &("org.freedesktop.systemd1.Manager", "Version"),
        )
        .await
        .map_err(|e| format!("systemd does not answer: {e}"))?;
    let version: OwnedValue = reply.body().deserialize().map_err(|e| e.to_string())?;
    let version = String::try_from(version).map_err(|e| e.to_string())?;
    let names: Vec<(String, bool)> = match one {
        Some(u) => vec![(u.to_string(), false)],
        None => {
            type UnitRow = (
                String,
                String,
                String,
                String,
                String,
                String,
                zbus::zvariant::OwnedObjectPath,
                u32,
                String,
                zbus::zvariant::OwnedObjectPath,
            );
            let reply = conn
                .call_method(
                    Some(SYSTEMD),
                    mgr,
                    Some("org.freedesktop.systemd1.Manager"),
                    "ListUnits",
                    &(),
                )
                .await
                .map_err(|e| format!("ListUnits: {e}"))?;
            let rows: Vec<UnitRow> = reply.body().deserialize().map_err(|e| e.to_string())?;
            let mut v: Vec<(String, bool)> = rows
                .into_iter()
                .map(|r| r.0)
                .filter(|n| n.ends_with(".service"))
                .map(|n| (n, true))
                .collect();
            v.sort();
            v
        }
    };
    let mut units = Vec::new();
    for (name, listed) in names {
        let reply = conn
            .call_method(
                Some(SYSTEMD),
                mgr,
                Some("org.freedesktop.systemd1.Manager"),
                "LoadUnit",
                &(name.as_str(),),
            )
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        let path: zbus::zvariant::OwnedObjectPath =
            reply.body().deserialize().map_err(|e| e.to_string())?;
        let reply = conn
            .call_method(
                Some(SYSTEMD),
                path.as_str(),
                Some("org.freedesktop.DBus.Properties"),
                "GetAll",
                &("",),
            )
            .await
            .map_err(|e| format!("{name}: cannot read its properties: {e}"))?;
        let props: HashMap<String, OwnedValue> =
            reply.body().deserialize().map_err(|e| e.to_string())?;
        let info = SecurityInfo::from_properties(&props);
        if !info.loaded() {
            if listed {
                continue;
            }
            return Err(format!(
                "{name} is {}: cannot assess it",
                info.load_state.as_deref().unwrap_or("not loaded")
            ));
        }
        // the whole-system listing leaves out oneshot services, as systemd's does
        if listed && info.service_type.as_deref() == Some("oneshot") {
            continue;
        }
        units.push(info);
    }
    Ok(SystemdUnits { version, units })
}

/// What the daemon says: its services and its profile search path.
struct Daemon {
    services: BTreeMap<String, ServiceInfo>,
    profile_path: Vec<PathBuf>,
    integrity: Option<(crate::api::IntegrityState, String)>,
}

fn daemon(bus: &str) -> Option<Daemon> {
    let c = Client::connect(bus).ok()?;
    let m = c.manager().ok()?;
    let list = c.block_on(m.list_services()).ok()?;
    let status = c.block_on(m.status()).ok()?.0;
    let integrity = c
        .integrity()
        .ok()
        .and_then(|i| c.block_on(i.status()).ok())
        .map(|(i,)| (i.state, i.detail));
    Some(Daemon {
        services: list.into_iter().map(|s| (s.unit.clone(), s)).collect(),
        profile_path: status.profile_path.into_iter().map(PathBuf::from).collect(),
        integrity,
    })
}

fn rows(before: &Exposure, after: &Exposure) -> Vec<RowView> {
    before
        .rows
        .iter()
        .zip(&after.rows)
        .map(|(b, a)| RowView {
            id: b.id.clone(),
            json_field: b.json_field.clone(),
            weight: b.weight,
            range: b.range,
            badness: b.badness,
            exposure: tenths_number(b.exposure),
            hardend_badness: a.badness,
            hardend_exposure: tenths_number(a.exposure),
            example: b.example.clone(),
        })
        .collect()
}

struct Context<'a> {
    policy: &'a Policy,
    resolver: &'a Resolver,
    loader: &'a ProfileLoader,
    daemon: Option<&'a Daemon>,
    listeners: &'a [Listener],
}

fn unit_view(cx: &Context, info: &SecurityInfo) -> UnitView {
    let exists = |s: &str| cx.resolver.exists(s);
    let base = assess(cx.policy, info, &exists);
    let svc = cx.daemon.and_then(|d| d.services.get(&info.id));
    let stem = info.id.trim_end_matches(".service");
    let mut confinement = Confinement {
        state: "unconfined".into(),
        profile: None,
        detail: if cx.daemon.is_some() {
            "not confined by hardend".into()
        } else {
            "hardend is not running: confinement unknown".into()
        },
    };
    let mut after = base.clone();
    let mut credits = Vec::new();
    let mut remedy = None;
    let mut layers_view = None;
    if let Some(s) = svc {
        confinement = Confinement {
            state: s.state.to_string(),
            profile: Some(s.profile.clone()),
            detail: s.detail.clone(),
        };
        layers_view = Some(LayersView {
            landlock: s.landlock.clone(),
            seccomp: s.seccomp.clone(),
            no_new_privs: s.kernel.no_new_privs,
            capabilities: s.kernel.cap_bounding.clone(),
            namespaces: s.rules.namespaces.clone(),
            families: s.rules.families.clone(),
        });
        // credits only for the profile the process really runs with
        if s.state.is_confined()
            && let Ok(p) = cx.loader.load(&s.profile)
            && p.policy_hash() == s.profile_hash
        {
            let scored = crate::audit::score(
                cx.policy,
                info,
                Some((&p, &Evidence::Running(s.proven()))),
                &exists,
            );
            after = scored.combined;
            credits = scored.credits;
        } else if s.state.is_confined() {
            confinement.detail = format!(
                "{} (the profile on disk is not the one it runs with: no credit)",
                confinement.detail
            );
        }
    } else if let Ok(p) = cx.loader.load(stem) {
        remedy = projected(cx, info, &p, &base).map(|t| Remedy {
            command: format!("hardenctl confine {} {}", info.id, p.name),
            exposure: tenths_number(t),
        });
    }
    let inodes: std::collections::BTreeSet<u64> = info
        .control_group
        .as_deref()
        .map(|cg| sockets::cgroup_pids(Path::new("/sys/fs/cgroup"), cg))
        .unwrap_or_default()
        .into_iter()
        .flat_map(|pid| sockets::socket_inodes(Path::new("/proc"), pid))
        .collect();
    let listening = cx
        .listeners
        .iter()
        .filter(|l| inodes.contains(&l.inode))
        .map(|l| l.to_string())
        .collect();
    UnitView {
        unit: info.id.clone(),
        systemd_exposure: tenths_number(base.tenths),
        systemd_level: base.level(),
        exposure: tenths_number(after.tenths),
        level: after.level(),
        confinement,
        user: info.user.clone(),
        runs_as_root: info.runs_privileged(),
        pid: info.main_pid,
        listening,
        layers: layers_view,
        credits: credits
            .into_iter()
            .filter(|c| c.basis != Basis::Projected)
            .collect(),
        remedy,
        rows: rows(&base, &after),
        tenths: after.tenths,
        systemd_tenths: base.tenths,
    }
}

/// The combined exposure `profile` would give the unit.
fn projected(cx: &Context, info: &SecurityInfo, p: &Profile, base: &Exposure) -> Option<u64> {
    let exists = |s: &str| cx.resolver.exists(s);
    let (eff, _) = layers::apply(info, p, &Evidence::Projected);
    let t = assess(cx.policy, &eff, &exists).tenths;
    (t < base.tenths).then_some(t)
}

fn improvements(units: &[UnitView]) -> Vec<Improvement> {
    let mut v: Vec<(u64, Improvement)> = Vec::new();
    for u in units {
        let mut why = vec![u.confinement.state.clone()];
        if u.runs_as_root {
            why.push("root".into());
        }
        if !u.listening.is_empty() {
            why.push(format!("listens on {}", u.listening.join(", ")));
        }
        if let Some(r) = &u.remedy {
            let to = (r.exposure * 10.0).round() as u64;
            v.push((
                u.tenths.saturating_sub(to),
                Improvement {
                    unit: u.unit.clone(),
                    from: u.exposure,
                    to: Some(r.exposure),
                    command: Some(r.command.clone()),
                    why: why.join(", "),
                },
            ));
        } else if u.confinement.profile.is_none() && u.tenths >= 50 {
            let mut top: Vec<&RowView> =
                u.rows.iter().filter(|r| r.hardend_exposure > 0.0).collect();
            top.sort_by(|a, b| b.hardend_exposure.total_cmp(&a.hardend_exposure));
            let names: Vec<String> = top.iter().take(3).map(|r| r.id.clone()).collect();
            why.push(format!(
                "no shipped profile: write one (docs/profiles.md) or set {} in a drop-in",
                names.join(", ")
            ));
            v.push((
                0,
                Improvement {
                    unit: u.unit.clone(),
                    from: u.exposure,
                    to: None,
                    command: None,
                    why: why.join(", "),
                },
            ));
        }
    }
    v.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.from.total_cmp(&a.1.from)));
    v.into_iter().map(|(_, i)| i).collect()
}

fn live_checks(daemon: Option<&Daemon>, listeners: &[Listener]) -> Vec<Check> {
    let mut out = device::kernel::checks(&device::kernel::read_live);
    let sys = Path::new("/");
    out.push(device::platform::secure_boot(sys));
    out.push(device::platform::tpm(sys));
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    out.push(device::platform::verity_root(sys, &mi));
    out.push(device::platform::integrity(
        daemon.and_then(|d| d.integrity.clone()),
    ));
    let nft = ["/usr/sbin/nft", "/sbin/nft"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .map(|p| {
            std::process::Command::new(p)
                .args(["list", "ruleset"])
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|e| e.to_string())
                .and_then(|o| {
                    if o.status.success() {
                        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
                    } else {
                        Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
                    }
                })
        });
    let legacy = std::fs::read_to_string("/proc/net/ip_tables_names").unwrap_or_default();
    out.push(device::platform::firewall(nft, &legacy));
    let all: Vec<Listener> = listeners
        .iter()
        .filter(|l| l.all_interfaces())
        .cloned()
        .collect();
    let owners = sockets::owners(Path::new("/proc"), &all);
    let named: Vec<(String, String)> = all
        .iter()
        .map(|l| {
            let who = owners
                .get(&l.inode)
                .map_or("owner unknown".to_string(), |pid| {
                    let comm =
                        std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                    let unit = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                        .unwrap_or_default()
                        .lines()
                        // only a system service's cgroup names a unit (a user may
                        // name cgroups of their own anything)
                        .find_map(|l| {
                            l.split_once("::/system.slice/")
                                .map(|(_, p)| p.split('/').next().unwrap_or("").to_string())
                        })
                        .filter(|u| u.ends_with(".service"))
                        .unwrap_or_default();
                    format!(
                        "{} pid {pid}{}",
                        comm.trim(),
                        if unit.is_empty() {
                            String::new()
                        } else {
                            format!(", {unit}")
                        }
                    )
                });
            (l.to_string(), who)
        })
        .collect();
    out.push(device::platform::listening_all(&named));
    out
}

fn max_rss_kib() -> u64 {
    // the peak resident set so far (VmHWM, in kB)
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// hardend.toml as a path on the device (under `root`); the default may be absent.
pub(crate) fn device_config(root: &Path, config: &Path) -> Result<crate::config::Config, CliError> {
    let on_device = root.join(config.strip_prefix("/").unwrap_or(config));
    if config == Path::new(crate::config::DEFAULT_CONFIG) && !on_device.exists() {
        Ok(crate::config::Config::default())
    } else {
        crate::config::Config::load(&on_device).map_err(|e| CliError::Input(e.to_string()))
    }
}

pub fn run(out: &Output, req: &Request) -> Result<Exit, CliError> {
    let report = gather(req)?;
    if out.json {
        out.json(&report);
    } else {
        print_text(out, &report);
    }
    Ok(if report.verdict == Verdict::Ok {
        Exit::Ok
    } else {
        Exit::Bad
    })
}

/// The whole audit, for `run` and for the readiness report.
pub(crate) fn gather(req: &Request) -> Result<Report, CliError> {
    let start = Instant::now();
    let config = device_config(req.root, req.config)?;
    let threshold = match req.threshold {
        None => config.audit.threshold,
        Some(v) => crate::config::audit_tenths(v).ok_or_else(|| {
            CliError::Usage(format!("--threshold {v}: an exposure between 0.0 and 10.0"))
        })?,
    };
    let fail_on = req.fail_on.unwrap_or(config.audit.fail_on);
    let live = req.root == Path::new("/");
    let one = req.unit.map(service_name).transpose()?;
    let resolver = Resolver::new();
    let daemon_view = if live { daemon(req.bus) } else { None };
    let loader = ProfileLoader::new(
        daemon_view
            .as_ref()
            .map(|d| d.profile_path.clone())
            .unwrap_or_default(),
    );
    let listeners = if live {
        sockets::listeners(Path::new("/proc"))
    } else {
        vec![]
    };
    let mut sd = SystemdView {
        reachable: false,
        version: None,
        table: None,
        syscall_names: resolver.source(),
        detail: String::new(),
    };
    let mut units = Vec::new();
    let mut incomplete = false;
    if live {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Daemon(format!("cannot start the runtime: {e}")))?;
        match rt.block_on(systemd_units(one.as_deref())) {
            Ok(su) => {
                let v = major(&su.version).unwrap_or(0);
                let policy = Policy::for_version(v).map_err(|e| CliError::Daemon(e.to_string()))?;
                sd.reachable = true;
                sd.detail = if Policy::versions().contains(&v) {
                    format!("systemd {v}'s own table")
                } else {
                    format!(
                        "no table for systemd {v}: systemd {}'s is used",
                        policy.version
                    )
                };
                sd.version = Some(su.version.clone());
                sd.table = Some(policy.version);
                let cx = Context {
                    policy: &policy,
                    resolver: &resolver,
                    loader: &loader,
                    daemon: daemon_view.as_ref(),
                    listeners: &listeners,
                };
                units = su.units.iter().map(|i| unit_view(&cx, i)).collect();
            }
            Err(e) if one.is_some() => return Err(CliError::Daemon(e)),
            Err(e) => {
                sd.detail = e;
                incomplete = true;
            }
        }
    } else {
        sd.detail = format!(
            "offline audit of {}: units are not assessed",
            req.root.display()
        );
    }
    units.sort_by(|a, b| b.tenths.cmp(&a.tenths).then(a.unit.cmp(&b.unit)));
    let device_checks = if one.is_some() {
        Vec::new()
    } else {
        let t = Target {
            root: req.root,
            live,
        };
        let mut c = device::file_checks(&t);
        if live {
            c.extend(live_checks(daemon_view.as_ref(), &listeners));
        }
        c
    };
    let above = units.iter().filter(|u| u.tenths > threshold).count();
    let failed = device_checks.iter().filter(|c| c.fails_at(fail_on)).count();
    // a check that could not be made, at the severity that matters, is no pass
    let unknown = device_checks
        .iter()
        .any(|c| c.status == Status::Unknown && c.severity >= fail_on);
    let verdict = if above > 0 || failed > 0 {
        Verdict::Bad
    } else if incomplete || unknown {
        Verdict::Incomplete
    } else {
        Verdict::Ok
    };
    let report = Report {
        hardend_reachable: daemon_view.is_some(),
        threshold: tenths_number(threshold),
        fail_on,
        improvements: improvements(&units),
        stats: Stats {
            units: units.len(),
            elapsed_ms: start.elapsed().as_millis() as u64,
            max_rss_kib: max_rss_kib(),
        },
        systemd: sd,
        units,
        device: device_checks,
        verdict,
    };
    Ok(report)
}

fn print_text(out: &Output, r: &Report) {
    match (&r.systemd.version, r.systemd.table) {
        (Some(v), Some(t)) => println!(
            "systemd {} (exposure table of systemd {t}), syscall names from {}",
            safe(v),
            match r.systemd.syscall_names {
                syscalls::Source::Libseccomp => "libseccomp",
                syscalls::Source::HardendTable => "hardend's table",
            }
        ),
        _ => println!("units: {}", safe(&r.systemd.detail)),
    }
    if !r.hardend_reachable {
        println!("hardend is not running: no confinement is credited");
    }
    if !r.units.is_empty() {
        let mut rows = vec![vec![
            "UNIT".to_string(),
            "SYSTEMD".into(),
            "HARDEND".into(),
            "CONFINED".into(),
            "USER".into(),
            "LISTENS".into(),
        ]];
        for u in &r.units {
            rows.push(vec![
                safe(&u.unit).into_owned(),
                format!(
                    "{} {}",
                    tenths_text(u.systemd_tenths),
                    u.systemd_level.as_str()
                ),
                out.paint(
                    &format!("{} {}", tenths_text(u.tenths), u.level.as_str()),
                    Some(u.tenths < 50),
                ),
                match &u.confinement.profile {
                    Some(p) => format!("{} {}", safe(p), u.confinement.state),
                    None => "-".into(),
                },
                u.user
                    .as_deref()
                    .map_or("root".into(), |s| safe(s).into_owned()),
                if u.listening.is_empty() {
                    "-".into()
                } else {
                    u.listening.join(", ")
                },
            ]);
        }
        print!("{}", columns(&rows));
        // what hardend's layers took off, per confined unit: rows credited, by layer
        for u in r.units.iter().filter(|u| !u.credits.is_empty()) {
            let mut by: BTreeMap<String, usize> = BTreeMap::new();
            for c in &u.credits {
                let basis = match c.basis {
                    Basis::Kernel => "kernel",
                    Basis::Record => "record",
                    Basis::Projected => "projected",
                };
                let layer = serde_json::to_value(c.layer)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                *by.entry(format!("{layer} ({basis})")).or_default() += 1;
            }
            let parts: Vec<String> = by.iter().map(|(k, n)| format!("{k} {n}")).collect();
            println!("  {} credited rows: {}", safe(&u.unit), parts.join(", "));
        }
    }
    if !r.improvements.is_empty() {
        println!("\nbiggest improvements first:");
        for i in &r.improvements {
            match (&i.command, i.to) {
                (Some(c), Some(to)) => println!(
                    "  {}: {:.1} → {to:.1} ({}) → `{c}`",
                    safe(&i.unit),
                    i.from,
                    safe(&i.why)
                ),
                _ => println!("  {}: {:.1} ({})", safe(&i.unit), i.from, safe(&i.why)),
            }
        }
    }
    if !r.device.is_empty() {
        println!("\ndevice checks:");
        let mut checks: Vec<&Check> = r.device.iter().collect();
        checks.sort_by_key(|c| (c.status != Status::Fail, std::cmp::Reverse(c.severity)));
        let rows: Vec<Vec<String>> = checks
            .iter()
            .map(|c| {
                vec![
                    out.paint(
                        c.status.as_str(),
                        match c.status {
                            Status::Pass => Some(true),
                            Status::Fail => Some(false),
                            _ => None,
                        },
                    ),
                    c.severity.as_str().to_string(),
                    c.id.to_string(),
                    safe(&c.finding).into_owned(),
                ]
            })
            .collect();
        print!("{}", columns(&rows));
        for c in checks.iter().filter(|c| c.status == Status::Fail) {
            for item in &c.items {
                println!("  {}: {}", c.id, safe(item));
            }
            if c.count > c.items.len() {
                println!("  {}: … {} more", c.id, c.count - c.items.len());
            }
            println!("  {} → {}", c.id, safe(&c.remedy));
        }
    }
    println!(
        "\nverdict: {} ({} unit(s) above {:.1}, {} failed check(s) at {} or above)",
        match r.verdict {
            Verdict::Ok => "ok",
            Verdict::Bad => "bad",
            Verdict::Incomplete => "incomplete",
        },
        r.units
            .iter()
            .filter(|u| u.tenths > (r.threshold * 10.0).round() as u64)
            .count(),
        r.threshold,
        r.device.iter().filter(|c| c.fails_at(r.fail_on)).count(),
        r.fail_on.as_str()
    );
}
