//! hardend's syscall tables (the numbers its seccomp filters are built from) against
//! libseccomp's, the tables systemd and every other seccomp user on Debian rely on: for
//! x86_64 and aarch64, every name both know has the same number, in both directions. A
//! wrong number would silently allow or break a syscall on every device of that
//! architecture. (Names newer than the installed libseccomp are counted, not failed.)

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use hardend::audit::syscalls::Libseccomp;
use hardend::profile::syscalls::Arch;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

fn compare(lib: &Libseccomp, arch: Arch, token: u32) {
    let table = arch.table();
    let mut wrong = Vec::new();
    let mut unknown_to_libseccomp = Vec::new();
    for (name, nr) in table {
        match lib.number(token, name) {
            Some(n) if n == *nr => {}
            Some(n) => wrong.push(format!("{name}: hardend {nr}, libseccomp {n}")),
            None => unknown_to_libseccomp.push(*name),
        }
    }
    // the other way: every syscall libseccomp knows for the architecture is in hardend's
    // table with the same number
    let mut missing = Vec::new();
    for num in 0..1024 {
        if let Some(name) = lib.name(token, num) {
            match arch.lookup(&name) {
                Some((_, nr)) if nr == i64::from(num) => {}
                Some((_, nr)) => wrong.push(format!("{name}: libseccomp {num}, hardend {nr}")),
                None => missing.push(format!("{name} ({num})")),
            }
        }
    }
    eprintln!(
        "{arch:?}: {} syscalls in hardend's table; {} unknown to this libseccomp (newer): {:?}",
        table.len(),
        unknown_to_libseccomp.len(),
        unknown_to_libseccomp
    );
    assert!(wrong.is_empty(), "{arch:?}: numbers differ: {wrong:#?}");
    assert!(
        missing.is_empty(),
        "{arch:?}: libseccomp knows, hardend lacks: {missing:#?}"
    );
    assert!(table.len() > 300, "{arch:?}: a real table");
}

#[test]
fn x86_64_and_aarch64_numbers_equal_libseccomps() {
    let lib = Libseccomp::load().expect("libseccomp.so.2 (every systemd system has it)");
    compare(&lib, Arch::X86_64, AUDIT_ARCH_X86_64);
    compare(&lib, Arch::Aarch64, AUDIT_ARCH_AARCH64);
    // and the arch tokens really select different tables
    assert_eq!(lib.number(AUDIT_ARCH_X86_64, "openat"), Some(257));
    assert_eq!(lib.number(AUDIT_ARCH_AARCH64, "openat"), Some(56));
    assert_eq!(
        lib.number(AUDIT_ARCH_AARCH64, "open"),
        None,
        "aarch64 has no open(2)"
    );
}
