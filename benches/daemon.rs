//! Daemon costs, printed (not asserted): `hardenctl status` round trip (the whole CLI
//! process, as an admin or a monitoring script sees it), the bare D-Bus Status call from a
//! connected client, and the daemon's idle RSS. Run with `scripts/bench`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
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
    let mut bus = Command::new("dbus-daemon")
        .arg(format!(
            "--config-file={}",
            dir.path().join("bus.conf").display()
        ))
        .arg("--nofork")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbus-daemon");
    while !sock.exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::write(
        dir.path().join("hardend.toml"),
        // the core daemon: no TPM, no integrity watches (benches/integrity.rs measures those)
        format!(
            "[daemon]\nruntime_dir = \"{}/run\"\n[identity]\ntcti = \"none\"\n[integrity]\nenabled = false\n",
            dir.path().display()
        ),
    )
    .expect("config");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_hardend"))
        .arg("--config")
        .arg(dir.path().join("hardend.toml"))
        .arg("--bus")
        .arg(&addr)
        .stderr(Stdio::null())
        .spawn()
        .expect("hardend");
    let ctl = |json: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hardenctl"));
        c.args(["--bus", &addr]);
        if json {
            c.arg("--json");
        }
        c.arg("status").stdout(Stdio::null());
        c
    };
    while !ctl(false).status().expect("hardenctl").success() {
        std::thread::sleep(Duration::from_millis(20));
    }

    let n = 200;
    let mut cli = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        assert!(ctl(true).status().expect("hardenctl").success());
        cli.push(t.elapsed());
    }
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
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", daemon.id())).unwrap_or_default();
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let true_time = {
        let mut v = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            Command::new("/bin/true").status().expect("true");
            v.push(t.elapsed());
        }
        median(v)
    };
    let cli = median(cli);
    println!("daemon ({n} calls, median)");
    println!(
        "  hardenctl --json status (whole CLI process)  {:>7.3} ms (target < 5 ms)",
        cli.as_secs_f64() * 1e3
    );
    println!(
        "  of which process start, as /bin/true          {:>7.3} ms",
        true_time.as_secs_f64() * 1e3
    );
    println!(
        "  D-Bus Status call from a connected client     {:>7.3} ms",
        call.as_secs_f64() * 1e3
    );
    println!(
        "  idle RSS of hardend                           {:>7.1} MiB (target < 10 MiB)",
        rss_kib as f64 / 1024.0
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
    let _ = bus.kill();
    let _ = bus.wait();
}
