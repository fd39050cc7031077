//! Which unit is assigned which profile, and by what: our drop-ins (persistent ones win, as
//! in systemd), then `[services]` in the configuration. Nothing else: an enforcement record
//! is evidence about a process, never an assignment (anyone may run hardend-exec and write
//! one naming any unit and any profile path).

use std::collections::BTreeMap;

use super::dropins;
use crate::config::DaemonConfig;

/// Where an assignment comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Dropin,
    RuntimeDropin,
    Config,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Dropin => "dropin",
            Source::RuntimeDropin => "runtime-dropin",
            Source::Config => "config",
        }
    }
}

/// One unit with its profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub unit: String,
    pub profile: String,
    pub source: Source,
}

/// Every assignment, by unit.
pub fn assignments(
    cfg: &DaemonConfig,
    configured: &BTreeMap<String, String>,
) -> BTreeMap<String, Assignment> {
    let mut out = BTreeMap::new();
    for (dir, source) in [
        (&cfg.dropin_dir, Source::Dropin),
        (&cfg.runtime_dropin_dir, Source::RuntimeDropin),
    ] {
        for (unit, profile) in dropins::scan(dir) {
            out.entry(unit.clone()).or_insert(Assignment {
                unit,
                profile,
                source,
            });
        }
    }
    for (unit, profile) in configured {
        out.entry(unit.clone()).or_insert(Assignment {
            unit: unit.clone(),
            profile: profile.clone(),
            source: Source::Config,
        });
    }
    out
}
