//! The device's software bill of materials from dpkg's own records.
//!
//! * `status.rs` — `/var/lib/dpkg/status`: the installed packages (RFC 822 paragraphs);
//! * `licence.rs` — DEP-5 copyright files to SPDX expressions (unknown stated as such);
//! * `purl.rs` — package URLs in syft's scheme for Debian;
//! * `rootfs.rs` — reading the described system's files with links kept inside its root;
//! * `cyclonedx.rs` — the CycloneDX 1.6 JSON document.

pub mod cyclonedx;
pub mod licence;
pub mod purl;
pub mod rootfs;
pub mod status;

use std::path::PathBuf;

/// Errors of the SBOM.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {what}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        what: String,
    },
}
