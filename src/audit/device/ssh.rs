//! OpenSSH server settings: root login, password and empty-password logins. The effective
//! value is the first one given (sshd's rule), `Include`s read in place (globs sorted);
//! settings inside `Match` blocks apply only to some connections and are not the default.

use super::{Check, Severity, Status, Target};

/// The global (outside `Match`) value of each keyword, lower-case keys, first one wins.
pub fn effective(t: &Target, file: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut in_match = false;
    read(t, file, &mut out, &mut in_match, 0)?;
    Ok(out)
}

/// The first argument of a value the way sshd splits it: quotes removed, a `#` word
/// starts a comment.
fn first_arg(v: &str) -> String {
    let v = v.trim();
    if let Some(rest) = v.strip_prefix('"') {
        return rest.split('"').next().unwrap_or("").to_string();
    }
    v.split_whitespace()
        .next()
        .filter(|w| !w.starts_with('#'))
        .unwrap_or("")
        .to_string()
}

fn read(
    t: &Target,
    path: &str,
    out: &mut Vec<(String, String)>,
    in_match: &mut bool,
    depth: usize,
) -> Result<(), String> {
    if depth > 8 {
        return Err(format!("{path}: Include nested too deeply"));
    }
    let text = t.read(path, 1 << 20)?;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, rest) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (
                k.to_ascii_lowercase(),
                v.trim_start_matches(['=', ' ', '\t']),
            ),
            None => (line.to_ascii_lowercase(), ""),
        };
        // the older name of the same setting
        let key = if key == "challengeresponseauthentication" {
            "kbdinteractiveauthentication".to_string()
        } else {
            key
        };
        if key == "match" {
            // `Match all` applies to every connection: global again
            *in_match = !first_arg(rest).eq_ignore_ascii_case("all");
            continue;
        }
        if key == "include" {
            for pattern in rest.split_whitespace() {
                let pattern = pattern.trim_matches('"');
                let abs = if pattern.starts_with('/') {
                    pattern.to_string()
                } else {
                    format!("/etc/ssh/{pattern}")
                };
                // sshd keeps the Match state of the including file
                let outer = *in_match;
                for p in glob_sorted(t, &abs) {
                    read(t, &p, out, in_match, depth + 1)?;
                    *in_match = outer;
                }
            }
            continue;
        }
        if *in_match || out.iter().any(|(k, _)| *k == key) {
            continue;
        }
        out.push((key, first_arg(rest).to_ascii_lowercase()));
    }
    Ok(())
}

/// `dir/*.conf`-style patterns (a `*` in the last component only; names starting with a
/// dot are not matched, as glob(3) does not), as device paths, sorted.
fn glob_sorted(t: &Target, pattern: &str) -> Vec<String> {
    let Some((dir, name)) = pattern.rsplit_once('/') else {
        return vec![];
    };
    if !name.contains('*') {
        return if t.is_file(pattern) {
            vec![pattern.to_string()]
        } else {
            vec![]
        };
    }
    let (pre, post) = name.split_once('*').unwrap_or((name, ""));
    let mut v: Vec<String> = std::fs::read_dir(t.path(dir))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| {
                    !n.starts_with('.')
                        && n.starts_with(pre)
                        && n.ends_with(post)
                        && n.len() >= pre.len() + post.len()
                })
                .map(|n| format!("{dir}/{n}"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn checks(t: &Target) -> Vec<Check> {
    let ids = ["ssh.root-login", "ssh.password-auth", "ssh.empty-passwords"];
    if !t.is_file("/usr/sbin/sshd") {
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
