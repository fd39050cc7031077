//! `hardenctl sbom`: the document validates against the official CycloneDX 1.6 schema (the
//! pinned cyclonedx-python-lib's validator, scripts/cdx-validate), on this machine and on a
//! fixed image; purls written by hand from syft's scheme; no empty licence.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::common::hardenctl;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sbom(root: &Path, out: &Path) -> serde_json::Value {
    let o = Command::new(hardenctl())
        .args(["sbom", "--root"])
        .arg(root)
        .arg("--output")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let summary = String::from_utf8_lossy(&o.stderr);
    assert!(summary.starts_with("sbom: "), "{summary}");
    serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap()
}

fn validate(file: &Path) {
    let o = Command::new(repo().join("scripts/cdx-validate"))
        .arg(file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn no_empty_licence(doc: &serde_json::Value) {
    for c in doc["components"].as_array().unwrap() {
        let l = &c["licenses"][0];
        let text = l["expression"]
            .as_str()
            .or_else(|| l["license"]["name"].as_str())
            .unwrap_or_default();
        assert!(!text.trim().is_empty(), "empty licence: {c}");
    }
}

#[test]
fn the_sbom_of_this_machine_is_valid_cyclonedx_1_6() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("host.cdx.json");
    let doc = sbom(Path::new("/"), &f);
    validate(&f);
    no_empty_licence(&doc);
    let n = doc["components"].as_array().unwrap().len();
    let status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap();
    let installed = status
        .split("\n\n")
        .filter(|p| {
            p.lines()
                .any(|l| l.starts_with("Status:") && l.ends_with(" installed"))
        })
        .count();
    assert_eq!(n, installed, "one component per installed package");
    assert_eq!(doc["dependencies"].as_array().unwrap().len(), n);
    assert_eq!(doc["metadata"]["component"]["type"], "operating-system");
}

#[test]
fn purls_licences_and_dependencies_of_a_fixed_image() {
    let root = repo().join("tests/data/sbom-root");
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("image.cdx.json");
    let doc = sbom(&root, &f);
    validate(&f);
    no_empty_licence(&doc);
    let by_name: BTreeMap<&str, &serde_json::Value> = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c))
        .collect();
    assert!(
        !by_name.contains_key("removed-one"),
        "config-files only is not installed"
    );
    // written by hand: pkg:deb/debian/NAME@VERSION?arch=ARCH&upstream=SRC@SRCVER&distro=debian-12
    let want = [
        (
            "libc6",
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&upstream=glibc&distro=debian-12",
        ),
        (
            "coreutils",
            "pkg:deb/debian/coreutils@9.1-1?arch=amd64&distro=debian-12",
        ),
        (
            "bash",
            "pkg:deb/debian/bash@5.2.15-2%2Bb8?arch=amd64&upstream=bash%405.2.15-2&distro=debian-12",
        ),
        (
            "util-linux",
            "pkg:deb/debian/util-linux@2.38.1-5%2Bdeb12u3?arch=amd64&distro=debian-12",
        ),
        (
            "cryptsetup-bin",
            "pkg:deb/debian/cryptsetup-bin@2:2.6.1-4~deb12u2?arch=amd64&upstream=cryptsetup&distro=debian-12",
        ),
        (
            "libgssapi-krb5-2",
            "pkg:deb/debian/libgssapi-krb5-2@1.20.1-2%2Bdeb12u3?arch=amd64&upstream=krb5&distro=debian-12",
        ),
        (
            "tzdata",
            "pkg:deb/debian/tzdata@2025b-0%2Bdeb12u2?arch=all&distro=debian-12",
        ),
        (
            "perl-base",
            "pkg:deb/debian/perl-base@5.36.0-7%2Bdeb12u4?arch=amd64&upstream=perl&distro=debian-12",
        ),
        (
            "libssl3",
            "pkg:deb/debian/libssl3@3.0.19-1~deb12u2?arch=amd64&upstream=openssl&distro=debian-12",
        ),
        (
            "dbus",
            "pkg:deb/debian/dbus@1.14.10-1~deb12u1?arch=amd64&distro=debian-12",
        ),
        (
            "libtss2-esys-3.0.2-0",
            "pkg:deb/debian/libtss2-esys-3.0.2-0@3.2.1-3?arch=amd64&upstream=tpm2-tss&distro=debian-12",
        ),
        (
            "zlib1g",
            "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&upstream=zlib&distro=debian-12",
        ),
        (
            "libzstd1",
            "pkg:deb/debian/libzstd1@1.5.4%2Bdfsg2-5?arch=amd64&upstream=libzstd&distro=debian-12",
        ),
        (
            "gcc-12",
            "pkg:deb/debian/gcc-12@12.2.0-14%2Bdeb12u1?arch=amd64&distro=debian-12",
        ),
        (
            "cpp",
            "pkg:deb/debian/cpp@4:12.2.0-3?arch=amd64&upstream=gcc-defaults%401.203&distro=debian-12",
        ),
        (
            "tar",
            "pkg:deb/debian/tar@1.34%2Bdfsg-1.2%2Bdeb12u1?arch=amd64&distro=debian-12",
        ),
        (
            "dpkg",
            "pkg:deb/debian/dpkg@1.21.22?arch=amd64&distro=debian-12",
        ),
        (
            "apt",
            "pkg:deb/debian/apt@2.6.1?arch=amd64&distro=debian-12",
        ),
        (
            "e2fsprogs",
            "pkg:deb/debian/e2fsprogs@1.47.0-2?arch=amd64&distro=debian-12",
        ),
        (
            "libgcc-s1",
            "pkg:deb/debian/libgcc-s1@12.2.0-14%2Bdeb12u1?arch=amd64&upstream=gcc-12&distro=debian-12",
        ),
    ];
    for (name, purl) in want {
        let c = by_name
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(c["purl"], purl, "{name}");
        assert_eq!(c["bom-ref"], purl, "{name}");
    }
    assert_eq!(by_name.len(), 20);
    // DEP-5 → SPDX; a package without a machine-readable file is stated as unknown
    assert_eq!(
        by_name["coreutils"]["licenses"][0]["expression"]
            .as_str()
            .unwrap()
            .split(" AND ")
            .next(),
        Some("GPL-3.0-or-later")
    );
    let unknown = by_name["libc6"]["licenses"][0]["license"]["name"]
        .as_str()
        .unwrap();
    assert!(
        unknown.starts_with("unknown: no copyright file"),
        "{unknown}"
    );
    // dependencies resolved against what is installed (libc6 depends on libgcc-s1)
    let deps: BTreeMap<&str, Vec<&str>> = doc["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["ref"].as_str().unwrap(),
                d["dependsOn"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap())
                    .collect(),
            )
        })
        .collect();
    let libc = by_name["libc6"]["purl"].as_str().unwrap();
    let gcc = by_name["libgcc-s1"]["purl"].as_str().unwrap();
    assert!(deps[libc].contains(&gcc), "{:?}", deps[libc]);
    // what the fixed image does not have is said to be incomplete, never claimed complete
    let comp = doc["compositions"].as_array().unwrap();
    assert!(
        comp.iter().any(|c| c["aggregate"] == "incomplete"),
        "{comp:?}"
    );
}
