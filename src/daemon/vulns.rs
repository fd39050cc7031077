//! The vulnerability pillar: the signed feed matched against the installed packages,
//! again whenever the feed, its signature, the key, dpkg's status or os-release change.
//!
//! A change is acted on once the files have stayed the same for one check interval, so a
//! feed and its signature delivered one after the other are judged as the pair, not
//! half-way. A feed that does not verify (or parse) is refused: the findings of the last
//! verified feed stay, the state says `refused`, and it is signalled once per delivered
//! version, not on every check.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::api::{VulnFinding, VulnsInfo, VulnsState};
use crate::config::VulnsConfig;
use crate::daemon::lock;
use crate::daemon::workers::Workers;
use crate::vulns::feed::{parse_as, verified_bytes};
use crate::vulns::matching::{Verdict, matches};
use crate::vulns::release;

/// What identifies a file's version without reading it: a replaced file has another inode,
/// an edited one another size or change time (which no one can set back).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp(Option<(u64, u64, u64, i64, i64, i64, i64)>);

impl Stamp {
    fn of(path: &Path) -> Stamp {
        Stamp(std::fs::metadata(path).ok().map(|m| {
            (
                m.dev(),
                m.ino(),
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
            )
        }))
    }
}

/// The inputs of one evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Inputs(Vec<Stamp>);

fn input_paths(cfg: &VulnsConfig, feed: &Path) -> [PathBuf; 5] {
    [
        feed.to_path_buf(),
        cfg.signature.clone(),
        cfg.key.clone(),
        cfg.root.join("var/lib/dpkg/status"),
        cfg.root.join("etc/os-release"),
    ]
}

fn inputs(cfg: &VulnsConfig, feed: &Path) -> Inputs {
    Inputs(
        input_paths(cfg, feed)
            .iter()
            .map(|p| Stamp::of(p))
            .collect(),
    )
}

/// What an evaluation found worth an alert.
#[derive(Debug)]
pub struct Evaluation {
    /// CVEs affecting installed packages that the previous verified evaluation did not
    /// list (every affecting one on the first).
    pub new: Vec<VulnFinding>,
    /// The feed was refused: why.
    pub refused: Option<String>,
    /// The evaluation could not run (key, dpkg status, release): why.
    pub error: Option<String>,
    /// The state after it.
    pub info: VulnsInfo,
}

/// One evaluation's result, made on a worker.
enum Outcome {
    Matched {
        sha256: String,
        release: String,
        findings: Vec<VulnFinding>,
        counts: crate::vulns::matching::Counts,
    },
    Refused(String),
    Error(String),
    /// The files changed while they were read: judged again once they settle.
    Changing,
}

fn evaluate(cfg: &VulnsConfig, feed: &Path, before: &Inputs) -> Outcome {
    let release = match &cfg.release {
        Some(r) => r.clone(),
        None => match release::of_root(&cfg.root, cfg.format) {
            Ok(r) => r,
            Err(e) => return Outcome::Error(format!("{e} in [vulns] release")),
        },
    };
    let packages = match crate::sbom::status::load_root(&cfg.root) {
        Ok(p) => p,
        Err(e) => return Outcome::Error(e.to_string()),
    };
    let parsed = verified_bytes(feed, &cfg.signature, &cfg.key).and_then(|data| {
        let f = parse_as(&data, feed, cfg.format, &release)?;
        Ok((hex::encode(openssl::sha::sha256(&data)), f))
    });
    match parsed {
        Ok((sha256, f)) => {
            let (findings, counts) = matches(&packages, &f);
            Outcome::Matched {
                sha256,
                release,
                findings: findings.into_iter().map(VulnFinding::from).collect(),
                counts,
            }
        }
        Err(_) if &inputs(cfg, feed) != before => Outcome::Changing,
        // the device's own key is missing or unusable: nothing can be believed
        Err(e) if e.path() == cfg.key => Outcome::Error(e.to_string()),
        Err(e) => Outcome::Refused(e.to_string()),
    }
}

/// Hands the ~40 MiB a full feed's read and parse left in the allocator's free lists back
/// to the kernel: the daemon runs for months on devices with little memory, and glibc
/// keeps freed heap otherwise.
fn release_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it touches no live
    // allocation and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

struct State {
    cfg: VulnsConfig,
    info: VulnsInfo,
    findings: Vec<VulnFinding>,
    /// The inputs last judged (matched, refused or failed): unchanged inputs are not judged
    /// again, so a refused feed is alerted once.
    judged: Option<Inputs>,
    /// The inputs at the previous check: a change is judged once it has settled.
    seen: Option<Inputs>,
    /// (CVE, source, verdict) of the last verified findings (`None`: none yet since the
    /// start): an open CVE that gains a fix is new again.
    known: Option<HashSet<Key>>,
    /// Checks in a row that found the inputs changed again: files that never settle are
    /// judged anyway after [`MAX_UNSETTLED`] (churning them must not postpone a refusal).
    unsettled: u32,
    /// Evaluations in a row whose files changed while they were read.
    changing: u32,
}

type Key = (String, String, Verdict);

fn key(f: &VulnFinding) -> Key {
    (f.cve.clone(), f.source.clone(), f.verdict)
}

/// After this many checks with the inputs still changing, they are judged as they are.
const MAX_UNSETTLED: u32 = 3;
/// After this many evaluations in a row that saw the files change under them, the feed is
/// refused as "kept changing".
const MAX_CHANGING: u32 = 2;

/// The daemon's view of the installed packages' known vulnerabilities.
pub struct VulnsService {
    state: Mutex<State>,
    /// Reading and matching a full feed takes a second or two and ~100 MiB: one at a time,
    /// off the event loop.
    worker: Workers,
}

fn info_for(cfg: &VulnsConfig) -> VulnsInfo {
    let mut i = VulnsInfo::new(if cfg.feed.is_some() {
        VulnsState::Starting
    } else {
        VulnsState::Disabled
    });
    i.feed = cfg
        .feed
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_default();
    i.format = cfg.format.as_str().into();
    i
}

impl VulnsService {
    pub fn new(cfg: VulnsConfig) -> Self {
        VulnsService {
            state: Mutex::new(State {
                info: info_for(&cfg),
                cfg,
                findings: Vec::new(),
                judged: None,
                seen: None,
                known: None,
                unsettled: 0,
                changing: 0,
            }),
            worker: Workers::new(
                "vulnerability feed",
                1,
                Duration::from_secs(300),
                Duration::from_secs(300),
            ),
        }
    }

    /// A new `[vulns]`. Only another check interval: kept as it is. Another feed,
    /// signature, key, format, release or root starts afresh, judged at the next check.
    pub fn configure(&self, cfg: VulnsConfig) {
        let mut st = lock(&self.state);
        let same_inputs = VulnsConfig {
            check_interval: st.cfg.check_interval,
            ..cfg.clone()
        } == st.cfg;
        if same_inputs {
            st.cfg.check_interval = cfg.check_interval;
            return;
        }
        st.info = info_for(&cfg);
        st.findings.clear();
        st.known = None;
        st.judged = None;
        st.seen = None;
        st.unsettled = 0;
        st.changing = 0;
        st.cfg = cfg;
    }

    pub fn info(&self) -> VulnsInfo {
        lock(&self.state).info.clone()
    }

    pub fn findings(&self) -> Vec<VulnFinding> {
        lock(&self.state).findings.clone()
    }

    /// How many findings there are of each (verdict, urgency), without copying them.
    pub fn finding_counts(&self) -> std::collections::BTreeMap<(Verdict, String), u64> {
        let mut n = std::collections::BTreeMap::new();
        for f in &lock(&self.state).findings {
            *n.entry((f.verdict, f.urgency.clone())).or_default() += 1;
        }
        n
    }

    /// How long to wait between checks.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(lock(&self.state).cfg.check_interval)
    }

    /// Looks at the inputs; judges them when they changed and have settled, or at once
    /// with `now`. `None`: nothing was judged.
    pub async fn check(&self, now_: bool) -> Option<Evaluation> {
        let (cfg, judged, seen) = {
            let st = lock(&self.state);
            (st.cfg.clone(), st.judged.clone(), st.seen.clone())
        };
        let feed = cfg.feed.clone()?;
        let c = cfg.clone();
        let f = feed.clone();
        let current = self
            .worker
            .run("the feed's files", move || inputs(&c, &f))
            .await
            .ok()?;
        if !now_ {
            let mut st = lock(&self.state);
            if judged.as_ref() == Some(&current) {
                st.unsettled = 0;
                st.seen = Some(current);
                return None;
            }
            if seen.as_ref() != Some(&current) && st.unsettled < MAX_UNSETTLED {
                st.unsettled += 1;
                st.seen = Some(current);
                return None;
            }
        }
        let (c, before) = (cfg.clone(), current.clone());
        let feed_path = feed.clone();
        let outcome = self
            .worker
            .run("the vulnerability feed", move || {
                let o = evaluate(&c, &feed, &before);
                release_freed_memory();
                o
            })
            .await;
        let mut st = lock(&self.state);
        if st.cfg != cfg {
            // reconfigured meanwhile: this result is for the old configuration
            return None;
        }
        st.seen = Some(current.clone());
        st.unsettled = 0;
        let outcome = match outcome {
            Ok(Outcome::Changing) => {
                st.changing += 1;
                if st.changing < MAX_CHANGING {
                    return None;
                }
                Outcome::Refused(format!(
                    "{}: the feed's files kept changing while they were read",
                    feed_path.display()
                ))
            }
            Ok(o) => o,
            // busy or stuck: the inputs stay unjudged, to be tried again at the next check
            Err(e) => {
                st.info.state = VulnsState::Error;
                st.info.detail = e.to_string();
                return Some(Evaluation {
                    new: Vec::new(),
                    refused: None,
                    error: Some(e.to_string()),
                    info: st.info.clone(),
                });
            }
        };
        st.changing = 0;
        let mut ev = Evaluation {
            new: Vec::new(),
            refused: None,
            error: None,
            info: VulnsInfo::new(VulnsState::Starting),
        };
        match outcome {
            // turned into a refusal above once it repeats
            Outcome::Changing => return None,
            Outcome::Matched {
                sha256,
                release,
                findings,
                counts,
            } => {
                let keys: HashSet<Key> = findings.iter().map(key).collect();
                ev.new = findings
                    .iter()
                    .filter(|f| st.known.as_ref().is_none_or(|k| !k.contains(&key(f))))
                    .cloned()
                    .collect();
                let i = &mut st.info;
                i.set_counts(&counts);
                i.feed_sha256 = sha256;
                i.release = release;
                i.detail = String::new();
                i.evaluated = crate::integrity::now();
                st.findings = findings;
                st.known = Some(keys);
            }
            Outcome::Refused(why) => {
                st.info.state = VulnsState::Refused;
                st.info.detail = if st.info.feed_sha256.is_empty() {
                    format!("{why}; no verified feed yet")
                } else {
                    format!(
                        "{why}; the findings are those of the last verified feed (sha256 {})",
                        st.info.feed_sha256
                    )
                };
                ev.refused = Some(why);
            }
            Outcome::Error(why) => {
                st.info.state = VulnsState::Error;
                st.info.detail = why.clone();
                ev.error = Some(why);
            }
        }
        st.judged = Some(current);
        ev.info = st.info.clone();
        Some(ev)
    }
}
