//! Accounts: empty passwords, a second uid 0, and locked passwords that still let someone
//! in (a login shell and SSH keys: locking the password does not stop key logins).

use super::{Check, Severity, Status, Target};

fn read_small(t: &Target, path: &str) -> Result<String, String> {
    t.read(path, 16 << 20)
}

fn login_shell(shell: &str) -> bool {
    !(shell.is_empty()
        || shell.ends_with("/nologin")
        || shell.ends_with("/false")
        || shell.ends_with("/sync")
        || shell.ends_with("/halt")
        || shell.ends_with("/shutdown"))
}

pub fn checks(t: &Target) -> Vec<Check> {
    let passwd = match read_small(t, "/etc/passwd") {
        Ok(p) => p,
        Err(e) => {
            return vec![Check::new(
                "accounts.passwd",
                Severity::High,
                Status::Unknown,
                e,
            )];
        }
    };
    // name → (uid, home, shell)
    let users: Vec<(String, String, String, String)> = passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 7).then(|| {
                (
                    f[0].to_string(),
                    f[2].to_string(),
                    f[5].to_string(),
                    f[6].to_string(),
                )
            })
        })
        .collect();
    let uid0: Vec<String> = users
        .iter()
        // glibc reads "00" or "+0" as uid 0 too
        .filter(|(n, uid, _, _)| uid.trim().parse::<i64>() == Ok(0) && n != "root")
        .map(|(n, ..)| n.clone())
        .collect();
    let mut out = vec![
        Check::new(
            "accounts.uid0",
            Severity::High,
            if uid0.is_empty() {
                Status::Pass
            } else {
                Status::Fail
            },
            if uid0.is_empty() {
                "root is the only account with uid 0".to_string()
            } else {
                format!("{} other account(s) with uid 0", uid0.len())
            },
        )
        .remedy("remove the extra uid-0 accounts (userdel NAME) or give them their own uid")
        .items(uid0),
    ];
    let shadow = match read_small(t, "/etc/shadow") {
        Ok(s) => s,
        Err(e) => {
            out.push(Check::new(
                "accounts.empty-password",
                Severity::Critical,
                Status::Unknown,
                e.clone(),
            ));
            out.push(Check::new(
                "accounts.locked-usable",
                Severity::Low,
                Status::Unknown,
                e,
            ));
            return out;
        }
    };
    let mut empty = Vec::new();
    let mut locked_usable = Vec::new();
    // a password field in passwd itself: empty means no password (pam_unix nullok), a hash
    // there is used instead of shadow's
    for l in passwd.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 7 && f[1].is_empty() {
            empty.push(format!("{} (empty password in /etc/passwd)", f[0]));
        }
    }
    for l in shadow.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 2 {
            continue;
        }
        let (name, hash) = (f[0], f[1]);
        let Some((_, _, home, shell)) = users.iter().find(|(n, ..)| n == name) else {
            continue;
        };
        // an account expired by date cannot log in at all
        let expired = f
            .get(7)
            .is_some_and(|d| d.parse::<u64>().is_ok_and(|d| d <= 1));
        if hash.is_empty() && !expired {
            empty.push(name.to_string());
        }
        let locked = hash.starts_with('!') || hash.starts_with('*');
        if locked
            && !expired
            && login_shell(shell)
            && t.path(&format!(
                "{}/.ssh/authorized_keys",
                home.trim_end_matches('/')
            ))
            .is_file()
        {
            locked_usable.push(format!(
                "{name} (shell {shell}, {home}/.ssh/authorized_keys)"
            ));
        }
    }
    out.push(
        Check::new(
            "accounts.empty-password",
            Severity::Critical,
            if empty.is_empty() {
                Status::Pass
            } else {
                Status::Fail
            },
            if empty.is_empty() {
                "no account has an empty password".to_string()
            } else {
                format!("{} account(s) log in without a password", empty.len())
            },
        )
        .remedy("lock them (passwd -l NAME) or set a password")
        .items(empty),
    );
    out.push(
        Check::new(
            "accounts.locked-usable",
            Severity::Low,
            if locked_usable.is_empty() { Status::Pass } else { Status::Fail },
            if locked_usable.is_empty() {
                "no locked account can still log in with SSH keys".to_string()
            } else {
                format!("{} account(s) with a locked password can still log in with SSH keys", locked_usable.len())
            },
        )
        .remedy("to disable an account, expire it (usermod --expiredate 1 NAME) or give it /usr/sbin/nologin; a locked password alone does not stop key logins")
        .items(locked_usable),
    );
    out
}
