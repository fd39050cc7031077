//! `hardenctl verity format` against `veritysetup format` on the same 1 GiB image, same
//! salt and UUID, in one run; prints both and the ratio (not asserted). Run with
//! `scripts/bench`. Set HARDEND_BENCH_VERITY_MIB to change the size.

use std::process::Command;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mib: usize = std::env::var("HARDEND_BENCH_VERITY_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data.img");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&data).expect("data"));
        let mut x: u64 = 0x243f_6a88_85a3_08d3;
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..mib {
            for c in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes());
            }
            f.write_all(&buf).expect("write");
        }
    }
    let salt = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";
    let uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
    let run = |cmd: &str, out: &std::path::Path| -> (Duration, String) {
        let _ = std::fs::remove_file(out);
        let mut c = Command::new(cmd);
        if cmd == "veritysetup" {
            c.arg("format");
        } else {
            c.args(["verity", "format"]);
        }
        c.arg(&data)
            .arg(out)
            .arg(format!("--salt={salt}"))
            .arg(format!("--uuid={uuid}"));
        let t = Instant::now();
        let o = c.output().expect("run");
        let e = t.elapsed();
        assert!(
            o.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let root = String::from_utf8_lossy(&o.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Root hash:").map(|r| r.trim().to_string()))
            .unwrap_or_default();
        (e, root)
    };
    let ours_bin = env!("CARGO_BIN_EXE_hardenctl");
    let (mut t_ours, mut t_theirs) = (Vec::new(), Vec::new());
    let (mut r_ours, mut r_theirs) = (String::new(), String::new());
    // warm the page cache once, then alternate
    run("veritysetup", &dir.path().join("warm"));
    for _ in 0..3 {
        let (t, r) = run("veritysetup", &dir.path().join("theirs"));
        t_theirs.push(t);
        r_theirs = r;
        let (t, r) = run(ours_bin, &dir.path().join("ours"));
        t_ours.push(t);
        r_ours = r;
    }
    assert_eq!(r_ours, r_theirs, "root hashes differ");
    let same = std::fs::read(dir.path().join("ours")).expect("ours")
        == std::fs::read(dir.path().join("theirs")).expect("theirs");
    let (o, t) = (median(t_ours), median(t_theirs));
    println!("verity format, {mib} MiB, 4 KiB blocks, sha256 (median of 3, warm cache)");
    println!("  veritysetup format        {:>8.3} s", t.as_secs_f64());
    println!(
        "  hardenctl verity format   {:>8.3} s  ({:.0} MB/s, {} threads)",
        o.as_secs_f64(),
        mib as f64 * 1.048576 / o.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "  speed-up {:.2}x (target >= 2.5x); hash files identical: {same}",
        t.as_secs_f64() / o.as_secs_f64()
    );
}
