//! `hardenctl status | services | confine | release | reload | profile list`: talk to the
//! daemon over D-Bus through the proxy generated from the interface definition.

use serde::Serialize;

use super::{CliError, Exit, Output, columns};
use crate::dbus::manager::ManagerProxy;
use crate::dbus::types::ServiceInfo;
use crate::dbus::{BUS_NAME, connect};

/// A connected client.
pub struct Client {
    proxy: ManagerProxy<'static>,
    rt: tokio::runtime::Runtime,
}

pub(crate) fn bus_error(bus: &str, e: zbus::Error) -> CliError {
    match e {
        zbus::Error::MethodError(name, msg, _) => {
            let msg = msg.unwrap_or_default();
            match name.as_str() {
                "org.freedesktop.DBus.Error.AccessDenied" => CliError::AccessDenied(msg),
                "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NameHasNoOwner" => CliError::NotRunning(format!(
                    "hardend is not running ({BUS_NAME} has no owner on the {bus} bus)"
                )),
                other => CliError::Daemon(format!("{msg} ({other})")),
            }
        }
        zbus::Error::FDO(e) => match *e {
            zbus::fdo::Error::AccessDenied(m) => CliError::AccessDenied(m),
            zbus::fdo::Error::ServiceUnknown(_) | zbus::fdo::Error::NameHasNoOwner(_) => {
                CliError::NotRunning(format!(
                    "hardend is not running ({BUS_NAME} has no owner on the {bus} bus)"
                ))
            }
            other => CliError::Daemon(other.to_string()),
        },
        other => CliError::Daemon(other.to_string()),
    }
}

impl Client {
    /// The Verity interface on the same connection.
    pub fn verity(&self) -> Result<crate::dbus::verity::VerityProxy<'static>, CliError> {
        self.rt
            .block_on(crate::dbus::verity::VerityProxy::new(
                self.proxy.inner().connection(),
            ))
            .map_err(|e| CliError::Daemon(e.to_string()))
    }

    /// The Identity interface on the same connection.
    pub fn identity(&self) -> Result<crate::dbus::identity::IdentityProxy<'static>, CliError> {
        self.rt
            .block_on(crate::dbus::identity::IdentityProxy::new(
                self.proxy.inner().connection(),
            ))
            .map_err(|e| CliError::Daemon(e.to_string()))
    }

    /// The bus connection.
    pub fn connection(&self) -> &zbus::Connection {
        self.proxy.inner().connection()
    }

    /// Runs a call on the client's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Connects to `bus` ("system" or an address) and checks that hardend is there.
    pub fn connect(bus: &str) -> Result<Client, CliError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Daemon(format!("cannot start the runtime: {e}")))?;
        let proxy = rt.block_on(async {
            let conn = connect(bus).await.map_err(|e| {
                CliError::NotRunning(format!("cannot connect to the {bus} bus: {e}"))
            })?;
            let dbus = zbus::fdo::DBusProxy::new(&conn)
                .await
                .map_err(|e| bus_error(bus, e))?;
            let name = zbus::names::BusName::try_from(BUS_NAME)
                .map_err(|e| CliError::Daemon(e.to_string()))?;
            if !dbus
                .name_has_owner(name)
                .await
                .map_err(|e| bus_error(bus, e.into()))?
            {
                return Err(CliError::NotRunning(format!(
                    "hardend is not running ({BUS_NAME} has no owner on the {bus} bus)"
                )));
            }
            ManagerProxy::new(&conn)
                .await
                .map_err(|e| bus_error(bus, e))
        })?;
        Ok(Client { proxy, rt })
    }
}

fn state_good(s: &str) -> Option<bool> {
    match s {
        "enforced" => Some(true),
        "not-enforced" | "stale" | "failed" => Some(false),
        _ => None,
    }
}

pub fn status(out: &Output, bus: &str) -> Result<Exit, CliError> {
    let c = Client::connect(bus)?;
    let (s,) =
        c.rt.block_on(c.proxy.status())
            .map_err(|e| bus_error(bus, e))?;
    if out.json {
        out.json(&s);
    } else {
        let rows = vec![
            vec![
                "hardend".into(),
                format!(
                    "{} ({})",
                    s.version,
                    out.paint(&s.state, Some(s.state == "ok"))
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
            println!("{}", out.paint(&s.detail, Some(false)));
        }
    }
    Ok(if s.state == "ok" { Exit::Ok } else { Exit::Bad })
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
        "SOURCE".into(),
    ]];
    for s in services {
        rows.push(vec![
            s.unit.clone(),
            s.profile.clone(),
            out.paint(&s.state, state_good(&s.state)),
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
            s.source.clone(),
        ]);
    }
    let mut text = columns(&rows);
    for s in services.iter().filter(|s| s.state != "enforced") {
        text.push_str(&format!("{}: {}\n", s.unit, s.detail));
    }
    text
}

pub fn services(out: &Output, bus: &str) -> Result<Exit, CliError> {
    let c = Client::connect(bus)?;
    let list =
        c.rt.block_on(c.proxy.list_services())
            .map_err(|e| bus_error(bus, e))?;
    if out.json {
        out.json(&serde_json::json!({ "services": list }));
    } else if list.is_empty() {
        println!("no units have a hardend profile (hardenctl confine UNIT PROFILE)");
    } else {
        print!("{}", services_table(out, &list));
    }
    Ok(
        if list.iter().any(|s| state_good(&s.state) == Some(false)) {
            Exit::Bad
        } else {
            Exit::Ok
        },
    )
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
    let (info,) =
        c.rt.block_on(c.proxy.confine(unit, profile, runtime, no_restart))
            .map_err(|e| bus_error(bus, e.into()))?;
    if out.json {
        out.json(&info);
    } else {
        print!("{}", services_table(out, std::slice::from_ref(&info)));
    }
    Ok(if state_good(&info.state) == Some(false) {
        Exit::Bad
    } else {
        Exit::Ok
    })
}

pub fn release(out: &Output, bus: &str, unit: &str, no_restart: bool) -> Result<Exit, CliError> {
    let c = Client::connect(bus)?;
    c.rt.block_on(c.proxy.release(unit, no_restart))
        .map_err(|e| bus_error(bus, e.into()))?;
    if out.json {
        out.json(&serde_json::json!({ "released": unit }));
    } else {
        println!("{unit}: released");
    }
    Ok(Exit::Ok)
}

pub fn reload(out: &Output, bus: &str) -> Result<Exit, CliError> {
    let c = Client::connect(bus)?;
    c.rt.block_on(c.proxy.reload())
        .map_err(|e| bus_error(bus, e.into()))?;
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
    let list = match c.rt.block_on(c.proxy.list_profiles()) {
        Ok(l) => l,
        Err(e) => return Some(Err(bus_error(bus, e))),
    };
    #[derive(Serialize)]
    struct Doc<'a> {
        source: &'static str,
        profiles: &'a [crate::dbus::types::ProfileInfo],
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
    let (info,) = c.rt.block_on(v.check()).map_err(|e| bus_error(bus, e))?;
    if out.json {
        out.json(&info);
    } else {
        let rows = vec![
            vec![
                "state".into(),
                out.paint(&info.state, Some(info.state == "verified")),
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
        println!("{}", info.detail);
    }
    Ok(if info.state == "verified" {
        Exit::Ok
    } else {
        Exit::Bad
    })
}
