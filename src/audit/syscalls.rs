//! Does a syscall name exist on this machine? systemd's filter assessment skips group
//! members libseccomp cannot resolve for the native architecture, so to get its number we
//! ask the same library: `libseccomp.so.2` (every systemd device has it: systemd links it),
//! loaded at run time so that hardenctl does not need it elsewhere. Without it, hardend's
//! own syscall table for this architecture answers (and the audit says so).

use std::ffi::{CStr, CString, c_char, c_int, c_void};

use serde::Serialize;

/// Who answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Libseccomp,
    HardendTable,
}

type ResolveName = unsafe extern "C" fn(*const c_char) -> c_int;

pub struct Resolver {
    resolve: Option<ResolveName>,
}

impl Resolver {
    /// libseccomp when it loads, else hardend's table.
    pub fn new() -> Resolver {
        Resolver {
            resolve: load_libseccomp(),
        }
    }

    /// hardend's table only (tests).
    pub fn table_only() -> Resolver {
        Resolver { resolve: None }
    }

    pub fn source(&self) -> Source {
        if self.resolve.is_some() {
            Source::Libseccomp
        } else {
            Source::HardendTable
        }
    }

    /// Whether `name` is a syscall of the native architecture.
    pub fn exists(&self, name: &str) -> bool {
        match self.resolve {
            Some(f) => {
                let Ok(c) = CString::new(name) else {
                    return false;
                };
                // SAFETY: `f` is libseccomp's `seccomp_syscall_resolve_name(const char *)`,
                // which only reads the NUL-terminated string for the duration of the call;
                // `c` outlives it. Negative results are "unknown here" or a pseudo-syscall
                // of another architecture.
                unsafe { f(c.as_ptr()) >= 0 }
            }
            None => crate::profile::syscalls::Arch::native()
                .and_then(|a| a.lookup(name))
                .is_some(),
        }
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver::new()
    }
}

type ResolveNameArch = unsafe extern "C" fn(u32, *const c_char) -> c_int;
type ResolveNumArch = unsafe extern "C" fn(u32, c_int) -> *mut c_char;

/// libseccomp's tables for any architecture it knows (`AUDIT_ARCH_*` tokens), to check
/// hardend's own syscall tables against (tests/it/syscall_tables.rs).
pub struct Libseccomp {
    by_name: ResolveNameArch,
    by_num: ResolveNumArch,
}

impl Libseccomp {
    /// `None` when libseccomp.so.2 is not installed.
    pub fn load() -> Option<Libseccomp> {
        let handle = open_lib()?;
        // SAFETY: symbols of libseccomp 2.x's stable ABI:
        // `int seccomp_syscall_resolve_name_arch(uint32_t arch_token, const char *name)` and
        // `char *seccomp_syscall_resolve_num_arch(uint32_t arch_token, int num)`; the handle
        // is never closed.
        unsafe {
            let a = libc::dlsym(handle, c"seccomp_syscall_resolve_name_arch".as_ptr());
            let b = libc::dlsym(handle, c"seccomp_syscall_resolve_num_arch".as_ptr());
            if a.is_null() || b.is_null() {
                return None;
            }
            Some(Libseccomp {
                by_name: std::mem::transmute::<*mut c_void, ResolveNameArch>(a),
                by_num: std::mem::transmute::<*mut c_void, ResolveNumArch>(b),
            })
        }
    }

    /// The number of `name` on `arch` (negative pseudo-numbers: `None`).
    pub fn number(&self, arch: u32, name: &str) -> Option<i64> {
        let c = CString::new(name).ok()?;
        // SAFETY: reads the NUL-terminated `c` during the call only.
        let n = unsafe { (self.by_name)(arch, c.as_ptr()) };
        (n >= 0).then_some(i64::from(n))
    }

    /// The name of syscall `num` on `arch`.
    pub fn name(&self, arch: u32, num: i32) -> Option<String> {
        // SAFETY: returns NULL or a malloc'd NUL-terminated string that the caller frees.
        unsafe {
            let p = (self.by_num)(arch, num);
            if p.is_null() {
                return None;
            }
            let s = CStr::from_ptr(p).to_string_lossy().into_owned();
            libc::free(p.cast());
            Some(s)
        }
    }
}

fn open_lib() -> Option<*mut c_void> {
    const LIB: &CStr = c"libseccomp.so.2";
    // SAFETY: dlopen with a constant NUL-terminated name; libseccomp has no constructors
    // that could misbehave. The handle is never closed.
    let handle = unsafe { libc::dlopen(LIB.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    (!handle.is_null()).then_some(handle)
}

fn load_libseccomp() -> Option<ResolveName> {
    const SYM: &CStr = c"seccomp_syscall_resolve_name";
    let handle = open_lib()?;
    // SAFETY: `handle` is a live handle from dlopen; SYM is NUL-terminated.
    let sym = unsafe { libc::dlsym(handle, SYM.as_ptr()) };
    if sym.is_null() {
        return None;
    }
    // SAFETY: the symbol is libseccomp's `int seccomp_syscall_resolve_name(const char *)`
    // (stable ABI of libseccomp 2.x), so the pointer has exactly this type.
    Some(unsafe { std::mem::transmute::<*mut c_void, ResolveName>(sym) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_answers_agree_on_common_and_foreign_names() {
        for r in [Resolver::new(), Resolver::table_only()] {
            assert!(r.exists("read"), "{:?}", r.source());
            assert!(r.exists("swapon"));
            assert!(!r.exists("no_such_syscall"));
            assert!(!r.exists("bad\0name"));
            #[cfg(target_arch = "x86_64")]
            {
                // arm/ppc-only names: libseccomp knows them, but not for x86_64
                assert!(!r.exists("pciconfig_read"), "{:?}", r.source());
                assert!(!r.exists("vm86old"));
                assert!(r.exists("iopl"));
            }
        }
    }
}
