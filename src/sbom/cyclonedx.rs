//! The CycloneDX 1.6 JSON document: every installed package as a component (purl as its
//! `bom-ref`, supplier from Maintainer, declared licences, the `.deb`'s SHA-512 when apt's
//! cache still holds it), the dependency graph from Depends/Pre-Depends (alternatives and
//! virtual packages resolved against what is installed) with a completeness statement, and
//! the device itself (OS release, verified root hash, hardend's version) as the metadata
//! component.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha512};

use super::licence::{Declared, declared};
use super::status::{self, Package};
use super::{SbomError, purl};

/// `ID-VERSION_ID` from os-release (`debian-12`), and PRETTY_NAME.
fn os_release(root: &Path) -> (String, String, String) {
    let read = |p: &str| super::rootfs::read_to_string(root, std::path::Path::new(p), 64 << 10);
    let text = read("etc/os-release")
        .or_else(|_| read("usr/lib/os-release"))
        .unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let (id, ver) = (get("ID"), get("VERSION_ID"));
    let distro = if ver.is_empty() {
        id.clone()
    } else {
        format!("{id}-{ver}")
    };
    (distro, get("PRETTY_NAME"), ver)
}

/// `Name <mail>` → (name, mail).
fn person(s: &str) -> (String, String) {
    match s.split_once('<') {
        Some((n, m)) => (
            n.trim().to_string(),
            m.trim_end_matches('>').trim().to_string(),
        ),
        None => (s.trim().to_string(), String::new()),
    }
}

/// SHA-512 of the package's archive in apt's cache, when it is there.
fn deb_sha512(root: &Path, p: &Package) -> Option<String> {
    let file = format!(
        "{}_{}_{}.deb",
        p.name,
        p.version.replace(':', "%3a"),
        p.arch
    );
    let rel = std::path::Path::new("var/cache/apt/archives").join(file);
    let mut f = super::rootfs::open(root, &rel).ok()?;
    let mut h = Sha512::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Some(hex::encode(h.finalize()))
}

fn licence_json(d: &Declared) -> Value {
    match d {
        Declared::Expression(e) => json!([{ "expression": e, "acknowledgement": "declared" }]),
        Declared::Unknown(why) => json!([{
            "license": { "name": format!("unknown: {why}"), "acknowledgement": "declared" }
        }]),
    }
}

/// The verified root's hash from the kernel command line (only for the running system).
fn verity_root_hash(root: &Path) -> Option<String> {
    if root != Path::new("/") {
        return None;
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").ok()?;
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("hardend.verity.roothash="))
        .map(str::to_string)
}

fn random_uuid() -> String {
    let mut b = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// What an SBOM run found besides the document (for the caller's summary).
pub struct Summary {
    pub components: usize,
    pub unknown_licences: usize,
    pub unresolved_dependencies: usize,
}

/// The SBOM of the system under `root` (`/` for this one) at `timestamp` (RFC 3339).
pub fn document(root: &Path, timestamp: &str) -> Result<(Value, Summary), SbomError> {
    let packages = status::load_root(root)?;
    let (distro, pretty, os_version) = os_release(root);
    let refs: BTreeMap<&str, String> = packages
        .iter()
        .map(|p| (p.name.as_str(), purl::of(p, &distro)))
        .collect();
    // virtual package → the installed packages providing it
    let mut providers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in &packages {
        for v in &p.provides {
            providers
                .entry(v.as_str())
                .or_default()
                .push(p.name.as_str());
        }
    }
    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    let (mut unknown, mut unresolved) = (0, 0);
    let mut incomplete: BTreeSet<String> = BTreeSet::new();
    for p in &packages {
        let r = &refs[p.name.as_str()];
        let lic = declared(root, &p.name);
        if matches!(lic, Declared::Unknown(_)) {
            unknown += 1;
        }
        let (sname, smail) = person(&p.maintainer);
        let mut c = json!({
            "type": if p.name.starts_with("lib") { "library" } else { "application" },
            "bom-ref": r,
            "name": p.name,
            "version": p.version,
            "purl": r,
            "licenses": licence_json(&lic),
            "properties": [
                { "name": "hardend:dpkg:source", "value": format!("{} {}", p.source, p.source_version) },
                { "name": "hardend:dpkg:architecture", "value": p.arch },
            ],
        });
        if !sname.is_empty() {
            let mut s = json!({ "name": sname });
            if smail.contains("://") {
                // some maintainers give a web address in place of a mail address
                s["url"] = json!([smail]);
            } else if smail.contains('@') {
                s["contact"] = json!([{ "email": smail }]);
            }
            c["supplier"] = s;
        }
        if !p.description.is_empty() {
            c["description"] = json!(p.description);
        }
        if !p.homepage.is_empty() && p.homepage.contains("://") {
            c["externalReferences"] = json!([{ "type": "website", "url": p.homepage }]);
        }
        if let Some(h) = deb_sha512(root, p) {
            c["hashes"] = json!([{ "alg": "SHA-512", "content": h }]);
        }
        components.push(c);
        // each relation: the first alternative installed, directly or as a provider
        let mut on: BTreeSet<&String> = BTreeSet::new();
        for alts in &p.depends {
            let hit = alts.iter().find_map(|a| {
                refs.get(a.as_str()).or_else(|| {
                    providers
                        .get(a.as_str())
                        .and_then(|ps| ps.first())
                        .and_then(|n| refs.get(n))
                })
            });
            match hit {
                Some(h) if h != r => {
                    on.insert(h);
                }
                Some(_) => {}
                None => {
                    unresolved += 1;
                    incomplete.insert(r.clone());
                }
            }
        }
        dependencies.push(json!({ "ref": r, "dependsOn": on }));
    }
    let complete: Vec<&String> = refs.values().filter(|r| !incomplete.contains(*r)).collect();
    let mut compositions = vec![json!({ "aggregate": "complete", "dependencies": complete })];
    if !incomplete.is_empty() {
        compositions.push(json!({ "aggregate": "incomplete", "dependencies": incomplete }));
    }
    let mut props = vec![json!({ "name": "hardend:version", "value": env!("CARGO_PKG_VERSION") })];
    if let Some(h) = verity_root_hash(root) {
        props.push(json!({ "name": "hardend:verity:roothash", "value": h }));
    }
    let doc = json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", random_uuid()),
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": { "components": [{
                "type": "application", "name": "hardenctl", "version": env!("CARGO_PKG_VERSION")
            }]},
            "component": {
                "type": "operating-system",
                "bom-ref": format!("device:{distro}"),
                "name": if pretty.is_empty() { distro.clone() } else { pretty },
                "version": os_version,
                "properties": props,
            },
        },
        "components": components,
        "dependencies": dependencies,
        "compositions": compositions,
    });
    Ok((
        doc,
        Summary {
            components: packages.len(),
            unknown_licences: unknown,
            unresolved_dependencies: unresolved,
        },
    ))
}
