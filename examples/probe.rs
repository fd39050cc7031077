//! A tiny program that tries one forbidden (or allowed) thing per argument and reports the
//! outcome, so that tests can run it confined and assert the exact errno. Firecracker's
//! `examples/seccomp/{harmless,malicious}.rs` are the model.
//!
//! Each argument is `OP` or `OP=ARG[,ARG]`; for each one a line `OP=ARG -> ok [VALUE]` or
//! `OP=ARG -> errno N` is printed. Ops that could harm the host use arguments the kernel
//! rejects (bad reboot magic, a missing mount source), so that only a seccomp filter can
//! explain an EPERM.

use std::ffi::CString;
use std::io::Write;

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in probe arguments")
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn check(rc: i64) -> Result<i64, i32> {
    if rc < 0 { Err(errno()) } else { Ok(rc) }
}

fn tcp_socket() -> Result<i32, i32> {
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) } as i64).map(|fd| fd as i32)
}

fn sockaddr(port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// A number in decimal or 0x-hex.
fn parse_int(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).expect("hex number"),
        None => s.parse().expect("number"),
    }
}

fn run(op: &str, args: &[&str]) -> Result<i64, i32> {
    let a = |i: usize| args.get(i).copied().unwrap_or("");
    // SAFETY: each call below gets valid NUL-terminated strings or properly sized structs
    // that live across the call; the probe is a test helper.
    unsafe {
        match op {
            "read" => {
                let fd = check(libc::open(cstr(a(0)).as_ptr(), libc::O_RDONLY) as i64)?;
                let mut buf = [0u8; 64];
                let n = check(libc::read(fd as i32, buf.as_mut_ptr().cast(), buf.len()) as i64)?;
                libc::close(fd as i32);
                Ok(n)
            }
            "readdir" => {
                let d = libc::opendir(cstr(a(0)).as_ptr());
                if d.is_null() {
                    return Err(errno());
                }
                libc::closedir(d);
                Ok(0)
            }
            "write" => {
                let fd = check(libc::open(
                    cstr(a(0)).as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND,
                    0o644,
                ) as i64)?;
                let n = check(libc::write(fd as i32, b"x".as_ptr().cast(), 1) as i64)?;
                libc::close(fd as i32);
                Ok(n)
            }
            // shmget=KEY: attach to an existing System V segment (no IPC_CREAT)
            "shmget" => check(libc::shmget(parse_int(a(0)) as libc::key_t, 0, 0) as i64),
            // keyctl-user: the id of the user keyring (KEYCTL_GET_KEYRING_ID, no create)
            "keyctl-user" => check(libc::syscall(libc::SYS_keyctl, 0i64, -4i64, 0i64)),
            // mmap-exec=PATH: map a file executable, as the dynamic loader does
            "mmap-exec" => {
                let fd = check(libc::open(cstr(a(0)).as_ptr(), libc::O_RDONLY) as i64)? as i32;
                let m = libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_EXEC,
                    libc::MAP_PRIVATE,
                    fd,
                    0,
                );
                let r = if m == libc::MAP_FAILED {
                    Err(errno())
                } else {
                    libc::munmap(m, 4096);
                    Ok(0)
                };
                libc::close(fd);
                r
            }
            // lstat=PATH: whether the path exists in this view (Landlock does not restrict it)
            "lstat" => {
                let mut st: libc::stat = std::mem::zeroed();
                check(libc::lstat(cstr(a(0)).as_ptr(), &mut st) as i64)
            }
            // wait-file=PATH: until PATH exists (a test's go signal), at most 20 s
            "wait-file" => {
                let mut st: libc::stat = std::mem::zeroed();
                for _ in 0..2000 {
                    if libc::stat(cstr(a(0)).as_ptr(), &mut st) == 0 {
                        return Ok(0);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(libc::ETIMEDOUT)
            }
            "truncate" => check(libc::truncate(cstr(a(0)).as_ptr(), 0) as i64),
            "unlink" => check(libc::unlink(cstr(a(0)).as_ptr()) as i64),
            "link" => check(libc::link(cstr(a(0)).as_ptr(), cstr(a(1)).as_ptr()) as i64),
            "rename" => check(libc::rename(cstr(a(0)).as_ptr(), cstr(a(1)).as_ptr()) as i64),
            "exec" => {
                let path = cstr(a(0));
                let argv = [path.as_ptr(), std::ptr::null()];
                let envp = [std::ptr::null()];
                libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                Err(errno())
            }
            "bind" | "connect" => {
                let fd = tcp_socket()?;
                let port: u16 = a(0).parse().expect("port");
                let sa = sockaddr(port);
                let len = std::mem::size_of::<libc::sockaddr_in>() as u32;
                let rc = if op == "bind" {
                    libc::bind(fd, (&sa as *const libc::sockaddr_in).cast(), len)
                } else {
                    libc::connect(fd, (&sa as *const libc::sockaddr_in).cast(), len)
                };
                let r = check(rc as i64);
                libc::close(fd);
                r
            }
            "kill" => {
                check(libc::kill(a(0).parse().expect("pid"), a(1).parse().expect("sig")) as i64)
            }
            "abstract-connect" => {
                let fd = check(libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) as i64)? as i32;
                let mut sa: libc::sockaddr_un = std::mem::zeroed();
                sa.sun_family = libc::AF_UNIX as u16;
                let name = a(0).as_bytes();
                for (i, b) in name.iter().enumerate() {
                    sa.sun_path[i + 1] = *b as libc::c_char; // sun_path[0] = 0: abstract
                }
                let len = (std::mem::size_of::<libc::sa_family_t>() + 1 + name.len()) as u32;
                let r =
                    check(libc::connect(fd, (&sa as *const libc::sockaddr_un).cast(), len) as i64);
                libc::close(fd);
                r
            }
            "io_uring_setup" => {
                let mut params = [0u8; 120];
                check(libc::syscall(
                    libc::SYS_io_uring_setup,
                    4u32,
                    params.as_mut_ptr(),
                ))
            }
            // A missing source: ENOENT unless a filter stops the call first.
            "mount" => check(libc::mount(
                cstr("/nonexistent-hardend-probe").as_ptr(),
                cstr("/mnt").as_ptr(),
                cstr("ext4").as_ptr(),
                0,
                std::ptr::null(),
            ) as i64),
            // No such process: ESRCH unless a filter stops the call first.
            "ptrace" => check(libc::ptrace(libc::PTRACE_ATTACH, 0x3fff_fff0, 0, 0) as i64),
            // An invalid command: EINVAL unless a filter stops the call first.
            "bpf" => check(libc::syscall(libc::SYS_bpf, 0xffffi64, 0usize, 0u32)),
            // Wrong magic numbers: EINVAL unless a filter stops the call first. Never reboots.
            "reboot" => check(libc::syscall(libc::SYS_reboot, 0i64, 0i64, 0i64, 0usize)),
            "getppid" => check(libc::syscall(libc::SYS_getppid)),
            "uname" => {
                let mut u: libc::utsname = std::mem::zeroed();
                check(libc::uname(&mut u) as i64)
            }
            "pid" => Ok(libc::getpid() as i64),
            "readfd" => {
                let mut buf = [0u8; 256];
                let n = check(libc::read(
                    a(0).parse().expect("fd"),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                ) as i64)?;
                print!("{} ", String::from_utf8_lossy(&buf[..n as usize]).trim());
                Ok(n)
            }
            // Benchmark loops: print nanoseconds per iteration as the result.
            "bench-getppid" => {
                let n: u64 = a(0).parse().expect("count");
                let t = std::time::Instant::now();
                for _ in 0..n {
                    libc::syscall(libc::SYS_getppid);
                }
                Ok((t.elapsed().as_nanos() as u64 * 1000 / n) as i64)
            }
            "bench-open" => {
                let n: u64 = a(0).parse().expect("count");
                let path = cstr(a(1));
                let mut buf = [0u8; 128];
                let t = std::time::Instant::now();
                for _ in 0..n {
                    let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                    if fd < 0 {
                        return Err(errno());
                    }
                    libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                    libc::close(fd);
                }
                Ok((t.elapsed().as_nanos() as u64 * 1000 / n) as i64)
            }
            // socket=DOMAIN,TYPE,PROTOCOL (numbers): the fd is closed again
            "socket" => {
                let n = |i: usize| a(i).parse::<i32>().expect("number");
                let fd = check(libc::socket(n(0), n(1), n(2)) as i64)?;
                libc::close(fd as i32);
                Ok(0)
            }
            "udp" => {
                let fd = check(libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) as i64)?;
                libc::close(fd as i32);
                Ok(0)
            }
            // TCP Fast Open to 127.0.0.1:PORT: data with an implicit connect
            "fastopen" => {
                let fd = tcp_socket()?;
                let sa = sockaddr(a(0).parse().expect("port"));
                let r = check(libc::sendto(
                    fd,
                    b"x".as_ptr().cast(),
                    1,
                    libc::MSG_FASTOPEN,
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as u32,
                ) as i64);
                libc::close(fd);
                r
            }
            // the flags of lo set to what they are (needs CAP_NET_ADMIN, changes nothing)
            "ifflags-lo" => {
                let fd = tcp_socket()?;
                let mut req: libc::ifreq = std::mem::zeroed();
                for (i, b) in b"lo".iter().enumerate() {
                    req.ifr_name[i] = *b as libc::c_char;
                }
                let r = check(libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) as i64)
                    .and_then(|_| check(libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) as i64));
                libc::close(fd);
                r
            }
            "unshare" => check(libc::unshare(parse_int(a(0)) as i32) as i64),
            // clone with FLAGS (namespaces): the child exits at once, the parent reaps it
            "clone" => {
                let flags = parse_int(a(0)) as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
                let pid = check(libc::syscall(
                    libc::SYS_clone,
                    flags,
                    0usize,
                    0usize,
                    0usize,
                    0usize,
                ))?;
                if pid == 0 {
                    libc::_exit(0);
                }
                libc::waitpid(pid as i32, std::ptr::null_mut(), 0);
                Ok(0)
            }
            "clone3" => {
                let mut args = [0u64; 11];
                args[4] = libc::SIGCHLD as u64; // exit_signal
                let pid = check(libc::syscall(
                    libc::SYS_clone3,
                    args.as_mut_ptr(),
                    std::mem::size_of_val(&args),
                ))?;
                if pid == 0 {
                    libc::_exit(0);
                }
                libc::waitpid(pid as i32, std::ptr::null_mut(), 0);
                Ok(0)
            }
            // join its own network namespace again (harmless) with setns(fd, NSTYPE)
            "setns" => {
                let fd =
                    check(libc::open(cstr("/proc/self/ns/net").as_ptr(), libc::O_RDONLY) as i64)?;
                let r = check(libc::setns(fd as i32, parse_int(a(0)) as i32) as i64);
                libc::close(fd as i32);
                r
            }
            "personality" => check(libc::personality(parse_int(a(0)) as libc::c_ulong) as i64),
            // RLIMIT_CORE of process PID set to 0 (harmless for a sleeping victim)
            "prlimit" => {
                let lim = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                check(libc::syscall(
                    libc::SYS_prlimit64,
                    a(0).parse::<i32>().expect("pid"),
                    libc::RLIMIT_CORE,
                    &lim,
                    std::ptr::null_mut::<libc::rlimit>(),
                ))
            }
            // nice of process PID set to 0 (what it is)
            "setpriority" => check(libc::setpriority(
                libc::PRIO_PROCESS,
                a(0).parse::<u32>().expect("pid"),
                0,
            ) as i64),
            "memfd" => {
                let fd = check(libc::memfd_create(cstr("probe").as_ptr(), 0) as i64)?;
                libc::close(fd as i32);
                Ok(0)
            }
            // execveat(open(PATH), "", AT_EMPTY_PATH): fexecve; on success the probe is gone
            "execveat-fd" => {
                let fd = check(libc::open(cstr(a(0)).as_ptr(), libc::O_RDONLY) as i64)?;
                let empty = cstr("");
                let argv = [empty.as_ptr(), std::ptr::null()];
                let envp: [*const libc::c_char; 1] = [std::ptr::null()];
                libc::syscall(
                    libc::SYS_execveat,
                    fd as i32,
                    empty.as_ptr(),
                    argv.as_ptr(),
                    envp.as_ptr(),
                    libc::AT_EMPTY_PATH,
                );
                Err(errno())
            }
            // TIOCSTI on a fresh pty: typing into a terminal
            "tiocsti" => {
                let m = check(libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) as i64)? as i32;
                libc::grantpt(m);
                libc::unlockpt(m);
                let name = libc::ptsname(m);
                let s = check(libc::open(name, libc::O_RDWR | libc::O_NOCTTY) as i64)? as i32;
                let c: libc::c_char = b'x' as libc::c_char;
                let r = check(libc::ioctl(s, libc::TIOCSTI, &c) as i64);
                libc::close(s);
                libc::close(m);
                r
            }
            "landlock" => check(libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<u8>(),
                0usize,
                1u32,
            )),
            // seccomp(SECCOMP_GET_ACTION_AVAIL): asks, installs nothing
            "seccomp" => {
                let action: u32 = 0x7fff_0000;
                check(libc::syscall(libc::SYS_seccomp, 2u32, 0u32, &action))
            }
            // prctl=OPTION,ARG2: with arguments the kernel rejects unless a filter stops it
            "prctl" => check(libc::prctl(
                parse_int(a(0)) as i32,
                parse_int(a(1)) as libc::c_ulong,
                0,
                0,
                0,
            ) as i64),
            // getpid through the x32 ABI (x86-64 only)
            "x32-getpid" => check(libc::syscall(0x4000_0000 | libc::SYS_getpid)),
            // caps=Eff (Prm, Bnd, Amb, Inh): that set from /proc/self/status, as a number
            "caps" => {
                let st = std::fs::read_to_string("/proc/self/status")
                    .map_err(|e| e.raw_os_error().unwrap_or(0))?;
                let key = format!("Cap{}:", a(0));
                let v = st
                    .lines()
                    .find_map(|l| l.strip_prefix(key.as_str()))
                    .ok_or(libc::ENODATA)?;
                Ok(i64::from_str_radix(v.trim(), 16).map_err(|_| libc::EINVAL)?)
            }
            "uid" => Ok(libc::getuid() as i64),
            // connect (stream) or sendto (datagram) to a pathname UNIX socket
            "unix-connect" | "unix-sendto" => {
                let ty = if op == "unix-connect" {
                    libc::SOCK_STREAM
                } else {
                    libc::SOCK_DGRAM
                };
                let fd = check(libc::socket(libc::AF_UNIX, ty, 0) as i64)? as i32;
                let mut sa: libc::sockaddr_un = std::mem::zeroed();
                sa.sun_family = libc::AF_UNIX as u16;
                for (i, b) in a(0).as_bytes().iter().enumerate() {
                    sa.sun_path[i] = *b as libc::c_char;
                }
                let len = std::mem::size_of::<libc::sockaddr_un>() as u32;
                let r = if op == "unix-connect" {
                    check(libc::connect(fd, (&sa as *const libc::sockaddr_un).cast(), len) as i64)
                } else {
                    check(libc::sendto(
                        fd,
                        b"x".as_ptr().cast(),
                        1,
                        0,
                        (&sa as *const libc::sockaddr_un).cast(),
                        len,
                    ) as i64)
                };
                libc::close(fd);
                r
            }
            "chmod" => {
                check(libc::chmod(cstr(a(0)).as_ptr(), parse_int(a(1)) as libc::mode_t) as i64)
            }
            // fchmod through a descriptor opened read-only
            "fchmod" => {
                let fd = check(libc::open(cstr(a(0)).as_ptr(), libc::O_RDONLY) as i64)? as i32;
                let r = check(libc::fchmod(fd, parse_int(a(1)) as libc::mode_t) as i64);
                libc::close(fd);
                r
            }
            "chown" => check(libc::chown(
                cstr(a(0)).as_ptr(),
                a(1).parse().expect("uid"),
                a(2).parse().expect("gid"),
            ) as i64),
            // setxattr=PATH,NAME,VALUE
            "setxattr" => check(libc::setxattr(
                cstr(a(0)).as_ptr(),
                cstr(a(1)).as_ptr(),
                a(2).as_ptr().cast(),
                a(2).len(),
                0,
            ) as i64),
            "utimes" => check(libc::utimes(cstr(a(0)).as_ptr(), std::ptr::null()) as i64),
            "mkfifo" => check(libc::mkfifo(cstr(a(0)).as_ptr(), 0o600) as i64),
            // symlink=TARGET,LINK
            "symlink" => check(libc::symlink(cstr(a(0)).as_ptr(), cstr(a(1)).as_ptr()) as i64),
            "mkdir" => check(libc::mkdir(cstr(a(0)).as_ptr(), 0o755) as i64),
            "rmdir" => check(libc::rmdir(cstr(a(0)).as_ptr()) as i64),
            // mknod-char=PATH / mknod-block=PATH: device 1:3 (/dev/null's numbers)
            "mknod-char" | "mknod-block" => {
                let kind = if op == "mknod-char" {
                    libc::S_IFCHR
                } else {
                    libc::S_IFBLK
                };
                check(libc::mknod(cstr(a(0)).as_ptr(), kind | 0o600, libc::makedev(1, 3)) as i64)
            }
            // unix-bind=PATH: a UNIX stream socket bound to PATH (Landlock's make_sock)
            "unix-bind" => {
                let fd = check(libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) as i64)? as i32;
                let mut sa: libc::sockaddr_un = std::mem::zeroed();
                sa.sun_family = libc::AF_UNIX as u16;
                for (d, b) in sa.sun_path.iter_mut().zip(a(0).bytes()) {
                    *d = b as libc::c_char;
                }
                let len = std::mem::size_of::<libc::sockaddr_un>() as u32;
                let r = check(libc::bind(fd, (&raw const sa).cast(), len) as i64);
                libc::close(fd);
                r
            }
            // spawn=PATH: runs PATH (posix_spawn) and waits: its exit status, or the exec's errno
            "spawn" => {
                let path = cstr(a(0));
                let argv = [path.as_ptr() as *mut libc::c_char, std::ptr::null_mut()];
                let envp = [std::ptr::null_mut()];
                let mut pid: libc::pid_t = 0;
                let rc = libc::posix_spawn(
                    &mut pid,
                    path.as_ptr(),
                    std::ptr::null(),
                    std::ptr::null(),
                    argv.as_ptr(),
                    envp.as_ptr(),
                );
                if rc != 0 {
                    return Err(rc);
                }
                let mut status = 0;
                check(libc::waitpid(pid, &mut status, 0) as i64)?;
                Ok(i64::from(libc::WEXITSTATUS(status)))
            }
            // sys=NAME: the syscall NAME, numbered by libseccomp's table of this architecture
            // (independent of hardend's), every argument -1: the kernel rejects such calls
            // (EBADF, EFAULT, EINVAL) unless a seccomp filter answers first with its errno
            "sys" => {
                let Some(nr) = native_syscall_number(a(0)) else {
                    return Err(-1);
                };
                check(libc::syscall(nr, -1i64, -1i64, -1i64, -1i64, -1i64, -1i64))
            }
            other => panic!("unknown probe op {other}"),
        }
    }
}

/// `NAME`'s number on this architecture from libseccomp (loaded at run time).
fn native_syscall_number(name: &str) -> Option<libc::c_long> {
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xc000_003e;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xc000_00b7;
    let lib = hardend::audit::syscalls::Libseccomp::load()?;
    lib.number(AUDIT_ARCH, name)
}

fn main() {
    let mut out = std::io::stdout().lock();
    for arg in std::env::args().skip(1) {
        let (op, rest) = arg.split_once('=').unwrap_or((arg.as_str(), ""));
        let args: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split(',').collect()
        };
        match run(op, &args) {
            Ok(v) => writeln!(out, "{arg} -> ok {v}"),
            Err(-1) => writeln!(out, "{arg} -> unresolved"),
            Err(e) => writeln!(out, "{arg} -> errno {e}"),
        }
        .expect("stdout");
        out.flush().expect("stdout");
    }
}
