//! The wrapper's own argument rules, applied to every profile whatever its `[seccomp]`
//! section says: what `[network]` and `[process]` do not grant, and what a side door that is
//! not granted would open. Each rule is a condition a syscall must satisfy, written as
//! alternatives of conjunctions; the filter allows a call only when it satisfies every rule
//! for its syscall (and the profile's own argument rules, when it has some).

use std::collections::BTreeMap;

use crate::profile::process::Namespace;
use crate::profile::sidedoors::{self, SIDE_DOORS};
use crate::profile::{ArgCondition, CmpOp, Profile, families};

/// Alternatives of conjunctions.
pub type Dnf = Vec<Vec<ArgCondition>>;

/// What a syscall must satisfy, by syscall name: every listed condition (AND of DNFs).
pub type Narrowings = BTreeMap<&'static str, Vec<Dnf>>;

/// Facts about the process being confined that rules depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterContext {
    /// The PID the service will have (the wrapper's: it execs in place).
    pub pid: u32,
}

const SOCK_TYPE_MASK: u64 = 0xf;
const SOCK_STREAM: u64 = 1;
const SOCK_DGRAM: u64 = 2;
const IPPROTO_TCP: u64 = 6;
const IPPROTO_UDP: u64 = 17;
const MSG_FASTOPEN: u64 = 0x2000_0000;
const PRIO_PROCESS: u64 = 0;
const IOPRIO_WHO_PROCESS: u64 = 1;

fn c(arg: u8, op: CmpOp, value: u64, mask: Option<u64>, width: u8) -> ArgCondition {
    ArgCondition {
        arg,
        op,
        value,
        mask,
        width,
    }
}

fn eq32(arg: u8, value: u64) -> ArgCondition {
    c(arg, CmpOp::Eq, value, None, 32)
}

fn masked32(arg: u8, mask: u64, value: u64) -> ArgCondition {
    c(arg, CmpOp::MaskedEq, value, Some(mask), 32)
}

fn bits_clear(arg: u8, mask: u64) -> Dnf {
    vec![vec![c(arg, CmpOp::MaskedEq, 0, Some(mask), 64)]]
}

fn one_of(arg: u8, values: &[u64]) -> Dnf {
    values.iter().map(|v| vec![eq32(arg, *v)]).collect()
}

/// `socket(domain, type, protocol)`: the granted families; inet and inet6 only as TCP
/// (SOCK_STREAM, protocol 0 or IPPROTO_TCP) and, with `udp`, UDP. No MPTCP, SCTP, raw or
/// ICMP sockets.
fn socket_rule(families_granted: &[u64], udp: bool) -> Dnf {
    let inet = [libc::AF_INET as u64, libc::AF_INET6 as u64];
    let mut dnf = Vec::new();
    for f in families_granted {
        if inet.contains(f) {
            for proto in [0, IPPROTO_TCP] {
                dnf.push(vec![
                    eq32(0, *f),
                    masked32(1, SOCK_TYPE_MASK, SOCK_STREAM),
                    eq32(2, proto),
                ]);
            }
            if udp {
                for proto in [0, IPPROTO_UDP] {
                    dnf.push(vec![
                        eq32(0, *f),
                        masked32(1, SOCK_TYPE_MASK, SOCK_DGRAM),
                        eq32(2, proto),
                    ]);
                }
            }
        } else {
            dnf.push(vec![eq32(0, *f)]);
        }
    }
    dnf
}

/// Adds `dnf` to what `syscall` must satisfy.
fn add(n: &mut Narrowings, syscall: &'static str, dnf: Dnf) {
    n.entry(syscall).or_default().push(dnf);
}

/// Every rule for `profile` confining process `ctx.pid`. An empty DNF means "never".
pub fn narrowings(profile: &Profile, ctx: &FilterContext) -> Narrowings {
    let mut n = Narrowings::new();
    let pid = u64::from(ctx.pid);

    // [network]: address families and socket types
    let fams: Vec<u64> = profile
        .network
        .families
        .iter()
        .filter_map(|f| families::number(f).map(u64::from))
        .collect();
    add(&mut n, "socket", socket_rule(&fams, profile.network.udp));
    add(&mut n, "socketpair", one_of(0, &fams));
    // TCP Fast Open sends data with an implicit connect that connect_tcp never sees
    if profile
        .landlock
        .as_ref()
        .is_some_and(|l| l.connect_tcp.is_some())
    {
        add(&mut n, "sendto", bits_clear(3, MSG_FASTOPEN));
        add(&mut n, "sendmsg", bits_clear(2, MSG_FASTOPEN));
        add(&mut n, "sendmmsg", bits_clear(3, MSG_FASTOPEN));
    }

    // [process]: namespaces (like systemd's RestrictNamespaces=)
    let granted: u64 = profile
        .process
        .namespaces
        .iter()
        .map(|ns| ns.clone_flag())
        .fold(0, |a, b| a | b);
    let forbidden = Namespace::all_flags() & !granted;
    if forbidden != 0 {
        add(&mut n, "unshare", bits_clear(0, forbidden));
        add(&mut n, "clone", bits_clear(0, forbidden));
        // setns: only a granted type; 0 ("any type") only when every type is granted
        let types: Vec<u64> = profile
            .process
            .namespaces
            .iter()
            .map(|ns| ns.clone_flag())
            .collect();
        add(&mut n, "setns", one_of(1, &types));
    }

    // other processes: only itself (0 or its own PID)
    let me = [0, pid];
    for s in [
        "prlimit64",
        "sched_setaffinity",
        "sched_setscheduler",
        "sched_setparam",
        "sched_setattr",
    ] {
        add(&mut n, s, one_of(0, &me));
    }
    for s in ["process_vm_readv", "process_vm_writev", "pidfd_open"] {
        add(&mut n, s, one_of(0, &[pid]));
    }
    add(
        &mut n,
        "setpriority",
        me.iter()
            .map(|who| vec![eq32(0, PRIO_PROCESS), eq32(1, *who)])
            .collect(),
    );
    add(
        &mut n,
        "ioprio_set",
        me.iter()
            .map(|who| vec![eq32(0, IOPRIO_WHO_PROCESS), eq32(1, *who)])
            .collect(),
    );
    add(&mut n, "kcmp", vec![vec![eq32(0, pid), eq32(1, pid)]]);

    // side doors that are not granted
    for door in SIDE_DOORS {
        if sidedoors::granted(profile.seccomp.as_ref(), door) {
            continue;
        }
        for rule in door.narrow {
            add(&mut n, rule.syscall(), rule.dnf());
        }
    }
    n
}

/// `a AND b` for alternatives of conjunctions.
pub fn and(a: &Dnf, b: &Dnf) -> Dnf {
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            let mut t = x.clone();
            for cond in y {
                if !t.contains(cond) {
                    t.push(cond.clone());
                }
            }
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn and_multiplies_alternatives() {
        let a = one_of(0, &[1, 2]);
        let b = one_of(1, &[3, 4, 5]);
        let ab = and(&a, &b);
        assert_eq!(ab.len(), 6);
        assert!(ab.iter().all(|t| t.len() == 2));
        assert!(and(&a, &Vec::new()).is_empty(), "AND with never is never");
    }

    #[test]
    fn inet_is_tcp_only_without_udp() {
        let r = socket_rule(&[1, 2], false);
        // unix, inet+0, inet+TCP
        assert_eq!(r.len(), 3);
        let r = socket_rule(&[2, 10], true);
        assert_eq!(r.len(), 8);
    }
}
