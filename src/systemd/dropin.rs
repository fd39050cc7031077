//! Drop-in rendering: the `50-hardend.conf` that puts `hardend-exec` in front of a unit's
//! `ExecStart=` commands. Pure functions; the facts about the unit come from systemd over
//! D-Bus (`client.rs`), never from parsing unit files.

use std::path::{Path, PathBuf};

/// File name of our drop-in inside `<unit>.d/`.
pub const DROPIN_NAME: &str = "50-hardend.conf";
/// First line of every drop-in we write; also how we recognise ours.
pub const MARKER: &str = "# managed by hardend: profile=";
/// The syscalls hardend-exec needs under a unit's own allow-list `SystemCallFilter=`
/// (systemd 252's @system-service lacks most): Landlock and seccomp, the capability sets,
/// and the mount view (its own mount namespace). The service does not keep them: hardend's
/// filter denies them after exec (side doors, `@mount`).
pub const WRAPPER_SYSCALLS: &[&str] = &[
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    "seccomp",
    "prctl",
    "capset",
    "unshare",
    "mount",
    "mount_setattr",
    "open_tree",
    "move_mount",
    "openat2",
];

/// One `ExecStart=` command as systemd reports it (`ExecStartEx`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecCommand {
    pub path: String,
    pub argv: Vec<String>,
    /// systemd's flag names: ignore-failure, privileged, no-setuid, ambient, no-env-expand.
    pub flags: Vec<String>,
}

/// What we need to know about a unit to wrap it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnitFacts {
    pub unit: String,
    pub service_type: String,
    pub exec_start: Vec<ExecCommand>,
    /// `SystemCallFilter=`: (true = allow list, names). `None`: no filter.
    pub syscall_filter: Option<(bool, Vec<String>)>,
    /// The unit's file system is read-only where our records go (ProtectSystem=strict,
    /// DynamicUser=, ReadOnlyPaths=, InaccessiblePaths=).
    pub restricts_run: bool,
}

/// Why a unit cannot be wrapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{0:?} is not a valid service unit name")]
    BadUnitName(String),
    #[error("{unit} has no ExecStart= command to wrap")]
    NoExecStart { unit: String },
    #[error("{unit}: ExecStart path {path:?} is not absolute")]
    RelativePath { unit: String, path: String },
    #[error(
        "{unit} denies {syscalls} with SystemCallFilter=~...; hardend-exec needs them and will not weaken the unit's own filter"
    )]
    FilterDeniesWrapper { unit: String, syscalls: String },
    #[error("{unit} uses ExecStart flag {flag:?}, which hardend does not know how to keep")]
    UnknownFlag { unit: String, flag: String },
    #[error("{unit} is critical to the system (or hardend itself) and is never wrapped")]
    Critical { unit: String },
}

/// Units whose confinement could cut the machine off from its own management.
fn is_critical(unit: &str) -> bool {
    matches!(
        unit,
        "hardend.service"
            | "dbus.service"
            | "dbus-broker.service"
            | "systemd-journald.service"
            | "systemd-logind.service"
            | "systemd-udevd.service"
            | "init.scope"
    ) || unit.starts_with("systemd-journald@")
}

/// Checks a service unit name (including template instances such as `getty@tty1.service`).
pub fn valid_unit_name(unit: &str) -> bool {
    let Some(stem) = unit.strip_suffix(".service") else {
        return false;
    };
    !stem.is_empty()
        && unit.len() <= 255
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
        && !stem.starts_with('.')
        && stem.matches('@').count() <= 1
}

/// Where the drop-in for `unit` lives under `dir` (`/etc/systemd/system` or `/run/...`).
pub fn dropin_path(dir: &Path, unit: &str) -> PathBuf {
    dir.join(format!("{unit}.d")).join(DROPIN_NAME)
}

/// Quotes one word for an `ExecStart=` line so that systemd reads back exactly `word`.
/// `$` is kept as is: variables in the original command must expand the same way when
/// systemd runs our line (and stay literal under the `:` prefix, which we keep).
pub fn quote_word(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    if word == ";" {
        // A lone ";" separates commands; systemd reads "\;" as a literal semicolon.
        return "\\;".to_string();
    }
    let mut needs_quotes = word.is_empty();
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => {
                out.push_str("\\\"");
                needs_quotes = true;
            }
            '\'' => {
                // literal inside the double quotes we then add
                out.push('\'');
                needs_quotes = true;
            }
            '%' => out.push_str("%%"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            ' ' => {
                out.push(c);
                needs_quotes = true;
            }
            c => out.push(c),
        }
    }
    if needs_quotes {
        format!("\"{out}\"")
    } else {
        out
    }
}

fn prefixes(unit: &str, flags: &[String]) -> Result<String, RenderError> {
    let mut p = String::new();
    for f in flags {
        match f.as_str() {
            "ignore-failure" => p.push('-'),
            "no-env-expand" => p.push(':'),
            "privileged" => p.push('+'),
            "ambient" => p.push_str("!!"),
            "no-setuid" => p.push('!'),
            other => {
                return Err(RenderError::UnknownFlag {
                    unit: unit.to_string(),
                    flag: other.to_string(),
                });
            }
        }
    }
    Ok(p)
}

/// Renders the drop-in. `exec` is hardend-exec's installed path; `extra_args` are added
/// before `--` (e.g. `--reset-sigpipe`).
///
/// `service_denied`: syscalls hardend's own filter denies to the service after exec. A unit
/// with a deny-list `SystemCallFilter=~...` that denies one the wrapper needs gets it lifted
/// from its list only if it is in `service_denied` — the service itself still cannot make
/// the call, so the unit's filter is not weakened for it; anything else is refused.
pub fn render(
    facts: &UnitFacts,
    profile: &str,
    exec: &Path,
    extra_args: &[&str],
    service_denied: &[&str],
) -> Result<String, RenderError> {
    let unit = facts.unit.as_str();
    if !valid_unit_name(unit) {
        return Err(RenderError::BadUnitName(unit.to_string()));
    }
    if is_critical(unit) {
        return Err(RenderError::Critical {
            unit: unit.to_string(),
        });
    }
    if facts.exec_start.is_empty() {
        return Err(RenderError::NoExecStart {
            unit: unit.to_string(),
        });
    }
    let mut filter_line = None;
    if let Some((allow, names)) = &facts.syscall_filter {
        let missing: Vec<&str> = WRAPPER_SYSCALLS
            .iter()
            .copied()
            .filter(|s| names.iter().any(|n| n == s) != *allow)
            .collect();
        if !missing.is_empty() {
            if !*allow {
                let kept: Vec<&str> = missing
                    .iter()
                    .copied()
                    .filter(|s| !service_denied.contains(s))
                    .collect();
                if !kept.is_empty() {
                    return Err(RenderError::FilterDeniesWrapper {
                        unit: unit.to_string(),
                        syscalls: kept.join(", "),
                    });
                }
            }
            // An allow list: adding names widens it only by what the wrapper needs. A deny
            // list: a later plain entry removes names from it — only ones the service's own
            // filter denies again.
            filter_line = Some(format!("SystemCallFilter={}", missing.join(" ")));
        }
    }

    let mut out = format!("{MARKER}{profile}\n");
    out.push_str("# Written by hardend (hardenctl confine); removed by hardenctl release.\n");
    out.push_str("[Service]\nExecStart=\n");
    for cmd in &facts.exec_start {
        if !cmd.path.starts_with('/') {
            return Err(RenderError::RelativePath {
                unit: unit.to_string(),
                path: cmd.path.clone(),
            });
        }
        let mut line = prefixes(unit, &cmd.flags)?;
        line.push_str(&quote_word(&exec.to_string_lossy()));
        for a in ["--profile", profile, "--unit", unit] {
            line.push(' ');
            line.push_str(&quote_word(a));
        }
        for a in extra_args {
            line.push(' ');
            line.push_str(&quote_word(a));
        }
        let argv0 = cmd.argv.first().map(String::as_str).unwrap_or(&cmd.path);
        if argv0 != cmd.path {
            // The unit used `@`: the program runs as `path` but sees `argv0`.
            line.push_str(" --argv0 ");
            line.push_str(&quote_word(argv0));
        }
        line.push_str(" -- ");
        line.push_str(&quote_word(&cmd.path));
        for a in cmd.argv.iter().skip(1) {
            line.push(' ');
            line.push_str(&quote_word(a));
        }
        out.push_str("ExecStart=");
        out.push_str(&line);
        out.push('\n');
    }
    if let Some(f) = filter_line {
        out.push_str(
            "# The unit's own syscall filter must let hardend-exec confine the service (Landlock, seccomp,\n# capabilities, its mount view); hardend's filter takes them away from the service again.\n",
        );
        out.push_str(&f);
        out.push('\n');
    }
    if facts.restricts_run {
        out.push_str("# hardend-exec writes its enforcement record here.\n");
        out.push_str("ReadWritePaths=-/run/hardend/enforced\n");
    }
    Ok(out)
}

/// The profile named by our drop-in at `path`, if there is one of ours.
pub fn profile_of(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .as_deref()
        .and_then(parse_marker)
}

/// (unit, profile) for every drop-in of ours under `dir`, sorted.
pub fn scan(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let unit = name.strip_suffix(".d")?;
            if !valid_unit_name(unit) {
                return None;
            }
            Some((unit.to_string(), profile_of(&e.path().join(DROPIN_NAME))?))
        })
        .collect();
    out.sort();
    out
}

/// What [`release_all`] did.
#[derive(Debug, Default)]
pub struct Released {
    /// Units whose drop-in of ours was removed.
    pub units: Vec<String>,
    /// Drop-ins of ours that could not be removed, with why.
    pub failed: Vec<(PathBuf, std::io::Error)>,
}

/// Removes every drop-in of ours under `dirs` (files without our marker are never
/// touched), and the `UNIT.d` directory when it is then empty. For the package's prerm: a
/// drop-in that runs a removed hardend-exec would keep its unit from starting.
pub fn release_all(dirs: &[&Path]) -> Released {
    let mut r = Released::default();
    for dir in dirs {
        for (unit, _) in scan(dir) {
            let file = dropin_path(dir, &unit);
            match std::fs::remove_file(&file) {
                Ok(()) => {
                    if let Some(d) = file.parent() {
                        let _ = std::fs::remove_dir(d); // only when empty
                    }
                    r.units.push(unit);
                }
                Err(e) => r.failed.push((file, e)),
            }
        }
    }
    r
}

/// The profile named in a drop-in we wrote, or `None` if it is not ours.
pub fn parse_marker(content: &str) -> Option<String> {
    content
        .lines()
        .next()?
        .strip_prefix(MARKER)
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
}

/// Splits an `ExecStart=` value the way systemd does (quotes, C escapes, `%%`), for tests
/// and for checking that what we render reads back to the same argv.
pub fn split_command_line(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, c) if c.is_whitespace() => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '%') if chars.peek() == Some(&'%') => {
                    chars.next();
                    word.push('%');
                }
                (_, '\\') => match chars.next() {
                    Some('n') => word.push('\n'),
                    Some('t') => word.push('\t'),
                    Some('s') => word.push(' '),
                    Some('x') => {
                        let hex: String = chars.by_ref().take(2).collect();
                        if let Ok(b) = u8::from_str_radix(&hex, 16) {
                            word.push(char::from(b));
                        }
                    }
                    Some(other) => word.push(other),
                    None => {}
                },
                (_, c) => word.push(c),
            }
        }
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(path: &str, argv: &[&str], flags: &[&str]) -> ExecCommand {
        ExecCommand {
            path: path.into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            flags: flags.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn facts(unit: &str, cmds: Vec<ExecCommand>) -> UnitFacts {
        UnitFacts {
            unit: unit.into(),
            service_type: "simple".into(),
            exec_start: cmds,
            syscall_filter: None,
            restricts_run: false,
        }
    }

    const EXEC: &str = "/usr/libexec/hardend/hardend-exec";

    fn render_ok(f: &UnitFacts) -> String {
        render(f, "web", Path::new(EXEC), &[], &[]).unwrap()
    }

    #[test]
    fn golden_plain_exec_start() {
        let f = facts(
            "mosquitto.service",
            vec![cmd(
                "/usr/sbin/mosquitto",
                &["/usr/sbin/mosquitto", "-c", "/etc/mosquitto/mosquitto.conf"],
                &[],
            )],
        );
        assert_eq!(
            render_ok(&f),
            "# managed by hardend: profile=web\n\
             # Written by hardend (hardenctl confine); removed by hardenctl release.\n\
             [Service]\n\
             ExecStart=\n\
             ExecStart=/usr/libexec/hardend/hardend-exec --profile web --unit mosquitto.service -- /usr/sbin/mosquitto -c /etc/mosquitto/mosquitto.conf\n"
        );
    }

    #[test]
    fn golden_each_prefix_is_kept() {
        for (flags, prefix) in [
            (vec!["ignore-failure"], "-"),
            (vec!["no-env-expand"], ":"),
            (vec!["privileged"], "+"),
            (vec!["no-setuid"], "!"),
            (vec!["ambient"], "!!"),
            (vec!["ignore-failure", "no-env-expand"], "-:"),
        ] {
            let f = facts("a.service", vec![cmd("/bin/x", &["/bin/x"], &flags)]);
            let out = render_ok(&f);
            let line = out.lines().nth(4).unwrap();
            assert_eq!(
                line,
                format!("ExecStart={prefix}{EXEC} --profile web --unit a.service -- /bin/x"),
                "{flags:?}"
            );
        }
        // `@`: argv[0] differs from the path
        let f = facts(
            "a.service",
            vec![cmd("/usr/sbin/sshd", &["sshd: listener", "-D"], &[])],
        );
        let out = render_ok(&f);
        assert!(
            out.contains(" --argv0 \"sshd: listener\" -- /usr/sbin/sshd -D\n"),
            "{out}"
        );
        let f = facts(
            "a.service",
            vec![cmd("/bin/x", &["/bin/x"], &["frobnicate"])],
        );
        assert!(matches!(
            render(&f, "web", Path::new(EXEC), &[], &[]),
            Err(RenderError::UnknownFlag { .. })
        ));
    }

    #[test]
    fn golden_several_exec_start_lines_for_oneshot() {
        let mut f = facts(
            "setup.service",
            vec![
                cmd("/bin/a", &["/bin/a", "1"], &[]),
                cmd("/bin/b", &["/bin/b"], &["ignore-failure"]),
            ],
        );
        f.service_type = "oneshot".into();
        let out = render_ok(&f);
        let lines: Vec<_> = out
            .lines()
            .filter(|l| l.starts_with("ExecStart="))
            .collect();
        assert_eq!(
            lines,
            [
                "ExecStart=",
                "ExecStart=/usr/libexec/hardend/hardend-exec --profile web --unit setup.service -- /bin/a 1",
                "ExecStart=-/usr/libexec/hardend/hardend-exec --profile web --unit setup.service -- /bin/b",
            ]
        );
    }

    #[test]
    fn golden_template_instance() {
        let f = facts(
            "getty@tty1.service",
            vec![cmd(
                "/sbin/agetty",
                &[
                    "/sbin/agetty",
                    "-o",
                    "-p -- \\u",
                    "--noclear",
                    "tty1",
                    "$TERM",
                ],
                &[],
            )],
        );
        let out = render_ok(&f);
        assert!(out.contains("--unit getty@tty1.service -- /sbin/agetty -o \"-p -- \\\\u\" --noclear tty1 $TERM\n"), "{out}");
    }

    #[test]
    fn golden_awkward_arguments_read_back_identically() {
        let argv = [
            "/usr/bin/prog",
            "with space",
            "double\"quote",
            "single'quote",
            "dollar$HOME and ${X}",
            "$VAR",
            "100%",
            "%n",
            "back\\slash",
            "",
            ";",
            "tab\there",
            "new\nline",
        ];
        let f = facts("p.service", vec![cmd("/usr/bin/prog", &argv, &[])]);
        let out = render_ok(&f);
        let line = out
            .lines()
            .nth(4)
            .unwrap()
            .strip_prefix("ExecStart=")
            .unwrap();
        assert_eq!(
            line,
            "/usr/libexec/hardend/hardend-exec --profile web --unit p.service -- /usr/bin/prog \"with space\" \"double\\\"quote\" \"single'quote\" \"dollar$HOME and ${X}\" $VAR 100%% %%n back\\\\slash \"\" \\; tab\\there new\\nline"
        );
        let words = split_command_line(line);
        let (ours, theirs) = words.split_at(words.iter().position(|w| w == "--").unwrap() + 1);
        assert_eq!(ours[0], EXEC);
        assert_eq!(theirs, argv);
    }

    #[test]
    fn allow_list_filters_get_the_wrapper_syscalls_and_deny_lists_are_refused() {
        let mut f = facts("s.service", vec![cmd("/bin/s", &["/bin/s"], &[])]);
        f.syscall_filter = Some((true, vec!["read".into(), "prctl".into()]));
        f.restricts_run = true;
        let out = render_ok(&f);
        assert!(out.contains("\nSystemCallFilter=landlock_create_ruleset landlock_add_rule landlock_restrict_self seccomp capset unshare mount mount_setattr open_tree move_mount openat2\n"), "{out}");
        assert!(out.contains("\nReadWritePaths=-/run/hardend/enforced\n"));
        f.syscall_filter = Some((
            false,
            vec!["landlock_create_ruleset".into(), "mount".into()],
        ));
        assert_eq!(
            render(&f, "web", Path::new(EXEC), &[], &[]),
            Err(RenderError::FilterDeniesWrapper {
                unit: "s.service".into(),
                syscalls: "landlock_create_ruleset, mount".into()
            })
        );
        f.syscall_filter = Some((false, vec!["reboot".into()]));
        assert!(!render_ok(&f).contains("SystemCallFilter"));
        // ~@mount (chrony and others): lifted, because the service's own filter denies the
        // mount calls again; ~prctl would not be (the service may use prctl)
        f.syscall_filter = Some((false, vec!["mount".into(), "move_mount".into()]));
        let out = render(&f, "web", Path::new(EXEC), &[], &["mount", "move_mount"]).unwrap();
        assert!(
            out.contains("\nSystemCallFilter=mount move_mount\n"),
            "{out}"
        );
        f.syscall_filter = Some((false, vec!["mount".into(), "prctl".into()]));
        assert_eq!(
            render(&f, "web", Path::new(EXEC), &[], &["mount"]),
            Err(RenderError::FilterDeniesWrapper {
                unit: "s.service".into(),
                syscalls: "prctl".into()
            })
        );
    }

    #[test]
    fn refusals() {
        let ok = vec![cmd("/bin/s", &["/bin/s"], &[])];
        for bad in [
            "x.socket",
            "../x.service",
            ".service",
            "a b.service",
            "a@b@c.service",
        ] {
            assert!(
                matches!(
                    render(&facts(bad, ok.clone()), "p", Path::new(EXEC), &[], &[]),
                    Err(RenderError::BadUnitName(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            render(
                &facts("dbus.service", ok.clone()),
                "p",
                Path::new(EXEC),
                &[],
                &[]
            ),
            Err(RenderError::Critical { .. })
        ));
        assert!(matches!(
            render(&facts("x.service", vec![]), "p", Path::new(EXEC), &[], &[]),
            Err(RenderError::NoExecStart { .. })
        ));
        assert!(matches!(
            render(
                &facts("x.service", vec![cmd("s", &["s"], &[])]),
                "p",
                Path::new(EXEC),
                &[],
                &[]
            ),
            Err(RenderError::RelativePath { .. })
        ));
    }

    #[test]
    fn marker_round_trip() {
        let f = facts("m.service", vec![cmd("/bin/m", &["/bin/m"], &[])]);
        assert_eq!(parse_marker(&render_ok(&f)).as_deref(), Some("web"));
        assert_eq!(parse_marker("[Service]\nExecStart=/bin/x\n"), None);
    }
}
