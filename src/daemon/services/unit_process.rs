//! One unit's process, verified (on a worker thread: everything here reads files and
//! `/proc`): which process it is, the verdict, what the kernel shows, and for each layer
//! whether the kernel proved it or only the record claims it.

use super::registry::Assignment;
use super::verification::{self, Verdict};
use super::{FilterProofs, records};
use crate::api::types::{KernelView, LayerProof, RulesView};
use crate::api::{Layer, Proof, ServiceInfo, ServiceState};
use crate::config::DaemonConfig;
use crate::confine::LandlockStatus;
use crate::confine::mountview::UnixSockets;
use crate::confine::record::EnforcementRecord;
use crate::daemon::lock;
use crate::profile::{Profile, ProfileLoader};
use crate::proof::ProcStatus;
use crate::proof::seccomp::FilterProof;

/// Longest text taken from a record into the service list (a record is written by the
/// service's own user and may say anything).
const MAX_RECORD_TEXT: usize = 200;

fn clip(s: &str) -> String {
    let clean: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_RECORD_TEXT)
        .collect();
    if clean.len() < s.len() {
        format!("{clean}…")
    } else {
        clean
    }
}

/// Verifies the process of `a`. `main_pid`: systemd's MainPID (`None` without systemd: the
/// newest live record root wrote for the unit names the process).
pub(super) fn check(
    cfg: &DaemonConfig,
    a: &Assignment,
    main_pid: Option<u32>,
    proofs: &FilterProofs,
) -> ServiceInfo {
    let loader = ProfileLoader::new(cfg.profile_path.clone());
    let current = loader.load(&a.profile).map_err(|e| e.to_string());
    let rules = current.as_ref().map(RulesView::from).unwrap_or_default();
    let info = |state, detail: String| ServiceInfo {
        rules: rules.clone(),
        ..ServiceInfo::new(&a.unit, &a.profile, a.source.as_str(), state, detail)
    };
    let records_dir = cfg.records_dir();
    let pid = match main_pid {
        Some(p) => p,
        None => records::live_record_for_unit(&records_dir, &a.unit).map_or(0, |(p, _)| p),
    };
    if pid == 0 {
        return info(ServiceState::Inactive, "not running".into());
    }
    let mut v = verification::verify_process(
        pid,
        &a.profile,
        current.as_ref().map_err(String::as_str),
        &records_dir,
    );
    let mut out = info(v.state, String::new());
    out.pid = pid;
    let status = ProcStatus::read(pid);
    let view = crate::proof::mounts::view(pid);
    if let Some(st) = &status {
        out.kernel = KernelView::from(st);
        if let Some(m) = &view {
            out.kernel = out.kernel.with_mounts(m);
        }
    }
    if let (Some(r), Some(st), Ok(profile)) = (v.record.clone(), &status, &current)
        && v.state.is_confined()
    {
        let filter = filter_proof(pid, &r, st, profile, proofs);
        out.proofs = layer_proofs(&r, st, view.as_ref(), &filter);
        if let FilterProof::Mismatch { filters } = filter {
            v = Verdict {
                state: ServiceState::NotEnforced,
                detail: format!(
                    "process {pid}: none of its {filters} seccomp filters is the program profile {} compiles to; it was not confined by hardend-exec under this profile",
                    a.profile
                ),
                record: Some(r),
            };
        }
    }
    out.state = v.state;
    out.detail = clip(&v.detail);
    if let Some(r) = v.record {
        let ll = &r.confinement.landlock;
        out.landlock_abi = u32::from(ll.effective_abi);
        out.landlock = match ll.status {
            LandlockStatus::Full => "full",
            LandlockStatus::Partial => "partial",
            LandlockStatus::None => "none",
        }
        .into();
        out.seccomp = if r.confinement.seccomp.configured {
            format!("{:?}", r.confinement.seccomp.mode).to_lowercase()
        } else {
            "none".into()
        };
        out.profile_hash = clip(&r.profile_hash);
        out.since = clip(&r.time);
    }
    out
}

/// The seccomp proof for `pid`, read back once per (pid, start time, profile hash).
fn filter_proof(
    pid: u32,
    r: &EnforcementRecord,
    st: &ProcStatus,
    profile: &Profile,
    proofs: &FilterProofs,
) -> FilterProof {
    let key = (pid, r.start_time, r.profile_hash.clone());
    if let Some(p) = lock(proofs).get(&key) {
        return p.clone();
    }
    let p = match verification::expected_filter(profile, pid) {
        Ok(expected) => crate::proof::seccomp::prove(pid, st.seccomp_filters, &expected),
        Err(e) => {
            FilterProof::Claimed(format!("the profile's filter cannot be compiled here: {e}"))
        }
    };
    // a failed read may succeed later (a process in uninterruptible sleep): not cached
    if !matches!(p, FilterProof::Claimed(_)) {
        lock(proofs).insert(key, p.clone());
    }
    p
}

fn proof(layer: Layer, proof: Proof, detail: impl Into<String>) -> LayerProof {
    LayerProof {
        layer,
        proof,
        detail: detail.into(),
    }
}

/// One entry per layer in force: what the kernel showed, or that only the record says it.
fn layer_proofs(
    r: &EnforcementRecord,
    st: &ProcStatus,
    view: Option<&crate::proof::mounts::MountView>,
    filter: &FilterProof,
) -> Vec<LayerProof> {
    let mut out = vec![proof(
        Layer::NoNewPrivs,
        Proof::KernelVerified,
        "NoNewPrivs: 1 in /proc/PID/status",
    )];
    out.push(match filter {
        FilterProof::Verified {
            index,
            instructions,
        } => proof(
            Layer::Seccomp,
            Proof::KernelVerified,
            format!(
                "the installed program (filter {index} of {}, {instructions} instructions) is the profile's, read back with PTRACE_SECCOMP_GET_FILTER",
                st.seccomp_filters
            ),
        ),
        FilterProof::Mismatch { filters } => proof(
            Layer::Seccomp,
            Proof::KernelVerified,
            format!("none of the {filters} installed programs is the profile's"),
        ),
        FilterProof::Claimed(why) => proof(
            Layer::Seccomp,
            Proof::Claimed,
            format!(
                "Seccomp: 2 with {} filter(s) in /proc/PID/status; the program could not be read back: {why}",
                st.seccomp_filters
            ),
        ),
    });
    out.push(proof(
        Layer::Capabilities,
        Proof::KernelVerified,
        "CapPrm, CapEff, CapBnd, CapAmb in /proc/PID/status",
    ));
    let mv = &r.confinement.mount_view;
    if mv.read_only {
        // verify_process already refused a writable / against this claim
        let own = view.is_some_and(|v| v.own_namespace);
        out.push(proof(
            Layer::ReadOnlyView,
            Proof::KernelVerified,
            format!(
                "/ read-only in /proc/PID/mountinfo{}",
                if own {
                    ", in a mount namespace of its own"
                } else {
                    ""
                }
            ),
        ));
    }
    if r.confinement.landlock.status != LandlockStatus::None {
        out.push(proof(
            Layer::Landlock,
            Proof::Claimed,
            "the kernel offers no way to read a Landlock domain back; the record says what was applied",
        ));
    }
    out.push(match mv.unix_sockets {
        UnixSockets::Landlock => proof(
            Layer::UnixSockets,
            Proof::Claimed,
            "Landlock's pathname-socket rule (cannot be read back)",
        ),
        UnixSockets::MountView => proof(
            Layer::UnixSockets,
            Proof::Claimed,
            format!(
                "the record says {} sockets and {} directories are covered in its mount view",
                mv.hidden_sockets,
                mv.hidden_dirs.len() + mv.filtered_dirs.len()
            ),
        ),
        UnixSockets::Permissions => proof(
            Layer::UnixSockets,
            Proof::Claimed,
            "not restricted beyond file permissions",
        ),
    });
    out
}
