//! Daemon costs, printed (not asserted): `hardenctl --json status` round trip (the whole CLI
//! process, as an admin or a monitoring script sees it), the bare D-Bus Status call from a
//! connected client, the daemon's idle RSS; then the same status round trip while a hostile
//! local user (`nobody`) attacks — FIFOs named like records in the records directory, a flood
//! of `Identity.Check` calls — and root's `Identity.Sign` latency under that flood against the
//! same Sign idle, with the ratio. Runs as root (it acts as nobody). Run with `scripts/bench`.

#[path = "../tests/it/common/swtpm.rs"]
mod swtpm;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `n` timed runs of `f`.
fn timed(n: usize, mut f: impl FnMut()) -> Duration {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f();
        v.push(t.elapsed());
    }
    median(v)
}

/// Processes killed on drop, on every exit path.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A shell loop run as nobody.
fn as_nobody(script: &str) -> Child {
    Command::new("sh")
        .args(["-c", script])
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh as nobody")
}

fn main() {
    assert!(
        rustix::process::geteuid().is_root(),
        "benches/daemon.rs acts as nobody: run it as root"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    // nobody reaches the bus socket and the records directory through it
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let sock = dir.path().join("bus.sock");
    let addr = format!("unix:path={}", sock.display());
    std::fs::write(
        dir.path().join("bus.conf"),
        format!(
            "<busconfig><type>session</type><listen>{addr}</listen><auth>EXTERNAL</auth>\
             <policy context=\"default\"><allow user=\"*\"/><allow own=\"*\"/>\
             <allow send_destination=\"*\"/><allow receive_sender=\"*\"/></policy></busconfig>"
        ),
    )
    .expect("bus config");
    let sw = swtpm::Swtpm::start();
    let mut procs = Procs(Vec::new());
    procs.0.push(
        Command::new("dbus-daemon")
            .arg(format!(
                "--config-file={}",
                dir.path().join("bus.conf").display()
            ))
            .arg("--nofork")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon"),
    );
    while !sock.exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::write(
        dir.path().join("hardend.toml"),
        // no integrity watches (benches/integrity.rs measures those); verification every
        // second, so the records directory is read often while it is attacked
        format!(
            "[daemon]\nruntime_dir = \"{d}/run\"\nverify_interval = 1\n\
             [identity]\ntcti = \"{t}\"\ndir = \"{d}/identity\"\n[integrity]\nenabled = false\n[metrics]\nenabled = false\n",
            d = dir.path().display(),
            t = sw.tcti()
        ),
    )
    .expect("config");
    let daemon = Command::new(env!("CARGO_BIN_EXE_hardend"))
        .arg("--config")
        .arg(dir.path().join("hardend.toml"))
        .arg("--bus")
        .arg(&addr)
        .stderr(Stdio::null())
        .spawn()
        .expect("hardend");
    let daemon_pid = daemon.id();
    procs.0.push(daemon);
    let ctl = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hardenctl"));
        c.args(["--bus", &addr]).args(args).stdout(Stdio::null());
        c
    };
    let status = || {
        assert!(
            ctl(&["--json", "status"])
                .status()
                .expect("hardenctl")
                .success()
        );
    };
    while !ctl(&["status"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success() || s.code() == Some(3))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        ctl(&["identity", "create"])
            .status()
            .expect("hardenctl")
            .success()
    );
    let sign = || {
        assert!(
            ctl(&["identity", "sign", "--nonce", "00ff"])
                .status()
                .expect("hardenctl")
                .success()
        );
    };

    let n = 200;
    let cli = timed(n, status);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let call = rt.block_on(async {
        let conn = hardend::api::connect(&addr).await.expect("connect");
        let proxy = hardend::api::ManagerProxy::new(&conn).await.expect("proxy");
        let mut v = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            proxy.status().await.expect("Status");
            v.push(t.elapsed());
        }
        median(v)
    });
    // idle: let the daemon settle, then read its resident set size
    std::thread::sleep(Duration::from_secs(2));
    let rss_kib: u64 = std::fs::read_to_string(format!("/proc/{daemon_pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let true_time = timed(n, || {
        Command::new("/bin/true").status().expect("true");
    });
    let signs = 40;
    let sign_idle = timed(signs, sign);

    // attack 1: FIFOs named like records, made and remade by nobody while the daemon
    // verifies every second
    let records = dir.path().join("run/enforced");
    let fifo = as_nobody(&format!(
        "cd {} && st=$(cut -d' ' -f22 /proc/$$/stat); i=0; while :; do i=$(((i+1) % 200)); \
         rm -f $$-$st.A$i.json f$i.json; mkfifo $$-$st.A$i.json f$i.json; sleep 0.01; done",
        records.display()
    ));
    let fifo_guard = Procs(vec![fifo]);
    std::thread::sleep(Duration::from_secs(2));
    let cli_fifo = timed(n, status);
    drop(fifo_guard);

    // the control for attack 2: the same four loops of bus calls that touch no TPM
    // (Manager.Status): what the flood costs in CPU alone on this machine
    let load = format!(
        "while :; do dbus-send --bus={addr} --print-reply --dest=org.hardend1 /org/hardend1 \
         org.hardend1.Manager.Status; done"
    );
    let control = Procs((0..4).map(|_| as_nobody(&load)).collect());
    std::thread::sleep(Duration::from_secs(1));
    let cli_load = timed(n, status);
    let sign_load = timed(signs, sign);
    drop(control);

    // attack 2: four loops of Identity.Check by nobody (rate-limited, queued behind root)
    let check = format!(
        "while :; do dbus-send --bus={addr} --print-reply --dest=org.hardend1 /org/hardend1 \
         org.hardend1.Identity.Check; done"
    );
    let flood = Procs((0..4).map(|_| as_nobody(&check)).collect());
    std::thread::sleep(Duration::from_secs(1));
    let cli_flood = timed(n, status);
    let sign_flood = timed(signs, sign);
    drop(flood);

    println!("daemon ({n} status calls, {signs} signs, median)");
    println!(
        "  hardenctl --json status, idle (whole CLI process)   {:>8.3} ms (goal <= 5 ms)",
        ms(cli)
    );
    println!(
        "    of which process start, as /bin/true               {:>8.3} ms",
        ms(true_time)
    );
    println!(
        "  D-Bus Status call from a connected client           {:>8.3} ms",
        ms(call)
    );
    println!(
        "  idle RSS of hardend                                 {:>8.1} MiB (goal < 10 MiB)",
        rss_kib as f64 / 1024.0
    );
    println!(
        "  hardenctl --json status, nobody planting FIFOs      {:>8.3} ms ({:.2}x idle)",
        ms(cli_fifo),
        ms(cli_fifo) / ms(cli)
    );
    println!(
        "  hardenctl --json status, nobody calling Status      {:>8.3} ms ({:.2}x idle: CPU load alone)",
        ms(cli_load),
        ms(cli_load) / ms(cli)
    );
    println!(
        "  hardenctl --json status, nobody flooding Check      {:>8.3} ms ({:.2}x idle, {:.2}x the CPU-load control)",
        ms(cli_flood),
        ms(cli_flood) / ms(cli),
        ms(cli_flood) / ms(cli_load)
    );
    println!(
        "  root hardenctl identity sign, idle                  {:>8.3} ms",
        ms(sign_idle)
    );
    println!(
        "  root hardenctl identity sign, nobody calling Status {:>8.3} ms ({:.2}x idle: CPU load alone)",
        ms(sign_load),
        ms(sign_load) / ms(sign_idle)
    );
    println!(
        "  root hardenctl identity sign, nobody flooding Check {:>8.3} ms ({:.2}x idle, {:.2}x the CPU-load control)",
        ms(sign_flood),
        ms(sign_flood) / ms(sign_idle),
        ms(sign_flood) / ms(sign_load)
    );
    drop(procs);
    drop(sw);
}
