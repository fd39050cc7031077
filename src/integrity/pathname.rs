//! File names on the bus and in documents. The kernel's names are bytes; D-Bus strings and
//! JSON are UTF-8. A name is carried as UTF-8 with every byte that is not part of valid
//! UTF-8 written `\xNN`, and `\` itself written `\x5c`, so that the mapping is reversible:
//! the daemon accepts exactly the file the violation named, also when its name is not
//! UTF-8 (before, such a name became U+FFFD and accepting it changed nothing).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// `path` as a string for the bus.
pub fn to_wire(path: &Path) -> String {
    let mut out = String::with_capacity(path.as_os_str().len());
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\x5c");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The path a bus string names (the inverse of [`to_wire`]; a `\` not followed by `xNN` is
/// taken as it is).
pub fn from_wire(s: &str) -> PathBuf {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            if let Some(b) = bytes
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_goes_there_and_back() {
        for raw in [
            &b"/etc/plain"[..],
            b"/etc/caf\xc3\xa9",
            b"/etc/bad\xff\xfe",
            b"/etc/back\\slash\\x41",
            b"/etc/esc\x1b[2K",
        ] {
            let p = PathBuf::from(OsString::from_vec(raw.to_vec()));
            let w = to_wire(&p);
            assert_eq!(from_wire(&w), p, "{w}");
        }
        assert_eq!(to_wire(Path::new("/etc/café")), "/etc/café");
        assert_eq!(
            to_wire(&PathBuf::from(OsString::from_vec(b"/x/bad\xff".to_vec()))),
            "/x/bad\\xff"
        );
        assert_eq!(to_wire(Path::new("/a\\b")), "/a\\x5cb");
    }
}
