//! `hardenctl exec`: try a profile on a command in the foreground.

use std::ffi::OsString;
use std::path::PathBuf;

use super::{CliError, Exit, Output};
use crate::confine::exec::{ExecRequest, confine_and_exec};
use crate::confine::record::EnforcementRecord;
use crate::confine::{ConfineOptions, LandlockStatus};
use crate::profile::ProfileLoader;

/// One-line summary of what a record says is enforced.
pub fn summary(r: &EnforcementRecord) -> String {
    let ll = &r.confinement.landlock;
    let landlock = match ll.status {
        LandlockStatus::None => "landlock not configured".to_string(),
        LandlockStatus::Full => format!("landlock full (ABI {})", ll.effective_abi),
        LandlockStatus::Partial => format!(
            "landlock PARTIAL (ABI {}; missing: {})",
            ll.effective_abi,
            ll.missing
                .iter()
                .map(|m| format!("{} needs ABI {}", m.right, m.needs_abi))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let sc = &r.confinement.seccomp;
    let seccomp = if sc.configured {
        let action = format!("{:?}", sc.default_action).to_lowercase();
        format!(
            "seccomp {} ({} syscalls allowed, others: {}{})",
            format!("{:?}", sc.mode).to_lowercase(),
            sc.allowed,
            action,
            sc.errno
                .as_ref()
                .map(|e| format!(" {e}"))
                .unwrap_or_default()
        )
    } else {
        "seccomp not configured".to_string()
    };
    let c = &r.confinement;
    let caps = if c.process.capabilities.kept.is_empty() {
        "no capabilities".to_string()
    } else {
        format!("capabilities {}", c.process.capabilities.kept.join(","))
    };
    let net = format!(
        "sockets {}{}",
        c.network.families.join(","),
        if c.network.udp {
            " (TCP, UDP)"
        } else {
            " (TCP only)"
        }
    );
    let ns = if c.process.namespaces.is_empty() {
        "no namespaces".to_string()
    } else {
        format!(
            "namespaces {}",
            c.process
                .namespaces
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    format!(
        "profile {}: {landlock}; {seccomp}; {caps}; {net}; {ns}; no_new_privs",
        r.profile
    )
}

pub fn run(
    out: &Output,
    loader: ProfileLoader,
    profile: String,
    max_landlock_abi: Option<u8>,
    record_dir: Option<PathBuf>,
    quiet: bool,
    command: Vec<OsString>,
) -> Result<Exit, CliError> {
    let req = ExecRequest {
        profile,
        unit: None,
        command,
        argv0: None,
        options: ConfineOptions {
            max_landlock_abi,
            profile_path: loader.search_path().to_vec(),
        },
        loader,
        record_dir,
        reset_sigpipe: true,
    };
    let json = out.json;
    let Err(e) = confine_and_exec(&req, |record| {
        if quiet {
            return;
        }
        // stdout belongs to the command; the report goes to stderr.
        if json {
            // one document, on one line (out sends documents to stderr for exec)
            out.json_line(&serde_json::json!({ "record": record }));
        } else {
            eprintln!("hardenctl: {}", summary(record));
            for p in &record.confinement.landlock.skipped_paths {
                eprintln!(
                    "hardenctl:   skipped {}: {}",
                    super::safe(&p.path.display().to_string()),
                    p.reason
                );
            }
        }
    });
    Err(e.into())
}
