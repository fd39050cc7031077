//! Package URLs for Debian packages in syft's scheme:
//! `pkg:deb/debian/NAME@VERSION?arch=ARCH&upstream=SRC@SRCVER&distro=debian-12`
//! (`upstream` when the source differs from the binary in name or version: the source's
//! name alone when only the name differs). Every part is percent-encoded as the purl
//! specification's own Debian example does (`attr@1:2.4.47-2%2Bb1`): everything but
//! letters, digits, `-._~` and the epoch's `:` (so `+` is `%2B`, `@` in a value `%40`).

use super::status::Package;

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The purl of `p` on `distro` (`debian-12`).
pub fn of(p: &Package, distro: &str) -> String {
    let mut q = vec![format!("arch={}", escape(&p.arch))];
    if p.source != p.name || p.source_version != p.version {
        if p.source_version != p.version {
            q.push(format!(
                "upstream={}",
                escape(&format!("{}@{}", p.source, p.source_version))
            ));
        } else {
            q.push(format!("upstream={}", escape(&p.source)));
        }
    }
    if !distro.is_empty() {
        q.push(format!("distro={}", escape(distro)));
    }
    format!(
        "pkg:deb/debian/{}@{}?{}",
        escape(&p.name),
        escape(&p.version),
        q.join("&")
    )
}
