//! `/proc/PID/mountinfo`: the mount view a process really has. Readable for every process
//! without ptrace rights (unlike `/proc/PID/ns/mnt`, which the daemon could read only with
//! CAP_SYS_PTRACE for a service of another uid).

/// One line of mountinfo: the mount's ID, its mount point and whether it is read-only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountLine {
    pub id: u64,
    pub mount_point: String,
    pub read_only: bool,
}

/// Parses mountinfo text (fields: id parent major:minor root mount-point options ...).
pub fn parse(text: &str) -> Vec<MountLine> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Some(MountLine {
                id: f.first()?.parse().ok()?,
                mount_point: unescape(f.get(4)?),
                read_only: f.get(5)?.split(',').any(|o| o == "ro"),
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("x"), 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount view of process `pid`, as the kernel reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountView {
    /// In another mount namespace than its parent process (the wrapper made one; so does
    /// systemd for a unit with PrivateTmp=, ProtectSystem= and similar).
    pub own_namespace: bool,
    /// Its `/` (the top mount there) is read-only.
    pub root_read_only: bool,
    /// Mount points that are writable in its view.
    pub writable: Vec<String>,
}

/// The mount on top at `/` (mountinfo lists mounts in the order they were stacked).
fn top_root(lines: &[MountLine]) -> Option<&MountLine> {
    lines.iter().rev().find(|l| l.mount_point == "/")
}

fn lines_of(pid: u32) -> Option<Vec<MountLine>> {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .ok()
        .map(|t| parse(&t))
}

/// Reads the view of `pid`; `None` when the process is gone or unreadable.
///
/// Another mount namespace is told by mount IDs: a new namespace gets a copy of every mount
/// with new IDs, so its `/` has an ID its parent's view does not.
pub fn view(pid: u32) -> Option<MountView> {
    let lines = lines_of(pid)?;
    let parent = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PPid:"))
                .and_then(|v| v.trim().parse::<u32>().ok())
        });
    let root = top_root(&lines);
    let own_namespace = match (root, parent.and_then(lines_of)) {
        (Some(r), Some(p)) => !p.iter().any(|l| l.id == r.id),
        _ => false,
    };
    Some(MountView {
        own_namespace,
        root_read_only: root.is_some_and(|l| l.read_only),
        writable: lines
            .iter()
            .filter(|l| !l.read_only)
            .map(|l| l.mount_point.clone())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_mount_of_root_decides() {
        let t = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                 98 22 254:0 / / ro,relatime - ext4 /dev/vda rw\n\
                 99 98 254:0 /var/lib/x /var/lib/x rw,relatime - ext4 /dev/vda rw\n\
                 100 98 0:5 /null /run/a\\040b ro - devtmpfs udev rw\n";
        let l = parse(t);
        assert_eq!(l.len(), 4);
        assert!(l[1].read_only && !l[2].read_only);
        assert_eq!(l[3].mount_point, "/run/a b");
        assert!(top_root(&l).unwrap().read_only);
        assert_eq!(top_root(&l).unwrap().id, 98);
    }

    #[test]
    fn this_process_has_a_view() {
        let v = view(std::process::id()).unwrap();
        assert!(!v.writable.is_empty() || v.root_read_only);
        assert!(!v.own_namespace, "the test runs in its parent's namespace");
    }
}
