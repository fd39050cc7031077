// Corrections to the `syscalls` crate's aarch64 list, shared by build.rs (which `include!`s
// this file) and `Arch::all`. The crate follows asm-generic/unistd.h without its 64-bit
// selection: it names 79 `fstatat` where a 64-bit kernel (and glibc, libseccomp, systemd's
// groups) call it `newfstatat`, and it lists the time64 calls 403–423 that exist only for
// 32-bit ABIs. Checked against libseccomp's aarch64 table by tests/it/syscall_tables.rs.

/// One aarch64 entry as a 64-bit kernel has it (`None`: not an aarch64 syscall).
pub fn aarch64_entry(name: &'static str, nr: i64) -> Option<(&'static str, i64)> {
    if (403..=423).contains(&nr) {
        return None;
    }
    Some((if name == "fstatat" { "newfstatat" } else { name }, nr))
}
