//! Kernel hardening settings (`/proc/sys`), each with the value to set and why.

use super::{Check, Severity, Status};

/// (sysctl, severity, good when, wanted value, why)
struct Want {
    id: &'static str,
    key: &'static str,
    severity: Severity,
    min: i64,
    set: i64,
    why: &'static str,
}

const WANTS: &[Want] = &[
    Want {
        id: "kernel.kptr-restrict",
        key: "kernel.kptr_restrict",
        severity: Severity::Medium,
        min: 1,
        set: 2,
        why: "kernel pointers in /proc help exploits defeat KASLR",
    },
    Want {
        id: "kernel.dmesg-restrict",
        key: "kernel.dmesg_restrict",
        severity: Severity::Low,
        min: 1,
        set: 1,
        why: "the kernel log leaks addresses and hardware details to every user",
    },
    Want {
        id: "kernel.unprivileged-bpf",
        key: "kernel.unprivileged_bpf_disabled",
        severity: Severity::Medium,
        min: 1,
        set: 2,
        why: "unprivileged eBPF is a frequent kernel attack surface",
    },
    Want {
        id: "kernel.ptrace-scope",
        key: "kernel.yama.ptrace_scope",
        severity: Severity::Medium,
        min: 1,
        set: 1,
        why: "any process may otherwise trace (and read the memory of) its user's other processes",
    },
    Want {
        id: "kernel.randomize-va-space",
        key: "kernel.randomize_va_space",
        severity: Severity::High,
        min: 2,
        set: 2,
        why: "address space randomisation is off or partial",
    },
    Want {
        id: "kernel.kexec-disabled",
        key: "kernel.kexec_load_disabled",
        severity: Severity::Low,
        min: 1,
        set: 1,
        why: "root can replace the running kernel (kexec) and so bypass a verified boot",
    },
    Want {
        id: "kernel.perf-event-paranoid",
        key: "kernel.perf_event_paranoid",
        severity: Severity::Low,
        min: 2,
        set: 3,
        why: "unprivileged perf events expose kernel profiling data",
    },
    Want {
        id: "fs.protected-symlinks",
        key: "fs.protected_symlinks",
        severity: Severity::Medium,
        min: 1,
        set: 1,
        why: "symlink races in sticky directories (/tmp)",
    },
    Want {
        id: "fs.protected-hardlinks",
        key: "fs.protected_hardlinks",
        severity: Severity::Medium,
        min: 1,
        set: 1,
        why: "hard links to files the user does not own",
    },
    Want {
        id: "fs.protected-fifos",
        key: "fs.protected_fifos",
        severity: Severity::Low,
        min: 1,
        set: 2,
        why: "FIFO spoofing in sticky directories",
    },
    Want {
        id: "fs.protected-regular",
        key: "fs.protected_regular",
        severity: Severity::Low,
        min: 1,
        set: 2,
        why: "regular-file spoofing in sticky directories",
    },
    Want {
        id: "fs.suid-dumpable",
        key: "fs.suid_dumpable",
        severity: Severity::Medium,
        min: 0,
        set: 0,
        why: "core dumps of setuid programs can leak secrets",
    },
    Want {
        id: "net.bpf-jit-harden",
        key: "net.core.bpf_jit_harden",
        severity: Severity::Low,
        min: 2,
        set: 2,
        why: "JIT spraying through BPF programs",
    },
];

/// The checks, reading each value with `read` ("kernel.kptr_restrict" → its value).
pub fn checks(read: &dyn Fn(&str) -> Option<String>) -> Vec<Check> {
    WANTS
        .iter()
        .map(|w| {
            let file = format!("/proc/sys/{}", w.key.replace('.', "/"));
            let Some(v) = read(w.key) else {
                let detail = if w.key.starts_with("kernel.yama") {
                    "Yama is not active in this kernel (no ptrace restriction at all)".to_string()
                } else {
                    format!("{file} cannot be read")
                };
                let status = if w.key.starts_with("kernel.yama") {
                    Status::Fail
                } else {
                    Status::Unknown
                };
                return Check::new(w.id, w.severity, status, detail)
                    .remedy("boot a kernel with Yama (security=yama or lsm=...,yama)");
            };
            let n: Option<i64> = v.trim().parse().ok();
            // suid_dumpable wants 0 exactly; the rest at least `min`
            let good = match n {
                Some(n) if w.key == "fs.suid_dumpable" => n == 0,
                Some(n) => n >= w.min,
                None => false,
            };
            Check::new(
                w.id,
                w.severity,
                if good { Status::Pass } else { Status::Fail },
                format!(
                    "{} = {}{}",
                    w.key,
                    v.trim(),
                    if good {
                        String::new()
                    } else {
                        format!(": {}", w.why)
                    }
                ),
            )
            .remedy(format!(
                "echo '{} = {}' > /etc/sysctl.d/90-{}.conf && sysctl -p /etc/sysctl.d/90-{}.conf",
                w.key, w.set, w.id, w.id
            ))
        })
        .collect()
}

/// `/proc/sys` of the running kernel.
pub fn read_live(key: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/{}", key.replace('.', "/"))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_below_the_minimum_fail_and_say_why() {
        let c = checks(&|k| match k {
            "kernel.kptr_restrict" => Some("0\n".into()),
            "fs.suid_dumpable" => Some("2".into()),
            "kernel.yama.ptrace_scope" => None,
            _ => Some("3".into()),
        });
        let get = |id: &str| c.iter().find(|c| c.id == id).unwrap();
        assert_eq!(get("kernel.kptr-restrict").status, Status::Fail);
        assert!(
            get("kernel.kptr-restrict")
                .remedy
                .contains("kernel.kptr_restrict = 2")
        );
        assert_eq!(get("fs.suid-dumpable").status, Status::Fail);
        assert_eq!(get("kernel.ptrace-scope").status, Status::Fail);
        assert!(get("kernel.ptrace-scope").finding.contains("Yama"));
        assert_eq!(get("kernel.dmesg-restrict").status, Status::Pass);
        assert_eq!(get("kernel.dmesg-restrict").remedy, "");
    }
}
