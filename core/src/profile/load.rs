//! Finding profile files and merging includes.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::raw::{self, Partial};
use super::{LandlockPolicy, Profile, ProfileError, SeccompPolicy};
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
}

impl Default for ProfileLoader {
    fn default() -> Self {
        Self::new(DEFAULT_SEARCH_PATH.iter().map(PathBuf::from).collect())
    }
}

impl ProfileLoader {
    /// A loader with an explicit search path (tests, the demo, `--profile-path`).
    pub fn new(search_path: Vec<PathBuf>) -> Self {
        Self { search_path }
    }

    pub fn search_path(&self) -> &[PathBuf] {
        &self.search_path
    }

    /// Finds the file for `name`: a value containing `/` is a path, anything else is looked
    /// up as `NAME.toml` along `extra_dirs` and then the search path.
    pub fn find(&self, name: &str, extra_dirs: &[&Path]) -> Result<PathBuf, ProfileError> {
        if name.contains('/') {
            return Ok(PathBuf::from(name));
        }
        if !raw::valid_profile_name(name) {
            return Err(ProfileError::NotFound {
                name: name.to_string(),
                searched: "nothing: not a valid profile name".into(),
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
        Err(ProfileError::NotFound {
            name: name.to_string(),
            searched: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Loads a profile by name or path and merges its includes.
    pub fn load(&self, name: &str) -> Result<Profile, ProfileError> {
        let path = self.find(name, &[])?;
        self.load_file(&path)
    }

    /// Loads the profile in `path` and merges its includes.
    pub fn load_file(&self, path: &Path) -> Result<Profile, ProfileError> {
        let mut merged = Merged::default();
        let mut stack = Vec::new();
        let top = self.load_rec(path, &mut stack, &mut merged)?;
        Ok(merged.finish(top, path))
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

    fn load_rec(
        &self,
        path: &Path,
        stack: &mut Vec<PathBuf>,
        merged: &mut Merged,
    ) -> Result<Partial, ProfileError> {
        let text = read_limited(path)?;
        let partial = raw::parse(path, &text)?;
        let canonical = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        stack.push(canonical);
        let own_dir = path.parent().unwrap_or(Path::new("."));
        for (inc, line) in &partial.include {
            let inc_path = self
                .find(inc, &[own_dir])
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
            // An include reached twice through different branches (a diamond) is merged once.
            if merged.files.contains(&inc_canonical) {
                continue;
            }
            let inc_partial = self.load_rec(&inc_path, stack, merged)?;
            merged.apply(inc_partial);
            merged.files.push(inc_canonical);
        }
        stack.pop();
        Ok(partial)
    }
}

fn read_limited(path: &Path) -> Result<String, ProfileError> {
    let read_err = |source| {
        ProfileError::from(SourceError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let file = fs::File::open(path).map_err(read_err)?;
    let mut text = String::new();
    file.take(MAX_PROFILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_PROFILE_BYTES {
        return Err(read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_PROFILE_BYTES} bytes"),
        )));
    }
    Ok(text)
}

/// Accumulates partials: lists are unioned, later scalars override earlier ones, and
/// `min_abi` takes the highest value (an include can only make requirements stricter).
#[derive(Default)]
struct Merged {
    files: Vec<PathBuf>,
    mode: Option<super::Mode>,
    landlock: Option<raw::PartialLandlock>,
    seccomp: Option<raw::PartialSeccomp>,
}

fn union_opt(
    a: &mut Option<std::collections::BTreeSet<u16>>,
    b: Option<std::collections::BTreeSet<u16>>,
) {
    match (a.as_mut(), b) {
        (Some(x), Some(y)) => x.extend(y),
        (None, Some(y)) => *a = Some(y),
        (_, None) => {}
    }
}

impl Merged {
    fn apply(&mut self, p: Partial) {
        if p.mode.is_some() {
            self.mode = p.mode;
        }
        if let Some(l) = p.landlock {
            let m = self.landlock.get_or_insert_with(Default::default);
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
        if let Some(s) = p.seccomp {
            let m = self.seccomp.get_or_insert_with(Default::default);
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
    }

    fn finish(mut self, top: Partial, path: &Path) -> Profile {
        let name = top.name.clone();
        let description = top.description.clone();
        self.apply(top);
        self.files
            .push(fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()));
        Profile {
            name,
            description,
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
            seccomp: self.seccomp.map(|s| SeccompPolicy {
                default_action: s.default_action.unwrap_or_default(),
                errno: s.errno.unwrap_or_else(|| "EPERM".into()),
                allow: s.allow,
                deny: s.deny,
                rules: s.rules,
            }),
        }
    }
}
