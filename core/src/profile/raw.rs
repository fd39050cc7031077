//! The on-disk form of one profile file, with source spans, and its validation.
//!
//! Everything that can be checked within one file is checked here, so that the error names
//! the exact line. The result is a [`Partial`]: scalars stay optional until merging decides
//! which file's value wins.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::process::{self, Namespace};
use super::syscalls::{self, UnknownName};
use super::{
    ArgCondition, ArgRule, CmpOp, DefaultAction, Mode, ProfileError, ScopeKind, errno, families,
};
use crate::source::{Source, SourceError};

/// The newest Landlock ABI hardend knows the meaning of.
pub const MAX_KNOWN_ABI: i64 = 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: Option<Spanned<String>>,
    description: Option<String>,
    #[serde(default)]
    include: Vec<Spanned<String>>,
    mode: Option<Mode>,
    landlock: Option<RawLandlock>,
    seccomp: Option<RawSeccomp>,
    network: Option<RawNetwork>,
    process: Option<RawProcess>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    families: Option<Vec<Spanned<String>>>,
    udp: Option<bool>,
    #[serde(default)]
    unix_connect: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcess {
    #[serde(default)]
    capabilities: Vec<Spanned<String>>,
    #[serde(default)]
    namespaces: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLandlock {
    min_abi: Option<Spanned<i64>>,
    #[serde(default)]
    read: Vec<Spanned<String>>,
    #[serde(default)]
    read_exec: Vec<Spanned<String>>,
    #[serde(default)]
    write: Vec<Spanned<String>>,
    bind_tcp: Option<Vec<Spanned<i64>>>,
    connect_tcp: Option<Vec<Spanned<i64>>>,
    #[serde(default)]
    scope: Vec<ScopeKind>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeccomp {
    default_action: Option<DefaultAction>,
    errno: Option<Spanned<String>>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    deny: Vec<Spanned<String>>,
    #[serde(default)]
    override_deny: Vec<Spanned<String>>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    syscall: Spanned<String>,
    allow_if: Spanned<Vec<RawCondition>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    arg: Spanned<i64>,
    op: CmpOp,
    value: Spanned<i64>,
    mask: Option<Spanned<i64>>,
    width: Option<Spanned<i64>>,
}

/// One validated file, before merging.
#[derive(Debug, Default)]
pub struct Partial {
    pub name: String,
    pub description: Option<String>,
    /// Include references with the line they were written on.
    pub include: Vec<(String, usize)>,
    pub mode: Option<Mode>,
    pub landlock: Option<PartialLandlock>,
    pub seccomp: Option<PartialSeccomp>,
    pub network: PartialNetwork,
    pub process: PartialProcess,
}

#[derive(Debug, Default, Clone)]
pub struct PartialNetwork {
    /// `None`: the file does not say (the default families apply unless an include says).
    pub families: Option<BTreeSet<String>>,
    pub udp: Option<bool>,
    pub unix_connect: BTreeSet<PathBuf>,
}

#[derive(Debug, Default, Clone)]
pub struct PartialProcess {
    pub capabilities: BTreeSet<String>,
    pub namespaces: BTreeSet<Namespace>,
}

#[derive(Debug, Default, Clone)]
pub struct PartialLandlock {
    pub min_abi: Option<u8>,
    pub read: BTreeSet<PathBuf>,
    pub read_exec: BTreeSet<PathBuf>,
    pub write: BTreeSet<PathBuf>,
    pub bind_tcp: Option<BTreeSet<u16>>,
    pub connect_tcp: Option<BTreeSet<u16>>,
    pub scope: BTreeSet<ScopeKind>,
}

#[derive(Debug, Default, Clone)]
pub struct PartialSeccomp {
    pub default_action: Option<DefaultAction>,
    pub errno: Option<String>,
    pub allow: BTreeSet<String>,
    pub deny: BTreeSet<String>,
    /// Names to lift from the includes' denies, with their lines.
    pub override_deny: Vec<(String, usize)>,
    pub rules: Vec<ArgRule>,
}

/// Spans in one file turned into errors naming the file, line and key.
trait Reject {
    fn reject<T>(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: String,
    ) -> Result<T, ProfileError>;
}

impl Reject for Source<'_> {
    fn reject<T>(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: String,
    ) -> Result<T, ProfileError> {
        Err(Source::invalid(self, span, key, message).into())
    }
}

/// The value of `r`, or `None` with its errors added to `errors`.
fn collect<T>(errors: &mut Vec<SourceError>, r: Result<T, ProfileError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(ProfileError::Source(e)) => {
            errors.push(e);
            None
        }
        Err(ProfileError::Several(v)) => {
            errors.extend(v);
            None
        }
        Err(ProfileError::NotFound { .. }) => None,
    }
}

/// Parses and validates one profile file.
pub fn parse(path: &Path, text: &str) -> Result<Partial, ProfileError> {
    let src = Source::new(path, text);
    let raw: RawProfile = toml::from_str(text).map_err(|e| ProfileError::from(src.syntax(&e)))?;

    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    // every section is checked, and every error reported at once
    let mut errors = Vec::new();
    if let Some(name) = &raw.name {
        if name.get_ref() != &stem {
            collect::<()>(
                &mut errors,
                src.reject(
                    name.span(),
                    "name",
                    format!(
                        "name {:?} differs from the file name {:?}; they must be equal",
                        name.get_ref(),
                        stem
                    ),
                ),
            );
        }
    }
    if !valid_profile_name(&stem) {
        collect::<()>(
            &mut errors,
            Err(ProfileError::invalid(
                path,
                1,
                "name",
                format!(
                    "profile name {stem:?} must be 1-64 characters of a-z, 0-9, '-', '_', '.', '@' and start with a letter or digit"
                ),
            )),
        );
    }

    let mut include = Vec::new();
    for inc in &raw.include {
        let value = inc.get_ref();
        if value.is_empty() {
            collect::<()>(
                &mut errors,
                src.reject(inc.span(), "include", "empty include".into()),
            );
        } else {
            include.push((value.clone(), src.line(inc.span().start)));
        }
    }

    let landlock = raw
        .landlock
        .as_ref()
        .and_then(|l| collect(&mut errors, parse_landlock(&src, l)));
    let seccomp = raw
        .seccomp
        .as_ref()
        .and_then(|s| collect(&mut errors, parse_seccomp(&src, s)));
    let network = match &raw.network {
        Some(n) => collect(&mut errors, parse_network(&src, n)).unwrap_or_default(),
        None => PartialNetwork::default(),
    };
    let process = match &raw.process {
        Some(p) => collect(&mut errors, parse_process(&src, p)).unwrap_or_default(),
        None => PartialProcess::default(),
    };
    if let Some(e) = ProfileError::all(errors) {
        return Err(e);
    }
    Ok(Partial {
        name: stem,
        description: raw.description,
        include,
        mode: raw.mode,
        landlock,
        seccomp,
        network,
        process,
    })
}

/// Profile names end up in unit drop-ins, file names and command lines: keep them plain.
pub fn valid_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.@".contains(c))
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
}

fn parse_paths(
    src: &Source,
    key: &str,
    values: &[Spanned<String>],
) -> Result<BTreeSet<PathBuf>, ProfileError> {
    let mut out = BTreeSet::new();
    for v in values {
        let p = Path::new(v.get_ref());
        if !p.is_absolute() {
            return src.reject(
                v.span(),
                key,
                format!(
                    "path {:?} is relative; Landlock rules need absolute paths",
                    v.get_ref()
                ),
            );
        }
        if p.components().any(|c| c == Component::ParentDir) {
            return src.reject(
                v.span(),
                key,
                format!(
                    "path {:?} contains '..'; write the path it means",
                    v.get_ref()
                ),
            );
        }
        out.insert(p.to_path_buf());
    }
    Ok(out)
}

fn parse_network(src: &Source, n: &RawNetwork) -> Result<PartialNetwork, ProfileError> {
    let families = match &n.families {
        None => None,
        Some(list) => {
            let mut out = BTreeSet::new();
            for f in list {
                match families::canonical(f.get_ref()) {
                    Some(c) => {
                        out.insert(c.to_string());
                    }
                    None => {
                        return src.reject(
                            f.span(),
                            "network.families",
                            format!(
                                "unknown address family {:?}{} (systemd's names without AF_, e.g. unix, inet, inet6, netlink, packet)",
                                f.get_ref(),
                                super::suggest::hint(f.get_ref(), families::names())
                            ),
                        );
                    }
                }
            }
            Some(out)
        }
    };
    Ok(PartialNetwork {
        families,
        udp: n.udp,
        unix_connect: parse_paths(src, "network.unix_connect", &n.unix_connect)?,
    })
}

fn parse_process(src: &Source, p: &RawProcess) -> Result<PartialProcess, ProfileError> {
    let mut capabilities = BTreeSet::new();
    for c in &p.capabilities {
        if process::capability(c.get_ref()).is_none() {
            let hint = if process::capability(&c.get_ref().to_ascii_uppercase()).is_some() {
                format!(" (write it as {})", c.get_ref().to_ascii_uppercase())
            } else {
                String::new()
            };
            return src.reject(
                c.span(),
                "process.capabilities",
                format!("unknown capability {:?}{hint}", c.get_ref()),
            );
        }
        capabilities.insert(c.get_ref().clone());
    }
    let mut namespaces = BTreeSet::new();
    for n in &p.namespaces {
        match Namespace::parse(n.get_ref()) {
            Some(ns) => {
                namespaces.insert(ns);
            }
            None => {
                return src.reject(
                    n.span(),
                    "process.namespaces",
                    format!(
                        "unknown namespace {:?} (user, net, mnt, pid, ipc, uts, cgroup, time)",
                        n.get_ref()
                    ),
                );
            }
        }
    }
    Ok(PartialProcess {
        capabilities,
        namespaces,
    })
}

fn parse_ports(
    src: &Source,
    key: &str,
    values: &Option<Vec<Spanned<i64>>>,
    allow_zero: bool,
) -> Result<Option<BTreeSet<u16>>, ProfileError> {
    let Some(values) = values else {
        return Ok(None);
    };
    let min = if allow_zero { 0 } else { 1 };
    let mut out = BTreeSet::new();
    for v in values {
        let port = *v.get_ref();
        match u16::try_from(port) {
            Ok(p) if i64::from(p) >= min => {
                out.insert(p);
            }
            _ => {
                return src.reject(
                    v.span(),
                    key,
                    format!("port {port} is out of range {min}..=65535"),
                );
            }
        }
    }
    Ok(Some(out))
}

fn parse_landlock(src: &Source, l: &RawLandlock) -> Result<PartialLandlock, ProfileError> {
    let min_abi = match &l.min_abi {
        None => None,
        Some(v) => {
            let abi = *v.get_ref();
            if !(1..=MAX_KNOWN_ABI).contains(&abi) {
                return src.reject(
                    v.span(),
                    "landlock.min_abi",
                    format!("min_abi {abi} is out of range 1..={MAX_KNOWN_ABI}"),
                );
            }
            u8::try_from(abi).ok()
        }
    };
    Ok(PartialLandlock {
        min_abi,
        read: parse_paths(src, "landlock.read", &l.read)?,
        read_exec: parse_paths(src, "landlock.read_exec", &l.read_exec)?,
        write: parse_paths(src, "landlock.write", &l.write)?,
        bind_tcp: parse_ports(src, "landlock.bind_tcp", &l.bind_tcp, true)?,
        connect_tcp: parse_ports(src, "landlock.connect_tcp", &l.connect_tcp, false)?,
        scope: l.scope.iter().copied().collect(),
    })
}

fn check_syscall_names(
    src: &Source,
    key: &str,
    values: &[Spanned<String>],
) -> Result<BTreeSet<String>, ProfileError> {
    let mut out = BTreeSet::new();
    for v in values {
        match syscalls::check_name(v.get_ref()) {
            Ok(()) => {
                out.insert(v.get_ref().clone());
            }
            Err(UnknownName::Group(g)) => {
                let known: Vec<_> = super::groups::GROUPS.iter().map(|g| g.name).collect();
                let hint = super::suggest::hint(&g, known.iter().copied());
                let message = if hint.is_empty() {
                    format!("unknown syscall group {g:?} (known: {})", known.join(" "))
                } else {
                    format!("unknown syscall group {g:?}{hint}")
                };
                return src.reject(v.span(), key, message);
            }
            Err(UnknownName::Syscall(s)) => {
                let names = syscalls::Arch::X86_64
                    .table()
                    .iter()
                    .chain(syscalls::Arch::Aarch64.table())
                    .map(|(n, _)| *n);
                return src.reject(
                    v.span(),
                    key,
                    format!(
                        "unknown syscall {s:?} (not a syscall on any Linux architecture){}",
                        super::suggest::hint(&s, names)
                    ),
                );
            }
        }
    }
    Ok(out)
}

fn parse_seccomp(src: &Source, s: &RawSeccomp) -> Result<PartialSeccomp, ProfileError> {
    let errno = match &s.errno {
        None => None,
        Some(v) => {
            if errno::from_name(v.get_ref()).is_none() {
                return src.reject(
                    v.span(),
                    "seccomp.errno",
                    format!(
                        "unknown errno {:?}{} (a name from errno(3), e.g. EPERM, EACCES, ENOSYS)",
                        v.get_ref(),
                        super::suggest::hint(v.get_ref(), errno::names())
                    ),
                );
            }
            Some(v.get_ref().clone())
        }
    };
    let allow = check_syscall_names(src, "seccomp.allow", &s.allow)?;
    let deny = check_syscall_names(src, "seccomp.deny", &s.deny)?;
    check_syscall_names(src, "seccomp.override_deny", &s.override_deny)?;
    let mut override_deny = Vec::new();
    for o in &s.override_deny {
        if deny.contains(o.get_ref()) {
            return src.reject(
                o.span(),
                "seccomp.override_deny",
                format!(
                    "{} is in this file's own seccomp.deny; override_deny lifts a deny of an include",
                    o.get_ref()
                ),
            );
        }
        override_deny.push((o.get_ref().clone(), src.line(o.span().start)));
    }
    if let Some(v) = s.deny.iter().find(|v| v.get_ref() == "execve") {
        return src.reject(
            v.span(),
            "seccomp.deny",
            "execve cannot be denied: hardend-exec must exec the service after the filter is installed".into(),
        );
    }
    let mut rules = Vec::new();
    for r in &s.rule {
        let name = r.syscall.get_ref();
        if name.starts_with('@') {
            return src.reject(
                r.syscall.span(),
                "seccomp.rule.syscall",
                format!("argument rules apply to single syscalls, not groups ({name:?})"),
            );
        }
        check_syscall_names(
            src,
            "seccomp.rule.syscall",
            std::slice::from_ref(&r.syscall),
        )?;
        if deny.contains(name) {
            return src.reject(
                r.syscall.span(),
                "seccomp.rule.syscall",
                format!("{name} is in seccomp.deny, so this rule could never allow it"),
            );
        }
        if r.allow_if.get_ref().is_empty() {
            return src.reject(
                r.allow_if.span(),
                "seccomp.rule.allow_if",
                "allow_if is empty; to allow the syscall unconditionally, list it in seccomp.allow"
                    .into(),
            );
        }
        let mut conds = Vec::new();
        for c in r.allow_if.get_ref() {
            conds.push(parse_condition(src, c)?);
        }
        rules.push(ArgRule {
            syscall: name.clone(),
            allow_if: conds,
        });
    }
    Ok(PartialSeccomp {
        default_action: s.default_action,
        errno,
        allow,
        deny,
        override_deny,
        rules,
    })
}

fn parse_condition(src: &Source, c: &RawCondition) -> Result<ArgCondition, ProfileError> {
    let key = "seccomp.rule.allow_if";
    let arg = *c.arg.get_ref();
    if !(0..=5).contains(&arg) {
        return src.reject(
            c.arg.span(),
            key,
            format!("arg {arg} is out of range 0..=5"),
        );
    }
    let width = match &c.width {
        None => 64,
        Some(w) if matches!(*w.get_ref(), 32 | 64) => *w.get_ref(),
        Some(w) => {
            return src.reject(
                w.span(),
                key,
                format!("width {} must be 32 or 64", w.get_ref()),
            );
        }
    };
    // Negative numbers are written as such (e.g. AT_FDCWD = -100) and compared as the
    // two's-complement register value.
    let value = *c.value.get_ref() as u64;
    if width == 32 && !(i64::from(i32::MIN)..=i64::from(u32::MAX)).contains(c.value.get_ref()) {
        return src.reject(
            c.value.span(),
            key,
            format!(
                "value {} does not fit a 32-bit comparison",
                c.value.get_ref()
            ),
        );
    }
    let value = if width == 32 {
        value & 0xffff_ffff
    } else {
        value
    };
    let mask = match (&c.mask, c.op) {
        (Some(m), CmpOp::MaskedEq) => Some(*m.get_ref() as u64),
        (None, CmpOp::MaskedEq) => {
            return src.reject(c.value.span(), key, "op masked_eq needs a mask".into());
        }
        (Some(m), _) => {
            return src.reject(
                m.span(),
                key,
                "mask is only meaningful with op = \"masked_eq\"".into(),
            );
        }
        (None, _) => None,
    };
    Ok(ArgCondition {
        arg: arg as u8,
        op: c.op,
        value,
        mask,
        width: width as u8,
    })
}
