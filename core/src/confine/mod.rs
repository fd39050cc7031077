//! Confinement: apply a resolved profile to the current process.
//!
//! [`prepare`] does every fallible step (kernel ABI check, opening rule paths, compiling the
//! BPF filter) and predicts the report; [`Prepared::enforce`] then only sets no_new_privs,
//! restricts with Landlock and installs the filter. Callers write the enforcement record in
//! between, while they can still write to the runtime directory.

pub mod bpf;
pub mod caps;
pub mod exec;
pub mod landlock;
pub mod mountview;
pub mod paths;
pub mod record;
pub mod rules;
pub mod seccomp;
pub mod sockets;

use serde::{Deserialize, Serialize};

use std::path::Path;

use crate::profile::process::Namespace;
use crate::profile::syscalls::Arch;
use crate::profile::{Profile, ProfileError, ProfileLoader};

pub use self::caps::CapsReport;
pub use self::landlock::{LandlockReport, LandlockStatus};
pub use self::rules::FilterContext;
pub use self::seccomp::SeccompReport;

/// Errors while preparing or enforcing confinement.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error(transparent)]
    Landlock(#[from] self::landlock::LandlockError),
    #[error(transparent)]
    Seccomp(#[from] self::seccomp::SeccompError),
    #[error(transparent)]
    Caps(#[from] self::caps::CapsError),
    #[error(transparent)]
    MountView(#[from] self::mountview::MountViewError),
    #[error("unsupported architecture {0}: seccomp filters are built for x86_64 and aarch64")]
    UnsupportedArch(&'static str),
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(std::io::Error),
    #[error(
        "the service starts as root without CAP_SYS_ADMIN (the unit's CapabilityBoundingSet= lacks it?): hardend-exec cannot make its read-only view or keep control sockets out of its reach, and root owns the system's files, so file permissions are no boundary for it; add CAP_SYS_ADMIN to CapabilityBoundingSet= (hardend-exec drops it before the service runs unless the profile keeps it) or run the service as another User="
    )]
    RootWithoutMountView,
}

/// Knobs that do not come from the profile.
#[derive(Clone, Debug, Default)]
pub struct ConfineOptions {
    /// Use at most this Landlock ABI (to exercise the old-kernel path on a new kernel).
    pub max_landlock_abi: Option<u8>,
    /// The profile path: the other profiles' write trees are where no link is trusted.
    pub profile_path: Vec<std::path::PathBuf>,
}

/// The socket rules in force (`[network]`, enforced by the seccomp filter).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkReport {
    pub families: Vec<String>,
    pub udp: bool,
    /// TCP sockets only (no MPTCP, SCTP, raw, ICMP) for inet and inet6.
    pub tcp_only: bool,
    /// MSG_FASTOPEN refused (with connect_tcp).
    pub no_fastopen: bool,
}

/// Capabilities and namespaces in force (`[process]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessReport {
    pub capabilities: CapsReport,
    pub namespaces: Vec<Namespace>,
}

/// What was (or will be) enforced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfinementReport {
    pub landlock: LandlockReport,
    pub seccomp: SeccompReport,
    #[serde(default)]
    pub network: NetworkReport,
    #[serde(default)]
    pub process: ProcessReport,
    /// The wrapper's mount namespace: read-only view, hidden sockets.
    #[serde(default)]
    pub mount_view: self::mountview::MountViewReport,
    pub no_new_privs: bool,
}

impl ConfinementReport {
    /// Everything that is not enforced as the profile says, one sentence each: Landlock
    /// rights the kernel lacks and the gaps of the layers around it.
    pub fn gaps(&self) -> Vec<String> {
        let mut g: Vec<String> = self
            .landlock
            .missing
            .iter()
            .map(|m| format!("{} (Landlock ABI {}): {}", m.right, m.needs_abi, m.effect))
            .collect();
        g.extend(self.mount_view.gaps.iter().cloned());
        g
    }
}

/// A profile turned into kernel objects, ready to enforce.
#[derive(Debug)]
pub struct Prepared {
    landlock: Option<self::landlock::PreparedLandlock>,
    view: self::mountview::MountViewPlan,
    bpf: seccompiler::BpfProgram,
    keep: ::caps::CapsHashSet,
    pub report: ConfinementReport,
}

/// Prepares `profile` for the running kernel and architecture, for this process (its PID
/// is the service's after exec).
pub fn prepare(profile: &Profile, opts: &ConfineOptions) -> Result<Prepared, ConfineError> {
    let arch = Arch::native().ok_or(ConfineError::UnsupportedArch(std::env::consts::ARCH))?;
    // the sockets it may connect to: the profile's, and systemd's notify socket of a
    // Type=notify unit (an abstract one, "@...", is Landlock's scope question)
    let mut unix_grants = profile.network.unix_connect.clone();
    if let Some(n) = std::env::var_os("NOTIFY_SOCKET")
        && n.as_encoded_bytes().first() == Some(&b'/')
    {
        unix_grants.insert(std::path::PathBuf::from(n));
    }
    let own_trees: Vec<std::path::PathBuf> = profile
        .landlock
        .as_ref()
        .map(|l| l.write.iter().cloned().collect())
        .unwrap_or_default();
    let guard = self::paths::LinkGuard::new(&own_trees, &opts.profile_path);
    let landlock = profile
        .landlock
        .as_ref()
        .map(|l| self::landlock::prepare(l, &unix_grants, opts.max_landlock_abi, &guard))
        .transpose()?;
    let landlock_unix = landlock
        .as_ref()
        .is_some_and(|l| l.report.effective_abi >= self::landlock::RESOLVE_UNIX_ABI);
    let write_trees: Vec<std::path::PathBuf> = landlock
        .as_ref()
        .map(|l| l.write_trees.iter().map(|w| w.resolved.clone()).collect())
        .unwrap_or_default();
    let exec_trees: Vec<std::path::PathBuf> = profile
        .landlock
        .as_ref()
        .map(|l| l.read_exec.iter().cloned().collect())
        .unwrap_or_default();
    let mount_allowed = self::mountview::can_mount();
    if !mount_allowed && rustix::process::geteuid().is_root() {
        return Err(ConfineError::RootWithoutMountView);
    }
    let view = self::mountview::plan(
        &self::mountview::ViewInput {
            landlock: landlock.is_some(),
            landlock_unix,
            unix_grants: &unix_grants,
            write_trees: &write_trees,
            exec_trees: &exec_trees,
            guard: &guard,
        },
        mount_allowed,
    );
    let ctx = FilterContext {
        pid: std::process::id(),
    };
    let (bpf, seccomp_report) = self::seccomp::compile(profile, arch, &ctx)?;
    let grant = self::caps::parse(&profile.process.capabilities)?;
    let permitted = ::caps::read(None, ::caps::CapSet::Permitted).map_err(|source| {
        self::caps::CapsError::Set {
            set: "permitted",
            source,
        }
    })?;
    let keep: ::caps::CapsHashSet = grant.intersection(&permitted).copied().collect();
    let sorted = |set: &::caps::CapsHashSet| {
        let mut v: Vec<String> = set.iter().map(|c| c.to_string()).collect();
        v.sort();
        v
    };
    let capabilities = CapsReport {
        kept: sorted(&keep),
        not_held: sorted(&grant.difference(&permitted).copied().collect()),
        bounding_reduced: permitted.contains(&::caps::Capability::CAP_SETPCAP),
    };
    let landlock_report = landlock
        .as_ref()
        .map(|l| l.report.clone())
        .unwrap_or_else(|| self::landlock::not_configured(self::landlock::kernel_abi()));
    let network = NetworkReport {
        families: profile.network.families.iter().cloned().collect(),
        udp: profile.network.udp,
        tcp_only: true,
        no_fastopen: profile
            .landlock
            .as_ref()
            .is_some_and(|l| l.connect_tcp.is_some()),
    };
    let mount_view = view.report.clone();
    Ok(Prepared {
        landlock,
        view,
        bpf,
        keep,
        report: ConfinementReport {
            landlock: landlock_report,
            seccomp: seccomp_report,
            network,
            process: ProcessReport {
                capabilities,
                namespaces: profile.process.namespaces.iter().copied().collect(),
            },
            mount_view,
            no_new_privs: true,
        },
    })
}

fn set_no_new_privs() -> Result<(), ConfineError> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integer arguments and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(ConfineError::NoNewPrivs(std::io::Error::last_os_error()));
    }
    Ok(())
}

impl Prepared {
    /// Enforces on the calling thread: the mount view (while the capability for it is still
    /// there and before Landlock forbids mount changes), capabilities reduced, no_new_privs,
    /// then Landlock, then seccomp (last, so the filter need not allow the calls before it).
    /// Call it from a single-threaded process: these restrict only the calling thread.
    pub fn enforce(self) -> Result<ConfinementReport, ConfineError> {
        let trees = self
            .landlock
            .as_ref()
            .map(|l| l.write_trees.as_slice())
            .unwrap_or(&[]);
        self::mountview::apply(&self.view, trees)?;
        self::caps::reduce(&self.keep)?;
        set_no_new_privs()?;
        if let Some(l) = self.landlock {
            l.enforce()?;
        }
        self::seccomp::install(&self.bpf)?;
        Ok(self.report)
    }
}

/// Validates one file completely: load with includes, then compile the seccomp filter for
/// every supported architecture.
pub fn check_profile_file(
    loader: &ProfileLoader,
    file: &Path,
) -> Result<(Profile, Vec<String>), ProfileError> {
    check_profile(loader.load_file(file)?)
}

/// Validates a loaded profile: its seccomp filter must compile for every supported
/// architecture. Returns the profile and the notes worth showing.
pub fn check_profile(profile: Profile) -> Result<(Profile, Vec<String>), ProfileError> {
    let mut notes = Vec::new();
    // any PID: the rules only compare against it
    let ctx = FilterContext { pid: 1 };
    {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            match self::seccomp::compile(&profile, arch, &ctx) {
                Ok((_, report)) => notes.extend(report.notes),
                Err(e) => {
                    return Err(ProfileError::invalid(
                        &profile.source,
                        1,
                        "seccomp",
                        format!("filter for {arch}: {e}"),
                    ));
                }
            }
        }
    }
    if profile.landlock.is_none() {
        notes.push("no [landlock] section: files and network are not restricted".into());
    }
    if profile.seccomp.is_none() {
        notes.push(
            "no [seccomp] section: no syscall allow-list (hardend's rules for sockets, namespaces, other processes and side doors still apply)"
                .into(),
        );
    }
    if let Err(e) = self::caps::parse(&profile.process.capabilities) {
        return Err(ProfileError::invalid(
            &profile.source,
            1,
            "process.capabilities",
            e.to_string(),
        ));
    }
    notes.sort();
    notes.dedup();
    Ok((profile, notes))
}
