//! Verification: is the process running a unit really confined by the profile assigned to
//! it, as that profile is now? The answer comes from the kernel (`/proc/PID/status`) and
//! the enforcement record that hardend-exec wrote for exactly that process (PID + start
//! time), never from the daemon's own bookkeeping.

use std::path::Path;

use std::collections::BTreeSet;

use crate::api::ServiceState;
use crate::confine::LandlockStatus;
use crate::confine::caps::names_of_mask;
use crate::confine::record::{EnforcementRecord, process_start_time};
use crate::profile::Profile;
use crate::proof::ProcStatus;

/// The outcome for one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub state: ServiceState,
    pub detail: String,
    pub record: Option<EnforcementRecord>,
}

fn verdict(
    state: ServiceState,
    detail: impl Into<String>,
    record: Option<EnforcementRecord>,
) -> Verdict {
    Verdict {
        state,
        detail: detail.into(),
        record,
    }
}

/// The capability names in `mask` that `granted` does not contain.
fn beyond(mask: u64, granted: &BTreeSet<String>) -> Vec<String> {
    names_of_mask(&format!("{mask:x}"))
        .into_iter()
        .filter(|c| !granted.contains(c))
        .collect()
}

/// The seccomp program `profile` compiles to for process `pid` — what hardend-exec installed
/// when it confined that process (the PID is part of the argument rules).
pub fn expected_filter(
    profile: &Profile,
    pid: u32,
) -> Result<Vec<crate::proof::seccomp::Insn>, String> {
    let arch = crate::profile::syscalls::Arch::native()
        .ok_or_else(|| format!("unsupported architecture {}", std::env::consts::ARCH))?;
    let (bpf, _) =
        crate::confine::seccomp::compile(profile, arch, &crate::confine::FilterContext { pid })
            .map_err(|e| e.to_string())?;
    Ok(bpf
        .iter()
        .map(|i| crate::proof::seccomp::Insn {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect())
}

/// Verifies process `pid` against its assignment: the profile's name and, when it loads
/// now, the profile itself (`Err(reason)` when it does not).
pub fn verify_process(
    pid: u32,
    profile: &str,
    current: Result<&Profile, &str>,
    records_dir: &Path,
) -> Verdict {
    let Ok(start_time) = process_start_time(pid) else {
        return verdict(
            ServiceState::Inactive,
            format!("process {pid} is gone"),
            None,
        );
    };
    let Some(status) = ProcStatus::read(pid) else {
        return verdict(
            ServiceState::Inactive,
            format!("process {pid} is gone"),
            None,
        );
    };
    let uid = status.uid;
    let name = format!("{}*.json", EnforcementRecord::name_prefix(pid, start_time));
    let found = EnforcementRecord::find(records_dir, pid, start_time);
    if found.is_empty() {
        return verdict(
            ServiceState::NotEnforced,
            format!(
                "process {pid} has no enforcement record: it was not started through hardend-exec"
            ),
            None,
        );
    }
    // Only root or the process's own user could have written a genuine record.
    let mut record = None;
    let mut problem = String::new();
    for r in found {
        match r {
            Ok((rec, owner)) if owner == 0 || owner == uid => {
                record = Some(rec);
                break;
            }
            Ok((_, owner)) => {
                problem = format!(
                    "record {name} is owned by uid {owner} but the process runs as uid {uid}"
                );
            }
            Err(e) => problem = e.to_string(),
        }
    }
    let Some(record) = record else {
        return verdict(ServiceState::NotEnforced, problem, None);
    };
    if record.pid != pid || record.start_time != start_time {
        return verdict(
            ServiceState::NotEnforced,
            format!("record {name} describes another process"),
            Some(record),
        );
    }
    if !status.no_new_privs {
        return verdict(
            ServiceState::NotEnforced,
            format!("process {pid} does not have no_new_privs"),
            Some(record),
        );
    }
    // every profile installs a filter (hardend's own rules at least), whatever a record says
    if status.seccomp != 2 {
        return verdict(
            ServiceState::NotEnforced,
            format!(
                "process {pid} has no seccomp filter (Seccomp: {})",
                status.seccomp
            ),
            Some(record),
        );
    }
    // the read-only view the record claims must be the kernel's
    let mv = &record.confinement.mount_view;
    if mv.read_only {
        match crate::proof::mounts::view(pid) {
            Some(v) if v.root_read_only => {}
            Some(_) => {
                return verdict(
                    ServiceState::NotEnforced,
                    format!(
                        "process {pid}: its record claims a read-only view, but the kernel shows / writable"
                    ),
                    Some(record),
                );
            }
            None => {
                return verdict(
                    ServiceState::Inactive,
                    format!("process {pid} is gone"),
                    Some(record),
                );
            }
        }
    }
    if let Ok(p) = current {
        let granted = &p.process.capabilities;
        let extra: BTreeSet<String> = [
            status.cap_effective,
            status.cap_permitted,
            status.cap_ambient,
        ]
        .into_iter()
        .flat_map(|m| beyond(m, granted))
        .collect();
        if !extra.is_empty() {
            return verdict(
                ServiceState::NotEnforced,
                format!(
                    "process {pid} holds capabilities its profile does not grant: {}",
                    extra.into_iter().collect::<Vec<_>>().join(", ")
                ),
                Some(record),
            );
        }
    }
    if record.profile != profile {
        let d = format!(
            "runs profile {} but {profile} is assigned; restart the unit",
            record.profile
        );
        return verdict(ServiceState::Stale, d, Some(record));
    }
    match current.map(Profile::policy_hash) {
        Err(reason) => {
            return verdict(
                ServiceState::Stale,
                format!("profile {profile} cannot be loaded now: {reason}"),
                Some(record),
            );
        }
        Ok(h) if *h != record.profile_hash => {
            return verdict(
                ServiceState::Stale,
                format!("profile {profile} changed since the process started; restart the unit"),
                Some(record),
            );
        }
        Ok(_) => {}
    }
    let ll = &record.confinement.landlock;
    if ll.status == LandlockStatus::Partial || !record.confinement.mount_view.gaps.is_empty() {
        let missing: Vec<String> = ll
            .missing
            .iter()
            .map(|m| format!("{} (ABI {})", m.right, m.needs_abi))
            .collect();
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!(
                "Landlock ABI {}: missing {}",
                ll.effective_abi,
                missing.join(", ")
            ));
        }
        parts.extend(record.confinement.mount_view.gaps.iter().cloned());
        return verdict(ServiceState::Partial, parts.join("; "), Some(record));
    }
    let d = format!(
        "pid {pid}: Landlock {} (ABI {}), seccomp {}",
        match ll.status {
            LandlockStatus::None => "not configured",
            _ => "full",
        },
        ll.effective_abi,
        if record.confinement.seccomp.configured {
            "filter"
        } else {
            "not configured"
        }
    );
    verdict(ServiceState::Enforced, d, Some(record))
}

/// Against real processes: started through the real `hardend-exec` (built by `cargo build
/// --workspace`), or plain.
#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;
    use crate::profile::ProfileLoader;

    fn repo() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    fn shipped_profiles() -> PathBuf {
        repo().join("profiles")
    }

    fn hardend_exec() -> PathBuf {
        let exe = std::env::current_exe().unwrap();
        let p = exe.parent().unwrap().parent().unwrap().join("hardend-exec");
        assert!(
            p.exists(),
            "{}: run `cargo build --workspace` first",
            p.display()
        );
        p
    }

    fn is_root() -> bool {
        // SAFETY: geteuid cannot fail and touches no memory.
        unsafe { libc::geteuid() == 0 }
    }

    struct Sandbox(tempfile::TempDir);

    impl Sandbox {
        fn new() -> Self {
            Sandbox(tempfile::tempdir().unwrap())
        }
        fn profile(&self, name: &str, body: &str) -> PathBuf {
            let p = self.0.path().join(format!("{name}.toml"));
            fs::write(&p, body).unwrap();
            p
        }
        fn runtime_dir(&self) -> PathBuf {
            self.0.path().join("run")
        }
    }

    fn sleeper_profile(sb: &Sandbox) -> PathBuf {
        sb.profile(
            "sleeper",
            "include = [\"base\"]\n[landlock]\nread_exec = [\"/usr/bin/sleep\"]\n[seccomp]\nallow = [\"@system-service\"]\n",
        )
    }

    fn load(p: &std::path::Path) -> Profile {
        ProfileLoader::new(vec![shipped_profiles()])
            .load_file(p)
            .unwrap()
    }

    fn start(sb: &Sandbox, profile: &std::path::Path, extra: &[&str]) -> std::process::Child {
        let c = Command::new(hardend_exec())
            .arg("--profile")
            .arg(profile)
            .arg("--profile-path")
            .arg(shipped_profiles())
            .arg("--runtime-dir")
            .arg(sb.runtime_dir())
            .args(extra)
            .args(["--", "/usr/bin/sleep", "30"])
            .spawn()
            .unwrap();
        // wait until the exec happened (the record exists and /proc shows sleep)
        for _ in 0..100 {
            let comm = fs::read_to_string(format!("/proc/{}/comm", c.id())).unwrap_or_default();
            if comm.trim() == "sleep" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        c
    }

    #[test]
    fn enforced_not_enforced_and_stale() {
        let sb = Sandbox::new();
        let p = sleeper_profile(&sb);
        let mut confined = start(&sb, &p, &[]);
        let v = verify_process(confined.id(), "sleeper", Ok(&load(&p)), &sb.runtime_dir());
        // fully enforced only where nothing stays open (root on Landlock ABI >= 9)
        let full = is_root() && crate::confine::landlock::kernel_abi() >= 9;
        let want = if full {
            ServiceState::Enforced
        } else {
            ServiceState::Partial
        };
        assert_eq!(v.state, want, "{}", v.detail);
        assert!(v.state.is_confined());

        let mut plain = Command::new("/usr/bin/sleep").arg("30").spawn().unwrap();
        let v = verify_process(plain.id(), "sleeper", Ok(&load(&p)), &sb.runtime_dir());
        assert_eq!(v.state, ServiceState::NotEnforced);
        assert!(v.detail.contains("no enforcement record"), "{}", v.detail);

        // the same profile, changed since the process started
        std::fs::create_dir_all(sb.0.path().join("changed")).unwrap();
        let changed = sb.0.path().join("changed/sleeper.toml");
        fs::write(
            &changed,
            "include = [\"base\"]\n[landlock]\nread_exec = [\"/usr/bin/sleep\"]\nread = [\"/srv\"]\n[seccomp]\nallow = [\"@system-service\"]\n",
        )
        .unwrap();
        let v = verify_process(
            confined.id(),
            "sleeper",
            Ok(&load(&changed)),
            &sb.runtime_dir(),
        );
        assert_eq!(v.state, ServiceState::Stale);
        let v = verify_process(confined.id(), "other", Ok(&load(&p)), &sb.runtime_dir());
        assert_eq!(v.state, ServiceState::Stale);
        assert!(
            v.detail
                .contains("runs profile sleeper but other is assigned"),
            "{}",
            v.detail
        );

        // a record copied to the plain process's name is rejected: the kernel says no filter
        let rec = fs::read_dir(sb.runtime_dir())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut forged: serde_json::Value =
            serde_json::from_slice(&fs::read(&rec).unwrap()).unwrap();
        let start_time = crate::confine::record::process_start_time(plain.id()).unwrap();
        forged["pid"] = plain.id().into();
        forged["start_time"] = start_time.into();
        let forged_path =
            sb.runtime_dir()
                .join(format!("{}-{}.forged.json", plain.id(), start_time));
        fs::write(&forged_path, serde_json::to_vec(&forged).unwrap()).unwrap();
        let v = verify_process(plain.id(), "sleeper", Ok(&load(&p)), &sb.runtime_dir());
        assert_eq!(v.state, ServiceState::NotEnforced, "{}", v.detail);
        assert!(v.detail.contains("no_new_privs"), "{}", v.detail);

        // a record owned by another user than the process's does not count
        if is_root() {
            std::os::unix::fs::chown(&rec, Some(65534), Some(65534)).unwrap();
            let v = verify_process(confined.id(), "sleeper", Ok(&load(&p)), &sb.runtime_dir());
            assert_eq!(v.state, ServiceState::NotEnforced);
            assert!(v.detail.contains("owned by uid 65534"), "{}", v.detail);
        }

        confined.kill().unwrap();
        confined.wait().unwrap();
        let v = verify_process(confined.id(), "sleeper", Ok(&load(&p)), &sb.runtime_dir());
        assert_eq!(v.state, ServiceState::Inactive);
        plain.kill().unwrap();
        plain.wait().unwrap();
    }

    #[test]
    fn partial_landlock_is_reported_as_partial() {
        if crate::confine::landlock::kernel_abi() < 4 {
            return;
        }
        let sb = Sandbox::new();
        let p = sb.profile(
            "netsleeper",
            "include = [\"base\"]\n[landlock]\nread_exec = [\"/usr/bin/sleep\"]\nbind_tcp = []\n",
        );
        let mut c = start(&sb, &p, &["--max-landlock-abi", "3"]);
        let v = verify_process(c.id(), "netsleeper", Ok(&load(&p)), &sb.runtime_dir());
        assert_eq!(v.state, ServiceState::Partial);
        assert!(v.detail.contains("net.bind_tcp (ABI 4)"), "{}", v.detail);
        c.kill().unwrap();
        c.wait().unwrap();
    }
}
