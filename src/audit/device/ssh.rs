//! OpenSSH server settings: root login, password and empty-password logins. The effective
//! value is the first one given (sshd's rule), `Include`s read in place (globs sorted);
//! settings inside `Match` blocks apply only to some connections and are not the default.

use std::path::Path;

use super::{Check, Severity, Status, Target};

/// The global (outside `Match`) value of each keyword, lower-case keys, first one wins.
pub fn effective(t: &Target, file: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut in_match = false;
    read(t, &t.path(file), &mut out, &mut in_match, 0)?;
    Ok(out)
}

fn read(
    t: &Target,
    path: &Path,
    out: &mut Vec<(String, String)>,
    in_match: &mut bool,
    depth: usize,
) -> Result<(), String> {
    if depth > 8 {
        return Err(format!("{}: Include nested too deeply", path.display()));
    }
    let text = crate::fsutil::open_regular(path)
        .and_then(|mut f| {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::Read::take(&mut f, 1 << 20), &mut s)
                .map(|_| s)
        })
        .map_err(|e| format!("{}: {e}", path.display()))?;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (
                k.to_ascii_lowercase(),
                v.trim_start_matches(['=', ' ', '\t']).trim().to_string(),
            ),
            None => (line.to_ascii_lowercase(), String::new()),
        };
        if key == "match" {
            *in_match = true;
            continue;
        }
        if key == "include" {
            for pattern in value.split_whitespace() {
                let abs = if pattern.starts_with('/') {
                    pattern.to_string()
                } else {
                    format!("/etc/ssh/{pattern}")
                };
                for p in glob_sorted(&t.path(&abs)) {
                    read(t, &p, out, in_match, depth + 1)?;
                }
            }
            continue;
        }
        if *in_match || out.iter().any(|(k, _)| *k == key) {
            continue;
        }
        out.push((key, value.to_ascii_lowercase()));
    }
    Ok(())
}

/// `dir/*.conf`-style patterns (a `*` in the last component only), sorted.
fn glob_sorted(pattern: &Path) -> Vec<std::path::PathBuf> {
    let Some(name) = pattern.file_name().and_then(|n| n.to_str()) else {
        return vec![];
    };
    if !name.contains('*') {
        return if pattern.exists() {
            vec![pattern.to_path_buf()]
        } else {
            vec![]
        };
    }
    let (pre, post) = name.split_once('*').unwrap_or((name, ""));
    let Some(dir) = pattern.parent() else {
        return vec![];
    };
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name().to_str().is_some_and(|n| {
                        n.starts_with(pre) && n.ends_with(post) && n.len() >= pre.len() + post.len()
                    })
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn checks(t: &Target) -> Vec<Check> {
    let ids = ["ssh.root-login", "ssh.password-auth", "ssh.empty-passwords"];
    if !t.path("/usr/sbin/sshd").exists() {
        return ids
            .iter()
            .map(|id| {
                Check::new(
                    id,
                    Severity::Info,
                    Status::NotApplicable,
                    "no OpenSSH server installed",
                )
            })
            .collect();
    }
    let conf = match effective(t, "/etc/ssh/sshd_config") {
        Ok(c) => c,
        Err(e) => {
            return ids
                .iter()
                .map(|id| {
                    Check::new(
                        id,
                        Severity::High,
                        Status::Unknown,
                        format!("cannot read the sshd configuration: {e}"),
                    )
                })
                .collect();
        }
    };
    let get = |k: &str, default: &'static str| {
        conf.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| default.to_string())
    };
    let root = get("permitrootlogin", "prohibit-password");
    let password = get("passwordauthentication", "yes");
    let kbd = get("kbdinteractiveauthentication", "yes");
    let empty = get("permitemptypasswords", "no");
    let dropin = "printf '%s\\n' 'PermitRootLogin no' 'PasswordAuthentication no' 'KbdInteractiveAuthentication no' > /etc/ssh/sshd_config.d/00-hardening.conf && systemctl reload ssh";
    vec![
        Check::new(
            "ssh.root-login",
            Severity::High,
            if root == "yes" {
                Status::Fail
            } else {
                Status::Pass
            },
            format!("PermitRootLogin {root}"),
        )
        .remedy(format!(
            "set PermitRootLogin no (first value wins: put it before other settings): {dropin}"
        )),
        Check::new(
            "ssh.password-auth",
            Severity::Medium,
            if password == "yes" || kbd == "yes" {
                Status::Fail
            } else {
                Status::Pass
            },
            format!("PasswordAuthentication {password}, KbdInteractiveAuthentication {kbd}"),
        )
        .remedy(format!("log in with keys only: {dropin}")),
        Check::new(
            "ssh.empty-passwords",
            Severity::Critical,
            if empty == "yes" {
                Status::Fail
            } else {
                Status::Pass
            },
            format!("PermitEmptyPasswords {empty}"),
        )
        .remedy("remove PermitEmptyPasswords yes from /etc/ssh/sshd_config(.d)"),
    ]
}
