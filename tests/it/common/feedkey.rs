//! An Ed25519 key pair made with the `openssl` command (not hardend's code), to sign feeds
//! the way a fleet would: `openssl pkeyutl -sign -rawin`. Also used by the benchmarks.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct FeedKey {
    private: PathBuf,
    /// The public key (PEM), what `hardenctl vulns --key` and `[vulns] key` take.
    pub public: PathBuf,
}

fn openssl(args: &[&std::ffi::OsStr]) {
    let o = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(o.status.success(), "openssl {args:?}: {o:?}");
}

impl FeedKey {
    /// A new key pair in DIR, as NAME.pem and NAME.pub.pem.
    pub fn new(dir: &Path, name: &str) -> FeedKey {
        let private = dir.join(format!("{name}.pem"));
        let public = dir.join(format!("{name}.pub.pem"));
        openssl(&[
            "genpkey".as_ref(),
            "-algorithm".as_ref(),
            "ed25519".as_ref(),
            "-out".as_ref(),
            private.as_os_str(),
        ]);
        openssl(&[
            "pkey".as_ref(),
            "-in".as_ref(),
            private.as_os_str(),
            "-pubout".as_ref(),
            "-out".as_ref(),
            public.as_os_str(),
        ]);
        FeedKey { private, public }
    }

    /// Signs FILE into FILE.sig (the default detached signature's name) and returns that path.
    pub fn sign(&self, file: &Path) -> PathBuf {
        let mut sig = file.as_os_str().to_owned();
        sig.push(".sig");
        let sig = PathBuf::from(sig);
        openssl(&[
            "pkeyutl".as_ref(),
            "-sign".as_ref(),
            "-rawin".as_ref(),
            "-inkey".as_ref(),
            self.private.as_os_str(),
            "-in".as_ref(),
            file.as_os_str(),
            "-out".as_ref(),
            sig.as_os_str(),
        ]);
        sig
    }

    /// The public key's path as a string (for argument lists).
    pub fn public_str(&self) -> &str {
        self.public.to_str().expect("UTF-8 temporary path")
    }
}
