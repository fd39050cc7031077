//! Kernel uevents (NETLINK_KOBJECT_UEVENT): dm-verity sends a `change` uevent with
//! `DM_VERITY_ERR_BLOCK_NR=<0 data|1 metadata>,<block>` for each of the first 100 corrupted
//! blocks of a device. Only messages from the kernel itself (netlink port 0) are accepted:
//! a forged uevent must not be able to fake — or hide — corruption.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// One parsed uevent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uevent {
    pub action: String,
    pub devpath: String,
    pub vars: BTreeMap<String, String>,
}

/// A corruption report from dm-verity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerityError {
    /// The device-mapper name (`DM_NAME`), or the kernel device name when absent.
    pub device: String,
    /// true: a hash (metadata) block; false: a data block.
    pub metadata: bool,
    pub block: u64,
}

/// Parses a kernel uevent: `ACTION@DEVPATH\0KEY=VALUE\0...`.
pub fn parse(buf: &[u8]) -> Option<Uevent> {
    let mut parts = buf.split(|b| *b == 0).filter(|p| !p.is_empty());
    let head = std::str::from_utf8(parts.next()?).ok()?;
    let (action, devpath) = head.split_once('@')?;
    let mut vars = BTreeMap::new();
    for p in parts {
        if let Ok(s) = std::str::from_utf8(p)
            && let Some((k, v)) = s.split_once('=')
        {
            vars.insert(k.to_string(), v.to_string());
        }
    }
    Some(Uevent {
        action: action.to_string(),
        devpath: devpath.to_string(),
        vars,
    })
}

impl Uevent {
    /// The dm-verity corruption this uevent reports, if it is one.
    pub fn verity_error(&self) -> Option<VerityError> {
        let v = self.vars.get("DM_VERITY_ERR_BLOCK_NR")?;
        let (kind, block) = v.split_once(',')?;
        let device = self
            .vars
            .get("DM_NAME")
            .cloned()
            .or_else(|| self.devpath.rsplit('/').next().map(str::to_string))
            .unwrap_or_default();
        Some(VerityError {
            device,
            metadata: kind.trim() == "1",
            block: block.trim().parse().ok()?,
        })
    }
}

/// A socket subscribed to kernel uevents.
pub struct UeventSocket {
    fd: OwnedFd,
}

impl UeventSocket {
    pub fn open() -> io::Result<UeventSocket> {
        // SAFETY: plain socket(2) call; the returned descriptor is checked and owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_KOBJECT_UEVENT,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh, valid descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data; all-zero is a valid value before we set fields.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_groups = 1; // kernel uevents (udev's re-broadcasts are group 2)
        // SAFETY: `addr` is a valid sockaddr_nl and the length passed is its size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(UeventSocket { fd })
    }

    /// Blocks for the next uevent sent by the kernel (others are skipped).
    pub fn next(&self) -> io::Result<Uevent> {
        let mut buf = vec![0u8; 8192];
        loop {
            // SAFETY: sockaddr_nl is plain data; recvfrom fills it.
            let mut from: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            // SAFETY: `buf` and `from` are valid for writes of the lengths passed.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&mut from as *mut libc::sockaddr_nl).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if from.nl_pid != 0 {
                continue; // not from the kernel
            }
            if let Some(u) = parse(&buf[..n as usize]) {
                return Ok(u);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dm_verity_corruption_uevent() {
        let msg = b"change@/devices/virtual/block/dm-3\0ACTION=change\0DEVPATH=/devices/virtual/block/dm-3\0SUBSYSTEM=block\0DM_VERITY_ERR_BLOCK_NR=0,1234\0MAJOR=254\0MINOR=3\0DEVNAME=dm-3\0DM_NAME=root\0SEQNUM=4242\0";
        let u = parse(msg).unwrap();
        assert_eq!(u.action, "change");
        assert_eq!(
            u.verity_error(),
            Some(VerityError {
                device: "root".into(),
                metadata: false,
                block: 1234
            })
        );
        let meta = b"change@/devices/virtual/block/dm-0\0DM_VERITY_ERR_BLOCK_NR=1,7\0";
        let e = parse(meta).unwrap().verity_error().unwrap();
        assert_eq!((e.device.as_str(), e.metadata, e.block), ("dm-0", true, 7));
        assert_eq!(
            parse(b"add@/devices/x\0ACTION=add\0")
                .unwrap()
                .verity_error(),
            None
        );
        assert_eq!(parse(b"garbage"), None);
        assert_eq!(
            parse(b"change@/d\0DM_VERITY_ERR_BLOCK_NR=0,notanumber\0")
                .unwrap()
                .verity_error(),
            None
        );
    }
}
