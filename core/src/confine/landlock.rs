//! Landlock: turn a profile's `[landlock]` section into a ruleset for the running kernel.
//!
//! We decide ourselves which rights the kernel can enforce (from its ABI, optionally capped
//! lower for testing the old-kernel path) and ask the `landlock` crate for exactly those with
//! `HardRequirement`, so nothing is ever dropped silently: what cannot be enforced is named in
//! the report, and `min_abi` turns "cannot" into a refusal.

use std::io;
use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath,
    Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, Scope,
};
use serde::{Deserialize, Serialize};

use crate::profile::{LandlockPolicy, ScopeKind};

/// Highest ABI whose access rights hardend maps profile keys onto. ABI 7 and 8 add no file
/// rights (logging flags, used when available); ABI 9 adds connecting to pathname UNIX
/// sockets (`network.unix_connect`).
const MAX_RIGHTS_ABI: u8 = 9;

/// The Landlock ABI that restricts connecting to pathname UNIX sockets.
pub const RESOLVE_UNIX_ABI: u8 = 9;

/// Errors while building the Landlock ruleset.
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    #[error(
        "Landlock ABI {available} is below the profile's min_abi {required}{}; refusing to run unconfined",
        cap_note(*capped_at)
    )]
    AbiTooOld {
        required: u8,
        available: u8,
        capped_at: Option<u8>,
    },
    #[error("cannot open {} for a Landlock rule: {source}", path.display())]
    OpenPath { path: PathBuf, source: io::Error },
    #[error("rule path {0}")]
    RulePath(#[from] super::paths::PathError),
    #[error("Landlock: {0}")]
    Ruleset(#[from] landlock::RulesetError),
}

fn cap_note(cap: Option<u8>) -> String {
    cap.map(|c| format!(" (capped at {c} by --max-landlock-abi)"))
        .unwrap_or_default()
}

/// Overall Landlock outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LandlockStatus {
    /// Everything the profile asks for is enforced.
    Full,
    /// Enforced, but some rights the profile relies on are not available (see `missing`).
    Partial,
    /// The profile has no `[landlock]` section.
    None,
}

/// A right the profile relies on that this kernel (or the ABI cap) cannot enforce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingRight {
    pub right: String,
    pub needs_abi: u8,
    pub effect: String,
}

/// A path named by the profile that was not added as a rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedPath {
    pub path: PathBuf,
    pub reason: String,
}

/// What Landlock enforces for this process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockReport {
    pub status: LandlockStatus,
    /// The kernel's Landlock ABI (0: no Landlock).
    pub kernel_abi: u8,
    /// The ABI actually used: the kernel's, or lower with `--max-landlock-abi`.
    pub effective_abi: u8,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub abi_cap: Option<u8>,
    pub min_abi: u8,
    pub missing: Vec<MissingRight>,
    pub skipped_paths: Vec<SkippedPath>,
    pub fs_rules: usize,
    pub net_rules: usize,
    pub scopes: Vec<ScopeKind>,
    /// Denials after exec are audited (ABI 7 `LOG_NEW_EXEC_ON`).
    pub audit_after_exec: bool,
}

/// The kernel's Landlock ABI version, 0 when Landlock is absent or disabled.
pub fn kernel_abi() -> u8 {
    // SAFETY: landlock_create_ruleset with a NULL attribute, size 0 and the VERSION flag only
    // returns the ABI version (or -1 with errno); it reads no memory and creates no fd.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    u8::try_from(v).unwrap_or(0)
}

fn abi_of(v: u8) -> ABI {
    ABI::from(i32::from(v))
}

/// Rights for files (not directories): the kernel rejects directory-only rights on files.
fn file_mask() -> BitFlags<AccessFs> {
    AccessFs::Execute
        | AccessFs::WriteFile
        | AccessFs::ReadFile
        | AccessFs::Truncate
        | AccessFs::IoctlDev
}

fn read_rights() -> BitFlags<AccessFs> {
    AccessFs::ReadFile | AccessFs::ReadDir
}

/// What `write` grants: change and create regular files, directories, symlinks, sockets
/// and FIFOs, rename within the write trees (refer), truncate, ioctls on device files, and
/// connecting to the sockets in them (its own). Never device node creation
/// (make_char/make_block).
fn write_rights(handled: BitFlags<AccessFs>) -> BitFlags<AccessFs> {
    let all = read_rights()
        | AccessFs::WriteFile
        | AccessFs::RemoveDir
        | AccessFs::RemoveFile
        | AccessFs::MakeDir
        | AccessFs::MakeReg
        | AccessFs::MakeSock
        | AccessFs::MakeFifo
        | AccessFs::MakeSym
        | AccessFs::Refer
        | AccessFs::Truncate
        | AccessFs::IoctlDev
        | AccessFs::ResolveUnix;
    all & handled
}

/// One rule: a path and the rights granted beneath it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRule {
    pub path: PathBuf,
    pub access: BitFlags<AccessFs>,
}

/// The file rules for `policy` when `handled` rights are enforced: read, read_exec and
/// write trees, plus `unix` (the sockets the service may connect to) when the kernel
/// handles pathname UNIX sockets. Pure, so the ABI 9 plan is testable on any kernel.
pub fn plan_rules(
    policy: &LandlockPolicy,
    unix: &std::collections::BTreeSet<PathBuf>,
    handled: BitFlags<AccessFs>,
) -> Vec<PlannedRule> {
    let read_exec = read_rights() | AccessFs::Execute;
    let mut out = Vec::new();
    for (paths, access) in [
        (&policy.read, read_rights() & handled),
        (&policy.read_exec, read_exec & handled),
        (&policy.write, write_rights(handled)),
    ] {
        for p in paths {
            out.push(PlannedRule {
                path: p.clone(),
                access,
            });
        }
    }
    if handled.contains(AccessFs::ResolveUnix) {
        for p in unix {
            out.push(PlannedRule {
                path: p.clone(),
                access: AccessFs::ResolveUnix.into(),
            });
        }
    }
    out
}

/// A ruleset ready to be enforced, and the report describing it.
pub struct PreparedLandlock {
    ruleset: RulesetCreated,
    pub report: LandlockReport,
    /// The write trees as opened (directories and regular files; devices excluded): the
    /// mount view makes exactly these writable.
    pub write_trees: Vec<super::paths::Opened>,
}

impl std::fmt::Debug for PreparedLandlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedLandlock")
            .field("report", &self.report)
            .finish()
    }
}

/// The report for a profile without a `[landlock]` section.
pub fn not_configured(kernel: u8) -> LandlockReport {
    LandlockReport {
        status: LandlockStatus::None,
        kernel_abi: kernel,
        effective_abi: 0,
        abi_cap: None,
        min_abi: 0,
        missing: Vec::new(),
        skipped_paths: Vec::new(),
        fs_rules: 0,
        net_rules: 0,
        scopes: Vec::new(),
        audit_after_exec: false,
    }
}

/// Rights the profile relies on that `effective` cannot enforce.
fn missing_rights(policy: &LandlockPolicy, effective: u8) -> Vec<MissingRight> {
    let mut missing = Vec::new();
    let mut need = |right: &str, abi: u8, effect: &str| {
        if effective < abi {
            missing.push(MissingRight {
                right: right.into(),
                needs_abi: abi,
                effect: effect.into(),
            });
        }
    };
    need(
        "fs.truncate",
        3,
        "files outside `write` can still be truncated (truncate(2), O_TRUNC)",
    );
    need(
        "fs.ioctl_dev",
        5,
        "ioctl(2) on device files opened by the service is not restricted",
    );
    if policy.bind_tcp.is_some() {
        need(
            "net.bind_tcp",
            4,
            "TCP bind is not restricted to `bind_tcp`",
        );
    }
    if policy.connect_tcp.is_some() {
        need(
            "net.connect_tcp",
            4,
            "TCP connect is not restricted to `connect_tcp`",
        );
    }
    for s in &policy.scope {
        match s {
            ScopeKind::AbstractUnixSocket => need(
                "scope.abstract-unix-socket",
                6,
                "abstract UNIX sockets outside the sandbox can be reached",
            ),
            ScopeKind::Signal => need(
                "scope.signal",
                6,
                "signals can be sent to processes outside the sandbox",
            ),
        }
    }
    missing
}

/// Builds the ruleset for `policy` without enforcing it. All fallible work (opening paths,
/// creating the ruleset fd) happens here, so that enforcing afterwards is a single syscall.
pub fn prepare(
    policy: &LandlockPolicy,
    unix: &std::collections::BTreeSet<PathBuf>,
    abi_cap: Option<u8>,
    guard: &super::paths::LinkGuard,
) -> Result<PreparedLandlock, LandlockError> {
    let kernel = kernel_abi();
    let effective = abi_cap.map_or(kernel, |c| c.min(kernel));
    if effective < policy.min_abi || effective == 0 {
        return Err(LandlockError::AbiTooOld {
            required: policy.min_abi.max(1),
            available: effective,
            capped_at: abi_cap.filter(|c| *c < kernel),
        });
    }
    let rights_abi = abi_of(effective.min(MAX_RIGHTS_ABI));
    let handled_fs = AccessFs::from_all(rights_abi);
    let handled_net = if effective >= 4 {
        let mut n = BitFlags::<AccessNet>::empty();
        if policy.bind_tcp.is_some() {
            n |= AccessNet::BindTcp;
        }
        if policy.connect_tcp.is_some() {
            n |= AccessNet::ConnectTcp;
        }
        n
    } else {
        BitFlags::empty()
    };
    let scopes: BitFlags<Scope> = if effective >= 6 {
        policy
            .scope
            .iter()
            .map(|s| match s {
                ScopeKind::AbstractUnixSocket => Scope::AbstractUnixSocket,
                ScopeKind::Signal => Scope::Signal,
            })
            .collect()
    } else {
        BitFlags::empty()
    };

    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(handled_fs)?;
    if !handled_net.is_empty() {
        ruleset = ruleset.handle_access(handled_net)?;
    }
    if !scopes.is_empty() {
        ruleset = ruleset.scope(scopes)?;
    }
    let mut created = ruleset.create()?;

    let mut skipped = Vec::new();
    let mut fs_rules = 0;
    let mut write_trees = Vec::new();
    for rule in plan_rules(policy, unix, handled_fs) {
        match super::paths::open(&rule.path, guard) {
            Ok(o) => {
                let access = if o.is_dir {
                    rule.access
                } else {
                    rule.access & (file_mask() | AccessFs::ResolveUnix)
                };
                let is_write = policy.write.contains(&rule.path);
                let fd = if is_write && !o.is_device {
                    let dup = o.fd.try_clone().map_err(|source| LandlockError::OpenPath {
                        path: rule.path.clone(),
                        source,
                    })?;
                    write_trees.push(o);
                    dup
                } else {
                    o.fd
                };
                created = created.add_rule(PathBeneath::new(fd, access))?;
                fs_rules += 1;
            }
            Err(e) if e.is_not_found() => skipped.push(SkippedPath {
                path: rule.path.clone(),
                reason: "does not exist (access stays denied)".into(),
            }),
            Err(e) => return Err(e.into()),
        }
    }

    let mut net_rules = 0;
    if handled_net.contains(AccessNet::BindTcp) {
        for port in policy.bind_tcp.iter().flatten() {
            created = created.add_rule(NetPort::new(*port, AccessNet::BindTcp))?;
            net_rules += 1;
        }
    }
    if handled_net.contains(AccessNet::ConnectTcp) {
        for port in policy.connect_tcp.iter().flatten() {
            created = created.add_rule(NetPort::new(*port, AccessNet::ConnectTcp))?;
            net_rules += 1;
        }
    }
    // Without this flag (ABI 7), denials after our execve are not audited at all, which is
    // exactly when the service runs.
    let audit_after_exec = effective >= 7;
    if audit_after_exec {
        created = created.log_new_exec(true)?;
    }

    let missing = missing_rights(policy, effective);
    let report = LandlockReport {
        status: if missing.is_empty() {
            LandlockStatus::Full
        } else {
            LandlockStatus::Partial
        },
        kernel_abi: kernel,
        effective_abi: effective,
        abi_cap,
        min_abi: policy.min_abi,
        missing,
        skipped_paths: skipped,
        fs_rules,
        net_rules,
        scopes: if effective >= 6 {
            policy.scope.iter().copied().collect()
        } else {
            Vec::new()
        },
        audit_after_exec,
    };
    Ok(PreparedLandlock {
        ruleset: created,
        report,
        write_trees,
    })
}

impl PreparedLandlock {
    /// Enforces the ruleset on the calling thread (and sets no_new_privs).
    pub fn enforce(self) -> Result<LandlockReport, LandlockError> {
        let status = self.ruleset.restrict_self()?;
        debug_assert!(status.no_new_privs);
        Ok(self.report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn policy() -> LandlockPolicy {
        LandlockPolicy {
            min_abi: 1,
            bind_tcp: Some(BTreeSet::from([80])),
            scope: BTreeSet::from([ScopeKind::Signal]),
            ..Default::default()
        }
    }

    #[test]
    fn missing_rights_follow_the_abi() {
        let m = missing_rights(&policy(), 2);
        let names: Vec<_> = m.iter().map(|m| m.right.as_str()).collect();
        assert_eq!(
            names,
            [
                "fs.truncate",
                "fs.ioctl_dev",
                "net.bind_tcp",
                "scope.signal"
            ]
        );
        assert!(missing_rights(&policy(), 6).is_empty());
        let m = missing_rights(&policy(), 5);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].needs_abi, 6);
    }

    #[test]
    fn abi_9_rules_grant_the_sockets_it_may_connect_to() {
        let p = LandlockPolicy {
            read: BTreeSet::from([PathBuf::from("/etc")]),
            write: BTreeSet::from([PathBuf::from("/var/lib/svc")]),
            ..policy()
        };
        let unix = BTreeSet::from([PathBuf::from("/run/mosquitto/"), PathBuf::from("/dev/log")]);
        let rules = plan_rules(&p, &unix, AccessFs::from_all(ABI::V9));
        let of = |path: &str| {
            rules
                .iter()
                .filter(|r| r.path == Path::new(path))
                .fold(BitFlags::<AccessFs>::empty(), |a, r| a | r.access)
        };
        assert!(
            !of("/etc").contains(AccessFs::ResolveUnix),
            "read does not connect"
        );
        assert!(
            of("/var/lib/svc").contains(AccessFs::ResolveUnix),
            "its own sockets"
        );
        assert_eq!(of("/dev/log"), AccessFs::ResolveUnix);
        assert_eq!(of("/run/mosquitto/"), AccessFs::ResolveUnix);
        // below ABI 9 the right is not handled, so no such rule is made
        let rules = plan_rules(&p, &unix, AccessFs::from_all(ABI::V6));
        assert!(
            rules
                .iter()
                .all(|r| !r.access.contains(AccessFs::ResolveUnix))
        );
        assert!(!rules.iter().any(|r| r.path == Path::new("/dev/log")));
        // the ruleset for ABI 9 handles connecting (a kernel with ABI 9 then denies every
        // other pathname socket)
        assert!(AccessFs::from_all(ABI::V9).contains(AccessFs::ResolveUnix));
    }

    #[test]
    fn write_never_grants_device_nodes() {
        let w = write_rights(AccessFs::from_all(ABI::V6));
        assert!(!w.contains(AccessFs::MakeChar));
        assert!(!w.contains(AccessFs::MakeBlock));
        assert!(w.contains(AccessFs::Truncate));
        // rights the ABI does not have are not requested
        assert!(!write_rights(AccessFs::from_all(ABI::V2)).contains(AccessFs::Truncate));
    }
}
