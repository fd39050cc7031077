//! Capabilities: before exec, every set is reduced to the profile's list — bounding,
//! permitted, effective and inheritable — and the kept ones are raised in the ambient set,
//! so that a root service keeps uid 0 but not its power, and a non-root service keeps what
//! the profile grants across exec. With no_new_privs, exec never adds any.

use std::collections::BTreeSet;
use std::io;

use caps::{CapSet, Capability, CapsHashSet};
use serde::{Deserialize, Serialize};

/// Errors while reducing the capability sets.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("unknown capability {0}")]
    Unknown(String),
    #[error("cannot drop {cap} from the bounding set: {source}")]
    Bounding { cap: String, source: io::Error },
    #[error("cannot set the {set} capabilities: {source}")]
    Set {
        set: &'static str,
        source: caps::errors::CapsError,
    },
}

/// What the capability step did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapsReport {
    /// What the service holds after exec: the profile's list, as far as the process had
    /// those capabilities (a non-root unit without AmbientCapabilities= has none).
    pub kept: Vec<String>,
    /// Granted by the profile but not held by the process, so not kept.
    #[serde(default)]
    pub not_held: Vec<String>,
    /// Whether the bounding set was reduced too (needs CAP_SETPCAP: root services). Without
    /// it, no_new_privs still keeps exec from adding anything.
    pub bounding_reduced: bool,
}

/// The capabilities the profile keeps.
pub fn parse(names: &BTreeSet<String>) -> Result<CapsHashSet, CapsError> {
    names
        .iter()
        .map(|n| {
            n.parse::<Capability>()
                .map_err(|_| CapsError::Unknown(n.clone()))
        })
        .collect()
}

/// The highest capability number this kernel knows.
fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Reduces this thread's capability sets to `grant` (as far as the process holds them).
pub fn reduce(grant: &CapsHashSet) -> Result<CapsReport, CapsError> {
    let permitted = caps::read(None, CapSet::Permitted).map_err(|source| CapsError::Set {
        set: "permitted",
        source,
    })?;
    let keep: CapsHashSet = grant.intersection(&permitted).copied().collect();
    let mut not_held: Vec<String> = grant
        .difference(&permitted)
        .map(|c| c.to_string())
        .collect();
    not_held.sort();
    let keep = &keep;
    // bounding first, while CAP_SETPCAP may still be there
    let bounding_reduced = permitted.contains(&Capability::CAP_SETPCAP);
    if bounding_reduced {
        for nr in 0..=last_cap() {
            if keep.iter().any(|c| c.index() == nr) {
                continue;
            }
            // SAFETY: PR_CAPBSET_DROP takes plain integers and touches no memory.
            let rc =
                unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(nr), 0, 0, 0) };
            if rc != 0 {
                let e = io::Error::last_os_error();
                // a number this kernel does not have is not in the set anyway
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(CapsError::Bounding {
                        cap: format!("capability {nr}"),
                        source: e,
                    });
                }
            }
        }
    }
    let set = |cset, name, value: &CapsHashSet| {
        caps::set(None, cset, value).map_err(|source| CapsError::Set { set: name, source })
    };
    // inheritable while the effective set still has CAP_SETPCAP; effective before permitted
    // (it must stay a subset); ambient last (needs permitted and inheritable)
    set(CapSet::Inheritable, "inheritable", keep)?;
    set(CapSet::Effective, "effective", keep)?;
    set(CapSet::Permitted, "permitted", keep)?;
    caps::clear(None, CapSet::Ambient).map_err(|source| CapsError::Set {
        set: "ambient",
        source,
    })?;
    for c in keep {
        caps::raise(None, CapSet::Ambient, *c).map_err(|source| CapsError::Set {
            set: "ambient",
            source,
        })?;
    }
    let mut kept: Vec<String> = keep.iter().map(|c| c.to_string()).collect();
    kept.sort();
    Ok(CapsReport {
        kept,
        not_held,
        bounding_reduced,
    })
}

/// Capability names in a `/proc/PID/status` mask (`CapEff: 0000003fffffffff`).
pub fn names_of_mask(hex: &str) -> Vec<String> {
    let Ok(mask) = u64::from_str_radix(hex.trim(), 16) else {
        return Vec::new();
    };
    let mut names: Vec<String> = caps::all()
        .into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .map(|c| c.to_string())
        .collect();
    names.sort();
    // bits this build has no name for
    let known: u64 = caps::all()
        .iter()
        .map(|c| c.bitmask())
        .fold(0, |a, b| a | b);
    for bit in 0..64 {
        if mask & !known & (1 << bit) != 0 {
            names.push(format!("cap_{bit}"));
        }
    }
    names
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_name_their_capabilities() {
        assert_eq!(
            super::names_of_mask("0000000000000000"),
            Vec::<String>::new()
        );
        assert_eq!(
            super::names_of_mask("0000000000000400"),
            ["CAP_NET_BIND_SERVICE"]
        );
        assert_eq!(
            super::names_of_mask("00000000000000c0"),
            ["CAP_SETGID", "CAP_SETUID"]
        );
        assert!(super::names_of_mask("8000000000000000").contains(&"cap_63".to_string()));
    }
}
