//! Device-mapper ioctls for verity targets: create/load/resume (open), remove (close) and
//! table status, encoded by hand. The `devicemapper` crate was considered: it has no verity
//! target type, needs libdevmapper headers and libclang to build and calls itself beta; the
//! five ioctls below are small, fixed-layout and unit-tested here (the kernel path runs in
//! the VM tests, since this host has no device-mapper).

use std::fs::File;
use std::os::fd::AsRawFd;

use super::tree::Layout;
use super::{VerityError, VerityParams, salt_string};

/// `struct dm_ioctl` is 312 bytes.
pub const DM_IOCTL_SIZE: usize = 312;
/// `struct dm_target_spec` is 40 bytes.
pub const DM_TARGET_SPEC_SIZE: usize = 40;
const NAME_LEN: usize = 128;
const UUID_LEN: usize = 129;

pub const DM_DEV_CREATE: u8 = 3;
pub const DM_DEV_REMOVE: u8 = 4;
pub const DM_DEV_SUSPEND: u8 = 6;
pub const DM_TABLE_LOAD: u8 = 9;
pub const DM_TABLE_STATUS: u8 = 12;

pub const DM_READONLY_FLAG: u32 = 1 << 0;
pub const DM_STATUS_TABLE_FLAG: u32 = 1 << 4;
pub const DM_BUFFER_FULL_FLAG: u32 = 1 << 8;

/// `_IOWR(0xfd, nr, struct dm_ioctl)`.
pub const fn ioctl_number(nr: u8) -> u64 {
    (3u64 << 30) | ((DM_IOCTL_SIZE as u64) << 16) | (0xfd << 8) | nr as u64
}

/// One target line: start sector, length in sectors, type, parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub start: u64,
    pub length: u64,
    pub target_type: String,
    pub params: String,
}

/// What the kernel answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub flags: u32,
    pub dev: u64,
    pub targets: Vec<Target>,
}

fn put_str(buf: &mut [u8], at: usize, cap: usize, s: &str, what: &str) -> Result<(), VerityError> {
    if s.len() >= cap || s.contains('\0') {
        return Err(VerityError::Params(format!(
            "{what} {s:?} is longer than {} bytes",
            cap - 1
        )));
    }
    buf[at..at + s.len()].copy_from_slice(s.as_bytes());
    Ok(())
}

/// Encodes a request: header, then one target spec + NUL-terminated params per target,
/// each aligned to 8 bytes. `buf_size` reserves room for the answer.
pub fn encode(
    name: &str,
    uuid: Option<&str>,
    flags: u32,
    targets: &[Target],
    buf_size: usize,
) -> Result<Vec<u8>, VerityError> {
    let mut body = Vec::new();
    for t in targets {
        let start = body.len();
        body.resize(start + DM_TARGET_SPEC_SIZE, 0);
        body[start..start + 8].copy_from_slice(&t.start.to_le_bytes());
        body[start + 8..start + 16].copy_from_slice(&t.length.to_le_bytes());
        put_str(&mut body[start..], 24, 16, &t.target_type, "target type")?;
        body.extend_from_slice(t.params.as_bytes());
        body.push(0);
        body.resize(body.len().next_multiple_of(8), 0);
        // `next` in a request: offset of the following spec relative to this one (the
        // kernel's populate_table); in a reply it is relative to the data area (decode).
        let next = (body.len() - start) as u32;
        body[start + 20..start + 24].copy_from_slice(&next.to_le_bytes());
    }
    let size = (DM_IOCTL_SIZE + body.len()).max(buf_size);
    let mut buf = vec![0u8; size];
    for (i, v) in [4u32, 0, 0].iter().enumerate() {
        buf[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    buf[12..16].copy_from_slice(&(size as u32).to_le_bytes());
    buf[16..20].copy_from_slice(&(DM_IOCTL_SIZE as u32).to_le_bytes());
    buf[20..24].copy_from_slice(&(targets.len() as u32).to_le_bytes());
    buf[28..32].copy_from_slice(&flags.to_le_bytes());
    put_str(&mut buf, 48, NAME_LEN, name, "device name")?;
    if let Some(u) = uuid {
        put_str(&mut buf, 48 + NAME_LEN, UUID_LEN, u, "device uuid")?;
    }
    buf[DM_IOCTL_SIZE..DM_IOCTL_SIZE + body.len()].copy_from_slice(&body);
    Ok(buf)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The flags and device number of a reply that carries no data area (DM_DEV_CREATE,
/// DM_TABLE_LOAD, DM_DEV_SUSPEND). There the kernel sets data_size to offsetof(struct
/// dm_ioctl, data) (305), below the data_start the caller sent, and target_count to the
/// number of targets in the table: no target specs follow, whatever the count says.
pub fn decode_header(buf: &[u8]) -> Result<(u32, u64), VerityError> {
    if buf.len() < DM_IOCTL_SIZE {
        return Err(VerityError::Params(
            "device-mapper reply: shorter than struct dm_ioctl".into(),
        ));
    }
    Ok((u32_at(buf, 28), u64_at(buf, 40)))
}

/// Decodes a reply with a data area (DM_TABLE_STATUS), checking every offset against the
/// buffer.
pub fn decode(buf: &[u8]) -> Result<Reply, VerityError> {
    let bad = |m: &str| VerityError::Params(format!("device-mapper reply: {m}"));
    if buf.len() < DM_IOCTL_SIZE {
        return Err(bad("shorter than struct dm_ioctl"));
    }
    let data_size = u32_at(buf, 12) as usize;
    let data_start = u32_at(buf, 16) as usize;
    let count = u32_at(buf, 20) as usize;
    let flags = u32_at(buf, 28);
    let dev = u64_at(buf, 40);
    if data_size > buf.len() || data_start > data_size {
        return Err(bad("data size or start out of bounds"));
    }
    let mut targets = Vec::new();
    let mut at = data_start;
    for _ in 0..count {
        if at + DM_TARGET_SPEC_SIZE > data_size {
            return Err(bad("target spec out of bounds"));
        }
        let spec = &buf[at..at + DM_TARGET_SPEC_SIZE];
        let ty_end = spec[24..40].iter().position(|c| *c == 0).unwrap_or(16);
        let params_start = at + DM_TARGET_SPEC_SIZE;
        let params_len = buf[params_start..data_size]
            .iter()
            .position(|c| *c == 0)
            .ok_or_else(|| bad("unterminated parameters"))?;
        targets.push(Target {
            start: u64_at(spec, 0),
            length: u64_at(spec, 8),
            target_type: String::from_utf8_lossy(&spec[24..24 + ty_end]).into_owned(),
            params: String::from_utf8_lossy(&buf[params_start..params_start + params_len])
                .into_owned(),
        });
        // `next` is relative to the start of the data area in replies
        let next = u32_at(spec, 20) as usize;
        if next == 0 {
            break;
        }
        at = data_start + next;
    }
    Ok(Reply {
        flags,
        dev,
        targets,
    })
}

/// What the kernel does when a block fails verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OnCorruption {
    /// Return EIO to the reader (the kernel's default).
    Eio,
    /// Reboot (pair with an A/B boot counter).
    Restart,
    /// Kernel panic.
    Panic,
    /// Log and return the corrupt data (testing only).
    Ignore,
}

/// Optional target arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableOptions {
    pub on_corruption: Option<OnCorruption>,
    pub ignore_zero_blocks: bool,
    pub check_at_most_once: bool,
    pub root_hash_sig_key_desc: Option<String>,
}

/// The verity table line for the kernel.
pub fn table(
    p: &VerityParams,
    data_dev: &str,
    hash_dev: &str,
    root: &str,
    o: &TableOptions,
) -> Result<Target, VerityError> {
    let l = Layout::new(p).ok_or_else(|| VerityError::Params("invalid tree layout".into()))?;
    let mut opts: Vec<String> = Vec::new();
    match o.on_corruption {
        None | Some(OnCorruption::Eio) => {}
        Some(OnCorruption::Restart) => opts.push("restart_on_corruption".into()),
        Some(OnCorruption::Panic) => opts.push("panic_on_corruption".into()),
        Some(OnCorruption::Ignore) => opts.push("ignore_corruption".into()),
    }
    if o.ignore_zero_blocks {
        opts.push("ignore_zero_blocks".into());
    }
    if o.check_at_most_once {
        opts.push("check_at_most_once".into());
    }
    if let Some(k) = &o.root_hash_sig_key_desc {
        if k.is_empty() || k.contains(char::is_whitespace) {
            return Err(VerityError::Params(format!(
                "key description {k:?} must be one word"
            )));
        }
        opts.push("root_hash_sig_key_desc".into());
        opts.push(k.clone());
    }
    for (what, v) in [
        ("data device", data_dev),
        ("hash device", hash_dev),
        ("root hash", root),
    ] {
        if v.is_empty() || v.contains(char::is_whitespace) {
            return Err(VerityError::Params(format!(
                "{what} {v:?} must be one word"
            )));
        }
    }
    let mut params = format!(
        "{} {data_dev} {hash_dev} {} {} {} {} {} {root} {}",
        p.hash_type,
        p.data_block_size,
        p.hash_block_size,
        p.data_blocks,
        l.hash_start,
        p.hash_alg.name(),
        salt_string(&p.salt)
    );
    if !opts.is_empty() {
        params.push_str(&format!(" {} {}", opts.len(), opts.join(" ")));
    }
    Ok(Target {
        start: 0,
        length: p.data_bytes().unwrap_or(0) / 512,
        target_type: "verity".into(),
        params,
    })
}

/// The verity target's status word.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerityStatus {
    /// `V`: no corruption seen.
    Verified,
    /// `C`: at least one block failed verification.
    Corrupted,
    Unknown(String),
}

/// Parses a verity status line tolerantly (newer kernels append more fields).
pub fn parse_status(s: &str) -> VerityStatus {
    match s.split_whitespace().next() {
        Some("V") => VerityStatus::Verified,
        Some("C") => VerityStatus::Corrupted,
        other => VerityStatus::Unknown(other.unwrap_or("").to_string()),
    }
}

/// `/dev/mapper/control`.
pub struct Control {
    file: File,
}

fn dm_err(what: &str, e: std::io::Error) -> VerityError {
    VerityError::Params(format!("device-mapper {what}: {e}"))
}

impl Control {
    pub fn open() -> Result<Control, VerityError> {
        File::options()
            .read(true)
            .write(true)
            .open("/dev/mapper/control")
            .map(|file| Control { file })
            .map_err(|e| dm_err("/dev/mapper/control (is dm_mod loaded, are you root?)", e))
    }

    fn call(&self, nr: u8, buf: &mut [u8]) -> Result<(), VerityError> {
        // SAFETY: `buf` is a dm_ioctl header followed by its data area, at least
        // DM_IOCTL_SIZE bytes and exactly `data_size` long as encoded; the kernel reads and
        // writes only within data_size.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                ioctl_number(nr) as _,
                buf.as_mut_ptr(),
            )
        };
        if rc < 0 {
            return Err(dm_err(
                &format!("ioctl {nr}"),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Creates `name`, loads the verity table read-only and resumes it. On failure the
    /// half-made device is removed again.
    pub fn open_verity(&self, name: &str, uuid: &str, target: &Target) -> Result<u64, VerityError> {
        let mut b = encode(name, Some(uuid), 0, &[], 0)?;
        self.call(DM_DEV_CREATE, &mut b)?;
        let steps = || -> Result<u64, VerityError> {
            let mut b = encode(
                name,
                None,
                DM_READONLY_FLAG,
                std::slice::from_ref(target),
                0,
            )?;
            self.call(DM_TABLE_LOAD, &mut b)?;
            let mut b = encode(name, None, 0, &[], 0)?;
            self.call(DM_DEV_SUSPEND, &mut b)?; // without DM_SUSPEND_FLAG: resume
            Ok(decode_header(&b)?.1)
        };
        steps().inspect_err(|_| {
            let _ = self.remove(name);
        })
    }

    /// Makes sure `/dev/mapper/NAME` exists for device `dev`: udev's device-mapper rules
    /// create it, but an initramfs (or a system) without them does not — then it is made
    /// here, like `dmsetup mknodes`, after waiting up to a second for udev.
    pub fn ensure_node(name: &str, dev: u64) -> Result<std::path::PathBuf, VerityError> {
        use rustix::fs::{FileType, Mode, mknodat};
        let node = std::path::PathBuf::from(format!("/dev/mapper/{name}"));
        for _ in 0..20 {
            if node.exists() {
                return Ok(node);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        mknodat(
            rustix::fs::CWD,
            &node,
            FileType::BlockDevice,
            Mode::from_raw_mode(0o600),
            dev as rustix::fs::Dev,
        )
        .or_else(|e| if node.exists() { Ok(()) } else { Err(e) })
        .map_err(|e| dm_err("mknod /dev/mapper", std::io::Error::from(e)))?;
        Ok(node)
    }

    pub fn remove(&self, name: &str) -> Result<(), VerityError> {
        let mut b = encode(name, None, 0, &[], 0)?;
        self.call(DM_DEV_REMOVE, &mut b)
    }

    /// The status (`table = false`) or table (`true`) of `name`.
    pub fn table_status(&self, name: &str, table: bool) -> Result<Vec<Target>, VerityError> {
        let mut size = 16 * 1024;
        loop {
            let flags = if table { DM_STATUS_TABLE_FLAG } else { 0 };
            let mut b = encode(name, None, flags, &[], size)?;
            self.call(DM_TABLE_STATUS, &mut b)?;
            let r = decode(&b)?;
            if r.flags & DM_BUFFER_FULL_FLAG == 0 {
                return Ok(r.targets);
            }
            size *= 4;
            if size > 16 << 20 {
                return Err(VerityError::Params(
                    "device-mapper status larger than 16 MiB".into(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verity::HashAlg;

    #[test]
    fn ioctl_numbers_match_the_kernel_header() {
        assert_eq!(ioctl_number(DM_TABLE_STATUS), 0xc138_fd0c);
        assert_eq!(ioctl_number(DM_DEV_CREATE), 0xc138_fd03);
    }

    #[test]
    fn request_layout() {
        let t = Target {
            start: 0,
            length: 8000,
            target_type: "verity".into(),
            params: "1 a b".into(),
        };
        let b = encode(
            "root",
            Some("CRYPT-VERITY-x-root"),
            DM_READONLY_FLAG,
            &[t],
            0,
        )
        .unwrap();
        assert_eq!(&b[0..12], &[4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(u32_at(&b, 12) as usize, b.len());
        assert_eq!(u32_at(&b, 16), 312);
        assert_eq!(u32_at(&b, 20), 1);
        assert_eq!(u32_at(&b, 28), 1);
        assert_eq!(&b[48..53], b"root\0");
        assert_eq!(&b[176..195], b"CRYPT-VERITY-x-root");
        assert_eq!(u64_at(&b, 312 + 8), 8000);
        assert_eq!(&b[312 + 24..312 + 31], b"verity\0");
        assert_eq!(&b[352..358], b"1 a b\0");
        assert_eq!(u32_at(&b, 312 + 20), 48, "next: spec + params, 8-aligned");
        assert_eq!(b.len() % 8, 0);
        assert!(encode(&"x".repeat(128), None, 0, &[], 0).is_err());
    }

    #[test]
    fn replies_decode_and_bad_offsets_are_errors() {
        let t1 = Target {
            start: 0,
            length: 100,
            target_type: "verity".into(),
            params: "V".into(),
        };
        let t2 = Target {
            start: 100,
            length: 5,
            target_type: "linear".into(),
            params: "8:1 0".into(),
        };
        let mut b = encode("x", None, 0, &[t1.clone(), t2.clone()], 0).unwrap();
        b[40..48].copy_from_slice(&0x0000_fd00_0000_0003u64.to_le_bytes());
        let r = decode(&b).unwrap();
        assert_eq!(r.targets, [t1, t2]);
        assert_eq!(r.dev, 0x0000_fd00_0000_0003);
        let mut bad = b.clone();
        bad[16..20].copy_from_slice(&10_000u32.to_le_bytes());
        assert!(decode(&bad).is_err());
        let mut bad = b.clone();
        bad[20..24].copy_from_slice(&9u32.to_le_bytes());
        let n = bad.len();
        bad[n - 8..].fill(b'x'); // unterminated last params
        assert!(decode(&bad).is_err());
        assert!(decode(&b[..100]).is_err());
        // what the kernel answers to DM_DEV_CREATE, DM_TABLE_LOAD or DM_DEV_SUSPEND (seen on
        // 6.1 in the VM tests): data_size = offsetof(struct dm_ioctl, data) = 305, below the
        // data_start of the request
        // target_count is the table's (1 after DM_TABLE_LOAD), but no spec follows: read
        // as a header only; as a status reply it would be malformed
        let mut none = encode("x", None, 0, &[], 0).unwrap();
        none[12..16].copy_from_slice(&305u32.to_le_bytes());
        none[20..24].copy_from_slice(&1u32.to_le_bytes());
        none[40..48].copy_from_slice(&0x0000_fd00_0000_0007u64.to_le_bytes());
        assert_eq!(decode_header(&none).unwrap().1, 0x0000_fd00_0000_0007);
        assert!(decode(&none).is_err());
    }

    #[test]
    fn verity_table_line() {
        let p = VerityParams {
            hash_type: 1,
            hash_alg: HashAlg::Sha256,
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks: 1000,
            salt: vec![0xab, 0xcd],
            uuid: [0; 16],
            hash_offset: 0,
            superblock: true,
        };
        let o = TableOptions {
            on_corruption: Some(OnCorruption::Restart),
            ignore_zero_blocks: true,
            ..Default::default()
        };
        let t = table(&p, "/dev/vdb", "/dev/vdc", "ff00", &o).unwrap();
        assert_eq!(t.length, 8000);
        assert_eq!(
            t.params,
            "1 /dev/vdb /dev/vdc 4096 4096 1000 1 sha256 ff00 abcd 2 restart_on_corruption ignore_zero_blocks"
        );
        let plain = table(&p, "8:16", "8:32", "ff00", &TableOptions::default()).unwrap();
        assert!(plain.params.ends_with("ff00 abcd"));
        assert!(table(&p, "a b", "x", "ff", &TableOptions::default()).is_err());
    }

    #[test]
    fn status_is_parsed_tolerantly() {
        assert_eq!(parse_status("V"), VerityStatus::Verified);
        assert_eq!(parse_status("C 12"), VerityStatus::Corrupted);
        assert_eq!(parse_status("C -"), VerityStatus::Corrupted);
        assert_eq!(parse_status(""), VerityStatus::Unknown(String::new()));
    }
}
