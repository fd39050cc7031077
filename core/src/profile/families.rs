//! Socket address families by the names systemd's `RestrictAddressFamilies=` uses, without
//! the `AF_` prefix (`unix`, `inet`, `inet6`, `netlink`, `packet`, ...).

/// (name, AF_* number). `local` is an alias of `unix`.
static FAMILIES: &[(&str, u32)] = &[
    ("unix", 1),
    ("local", 1),
    ("inet", 2),
    ("ax25", 3),
    ("ipx", 4),
    ("appletalk", 5),
    ("netrom", 6),
    ("bridge", 7),
    ("atmpvc", 8),
    ("x25", 9),
    ("inet6", 10),
    ("rose", 11),
    ("decnet", 12),
    ("netbeui", 13),
    ("security", 14),
    ("key", 15),
    ("netlink", 16),
    ("packet", 17),
    ("ash", 18),
    ("econet", 19),
    ("atmsvc", 20),
    ("rds", 21),
    ("sna", 22),
    ("irda", 23),
    ("pppox", 24),
    ("wanpipe", 25),
    ("llc", 26),
    ("ib", 27),
    ("mpls", 28),
    ("can", 29),
    ("tipc", 30),
    ("bluetooth", 31),
    ("iucv", 32),
    ("rxrpc", 33),
    ("isdn", 34),
    ("phonet", 35),
    ("ieee802154", 36),
    ("caif", 37),
    ("alg", 38),
    ("nfc", 39),
    ("vsock", 40),
    ("kcm", 41),
    ("qipcrtr", 42),
    ("smc", 43),
    ("xdp", 44),
    ("mctp", 45),
];

/// The families a profile gets when it names none.
pub const DEFAULT_FAMILIES: &[&str] = &["unix", "inet", "inet6"];

/// The AF_* number of a family name.
pub fn number(name: &str) -> Option<u32> {
    FAMILIES.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// The canonical name (`local` → `unix`).
pub fn canonical(name: &str) -> Option<&'static str> {
    let nr = number(name)?;
    FAMILIES.iter().find(|(_, v)| *v == nr).map(|(n, _)| *n)
}

/// Every known name, for error messages.
pub fn names() -> Vec<&'static str> {
    FAMILIES.iter().map(|(n, _)| *n).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_map_to_the_kernels_numbers() {
        assert_eq!(super::number("unix"), Some(libc::AF_UNIX as u32));
        assert_eq!(super::number("inet6"), Some(libc::AF_INET6 as u32));
        assert_eq!(super::number("netlink"), Some(libc::AF_NETLINK as u32));
        assert_eq!(super::number("packet"), Some(libc::AF_PACKET as u32));
        assert_eq!(super::number("vsock"), Some(libc::AF_VSOCK as u32));
        assert_eq!(super::number("xdp"), Some(libc::AF_XDP as u32));
        assert_eq!(super::canonical("local"), Some("unix"));
        assert_eq!(super::number("AF_INET"), None);
    }
}
