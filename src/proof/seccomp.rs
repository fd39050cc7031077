//! The seccomp programs the kernel runs for a process, read back with
//! `PTRACE_SECCOMP_GET_FILTER`, and compared with the program a profile compiles to.
//!
//! `/proc/PID/status` says only that filters are installed (`Seccomp: 2`, how many); any
//! process can install an allow-everything filter of its own and write a record. The
//! program itself tells: the kernel hands back each installed filter's instructions to a
//! tracer that has CAP_SYS_ADMIN (and, for a service of another uid or one that changed
//! uid, CAP_SYS_PTRACE), while the process is in a ptrace stop. The stop lasts for the
//! reads — microseconds — once per process, and the process is detached at once.
//!
//! Everything here must run on one thread (ptrace requests come from the attaching
//! thread): the daemon calls it from one blocking worker.

use std::time::{Duration, Instant};

/// One BPF instruction as the kernel stores it (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Why the programs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadBackError {
    #[error("process {pid} is gone")]
    Gone { pid: u32 },
    #[error(
        "cannot attach to process {pid} ({source}): no CAP_SYS_PTRACE, Yama, or it is traced already"
    )]
    Attach { pid: u32, source: std::io::Error },
    #[error("process {pid} did not stop within {0:?}", STOP_WAIT)]
    NoStop { pid: u32 },
    #[error(
        "the kernel does not hand out process {pid}'s filters ({source}): needs CAP_SYS_ADMIN and CONFIG_CHECKPOINT_RESTORE"
    )]
    Get { pid: u32, source: std::io::Error },
    #[error(
        "the kernel does not hand out process {pid}'s filters to a reader that is itself under a seccomp filter (Seccomp: {mode}), e.g. hardend.service's SystemCallFilter="
    )]
    ReaderFiltered { pid: u32, mode: u32 },
    #[error("process {pid} has more than {MAX_FILTERS} filters")]
    TooMany { pid: u32 },
}

/// How long a process may take to reach the stop (a process in uninterruptible sleep
/// takes longer; then the proof stays "claimed").
pub const STOP_WAIT: Duration = Duration::from_millis(500);

/// Filters read at most (the kernel's limit is a total of 32768 instructions).
const MAX_FILTERS: u32 = 64;

/// `PTRACE_SECCOMP_GET_FILTER` (linux/ptrace.h); libc does not name it.
const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;
/// `PTRACE_EVENT_STOP`, the stop `PTRACE_INTERRUPT` causes.
const PTRACE_EVENT_STOP: i32 = 128;

fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Detaches on drop, passing on a signal the process was stopped for.
struct Attached {
    pid: libc::pid_t,
    signal: i32,
}

impl Drop for Attached {
    fn drop(&mut self) {
        // SAFETY: PTRACE_DETACH takes no pointers; `signal` is a signal number or 0.
        unsafe {
            libc::ptrace(
                libc::PTRACE_DETACH,
                self.pid,
                std::ptr::null_mut::<libc::c_void>(),
                self.signal as libc::c_long as *mut libc::c_void,
            );
        }
    }
}

/// The kernel refuses `PTRACE_SECCOMP_GET_FILTER` with EACCES to a caller whose own seccomp
/// mode is not disabled (kernel/seccomp.c, `seccomp_get_filter`), whatever its capabilities:
/// say so, rather than blame capabilities the caller has.
fn get_error(pid: u32, source: std::io::Error) -> ReadBackError {
    match (source.raw_os_error(), reader_seccomp_mode()) {
        (Some(libc::EACCES), Some(mode @ (1 | 2))) => ReadBackError::ReaderFiltered { pid, mode },
        _ => ReadBackError::Get { pid, source },
    }
}

/// The calling thread's seccomp mode (0 disabled, 1 strict, 2 filter; per thread, as the
/// kernel checks it).
fn reader_seccomp_mode() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Reads the `count` filters installed for `pid`, newest first (index 0 is the filter
/// installed last).
pub fn read_filters(pid: u32, count: u32) -> Result<Vec<Vec<Insn>>, ReadBackError> {
    if count > MAX_FILTERS {
        return Err(ReadBackError::TooMany { pid });
    }
    // a filtered reader is refused in any case: the service is not stopped for nothing
    if let Some(mode @ (1 | 2)) = reader_seccomp_mode() {
        return Err(ReadBackError::ReaderFiltered { pid, mode });
    }
    let p = pid as libc::pid_t;
    // SAFETY: PTRACE_SEIZE with no options: integer arguments only.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_SEIZE,
            p,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    if rc != 0 {
        let e = last_error();
        return Err(if e.raw_os_error() == Some(libc::ESRCH) {
            ReadBackError::Gone { pid }
        } else {
            ReadBackError::Attach { pid, source: e }
        });
    }
    let mut attached = Attached { pid: p, signal: 0 };
    // SAFETY: PTRACE_INTERRUPT on a tracee of this thread: integer arguments only.
    unsafe {
        libc::ptrace(
            libc::PTRACE_INTERRUPT,
            p,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        );
    }
    let deadline = Instant::now() + STOP_WAIT;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int into `status`, which lives across the call.
        let r = unsafe { libc::waitpid(p, &mut status, libc::__WALL | libc::WNOHANG) };
        if r == p {
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                return Err(ReadBackError::Gone { pid });
            }
            if libc::WIFSTOPPED(status) {
                let sig = libc::WSTOPSIG(status);
                let event = (status >> 16) & 0xff;
                // not the interrupt's stop but a signal-delivery stop: the signal goes on
                // with the detach
                if event != PTRACE_EVENT_STOP {
                    attached.signal = sig;
                }
                break;
            }
        } else if r < 0 {
            return Err(ReadBackError::Gone { pid });
        }
        if Instant::now() >= deadline {
            return Err(ReadBackError::NoStop { pid });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut out = Vec::with_capacity(count as usize);
    for index in 0..count {
        // SAFETY: with a null buffer the request only returns the instruction count.
        let n = unsafe {
            libc::ptrace(
                PTRACE_SECCOMP_GET_FILTER,
                p,
                index as libc::c_long as *mut libc::c_void,
                std::ptr::null_mut::<libc::c_void>(),
            )
        };
        if n < 0 {
            return Err(get_error(pid, last_error()));
        }
        let mut buf = vec![
            libc::sock_filter {
                code: 0,
                jt: 0,
                jf: 0,
                k: 0
            };
            n as usize
        ];
        // SAFETY: `buf` holds exactly `n` sock_filter entries, the count the kernel just
        // reported for this filter (filters cannot change once installed).
        let m = unsafe {
            libc::ptrace(
                PTRACE_SECCOMP_GET_FILTER,
                p,
                index as libc::c_long as *mut libc::c_void,
                buf.as_mut_ptr().cast::<libc::c_void>(),
            )
        };
        if m != n {
            return Err(get_error(pid, last_error()));
        }
        out.push(
            buf.iter()
                .map(|i| Insn {
                    code: i.code,
                    jt: i.jt,
                    jf: i.jf,
                    k: i.k,
                })
                .collect(),
        );
    }
    drop(attached);
    Ok(out)
}

/// What the comparison showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterProof {
    /// The kernel runs exactly the profile's program (`index`: 0 is the newest filter).
    Verified { index: usize, instructions: usize },
    /// None of the process's filters is the profile's program.
    Mismatch { filters: usize },
    /// The programs could not be read; the record's claim stands unproven.
    Claimed(String),
}

/// Reads `pid`'s filters and looks for `expected` among them.
pub fn prove(pid: u32, count: u32, expected: &[Insn]) -> FilterProof {
    match read_filters(pid, count) {
        Ok(filters) => match filters.iter().position(|f| f.as_slice() == expected) {
            Some(index) => FilterProof::Verified {
                index,
                instructions: expected.len(),
            },
            None => FilterProof::Mismatch {
                filters: filters.len(),
            },
        },
        Err(e) => FilterProof::Claimed(e.to_string()),
    }
}
