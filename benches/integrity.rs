//! Integrity monitoring costs, printed (not asserted), in one run:
//! 1. a SHA-256 baseline of /usr by hardend's scanner next to `aide --init` with a config
//!    limited to sha256 on the same tree (warm page cache, median of 3 each, ratio printed);
//! 2. change-to-signal latency: a file written in a watched tree until the daemon's
//!    IntegrityViolation signal arrives (median of 50);
//! 3. idle CPU of the daemon while it watches (no polling: CPU time over 10 s);
//! 4. `accept` of one path in a baseline of 200,000 paths: time (median of 5) and the
//!    daemon's peak RSS during it against its RSS before (VmHWM reset through clear_refs).
//!
//! Run with `scripts/bench` (installs aide).

#![allow(clippy::unwrap_used)] // a benchmark that cannot run has nothing to report

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hardend::integrity::scan::{Progress, ScanOptions, scan_set};
use hardend::integrity::{Attrs, Severity, WatchSet};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn baseline_vs_aide(root: &str) {
    let set = WatchSet {
        name: "usr".into(),
        paths: vec![root.into()],
        recursive: true,
        exclude: vec![],
        exclude_files: vec![],
        attrs: Attrs::from_names(["content"]).unwrap(),
        severity: Severity::High,
    };
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("aide.conf");
    std::fs::write(
        &conf,
        format!(
            "database_out=file:{}/aide.db.new\ngzip_dbout=no\nreport_url=stdout\nH = sha256\n{root} H\n",
            dir.path().display()
        ),
    )
    .unwrap();
    // warm the page cache once, so that both read from memory
    let (entries, _) = scan_set(&set, &ScanOptions::default(), &Progress::default()).unwrap();
    let (mut ours, mut aide) = (Vec::new(), Vec::new());
    let mut aide_ok = true;
    for _ in 0..3 {
        let t = Instant::now();
        let (e, _) = scan_set(&set, &ScanOptions::default(), &Progress::default()).unwrap();
        ours.push(t.elapsed());
        assert_eq!(e.len(), entries.len());
        let t = Instant::now();
        let st = Command::new("aide")
            .arg("--init")
            .arg(format!("--config={}", conf.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        aide.push(t.elapsed());
        aide_ok &= st.is_ok_and(|s| s.success() || s.code().is_some_and(|c| c < 14));
    }
    let bytes: u64 = entries.values().map(|e| e.size).sum();
    let (o, a) = (median(ours), median(aide));
    println!(
        "baseline of {root}: {} entries, {:.1} GB, sha256 (median of 3, warm cache)",
        entries.len(),
        bytes as f64 / 1e9
    );
    println!(
        "  hardend  {:>7.2} s  ({:.0} MB/s, {} threads)",
        o.as_secs_f64(),
        bytes as f64 / 1e6 / o.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if aide_ok {
        println!("  aide     {:>7.2} s", a.as_secs_f64());
        println!(
            "  ratio    {:.1}x faster than aide --init",
            a.as_secs_f64() / o.as_secs_f64()
        );
    } else {
        println!("  aide     did not run (apt-get install aide)");
    }
}

/// hardend on BUS watching TREE (its state in STATE), the baseline made.
fn watching(bus: &common::TestBus, state: &Path, tree: &Path) -> common::TestDaemon {
    let d = common::TestDaemon::start(
        bus,
        "",
        &format!(
            "[integrity]\ndir = \"{}\"\n[[integrity.watch]]\nname = \"t\"\npaths = [\"{}\"]\n",
            state.display(),
            tree.display()
        ),
    );
    assert!(d.ctl(&["integrity", "init"]).status.success());
    d
}

fn latency_and_idle() {
    let tree = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    for i in 0..100 {
        std::fs::write(tree.path().join(format!("f{i}")), "v0\n").unwrap();
    }
    let bus = common::TestBus::start();
    let d = watching(&bus, state.path(), tree.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let lat = rt.block_on(async {
        let conn = zbus::connection::Builder::address(bus.address.as_str())
            .unwrap()
            .build()
            .await
            .unwrap();
        let p = hardend::api::IntegrityProxy::new(&conn).await.unwrap();
        let mut sig = p.receive_integrity_violation().await.unwrap();
        let mut lat = Vec::new();
        for i in 0..50 {
            let f = tree.path().join(format!("f{i}"));
            let t = Instant::now();
            std::fs::write(&f, "changed\n").unwrap();
            loop {
                let s = sig.next().await.unwrap();
                if *s.args().unwrap().path() == f.display().to_string() {
                    break;
                }
            }
            lat.push(t.elapsed());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        lat
    });
    let m = median(lat.clone());
    let max = lat.iter().max().copied().unwrap_or_default();
    println!(
        "change-to-signal latency: median {:.1} ms, max {:.1} ms (50 writes; debounce window 15 ms quiet / 150 ms max)",
        m.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    let pid = d.child.as_ref().unwrap().id();
    let cpu = || {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    };
    let tck = 100.0; // USER_HZ
    let before = cpu();
    std::thread::sleep(Duration::from_secs(10));
    let after = cpu();
    println!(
        "idle CPU while watching: {:.0} ms over 10 s ({:.2} %)",
        (after - before) as f64 / tck * 1e3,
        (after - before) as f64 / tck / 10.0 * 100.0
    );
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn accept_in_a_large_baseline(n: usize) {
    let tree = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    for d in 0..n / 1000 {
        let dir = tree.path().join(format!("d{d}"));
        std::fs::create_dir(&dir).unwrap();
        for i in 0..1000 {
            std::fs::write(dir.join(format!("f{i}")), format!("{d} {i}\n")).unwrap();
        }
    }
    let bus = common::TestBus::start();
    let d = watching(&bus, state.path(), tree.path());
    let pid = d.child.as_ref().unwrap().id();
    let f = tree.path().join("d0/f0");
    let (mut times, mut peaks) = (Vec::new(), Vec::new());
    let mut before = 0;
    for round in 0..5 {
        std::fs::write(&f, format!("round {round}\n")).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        before = status_kb(pid, "VmRSS:");
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
        let t = Instant::now();
        assert!(
            d.ctl(&["integrity", "accept", f.to_str().unwrap()])
                .status
                .success()
        );
        times.push(t.elapsed());
        peaks.push(status_kb(pid, "VmHWM:"));
    }
    let peak = peaks.iter().max().copied().unwrap_or_default();
    println!(
        "accept of 1 path at {n} baseline paths: median {:.0} ms; daemon RSS {:.1} MiB before, peak {:.1} MiB during ({:.2}x)",
        median(times).as_secs_f64() * 1e3,
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        peak as f64 / before as f64
    );
}

fn main() {
    let root = std::env::var("BENCH_INTEGRITY_ROOT").unwrap_or_else(|_| "/usr".into());
    baseline_vs_aide(&root);
    latency_and_idle();
    accept_in_a_large_baseline(200_000);
}
