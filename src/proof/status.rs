//! `/proc/PID/status`: the confinement-relevant lines.

/// The confinement-relevant lines of `/proc/PID/status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcStatus {
    /// Real uid.
    pub uid: u32,
    pub no_new_privs: bool,
    /// 0 none, 1 strict, 2 filter.
    pub seccomp: u32,
    /// Filters installed (Linux ≥ 5.9; 0 when the kernel does not say).
    pub seccomp_filters: u32,
    pub cap_permitted: u64,
    pub cap_effective: u64,
    pub cap_bounding: u64,
    pub cap_ambient: u64,
}

impl ProcStatus {
    /// Parses the text of `/proc/PID/status`.
    pub fn parse(text: &str) -> Option<ProcStatus> {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
        };
        let num = |name: &str| field(name).and_then(|v| v.parse::<u32>().ok());
        let mask = |name: &str| field(name).and_then(|v| u64::from_str_radix(v, 16).ok());
        Some(ProcStatus {
            uid: num("Uid:")?,
            no_new_privs: num("NoNewPrivs:")? == 1,
            seccomp: num("Seccomp:")?,
            seccomp_filters: num("Seccomp_filters:").unwrap_or(0),
            cap_permitted: mask("CapPrm:")?,
            cap_effective: mask("CapEff:")?,
            cap_bounding: mask("CapBnd:")?,
            cap_ambient: mask("CapAmb:").unwrap_or(0),
        })
    }

    /// Reads it for `pid` (`None`: the process is gone or unreadable).
    pub fn read(pid: u32) -> Option<ProcStatus> {
        ProcStatus::parse(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse() {
        let t = "Name:\tsleep\nUid:\t0\t0\t0\t0\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000400\nCapEff:\t0000000000000400\nCapBnd:\t0000000000000400\nCapAmb:\t0000000000000400\n";
        let s = ProcStatus::parse(t).unwrap();
        assert_eq!(s.uid, 0);
        assert!(s.no_new_privs);
        assert_eq!((s.seccomp, s.seccomp_filters), (2, 1));
        assert_eq!(s.cap_effective, 0x400);
        assert!(ProcStatus::parse("Name:\tx\n").is_none());
    }
}
