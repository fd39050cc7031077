//! Listening sockets and who holds them: `/proc/net/{tcp,tcp6,udp,udp6}` (the kernel's
//! socket tables) joined by inode with the `socket:[N]` links in `/proc/PID/fd`, and a
//! unit's processes from its cgroup (`cgroup.procs`, cgroup v2).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

/// A socket bound for incoming traffic: TCP in LISTEN, UDP bound and unconnected.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listener {
    pub proto: Proto,
    pub addr: IpAddr,
    pub port: u16,
    pub inode: u64,
}

impl Listener {
    /// Bound to every interface (0.0.0.0 or ::).
    pub fn all_interfaces(&self) -> bool {
        self.addr.is_unspecified()
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        };
        match self.addr {
            IpAddr::V4(a) => write!(f, "{proto} {a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "{proto} [{a}]:{}", self.port),
        }
    }
}

fn parse_addr(hex: &str) -> Option<IpAddr> {
    match hex.len() {
        8 => {
            let v = u32::from_str_radix(hex, 16).ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(v.to_ne_bytes())))
        }
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                let v = u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).ok()?;
                b[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
            }
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// The listeners in one `/proc/net/{tcp,udp}{,6}` table.
pub fn parse_table(text: &str, proto: Proto) -> Vec<Listener> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let (Some((la, lp)), Some((_, rp))) = (f[1].split_once(':'), f[2].split_once(':')) else {
            continue;
        };
        let listening = match proto {
            Proto::Tcp => f[3] == "0A",
            // UDP: "closed" (unconnected) with no remote port: bound for anyone
            Proto::Udp => f[3] == "07" && rp == "0000",
        };
        let (Some(addr), Ok(port), Ok(inode)) = (
            parse_addr(la),
            u16::from_str_radix(lp, 16),
            f[9].parse::<u64>(),
        ) else {
            continue;
        };
        if listening && inode != 0 {
            out.push(Listener {
                proto,
                addr,
                port,
                inode,
            });
        }
    }
    out
}

/// Every listener on this machine (tables that cannot be read are left out).
pub fn listeners(proc: &Path) -> Vec<Listener> {
    let mut out = Vec::new();
    for (name, proto) in [
        ("tcp", Proto::Tcp),
        ("tcp6", Proto::Tcp),
        ("udp", Proto::Udp),
        ("udp6", Proto::Udp),
    ] {
        if let Ok(t) = std::fs::read_to_string(proc.join("net").join(name)) {
            out.extend(parse_table(&t, proto));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The socket inodes `pid` holds open (empty when its fds cannot be read).
pub fn socket_inodes(proc: &Path, pid: u32) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    let Ok(dir) = std::fs::read_dir(proc.join(pid.to_string()).join("fd")) else {
        return out;
    };
    for e in dir.flatten() {
        if let Ok(target) = std::fs::read_link(e.path())
            && let Some(n) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
        {
            out.insert(n);
        }
    }
    out
}

/// The processes of a unit's cgroup (e.g. "/system.slice/mosquitto.service").
pub fn cgroup_pids(cgroup_root: &Path, cgroup: &str) -> Vec<u32> {
    let rel = cgroup.trim_start_matches('/');
    if rel.split('/').any(|c| c == "..") {
        return Vec::new();
    }
    std::fs::read_to_string(cgroup_root.join(rel).join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Which process holds each listening socket (the first one found).
pub fn owners(proc: &Path, listeners: &[Listener]) -> BTreeMap<u64, u32> {
    let wanted: BTreeSet<u64> = listeners.iter().map(|l| l.inode).collect();
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(proc) else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        for ino in socket_inodes(proc, pid) {
            if wanted.contains(&ino) {
                out.entry(ino).or_insert(pid);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:075B 00000000:0000 0A 00000000:00000000 00:00000000 00000000   107        0 21371 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0\n   2: 0100007F:9C40 0100007F:075B 01 00000000:00000000 00:00000000 00000000     0        0 999 1\n";

    #[test]
    fn listen_entries_parse_and_established_ones_do_not_count() {
        let l = parse_table(TCP, Proto::Tcp);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].to_string(), "tcp 0.0.0.0:1883");
        assert!(l[0].all_interfaces());
        assert_eq!(l[1].to_string(), "tcp 127.0.0.1:3306");
        assert!(!l[1].all_interfaces());
        assert_eq!(l[0].inode, 21371);
    }

    #[test]
    fn ipv6_and_udp_entries_parse() {
        let t = "  sl  local_address                         remote_address                        st\n   0: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 555 2\n   1: 00000000000000000000000001000000:0036 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 556 2\n";
        let l = parse_table(t, Proto::Udp);
        assert_eq!(l[0].to_string(), "udp [::]:53");
        assert!(l[0].all_interfaces());
        assert_eq!(l[1].to_string(), "udp [::1]:54");
    }

    #[test]
    fn this_process_listening_is_found_with_its_inode() {
        let s = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        let proc = Path::new("/proc");
        let all = listeners(proc);
        let mine = all
            .iter()
            .find(|l| l.port == port && l.addr == IpAddr::V4(Ipv4Addr::LOCALHOST))
            .expect("our listener in /proc/net/tcp");
        assert!(socket_inodes(proc, std::process::id()).contains(&mine.inode));
        assert_eq!(
            owners(proc, std::slice::from_ref(mine)).get(&mine.inode),
            Some(&std::process::id())
        );
        assert!(cgroup_pids(Path::new("/sys/fs/cgroup"), "/../etc").is_empty());
    }
}
