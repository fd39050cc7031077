//! Kernel uevents (NETLINK_KOBJECT_UEVENT): dm-verity sends a `change` uevent with
//! `DM_VERITY_ERR_BLOCK_NR=<0 data|1 metadata>,<block>` for each of the first 100 corrupted
//! blocks of a device. Only messages from the kernel itself (netlink port 0) are accepted:
//! a forged uevent must not be able to fake — or hide — corruption.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::OwnedFd;

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

/// A socket subscribed to kernel uevents (rustix's netlink: no raw socket code here).
pub struct UeventSocket {
    fd: OwnedFd,
}

/// The multicast group of the kernel's own uevents (udev's re-broadcasts are group 2).
const KERNEL_GROUP: u32 = 1;

impl UeventSocket {
    pub fn open() -> io::Result<UeventSocket> {
        use rustix::net::{AddressFamily, SocketFlags, SocketType, netlink};
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            Some(netlink::KOBJECT_UEVENT),
        )?;
        rustix::net::bind(&fd, &netlink::SocketAddrNetlink::new(0, KERNEL_GROUP))?;
        Ok(UeventSocket { fd })
    }

    /// Blocks for the next uevent sent by the kernel (others are skipped).
    pub fn next(&self) -> io::Result<Uevent> {
        use rustix::net::netlink::SocketAddrNetlink;
        let mut buf = vec![0u8; 8192];
        loop {
            let (n, _, from) = match rustix::net::recvfrom(
                &self.fd,
                &mut buf[..],
                rustix::net::RecvFlags::empty(),
            ) {
                Ok(r) => r,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            // only the kernel itself (port 0) may report corruption
            let from_kernel = from
                .and_then(|a| SocketAddrNetlink::try_from(a).ok())
                .is_some_and(|a| a.pid() == 0);
            if !from_kernel {
                continue;
            }
            if let Some(u) = parse(&buf[..n]) {
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
