//! TCTI strings: validated here, because tss-esapi silently ignores unknown keys (a typo
//! like `swtpm:host=localhost,prot=2321` would quietly talk to the default port).

use std::str::FromStr;

use tss_esapi::tcti_ldr::TctiNameConf;

/// The default: the kernel's resource manager.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";

/// A TCTI string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid TCTI {tcti:?}: {reason}")]
pub struct TctiError {
    pub tcti: String,
    pub reason: String,
}

/// Checks `tcti` (`device[:PATH]`, `swtpm|mssim[:host=H,port=P]`, `tabrmd[:bus_name=N,bus_type=system|session]`)
/// and converts it.
pub fn parse(tcti: &str) -> Result<TctiNameConf, TctiError> {
    let err = |reason: String| TctiError {
        tcti: tcti.to_string(),
        reason,
    };
    let (kind, conf) = tcti.split_once(':').unwrap_or((tcti, ""));
    match kind {
        "device" => {
            if !conf.is_empty() && !conf.starts_with('/') {
                return Err(err(format!("device path {conf:?} must be absolute")));
            }
        }
        "swtpm" | "mssim" | "tabrmd" => {
            let allowed: &[&str] = if kind == "tabrmd" {
                &["bus_name", "bus_type"]
            } else {
                &["host", "port"]
            };
            for kv in conf.split(',').filter(|s| !s.is_empty()) {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| err(format!("{kv:?} is not key=value")))?;
                if !allowed.contains(&k) {
                    return Err(err(format!(
                        "unknown key {k:?} (allowed: {})",
                        allowed.join(", ")
                    )));
                }
                if k == "port" && v.parse::<u16>().map_or(true, |p| p == 0) {
                    return Err(err(format!("port {v:?} is not 1-65535")));
                }
                if k == "bus_type" && !matches!(v, "system" | "session") {
                    return Err(err(format!("bus_type {v:?} is not system or session")));
                }
                if v.is_empty() {
                    return Err(err(format!("{k} is empty")));
                }
            }
        }
        other => {
            return Err(err(format!(
                "unknown TCTI {other:?} (device, swtpm, mssim, tabrmd)"
            )));
        }
    }
    TctiNameConf::from_str(tcti).map_err(|e| err(e.to_string()))
}

/// The device node a `device[:PATH]` TCTI opens (`/dev/tpmrm0` by default); `None` for
/// the others.
pub fn device_path(tcti: &str) -> Option<std::path::PathBuf> {
    let (kind, conf) = tcti.split_once(':').unwrap_or((tcti, ""));
    (kind == "device").then(|| {
        let p = conf.split(',').next().unwrap_or("");
        std::path::PathBuf::from(if p.is_empty() { "/dev/tpmrm0" } else { p })
    })
}

/// The TCTI to use: explicit, else `$TCTI`, else the default.
pub fn choose(explicit: Option<&str>) -> String {
    explicit
        .map(str::to_string)
        .or_else(|| std::env::var("TCTI").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| DEFAULT_TCTI.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        for ok in [
            "device",
            "device:/dev/tpmrm0",
            "swtpm:host=127.0.0.1,port=2321",
            "mssim:port=2321",
            "tabrmd:bus_name=com.intel.tss2.Tabrmd,bus_type=system",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_typos_instead_of_ignoring_them() {
        let e = parse("swtpm:host=localhost,prot=2321").unwrap_err();
        assert!(e.reason.contains("unknown key \"prot\""), "{e}");
        assert!(parse("swtpm:port=99999").is_err());
        assert!(parse("device:tpmrm0").is_err());
        assert!(parse("tpm:/dev/tpm0").is_err());
        assert!(parse("swtpm:host").is_err());
    }
}
