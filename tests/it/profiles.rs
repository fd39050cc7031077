//! Profile loading: every malformed profile gives an error naming the file, line and key;
//! includes merge; the shipped profiles are valid; `hardenctl profile` commands agree.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::common::*;
use hardend::profile::{ProfileError, ProfileLoader};
use hardend::source::SourceError;

fn loader(sb: &Sandbox) -> ProfileLoader {
    ProfileLoader::new(vec![sb.dir.path().to_path_buf(), shipped_profiles()])
}

/// (file name, content, expected line, expected text in the message)
const MALFORMED: &[(&str, &str, usize, &str)] = &[
    (
        "unknown-key",
        "description = \"x\"\nsurprise = 1\n",
        2,
        "unknown field `surprise`",
    ),
    (
        "unknown-nested",
        "[landlock]\nread = []\nreed = [\"/etc\"]\n",
        3,
        "unknown field `reed`",
    ),
    (
        "unknown-syscall",
        "[seccomp]\nallow = [\n  \"read\",\n  \"opne\",\n]\n",
        4,
        "seccomp.allow: unknown syscall \"opne\"",
    ),
    (
        "unknown-group",
        "[seccomp]\ndeny = [\"@netwrok-io\"]\n",
        2,
        "unknown syscall group \"@netwrok-io\"",
    ),
    (
        "relative-path",
        "[landlock]\nwrite = [\"/var/lib/x\", \"var/log\"]\n",
        2,
        "landlock.write: path \"var/log\" is relative",
    ),
    (
        "dotdot-path",
        "[landlock]\nread = [\"/etc/../root\"]\n",
        2,
        "contains '..'",
    ),
    (
        "bad-port",
        "[landlock]\n\nbind_tcp = [80, 70000]\n",
        3,
        "landlock.bind_tcp: port 70000 is out of range",
    ),
    (
        "negative-port",
        "[landlock]\nconnect_tcp = [-1]\n",
        2,
        "landlock.connect_tcp: port -1",
    ),
    (
        "zero-connect",
        "[landlock]\nconnect_tcp = [0]\n",
        2,
        "out of range 1..=65535",
    ),
    (
        "name-mismatch",
        "\nname = \"other\"\n",
        2,
        "name \"other\" differs from the file name \"name-mismatch\"",
    ),
    (
        "bad-mode",
        "mode = \"permissive\"\n",
        1,
        "unknown variant `permissive`",
    ),
    (
        "bad-errno",
        "[seccomp]\nerrno = \"EWHATEVER\"\n",
        2,
        "seccomp.errno: unknown errno \"EWHATEVER\"",
    ),
    (
        "bad-action",
        "[seccomp]\ndefault_action = \"allow\"\n",
        2,
        "unknown variant `allow`",
    ),
    (
        "bad-abi",
        "[landlock]\nmin_abi = 0\n",
        2,
        "landlock.min_abi: min_abi 0 is out of range",
    ),
    (
        "bad-scope",
        "[landlock]\nscope = [\"ptrace\"]\n",
        2,
        "unknown variant `ptrace`",
    ),
    (
        "deny-execve",
        "[seccomp]\ndeny = [\"execve\"]\n",
        2,
        "execve cannot be denied",
    ),
    (
        "rule-arg",
        "[seccomp]\n[[seccomp.rule]]\nsyscall = \"socket\"\nallow_if = [{ arg = 6, op = \"eq\", value = 1 }]\n",
        4,
        "arg 6 is out of range 0..=5",
    ),
    (
        "rule-denied",
        "[seccomp]\ndeny = [\"socket\"]\n[[seccomp.rule]]\nsyscall = \"socket\"\nallow_if = [{ arg = 0, op = \"eq\", value = 1 }]\n",
        4,
        "socket is in seccomp.deny",
    ),
    (
        "rule-mask",
        "[seccomp]\n[[seccomp.rule]]\nsyscall = \"mmap\"\nallow_if = [{ arg = 2, op = \"masked_eq\", value = 0 }]\n",
        4,
        "masked_eq needs a mask",
    ),
    ("syntax", "[landlock\nread = []\n", 1, ""),
    (
        "bad-family",
        "[network]\nfamilies = [\"unix\",\n  \"AF_INET\"]\n",
        3,
        "network.families: unknown address family \"AF_INET\"",
    ),
    ("bad-udp", "[network]\nudp = \"yes\"\n", 2, "invalid type"),
    (
        "relative-unix",
        "[network]\nunix_connect = [\"run/x.sock\"]\n",
        2,
        "network.unix_connect: path \"run/x.sock\" is relative",
    ),
    (
        "bad-cap",
        "[process]\ncapabilities = [\"CAP_SETUID\", \"cap_net_raw\"]\n",
        2,
        "unknown capability \"cap_net_raw\" (write it as CAP_NET_RAW)",
    ),
    (
        "bad-ns",
        "[process]\n\nnamespaces = [\"network\"]\n",
        3,
        "process.namespaces: unknown namespace \"network\"",
    ),
    (
        "lift-nothing",
        "include = [\"base\"]\n[seccomp]\noverride_deny = [\"@clock\",\n  \"@chown\"]\n",
        4,
        "seccomp.override_deny: @chown is not denied by any include",
    ),
    (
        "lift-own",
        "[seccomp]\ndeny = [\"@clock\"]\noverride_deny = [\"@clock\"]\n",
        3,
        "is in this file's own seccomp.deny",
    ),
    (
        "lift-unknown",
        "[seccomp]\noverride_deny = [\"@clcok\"]\n",
        2,
        "unknown syscall group \"@clcok\"",
    ),
    (
        "missing-include",
        "\n\ninclude = [\"does-not-exist\"]\n",
        3,
        "include: profile \"does-not-exist\" not found",
    ),
];

#[test]
fn malformed_profiles_name_file_line_and_key() {
    let sb = Sandbox::new();
    let l = loader(&sb);
    for (name, body, line, text) in MALFORMED {
        let path = sb.profile(name, body);
        let err = l.load_file(&path).expect_err(name);
        let msg = err.to_string();
        assert_eq!(err.path(), Some(path.as_path()), "{name}: {msg}");
        assert_eq!(err.line(), Some(*line), "{name}: {msg}");
        assert!(
            msg.starts_with(&format!("{}:{line}:", path.display())),
            "{name}: {msg}"
        );
        assert!(msg.contains(text), "{name}: {msg:?} lacks {text:?}");
    }
}

#[test]
fn include_cycles_are_reported_at_the_closing_include() {
    let sb = Sandbox::new();
    sb.profile("a", "include = [\"b\"]\n");
    sb.profile("b", "description = \"b\"\ninclude = [\"c\"]\n");
    let c = sb.profile("c", "\n\ninclude = [\"a\"]\n");
    let err = loader(&sb).load("a").unwrap_err();
    match &err {
        ProfileError::Source(SourceError::Invalid {
            path,
            line,
            key,
            message,
        }) => {
            assert_eq!(path, &c);
            assert_eq!(*line, 3);
            assert_eq!(key, "include");
            assert!(message.contains("include cycle"), "{message}");
            assert!(
                message.contains("a.toml -> ") && message.ends_with("a.toml"),
                "{message}"
            );
        }
        other => panic!("unexpected {other}"),
    }
    // a self-include too
    let s = sb.profile("selfish", "include = [\"selfish\"]\n");
    let err = loader(&sb).load_file(&s).unwrap_err();
    assert_eq!(err.line(), Some(1));
}

#[test]
fn includes_merge_lists_and_the_includer_wins_scalars() {
    let sb = Sandbox::new();
    sb.profile(
        "lower",
        "mode = \"complain\"\n[landlock]\nmin_abi = 3\nread = [\"/etc\"]\nbind_tcp = [80]\n[seccomp]\nerrno = \"EACCES\"\nallow = [\"read\"]\ndeny = [\"@mount\"]\n",
    );
    sb.profile(
        "diamond",
        "include = [\"lower\"]\n[landlock]\nread = [\"/srv\"]\n",
    );
    let top = sb.profile(
        "top",
        "include = [\"lower\", \"diamond\"]\nmode = \"enforce\"\n[landlock]\nmin_abi = 2\nread = [\"/usr\"]\nbind_tcp = [443]\n[seccomp]\nallow = [\"write\"]\n",
    );
    let p = loader(&sb).load_file(&top).unwrap();
    let l = p.landlock.as_ref().unwrap();
    let read: Vec<_> = l.read.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(read, ["/etc", "/srv", "/usr"]);
    assert_eq!(l.min_abi, 3, "an include can only raise min_abi");
    assert_eq!(l.bind_tcp.as_ref().unwrap().len(), 2);
    assert_eq!(l.connect_tcp, None);
    let s = p.seccomp.as_ref().unwrap();
    assert_eq!(s.errno, "EACCES");
    assert!(s.allow.contains("read") && s.allow.contains("write"));
    assert!(s.deny.contains("@mount"));
    assert_eq!(p.mode, hardend::profile::Mode::Enforce);
    assert_eq!(p.files.len(), 3, "lower merged once despite the diamond");
}

#[test]
fn an_include_cannot_weaken_its_includer() {
    // the attack: an include that turns enforcement into logging
    let sb = Sandbox::new();
    sb.profile(
        "weak",
        "mode = \"complain\"\n[seccomp]\ndefault_action = \"log\"\nallow = [\"read\"]\n",
    );
    sb.profile("strict", "[seccomp]\ndefault_action = \"kill\"\n");
    let silent = sb.profile("silent", "include = [\"base\", \"weak\"]\n");
    let p = loader(&sb).load_file(&silent).unwrap();
    assert_eq!(
        p.mode,
        hardend::profile::Mode::Enforce,
        "complain is not inherited"
    );
    let s = p.seccomp.as_ref().unwrap();
    assert_eq!(s.default_action, hardend::profile::DefaultAction::Errno);
    // stricter is inherited
    let p = loader(&sb)
        .load_file(&sb.profile("kills", "include = [\"weak\", \"strict\"]\n"))
        .unwrap();
    assert_eq!(
        p.seccomp.unwrap().default_action,
        hardend::profile::DefaultAction::Kill
    );
    // the includer stating the weaker value itself gets it
    let own = sb.profile(
        "own",
        "include = [\"base\"]\nmode = \"complain\"\n[seccomp]\ndefault_action = \"log\"\n",
    );
    let p = loader(&sb).load_file(&own).unwrap();
    assert_eq!(p.mode, hardend::profile::Mode::Complain);
    assert_eq!(
        p.seccomp.unwrap().default_action,
        hardend::profile::DefaultAction::Log
    );
}

#[test]
fn grants_merge_and_are_none_by_default() {
    let sb = Sandbox::new();
    let none = sb.profile("none", "include = [\"base\"]\n");
    let p = loader(&sb).load_file(&none).unwrap();
    let fams: Vec<&str> = p.network.families.iter().map(String::as_str).collect();
    assert_eq!(fams, ["inet", "inet6", "unix"]);
    assert!(!p.network.udp);
    assert!(p.process.capabilities.is_empty() && p.process.namespaces.is_empty());
    assert!(
        p.network
            .unix_connect
            .contains(std::path::Path::new("/dev/log")),
        "base grants the log sockets"
    );
    sb.profile(
        "dns",
        "[network]\nudp = true\n[process]\ncapabilities = [\"CAP_NET_BIND_SERVICE\"]\n",
    );
    let top = sb.profile(
        "top-grants",
        "include = [\"base\", \"dns\"]\n[network]\nfamilies = [\"unix\", \"local\"]\n[process]\nnamespaces = [\"user\"]\n",
    );
    let p = loader(&sb).load_file(&top).unwrap();
    let fams: Vec<&str> = p.network.families.iter().map(String::as_str).collect();
    assert_eq!(
        fams,
        ["unix"],
        "stated families narrow the default; local is unix"
    );
    assert!(p.network.udp, "a grant of an include counts");
    assert_eq!(p.process.capabilities.len(), 1);
    // the includer can take an include's UDP away by saying so
    let no_udp = sb.profile("no-udp", "include = [\"dns\"]\n[network]\nudp = false\n");
    assert!(!loader(&sb).load_file(&no_udp).unwrap().network.udp);
}

#[test]
fn override_deny_lifts_by_exact_name_and_shows_who_lifted_it() {
    let sb = Sandbox::new();
    let p = sb.profile(
        "timesync",
        "include = [\"base\"]\n[seccomp]\noverride_deny = [\"@clock\"]\n",
    );
    let prof = loader(&sb).load_file(&p).unwrap();
    let s = prof.seccomp.as_ref().unwrap();
    assert!(!s.deny.contains("@clock"));
    assert!(s.deny.contains("@mount"), "only that name");
    assert_eq!(s.overridden.len(), 1);
    assert_eq!(s.overridden[0].name, "@clock");
    assert!(s.overridden[0].file.ends_with("timesync.toml"));
    let out = Command::new(hardenctl())
        .args(["profile", "show", "--profile-path"])
        .arg(shipped_profiles())
        .arg(&p)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("override_deny  @clock (lifted by"), "{text}");
}

#[test]
fn a_profile_granting_io_uring_cannot_rely_on_argument_rules() {
    let sb = Sandbox::new();
    let p = sb.profile(
        "ring",
        "include = [\"base\"]\n[seccomp]\noverride_deny = [\"@io-uring\"]\n[[seccomp.rule]]\nsyscall = \"socket\"\nallow_if = [{ arg = 0, op = \"eq\", value = 1 }]\n",
    );
    let e = loader(&sb).load_file(&p).unwrap_err().to_string();
    assert!(
        e.contains("grants @io-uring and has argument rules (socket)"),
        "{e}"
    );
}

#[test]
fn etc_profiles_shadow_vendor_profiles() {
    let etc = Sandbox::new();
    let usr = Sandbox::new();
    etc.profile("svc", "description = \"admin\"\n");
    usr.profile("svc", "description = \"vendor\"\n");
    usr.profile("only-vendor", "description = \"vendor\"\n");
    let l = ProfileLoader::new(vec![etc.dir.path().into(), usr.dir.path().into()]);
    assert_eq!(l.load("svc").unwrap().description.as_deref(), Some("admin"));
    assert_eq!(
        l.load("only-vendor").unwrap().description.as_deref(),
        Some("vendor")
    );
    let names: Vec<_> = l.list().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["only-vendor", "svc"]);
    assert!(l.load("../etc/passwd").is_err());
    assert!(matches!(
        l.load("UPPER"),
        Err(ProfileError::NotFound { .. })
    ));
}

#[test]
fn policy_hash_ignores_comments_but_not_rules() {
    let sb = Sandbox::new();
    let a = sb.profile("h", "[landlock]\nread = [\"/etc\"]\n");
    let h1 = loader(&sb).load_file(&a).unwrap().policy_hash();
    fs::write(&a, "# a comment\n[landlock]\nread = [ \"/etc\" ]\n").unwrap();
    assert_eq!(loader(&sb).load_file(&a).unwrap().policy_hash(), h1);
    fs::write(&a, "[landlock]\nread = [\"/etc\", \"/srv\"]\n").unwrap();
    assert_ne!(loader(&sb).load_file(&a).unwrap().policy_hash(), h1);
}

fn shipped() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(shipped_profiles())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn shipped_profiles_pass_hardenctl_profile_check() {
    let files = shipped();
    assert!(files.len() >= 3, "base plus two examples");
    let out = Command::new(hardenctl())
        .arg("--json")
        .arg("--profile-path")
        .arg(shipped_profiles())
        .args(["profile", "check"])
        .args(&files)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v:#}");
    assert!(out.status.success());
}

#[test]
fn hardenctl_profile_check_exits_3_with_file_and_line() {
    let sb = Sandbox::new();
    let good = sb.profile("good", "[seccomp]\nallow = [\"@system-service\"]\n");
    let bad = sb.profile(
        "bad",
        "[seccomp]\nallow = [\"@system-service\", \"nosuchcall\"]\n",
    );
    let out = Command::new(hardenctl())
        .args(["--json", "profile", "check"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["results"][0]["ok"], true);
    assert_eq!(v["results"][1]["ok"], false);
    assert_eq!(v["results"][1]["line"], 2);
    let err = v["results"][1]["error"].as_str().unwrap();
    assert!(err.contains("bad.toml:2: seccomp.allow"), "{err}");
    // human output names the same
    let out = Command::new(hardenctl())
        .args(["profile", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("bad.toml:2:"));
}

#[test]
fn hardenctl_profile_show_expands_groups() {
    let out = Command::new(hardenctl())
        .arg("--json")
        .arg("--profile-path")
        .arg(shipped_profiles())
        .args(["profile", "show", "base", "--expand", "--arch", "aarch64"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["profile"]["name"], "base");
    let allowed: Vec<&str> = v["expanded"]["allowed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(allowed.contains(&"openat"));
    assert!(!allowed.contains(&"open"), "no open(2) on aarch64");
    assert!(!allowed.contains(&"mount"), "denied by base");
    assert_eq!(v["policy_hash"].as_str().unwrap().len(), 64);
}
