//! Cost of confinement, against the unconfined program in the same run:
//! * start overhead: `hardend-exec --profile base -- /bin/true` vs `/bin/true`;
//! * syscall cost: getppid and open+read+close loops, confined vs unconfined.
//!
//! Prints medians and ratios; asserts nothing (timings are not tests).
//! Run with `scripts/bench` (builds the release probe first).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn probe() -> PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    let p = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("examples/probe");
    assert!(p.exists(), "{}: run scripts/bench", p.display());
    p
}

fn time_runs(cmd: &mut Command, n: usize) -> Duration {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let st = cmd.status().expect("spawn");
        v.push(t.elapsed());
        assert!(st.success(), "{cmd:?} failed");
    }
    median(v)
}

/// Median of `reps` runs of one probe op: the op prints ns per iteration ×1000.
fn loop_cost(wrapper: Option<&Path>, profile_path: &Path, op: &str, reps: usize) -> f64 {
    let mut v = Vec::new();
    for _ in 0..reps {
        let mut c = match wrapper {
            Some(w) => {
                let mut c = Command::new(w);
                c.arg("--profile")
                    .arg(profile_path)
                    .arg("--profile-path")
                    .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles"))
                    .arg("--runtime-dir")
                    .arg(std::env::temp_dir().join("hardend-bench-run"))
                    .arg("--")
                    .arg(probe());
                c
            }
            None => Command::new(probe()),
        };
        let out = c.arg(op).output().expect("probe");
        let s = String::from_utf8_lossy(&out.stdout);
        let picos: f64 = s
            .split_whitespace()
            .last()
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "probe output {s:?} {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        v.push(picos / 1000.0);
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = dir.path().join("bench.toml");
    let data = dir.path().join("data");
    std::fs::write(&data, "some bytes to read").expect("data");
    std::fs::write(
        &profile,
        format!(
            "include = [\"base\"]\n[landlock]\nread = [\"{}\"]\nread_exec = [\"/usr/bin/true\", \"/bin/true\", \"{}\"]\n",
            data.display(),
            probe().display()
        ),
    )
    .expect("profile");
    // another package of the workspace: built by scripts/bench (`cargo build --workspace`)
    let wrapper = probe()
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("hardend-exec");
    assert!(wrapper.exists(), "{}: run scripts/bench", wrapper.display());
    // on tmpfs, as /run is on a device
    let runtime = std::path::Path::new("/dev/shm/hardend-bench-run").to_path_buf();

    let n = 300;
    // warm up the page cache
    time_runs(&mut Command::new("/bin/true"), 20);
    let plain = time_runs(&mut Command::new("/bin/true"), n);
    let mut wrapped_cmd = Command::new(&wrapper);
    wrapped_cmd
        .arg("--profile")
        .arg(&profile)
        .arg("--profile-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles"))
        .arg("--runtime-dir")
        .arg(&runtime)
        .args(["--", "/bin/true"]);
    time_runs(&mut wrapped_cmd, 20);
    let wrapped = time_runs(&mut wrapped_cmd, n);
    // Floor: the wrapper with a profile that restricts nothing (process start, profile
    // parse, record) — what any exec wrapper costs before it enforces anything.
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "description = \"restricts nothing\"\n").expect("profile");
    let mut floor_cmd = Command::new(&wrapper);
    floor_cmd
        .arg("--profile")
        .arg(&empty)
        .arg("--runtime-dir")
        .arg(&runtime)
        .args(["--", "/bin/true"]);
    let floor = time_runs(&mut floor_cmd, n);
    let added = wrapped.saturating_sub(plain);
    println!("start overhead ({n} runs, median)");
    println!(
        "  /bin/true                                {:>8.3} ms",
        plain.as_secs_f64() * 1e3
    );
    println!(
        "  hardend-exec --profile base -- /bin/true {:>8.3} ms",
        wrapped.as_secs_f64() * 1e3
    );
    println!(
        "  hardend-exec, empty profile (floor)      {:>8.3} ms",
        floor.as_secs_f64() * 1e3
    );
    println!(
        "  added {:.3} ms (target < 2 ms), ratio {:.2}x",
        added.as_secs_f64() * 1e3,
        wrapped.as_secs_f64() / plain.as_secs_f64()
    );

    // A filter that allows every syscall: the kernel's fixed cost of seccomp on the syscall
    // path, which no filter layout can avoid (systemd's SystemCallFilter= pays it too).
    let allow_all = dir.path().join("allowall.toml");
    std::fs::write(&allow_all, "[seccomp]\nallow = [\"@known\"]\n").expect("profile");
    let reps = 9;
    println!("syscall cost ({reps} runs of each loop, median ns per iteration)");
    for (label, op) in [
        ("getppid", "bench-getppid=5000000".to_string()),
        (
            "open+read+close",
            format!("bench-open=300000,{}", data.display()),
        ),
    ] {
        let free = loop_cost(None, &profile, &op, reps);
        let conf = loop_cost(Some(&wrapper), &profile, &op, reps);
        let floor = loop_cost(Some(&wrapper), &allow_all, &op, reps);
        println!(
            "  {label:<16} unconfined {free:>8.1} ns  confined {conf:>8.1} ns  ratio {:.3} ({:+.1}%, target within 5%)",
            conf / free,
            (conf / free - 1.0) * 100.0
        );
        println!(
            "  {:<16} allow-all seccomp filter (kernel floor) {floor:>8.1} ns  ratio {:.3}",
            "",
            floor / free
        );
    }
    let _ = std::fs::remove_dir_all(runtime);
}
