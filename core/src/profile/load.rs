//! Finding profile files and merging includes.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use std::collections::{BTreeSet, HashMap};

use super::raw::{self, Partial, PartialLandlock, PartialNetwork, PartialProcess, PartialSeccomp};
use super::{
    DefaultAction, LandlockPolicy, Mode, NetworkPolicy, Override, ProcessPolicy, Profile,
    ProfileError, SeccompPolicy,
};
use crate::source::SourceError;

/// Where bare profile names are looked up: admin profiles shadow vendor profiles.
pub const DEFAULT_SEARCH_PATH: &[&str] = &["/etc/hardend/profiles", "/usr/share/hardend/profiles"];

/// Profiles are small; anything bigger is a mistake or an attack on the parser.
const MAX_PROFILE_BYTES: u64 = 1 << 20;
/// Deep include chains are a mistake; this also bounds recursion.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Resolves profile names to files and loads them with their includes.
#[derive(Clone, Debug)]
pub struct ProfileLoader {
    search_path: Vec<PathBuf>,
    /// For a caller who is not root (the daemon answering anyone on the bus): names on the
    /// search path only, never a path, and only files every user may read — so the answer
    /// holds nothing the caller could not read, and says nothing about other paths.
    restricted: bool,
}

impl Default for ProfileLoader {
    fn default() -> Self {
        Self::new(DEFAULT_SEARCH_PATH.iter().map(PathBuf::from).collect())
    }
}

impl ProfileLoader {
    /// A loader with an explicit search path (tests, the demo, `--profile-path`).
    pub fn new(search_path: Vec<PathBuf>) -> Self {
        Self {
            search_path,
            restricted: false,
        }
    }

    /// The same search path, restricted for a caller who is not root (see `restricted`).
    pub fn restricted(mut self) -> Self {
        self.restricted = true;
        self
    }

    pub fn search_path(&self) -> &[PathBuf] {
        &self.search_path
    }

    /// Finds the file for `name`: a value containing `/` is a path, anything else is looked
    /// up as `NAME.toml` along `extra_dirs` and then the search path.
    pub fn find(&self, name: &str, extra_dirs: &[&Path]) -> Result<PathBuf, ProfileError> {
        if name.contains('/') {
            if self.restricted {
                return Err(ProfileError::NotFound {
                    name: name.to_string(),
                    searched: "nothing: only root may have a path checked; give a profile name, or the document itself".into(),
                    hint: String::new(),
                });
            }
            return Ok(PathBuf::from(name));
        }
        if !raw::valid_profile_name(name) {
            return Err(ProfileError::NotFound {
                name: name.to_string(),
                searched: "nothing: not a valid profile name".into(),
                hint: String::new(),
            });
        }
        let dirs: Vec<&Path> = extra_dirs
            .iter()
            .copied()
            .chain(self.search_path.iter().map(PathBuf::as_path))
            .collect();
        for dir in &dirs {
            let candidate = dir.join(format!("{name}.toml"));
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        // no hints for callers who may not list the profile path (the daemon's restricted view)
        let known = if self.restricted {
            Vec::new()
        } else {
            self.list()
        };
        Err(ProfileError::NotFound {
            name: name.to_string(),
            searched: dirs
                .iter()
                .map(|d| {
                    let d = d.display().to_string();
                    if d.is_empty() { ".".to_string() } else { d }
                })
                .collect::<Vec<_>>()
                .join(", "),
            hint: super::suggest::hint(name, known.iter().map(|(n, _)| n.as_str())),
        })
    }

    /// Loads a profile by name or path and merges its includes.
    pub fn load(&self, name: &str) -> Result<Profile, ProfileError> {
        let path = self.find(name, &[])?;
        self.load_file(&path)
    }

    /// Loads the profile in `path` and merges its includes.
    pub fn load_file(&self, path: &Path) -> Result<Profile, ProfileError> {
        let mut stack = Vec::new();
        let mut done = HashMap::new();
        let (top, node) = self.load_rec(path, None, &mut stack, &mut done)?;
        node.finish(top, path)
    }

    /// Loads a profile given as text (`label` names it in errors; its includes are looked up
    /// on the search path, as names).
    pub fn load_document(&self, text: &str, label: &Path) -> Result<Profile, ProfileError> {
        if text.len() as u64 > MAX_PROFILE_BYTES {
            return Err(ProfileError::from(SourceError::Read {
                path: label.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("larger than {MAX_PROFILE_BYTES} bytes"),
                ),
            }));
        }
        let mut stack = Vec::new();
        let mut done = HashMap::new();
        let (top, node) = self.load_rec(label, Some(text.to_string()), &mut stack, &mut done)?;
        node.finish(top, label)
    }

    /// All profiles on the search path (admin ones shadowing vendor ones), by name.
    pub fn list(&self) -> Vec<(String, PathBuf)> {
        let mut seen = std::collections::BTreeMap::new();
        for dir in &self.search_path {
            let Ok(entries) = fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().and_then(|x| x.to_str()) != Some("toml") {
                    continue;
                }
                if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                    seen.entry(stem.to_string()).or_insert(p);
                }
            }
        }
        seen.into_iter().collect()
    }

    /// Loads `path` and everything it includes; returns the file's own partial and the
    /// merged result. `done` caches merged files (a diamond is read once).
    fn load_rec(
        &self,
        path: &Path,
        text: Option<String>,
        stack: &mut Vec<PathBuf>,
        done: &mut HashMap<PathBuf, Node>,
    ) -> Result<(Partial, Node), ProfileError> {
        let document = text.is_some();
        let text = match text {
            Some(t) => t,
            None => read_limited(path, self.restricted)?,
        };
        let partial = raw::parse(path, &text)?;
        let canonical = if document {
            path.to_path_buf()
        } else {
            fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        };
        stack.push(canonical.clone());
        // a document has no directory of its own: its includes come from the search path
        let own_dir: Vec<&Path> = if document {
            Vec::new()
        } else {
            vec![path.parent().unwrap_or(Path::new("."))]
        };
        let mut includes = Vec::new();
        for (inc, line) in &partial.include {
            let inc_path = self
                .find(inc, &own_dir)
                .map_err(|e| ProfileError::invalid(path, *line, "include", e.to_string()))?;
            let inc_canonical = fs::canonicalize(&inc_path).unwrap_or_else(|_| inc_path.clone());
            if let Some(pos) = stack.iter().position(|p| *p == inc_canonical) {
                let mut chain: Vec<String> = stack[pos..]
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                chain.push(inc_canonical.display().to_string());
                return Err(ProfileError::invalid(
                    path,
                    *line,
                    "include",
                    format!("include cycle: {}", chain.join(" -> ")),
                ));
            }
            if stack.len() >= MAX_INCLUDE_DEPTH {
                return Err(ProfileError::invalid(
                    path,
                    *line,
                    "include",
                    format!("includes nested deeper than {MAX_INCLUDE_DEPTH}"),
                ));
            }
            let node = match done.get(&inc_canonical) {
                Some(n) => n.clone(),
                None => {
                    let (_, n) = self.load_rec(&inc_path, None, stack, done)?;
                    done.insert(inc_canonical, n.clone());
                    n
                }
            };
            includes.push(node);
        }
        stack.pop();
        let node = Node::merge(&partial, path, &canonical, includes)?;
        Ok((partial, node))
    }
}

/// Reads a profile file without letting it block or exhaust the reader: opened with
/// `O_NONBLOCK` (a FIFO does not wait for a writer), a regular file only (no FIFO, device or
/// directory), at most `MAX_PROFILE_BYTES`. `world_readable`: refuse a file that not every
/// user may read (the caller is not root; the answer must not carry its content).
fn read_limited(path: &Path, world_readable: bool) -> Result<String, ProfileError> {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::OpenOptionsExt;
    let read_err = |source| {
        ProfileError::from(SourceError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let bad = |why: String| read_err(std::io::Error::new(std::io::ErrorKind::InvalidData, why));
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if world_readable && meta.mode() & 0o004 == 0 {
        return Err(bad(
            "not readable by every user; only root can have it checked".into(),
        ));
    }
    if meta.len() > MAX_PROFILE_BYTES {
        return Err(bad(format!("larger than {MAX_PROFILE_BYTES} bytes")));
    }
    let mut text = String::new();
    file.take(MAX_PROFILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_PROFILE_BYTES {
        return Err(bad(format!("larger than {MAX_PROFILE_BYTES} bytes")));
    }
    Ok(text)
}

/// One file merged with everything it includes. Lists are unioned; `min_abi` takes the
/// highest value; a scalar the file states itself wins, otherwise the strictest of its
/// includes (`mode`, `default_action`) — an include can make a profile stricter, never
/// weaker; `override_deny` lifts named denies of the includes.
#[derive(Clone, Debug, Default)]
struct Node {
    /// Every contributing file, includes first, each once.
    files: Vec<PathBuf>,
    mode: Option<Mode>,
    landlock: Option<PartialLandlock>,
    seccomp: Option<PartialSeccomp>,
    overridden: Vec<Override>,
    network: PartialNetwork,
    process: PartialProcess,
    /// Side-door names lifted by `override_deny` somewhere: granted.
    lifted: BTreeSet<String>,
}

fn stricter<T: Copy>(a: Option<T>, b: Option<T>, rank: impl Fn(T) -> u8) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if rank(y) > rank(x) { y } else { x }),
        (x, y) => x.or(y),
    }
}

fn union_opt(a: &mut Option<BTreeSet<u16>>, b: Option<BTreeSet<u16>>) {
    match (a.as_mut(), b) {
        (Some(x), Some(y)) => x.extend(y),
        (None, Some(y)) => *a = Some(y),
        (_, None) => {}
    }
}

fn merge_landlock(into: &mut Option<PartialLandlock>, l: PartialLandlock) {
    let m = into.get_or_insert_with(Default::default);
    m.min_abi = match (m.min_abi, l.min_abi) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    m.read.extend(l.read);
    m.read_exec.extend(l.read_exec);
    m.write.extend(l.write);
    union_opt(&mut m.bind_tcp, l.bind_tcp);
    union_opt(&mut m.connect_tcp, l.connect_tcp);
    m.scope.extend(l.scope);
}

impl Node {
    /// Takes an include in (the includer's own values come after, in `merge`).
    fn absorb(&mut self, inc: Node) {
        for f in inc.files {
            if !self.files.contains(&f) {
                self.files.push(f);
            }
        }
        self.mode = stricter(self.mode, inc.mode, Mode::strictness);
        if let Some(l) = inc.landlock {
            merge_landlock(&mut self.landlock, l);
        }
        if let Some(s) = inc.seccomp {
            let m = self.seccomp.get_or_insert_with(Default::default);
            m.default_action = stricter(
                m.default_action,
                s.default_action,
                DefaultAction::strictness,
            );
            if s.errno.is_some() {
                m.errno = s.errno;
            }
            m.allow.extend(s.allow);
            m.deny.extend(s.deny);
            for r in s.rules {
                if !m.rules.contains(&r) {
                    m.rules.push(r);
                }
            }
        }
        for o in inc.overridden {
            if !self.overridden.contains(&o) {
                self.overridden.push(o);
            }
        }
        self.lifted.extend(inc.lifted);
        let n = &mut self.network;
        match (&mut n.families, inc.network.families) {
            (Some(a), Some(b)) => a.extend(b),
            (a @ None, Some(b)) => *a = Some(b),
            (_, None) => {}
        }
        n.udp = match (n.udp, inc.network.udp) {
            (Some(a), Some(b)) => Some(a || b),
            (a, b) => a.or(b),
        };
        n.unix_connect.extend(inc.network.unix_connect);
        self.process.capabilities.extend(inc.process.capabilities);
        self.process.namespaces.extend(inc.process.namespaces);
    }

    /// The file `own` (at `path`) merged over its includes.
    fn merge(
        own: &Partial,
        path: &Path,
        canonical: &Path,
        includes: Vec<Node>,
    ) -> Result<Node, ProfileError> {
        let mut n = Node::default();
        for inc in includes {
            n.absorb(inc);
        }
        // an include can only make the mode stricter than the default, never weaker
        n.mode = own
            .mode
            .or_else(|| stricter(n.mode, Some(Mode::default()), Mode::strictness));
        if let Some(l) = own.landlock.clone() {
            merge_landlock(&mut n.landlock, l);
        }
        if let Some(s) = own.seccomp.clone() {
            let m = n.seccomp.get_or_insert_with(Default::default);
            for (name, line) in &s.override_deny {
                if !m.deny.remove(name) {
                    return Err(ProfileError::invalid(
                        path,
                        *line,
                        "seccomp.override_deny",
                        format!(
                            "{name} is not denied by any include of this profile; there is nothing to lift"
                        ),
                    ));
                }
                n.overridden.push(Override {
                    name: name.clone(),
                    file: canonical.to_path_buf(),
                });
                n.lifted.insert(name.clone());
            }
            if s.default_action.is_some() {
                m.default_action = s.default_action;
            }
            if s.errno.is_some() {
                m.errno = s.errno;
            }
            m.allow.extend(s.allow);
            m.deny.extend(s.deny);
            m.rules.extend(s.rules);
        }
        // an include can only make the default action stricter than the default
        let own_action = own.seccomp.as_ref().and_then(|s| s.default_action);
        if let (Some(m), None) = (n.seccomp.as_mut(), own_action) {
            m.default_action = stricter(
                m.default_action,
                Some(DefaultAction::default()),
                DefaultAction::strictness,
            );
        }
        let net = own.network.clone();
        match (&mut n.network.families, net.families) {
            (Some(a), Some(b)) => a.extend(b),
            (a @ None, Some(b)) => *a = Some(b),
            (_, None) => {}
        }
        if net.udp.is_some() {
            n.network.udp = net.udp;
        }
        n.network.unix_connect.extend(net.unix_connect);
        n.process
            .capabilities
            .extend(own.process.capabilities.iter().cloned());
        n.process
            .namespaces
            .extend(own.process.namespaces.iter().copied());
        if !n.files.iter().any(|f| f == canonical) {
            n.files.push(canonical.to_path_buf());
        }
        Ok(n)
    }

    /// The resolved profile named by the top file.
    fn finish(self, top: Partial, path: &Path) -> Result<Profile, ProfileError> {
        let lifted = self.lifted;
        let seccomp = self.seccomp.map(|s| SeccompPolicy {
            default_action: s.default_action.unwrap_or_default(),
            errno: s.errno.unwrap_or_else(|| "EPERM".into()),
            allow: s.allow,
            deny: s.deny,
            rules: s.rules,
            overridden: self.overridden,
            granted: lifted,
        });
        let profile = Profile {
            name: top.name.clone(),
            description: top.description.clone(),
            source: path.to_path_buf(),
            files: self.files,
            mode: self.mode.unwrap_or_default(),
            landlock: self.landlock.map(|l| LandlockPolicy {
                min_abi: l.min_abi.unwrap_or(1),
                read: l.read,
                read_exec: l.read_exec,
                write: l.write,
                bind_tcp: l.bind_tcp,
                connect_tcp: l.connect_tcp,
                scope: l.scope,
            }),
            seccomp,
            network: NetworkPolicy {
                families: self
                    .network
                    .families
                    .unwrap_or_else(|| NetworkPolicy::default().families),
                udp: self.network.udp.unwrap_or(false),
                unix_connect: self.network.unix_connect,
            },
            process: ProcessPolicy {
                capabilities: self.process.capabilities,
                namespaces: self.process.namespaces,
            },
        };
        super::sidedoors::check_rules_not_bypassed(&profile)?;
        Ok(profile)
    }
}
