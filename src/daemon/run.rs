//! Startup order and the main loop: configuration, bus connection, interfaces served before
//! the name is requested, READY=1 only once the name is owned, then verification on a timer
//! and on systemd job events, SIGHUP reload and SIGTERM exit.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::signal::unix::{SignalKind, signal};
use zbus::fdo::RequestNameFlags;

use super::Pillars;
use super::bus::{self, events};
use super::identity::IdentityService;
use super::integrity::IntegrityService;
use super::metrics::MetricsService;
use super::services::ServiceManager;
use super::verity::VerityService;
use super::vulns::VulnsService;
use crate::api::BUS_NAME;
use crate::api::message_ids::{DAEMON_READY, VERITY_CORRUPTION};
use crate::config::{Config, ConfigError};
use crate::fsutil;
use crate::systemd::client::Systemd;

/// Errors that stop the daemon from starting.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot connect to the bus {bus}: {source}")]
    Connect { bus: String, source: zbus::Error },
    #[error("cannot own {BUS_NAME} on {bus}: {source}")]
    Name { bus: String, source: zbus::Error },
    #[error("D-Bus: {0}")]
    Bus(#[from] zbus::Error),
    #[error("cannot create {}: {source}", path.display())]
    RuntimeDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("signals: {0}")]
    Signal(std::io::Error),
    #[error("integrity: {0}")]
    Integrity(#[from] crate::integrity::IntegrityError),
}

/// How long to wait for the bus at startup.
const BUS_TIMEOUT: Duration = Duration::from_secs(30);

/// Command-line overrides.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub config: PathBuf,
    pub bus: Option<String>,
}

/// Sends a state to systemd when started with `Type=notify` (no-op otherwise).
fn notify(states: &[sd_notify::NotifyState]) {
    let _ = sd_notify::notify(false, states);
}

/// Sets up logging: structured journal entries under systemd, text on stderr otherwise.
pub fn init_logging() {
    use tracing_subscriber::prelude::*;
    // `HARDEND_LOG=debug` or `HARDEND_LOG=info,hardend::integrity=debug` (targets and levels
    // only: no regex engine in the daemon for a log filter)
    let filter: tracing_subscriber::filter::Targets = std::env::var("HARDEND_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new()
                .with_default(tracing::Level::INFO)
                .with_target("tss_esapi", tracing::Level::WARN)
        });
    let journald = std::env::var_os("JOURNAL_STREAM")
        .and_then(|_| tracing_journald::layer().ok())
        .map(|l| {
            l.with_field_prefix(None)
                .with_syslog_identifier("hardend".into())
        });
    match journald {
        Some(layer) => tracing_subscriber::registry()
            .with(filter)
            .with(layer)
            .init(),
        None => tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_target(false)
                    // colour only on a terminal, not in log files
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .init(),
    }
}

/// The kernel's dm-verity corruption uevents, read on their own thread. Without them (no
/// netlink, e.g. a restrictive sandbox) corruption is still found by the status poll.
fn verity_uevents(
    poll_secs: u64,
) -> tokio::sync::mpsc::Receiver<crate::verity::uevent::VerityError> {
    let (tx, rx) = tokio::sync::mpsc::channel(128);
    match crate::verity::uevent::UeventSocket::open() {
        Ok(sock) => {
            let spawned = std::thread::Builder::new()
                .name("hardend-uevents".into())
                .spawn(move || {
                    loop {
                        match sock.next() {
                            Ok(u) => {
                                if let Some(e) = u.verity_error()
                                    && tx.blocking_send(e).is_err()
                                {
                                    return;
                                }
                            }
                            Err(e) => {
                                tracing::warn!("kernel uevents: {e}");
                                std::thread::sleep(Duration::from_secs(1));
                            }
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(
                    "cannot read kernel uevents ({e}); dm-verity corruption is found by polling every {poll_secs} s"
                );
            }
        }
        Err(e) => tracing::warn!(
            "cannot read kernel uevents ({e}); dm-verity corruption is found by polling every {poll_secs} s"
        ),
    }
    rx
}

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(opts: Options) -> Result<(), RunError> {
    let mut config = Config::load(&opts.config)?;
    if let Some(b) = &opts.bus {
        config.daemon.bus = b.clone();
    }
    let records = config.daemon.records_dir();
    if !records.is_dir() {
        fsutil::create_dir_all_mode(&records, 0o755).map_err(|source| RunError::RuntimeDir {
            path: records.clone(),
            source,
        })?;
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&records, std::fs::Permissions::from_mode(0o1733));
    }
    let bus = config.daemon.bus.clone();
    // A bus that accepts the connection but never answers must not hang startup forever.
    let no_answer = |_| RunError::Connect {
        bus: bus.clone(),
        source: zbus::Error::Failure(format!("no answer within {BUS_TIMEOUT:?}")),
    };
    let conn = tokio::time::timeout(BUS_TIMEOUT, crate::api::connect(&bus))
        .await
        .map_err(no_answer)?
        .map_err(|source| RunError::Connect {
            bus: bus.clone(),
            source,
        })?;
    let probe = tokio::time::timeout(BUS_TIMEOUT, Systemd::on(&conn))
        .await
        .map_err(no_answer)?;
    let systemd = match probe {
        Ok(sd) => Some(sd),
        Err(e) => {
            tracing::warn!("{e}; units are verified from enforcement records only");
            None
        }
    };
    let verify_interval = config.daemon.verify_interval;
    let scan_interval = config.integrity.scan_interval;
    let pillars = Arc::new(Pillars {
        config_source: config.source.clone(),
        integrity: IntegrityService::new(&config.integrity)?,
        identity: IdentityService::new(config.identity.clone()),
        verity: VerityService::new(config.verity.clone()),
        vulns: VulnsService::new(config.vulns.clone()),
        metrics: MetricsService::new(config.metrics.clone()),
        services: ServiceManager::new(
            config.daemon.clone(),
            config.services.clone(),
            systemd.clone(),
        ),
        kernel_abi: crate::confine::landlock::kernel_abi(),
    });
    let emitter = bus::serve(&conn, &pillars).await?;
    if let Some(c) = pillars.verity.refresh().await {
        events::verity_corruption(&emitter, &c).await;
    }
    if let Some(c) = pillars.identity.refresh().await {
        events::identity_changed(&emitter, &c).await;
    }
    // integrity violations reach the bus through one task, in order
    let (violations_tx, mut violations_rx) =
        tokio::sync::mpsc::channel::<crate::integrity::Violation>(1024);
    let sig = emitter.clone();
    tokio::spawn(async move {
        while let Some(v) = violations_rx.recv().await {
            events::integrity_violation(&sig, &v).await;
        }
    });
    pillars
        .integrity
        .start(pillars.identity.tpm(), violations_tx)
        .await;

    // the feed: judged at once, then whenever its files change (its own task: a full feed
    // takes a second or two, and the main loop must not wait for it)
    let (p, sig) = (pillars.clone(), emitter.clone());
    tokio::spawn(async move {
        let mut first = true;
        loop {
            if let Some(ev) = p.vulns.check(first).await {
                events::vulns_evaluated(&sig, &ev).await;
                first = false;
            }
            tokio::time::sleep(p.vulns.interval()).await;
        }
    });

    // hardend.prom: looked at every two seconds, written when it changed
    let p = pillars.clone();
    tokio::spawn(async move {
        loop {
            p.metrics.tick(&p).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });

    pillars.services.verify_all().await;
    tokio::time::timeout(
        BUS_TIMEOUT,
        conn.request_name_with_flags(BUS_NAME, RequestNameFlags::DoNotQueue.into()),
    )
    .await
    .map_err(no_answer)?
    .map_err(|source| RunError::Name {
        bus: bus.clone(),
        source,
    })?;
    for e in pillars.services.apply_configured().await {
        tracing::warn!("[services]: {e}");
    }
    events::enforcement_changes(&emitter, &pillars.services.verify_all().await).await;
    tracing::info!(message_id = DAEMON_READY, bus = %bus, "hardend {} ready: {}", env!("CARGO_PKG_VERSION"), pillars.status_line());
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&pillars.status_line()),
    ]);

    let mut uevents = verity_uevents(verify_interval);
    let mut term = signal(SignalKind::terminate()).map_err(RunError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(RunError::Signal)?;
    let mut hup = signal(SignalKind::hangup()).map_err(RunError::Signal)?;
    let interval = Duration::from_secs(verify_interval);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    let scan_every = Duration::from_secs(scan_interval);
    let mut scan_tick =
        tokio::time::interval_at(tokio::time::Instant::now() + scan_every, scan_every);
    let mut jobs = match &systemd {
        Some(sd) => match sd.job_events().await {
            Ok(s) => Some(Box::pin(s)),
            Err(e) => {
                tracing::warn!("cannot follow systemd jobs: {e}; relying on the timer");
                None
            }
        },
        None => None,
    };

    // The loop is one future: SIGTERM drops it wherever it waits (a verification, a TPM
    // call), so the daemon ends within moments whatever is pending.
    let main_loop = async {
        loop {
            let job = async {
                match jobs.as_mut() {
                    Some(s) => s.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = hup.recv() => {
                    notify(&[sd_notify::NotifyState::Reloading]);
                    match pillars.reload().await {
                        Ok(()) => tracing::info!("configuration reloaded"),
                        Err(e) => tracing::error!("reload failed, keeping the previous configuration: {e}"),
                    }
                    events::after_reload(&pillars, &emitter).await;
                    notify(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status(&pillars.status_line())]);
                }
                Some(e) = uevents.recv() => {
                    tracing::error!(
                        message_id = VERITY_CORRUPTION,
                        device = %e.device,
                        block = e.block,
                        "kernel: dm-verity corruption on {}: {} block {}",
                        e.device,
                        if e.metadata { "hash" } else { "data" },
                        e.block
                    );
                    if let Some(c) = pillars.verity.refresh().await {
                        events::verity_corruption(&emitter, &c).await;
                    }
                }
                _ = scan_tick.tick() => {
                    let p = pillars.clone();
                    tokio::spawn(async move { p.integrity.periodic_scan().await });
                }
                _ = tick.tick() => {
                    // the kernel's corruption uevents stop after 100 errors; the status poll
                    // catches every later state
                    if let Some(c) = pillars.verity.refresh().await {
                        events::verity_corruption(&emitter, &c).await;
                    }
                    if let Some(c) = pillars.identity.refresh().await {
                        events::identity_changed(&emitter, &c).await;
                    }
                    events::enforcement_changes(&emitter, &pillars.services.verify_all().await).await;
                    notify(&[sd_notify::NotifyState::Status(&pillars.status_line())]);
                }
                Some(unit) = job => {
                    if pillars.services.is_assigned(&unit).await {
                        // The job finished; give the new MainPID a moment to exec the service.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        if let Some(change) = pillars.services.verify_unit(&unit).await {
                            events::enforcement_changed(&emitter, &change).await;
                        }
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        () = main_loop => {}
    }
    pillars.integrity.stop();
    notify(&[sd_notify::NotifyState::Stopping]);
    tracing::info!("hardend stopping");
    Ok(())
}
