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

/// Medians of `n` runs of each command, run in turn.
fn time_interleaved<const N: usize>(cmds: &mut [&mut Command; N], n: usize) -> [Duration; N] {
    let mut v: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::with_capacity(n));
    for _ in 0..n {
        for (i, cmd) in cmds.iter_mut().enumerate() {
            let t = Instant::now();
            let st = cmd.status().expect("spawn");
            v[i].push(t.elapsed());
            assert!(st.success(), "{cmd:?} failed");
        }
    }
    v.map(median)
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
    let mut wrapped_cmd = Command::new(&wrapper);
    wrapped_cmd
        .arg("--profile")
        .arg(&profile)
        .arg("--profile-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles"))
        .arg("--runtime-dir")
        .arg(&runtime)
        .args(["--", "/bin/true"]);
    // Floor: the wrapper with a profile that restricts nothing (process start, profile
    // parse, record, the default denials) — what the wrapper costs before the profile.
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "description = \"restricts nothing\"\n").expect("profile");
    let mut floor_cmd = Command::new(&wrapper);
    floor_cmd
        .arg("--profile")
        .arg(&empty)
        .arg("--runtime-dir")
        .arg(&runtime)
        .args(["--", "/bin/true"]);
    // Peer: the smallest exec wrapper Debian ships (util-linux setpriv setting
    // no_new_privs): the cost of a second execve that any wrapper pays.
    let mut setpriv_cmd = Command::new("setpriv");
    setpriv_cmd.args(["--no-new-privs", "/bin/true"]);
    let mut plain_cmd = Command::new("/bin/true");
    time_runs(&mut wrapped_cmd, 20);
    // interleaved, so that drift of a noisy machine hits every command alike
    let [plain, setpriv, floor, wrapped] = time_interleaved(
        &mut [
            &mut plain_cmd,
            &mut setpriv_cmd,
            &mut floor_cmd,
            &mut wrapped_cmd,
        ],
        n,
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("start overhead ({n} runs each, interleaved, median)");
    println!(
        "  /bin/true                                {:>8.3} ms",
        ms(plain)
    );
    println!(
        "  setpriv --no-new-privs /bin/true (peer)  {:>8.3} ms",
        ms(setpriv)
    );
    println!(
        "  hardend-exec, empty profile              {:>8.3} ms",
        ms(floor)
    );
    println!(
        "  hardend-exec --profile base -- /bin/true {:>8.3} ms",
        ms(wrapped)
    );
    println!(
        "  added over /bin/true {:.3} ms (goal <= 1.5 ms), over setpriv {:.3} ms; ratio to setpriv {:.2}x",
        ms(wrapped.saturating_sub(plain)),
        ms(wrapped.saturating_sub(setpriv)),
        wrapped.as_secs_f64() / setpriv.as_secs_f64()
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
