//! Our systemd-named syscall groups against the systemd on this machine
//! (`systemd-analyze syscall-filter GROUP`): any difference that is not a documented hardend
//! addition or omission (`groups::SYSTEMD_DIFFERENCES`) fails.

use std::collections::BTreeSet;
use std::process::Command;

use hardend::profile::groups::{SYSTEMD_DIFFERENCES, find};

fn systemd_version() -> Option<u32> {
    let out = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout);
    s.split_whitespace().nth(1)?.parse().ok()
}

/// The direct members of `group` as this machine's systemd lists them.
fn systemd_members(group: &str) -> Option<BTreeSet<String>> {
    let out = Command::new("systemd-analyze")
        .args(["syscall-filter", group])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && *l != group)
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn every_systemd_group_matches_the_machines_systemd_but_for_documented_differences() {
    let Some(version) = systemd_version() else {
        eprintln!("skipped: no systemd-analyze on this machine");
        return;
    };
    let listed = Command::new("systemd-analyze")
        .arg("syscall-filter")
        .output()
        .unwrap();
    let theirs_groups: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|l| l.starts_with('@'))
        .map(str::to_string)
        .collect();
    let mut problems = Vec::new();
    for g in &theirs_groups {
        if g == "@known" {
            continue; // the whole table of the architecture, filled in from the kernel's list
        }
        let Some(theirs) = systemd_members(g) else {
            continue;
        };
        let Some(ours) = find(g) else {
            problems.push(format!("{g}: systemd {version} has it, hardend does not"));
            continue;
        };
        let ours: BTreeSet<String> = ours.members.iter().map(|m| m.to_string()).collect();
        let documented = |name: &str, added: bool| {
            SYSTEMD_DIFFERENCES.iter().any(|d| {
                d.group == g && d.member == name && d.added == added && d.systemd.contains(&version)
            })
        };
        for extra in ours.difference(&theirs) {
            if !documented(extra, true) {
                problems.push(format!(
                    "{g}: hardend adds {extra} (systemd {version} does not have it)"
                ));
            }
        }
        for missing in theirs.difference(&ours) {
            if !documented(missing, false) {
                problems.push(format!(
                    "{g}: hardend lacks {missing} (systemd {version} has it)"
                ));
            }
        }
    }
    // and no documented difference that is not one on this systemd
    for d in SYSTEMD_DIFFERENCES
        .iter()
        .filter(|d| d.systemd.contains(&version))
    {
        let Some(theirs) = systemd_members(d.group) else {
            continue;
        };
        let ours = find(d.group)
            .map(|g| g.members.contains(&d.member))
            .unwrap_or(false);
        let real = if d.added {
            ours && !theirs.contains(d.member)
        } else {
            !ours && theirs.contains(d.member)
        };
        if !real {
            problems.push(format!(
                "documented difference {}: {} is not one on systemd {version}",
                d.group, d.member
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
