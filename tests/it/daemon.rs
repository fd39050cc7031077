//! The daemon on a real private dbus-daemon: it owns org.hardend1, answers hardenctl,
//! refuses state changes from non-root callers, verifies real confined processes, and
//! survives being killed without its services losing their confinement.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::process::Command;

use crate::common::*;

const SLEEPER: &str = "include = [\"base\"]\n[landlock]\nread_exec = [\"/usr/bin/sleep\", \"/bin/sleep\"]\n[seccomp]\nallow = [\"@system-service\"]\n";

fn with_sleeper(d: &TestDaemon) {
    fs::write(d.path("profiles/sleeper.toml"), SLEEPER).unwrap();
}

#[test]
fn starts_owns_the_name_and_answers_status() {
    let bus = TestBus::start();
    let d = TestDaemon::start(&bus, "", "");
    let v = d.ctl_json(&["status"]);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["state"], "ok");
    assert_eq!(v["systemd"], false, "no systemd on a private bus");
    assert_eq!(
        v["profile_path"][0],
        d.path("profiles").display().to_string()
    );
    assert!(d.ctl(&["status"]).status.success());
    // a second daemon cannot take the name
    let second = Command::new(hardend())
        .arg("--config")
        .arg(d.path("hardend.toml"))
        .arg("--bus")
        .arg(&bus.address)
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("cannot own org.hardend1"));
}

#[test]
fn non_root_callers_get_access_denied_but_can_read() {
    if !is_root() {
        eprintln!("skipped: needs root to run a client as nobody");
        return;
    }
    let bus = TestBus::start();
    let d = TestDaemon::start(&bus, "", "");
    let as_nobody = |args: &[&str]| {
        Command::new(hardenctl())
            .uid(65534)
            .gid(65534)
            .arg("--bus")
            .arg(&bus.address)
            .args(args)
            .output()
            .unwrap()
    };
    use std::os::unix::process::CommandExt;
    for args in [
        &["confine", "x.service", "base"][..],
        &["release", "x.service"][..],
        &["reload"][..],
    ] {
        let out = as_nobody(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        // hardenctl prints this only for org.freedesktop.DBus.Error.AccessDenied
        assert!(
            err.contains("permission denied:") && err.contains("requires root (caller uid 65534)"),
            "{args:?}: {err}"
        );
    }
    let out = as_nobody(&["--json", "status"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "ok");
    assert!(as_nobody(&["services"]).status.success());
    // root passes the same check (and then fails for the real reason: no systemd here)
    let out = d.ctl(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_daemon_under_seccomp_claims_the_filter_and_says_why_it_cannot_read_it_back() {
    if !is_root() {
        return; // the read-back needs CAP_SYS_ADMIN: without it the reason is another
    }
    let bus = TestBus::start();
    // as hardend.service's SystemCallFilter= does on a device
    let d = TestDaemon::start_under_seccomp(&bus, "verify_interval = 1", "");
    fs::write(d.path("profiles/sleeper.toml"), SLEEPER).unwrap();
    let mut child = d.start_confined("sleeper.service", "sleeper", &["sleep", "30"]);
    let s = d.wait_state("sleeper.service", confined_state());
    let seccomp = s["proofs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["layer"] == "seccomp")
        .cloned()
        .unwrap();
    // the kernel refuses PTRACE_SECCOMP_GET_FILTER to a filtered caller (EACCES): the layer
    // stays claimed, and the reason names the daemon's own filter, not missing capabilities
    assert_eq!(seccomp["proof"], "claimed", "{s}");
    let detail = seccomp["detail"].as_str().unwrap_or("");
    assert!(detail.contains("itself under a seccomp filter"), "{detail}");
    assert!(!detail.contains("CAP_SYS_ADMIN"), "{detail}");
    child.kill().ok();
    child.wait().ok();
}

#[test]
fn services_json_shows_the_kernels_capability_sets_of_a_confined_unit() {
    if !is_root() {
        return; // a non-root test process has no capabilities to keep
    }
    let bus = TestBus::start();
    let d = TestDaemon::start(&bus, "verify_interval = 1", "");
    fs::write(
        d.path("profiles/binder.toml"),
        format!(
            "{SLEEPER}[process]\ncapabilities = [\"CAP_NET_BIND_SERVICE\"]\n[network]\nudp = true\n"
        ),
    )
    .unwrap();
    let mut child = d.start_confined("binder.service", "binder", &["sleep", "30"]);
    let s = d.wait_state("binder.service", confined_state());
    let k = &s["kernel"];
    assert_eq!(k["no_new_privs"], true);
    assert_eq!(k["seccomp_mode"], 2);
    assert_eq!(k["seccomp_filters"], 1);
    // the mount view, as the kernel shows it (mount IDs, no ptrace rights needed)
    assert_eq!(k["own_mount_namespace"], true, "{s}");
    assert_eq!(k["root_read_only"], true, "{s}");
    // which layer the kernel proved and which only the record claims
    let proof = |layer: &str| {
        s["proofs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["layer"] == layer)
            .map(|p| p["proof"].as_str().unwrap().to_string())
    };
    assert_eq!(proof("seccomp").as_deref(), Some("kernel-verified"), "{s}");
    assert_eq!(proof("no-new-privs").as_deref(), Some("kernel-verified"));
    assert_eq!(proof("capabilities").as_deref(), Some("kernel-verified"));
    assert_eq!(proof("read-only-view").as_deref(), Some("kernel-verified"));
    assert_eq!(proof("landlock").as_deref(), Some("claimed"));
    for set in [
        "cap_permitted",
        "cap_effective",
        "cap_bounding",
        "cap_ambient",
    ] {
        assert_eq!(
            k[set],
            serde_json::json!(["CAP_NET_BIND_SERVICE"]),
            "{set}: {s}"
        );
    }
    assert_eq!(
        s["rules"]["capabilities"],
        serde_json::json!(["CAP_NET_BIND_SERVICE"])
    );
    assert_eq!(s["rules"]["udp"], true);
    assert_eq!(
        s["rules"]["families"],
        serde_json::json!(["inet", "inet6", "unix"])
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_process_holding_capabilities_its_profile_does_not_grant_is_not_enforced() {
    if !is_root() {
        return;
    }
    // The kernel decides, not the record: a process that holds a capability the assigned
    // profile does not grant (here: started under a version that granted CAP_CHOWN) is
    // not-enforced, whatever its genuine record says.
    let bus = TestBus::start();
    let d = TestDaemon::start(&bus, "verify_interval = 1", "");
    fs::write(
        d.path("profiles/sleeper.toml"),
        format!("{SLEEPER}[process]\ncapabilities = [\"CAP_CHOWN\"]\n"),
    )
    .unwrap();
    let mut child = d.start_confined("sleeper.service", "sleeper", &["sleep", "30"]);
    d.wait_state("sleeper.service", confined_state());
    fs::write(d.path("profiles/sleeper.toml"), SLEEPER).unwrap();
    let s = d.wait_state("sleeper.service", "not-enforced");
    assert!(
        s["detail"]
            .as_str()
            .unwrap()
            .contains("holds capabilities its profile does not grant: CAP_CHOWN"),
        "{s}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn confined_process_is_enforced_and_a_profile_change_makes_it_stale() {
    let bus = TestBus::start();
    let d = TestDaemon::start(&bus, "verify_interval = 1", "");
    with_sleeper(&d);
    let mut child = d.start_confined("sleeper.service", "sleeper", &["sleep", "30"]);
    let s = d.wait_state("sleeper.service", confined_state());
    assert_eq!(s["pid"], child.id());
    assert_eq!(s["profile"], "sleeper");
    assert_eq!(s["landlock"], "full");
    assert_eq!(s["seccomp"], "enforce");
    assert_eq!(s["source"], "dropin");
    assert!(d.ctl(&["services"]).status.success());

    fs::write(
        d.path("profiles/sleeper.toml"),
        format!("{SLEEPER}deny = [\"@ipc\"]\n"),
    )
    .unwrap();
    let s = d.wait_state("sleeper.service", "stale");
    assert!(
        s["detail"]
            .as_str()
            .unwrap()
            .contains("changed since the process started"),
        "{s}"
    );
    assert_eq!(
        d.ctl(&["services"]).status.code(),
        Some(3),
        "exit 3: something is not enforced"
    );
    assert_eq!(d.ctl(&["status"]).status.code(), Some(3));

    child.kill().unwrap();
    child.wait().unwrap();
    d.wait_state("sleeper.service", "inactive");
}

#[test]
fn config_services_without_a_process_are_inactive() {
    let bus = TestBus::start();
    let d = TestDaemon::start(
        &bus,
        "",
        "[services]\n\"web.service\" = \"busybox-httpd\"\n",
    );
    let s = d.wait_state("web.service", "inactive");
    assert_eq!(s["source"], "config");
    assert_eq!(s["pid"], serde_json::Value::Null, "not running: no PID");
    let v = d.ctl_json(&["status"]);
    assert_eq!(v["services"]["assigned"], 1);
    assert_eq!(v["state"], "ok", "a stopped service is not a problem");
}

#[test]
fn bad_input_gives_clear_errors_and_writes_nothing() {
    let bus = TestBus::start();
    let d = TestDaemon::start(&bus, "", "");
    let cases = [
        (
            vec!["confine", "web.service", "no-such-profile"],
            "profile no-such-profile:",
        ),
        (
            vec!["confine", "../../etc/x.service", "base"],
            "is not a service unit name",
        ),
        (
            vec!["confine", "web.socket", "base"],
            "is not a service unit name",
        ),
        (
            vec!["confine", "web.service", "/tmp/evil.toml"],
            "not a path",
        ),
        (
            vec!["release", "web.service"],
            "is not confined by a hardend drop-in",
        ),
        (
            vec!["confine", "web.service", "base"],
            "systemd is not on the daemon's bus",
        ),
    ];
    for (args, needle) in cases {
        let out = d.ctl(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    }
    fs::write(
        d.path("profiles/broken.toml"),
        "[landlock]\nread = [\"relative\"]\n",
    )
    .unwrap();
    let out = d.ctl(&["confine", "web.service", "broken"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.toml:2: landlock.read"));
    for dir in ["etc-systemd", "run-systemd"] {
        assert!(!d.path(dir).exists(), "{dir} must not be created");
    }
    // hardenctl's exit status when the daemon is not there at all
    let out = Command::new(hardenctl())
        .args(["--bus", "unix:path=/nonexistent/bus", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot connect to the unix:path=/nonexistent/bus bus")
    );
}

#[test]
fn a_bad_config_stops_startup_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("hardend.toml");
    fs::write(&conf, "[daemon]\nverify_interval = \"often\"\n").unwrap();
    let out = Command::new(hardend())
        .arg("--config")
        .arg(&conf)
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:2:", conf.display())), "{err}");
    fs::write(
        &conf,
        "[services]\n\"ok.service\" = \"p\"\n\"bad name\" = \"p\"\n",
    )
    .unwrap();
    let bus = TestBus::start();
    let out = Command::new(hardend())
        .arg("--config")
        .arg(&conf)
        .arg("--bus")
        .arg(&bus.address)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:3: services:", conf.display())),
        "{err}"
    );
}

#[test]
fn killing_the_daemon_leaves_services_confined_and_a_restart_finds_them() {
    let bus = TestBus::start();
    let mut d = TestDaemon::start(&bus, "verify_interval = 1", "");
    with_sleeper(&d);
    let mut child = d.start_confined("sleeper.service", "sleeper", &["sleep", "30"]);
    d.wait_state("sleeper.service", confined_state());
    d.kill(libc::SIGKILL);
    assert_eq!(d.ctl(&["status"]).status.code(), Some(1), "daemon gone");
    let (nnp, seccomp) = proc_confinement(child.id());
    assert_eq!(
        (nnp.as_str(), seccomp.as_str()),
        ("1", "2"),
        "still confined by the kernel"
    );
    d.spawn();
    let s = d.wait_state("sleeper.service", confined_state());
    assert_eq!(s["pid"], child.id());
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn sighup_reloads_and_a_bad_config_keeps_the_old_one() {
    let bus = TestBus::start();
    let mut d = TestDaemon::start(&bus, "verify_interval = 30", "");
    let conf = d.path("hardend.toml");
    let good = fs::read_to_string(&conf).unwrap();
    fs::write(
        &conf,
        good.replace("verify_interval = 30", "verify_interval = 7"),
    )
    .unwrap();
    let pid = d.child.as_ref().unwrap().id() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    let mut seen = 0;
    for _ in 0..100 {
        seen = d.ctl_json(&["status"])["verify_interval"].as_u64().unwrap();
        if seen == 7 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(seen, 7);
    fs::write(&conf, "[daemon]\nbogus = 1\n").unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        d.ctl_json(&["status"])["verify_interval"],
        7,
        "old config kept"
    );
    assert!(
        d.log()
            .contains("reload failed, keeping the previous configuration"),
        "{}",
        d.log()
    );
    // and Reload over D-Bus reports the same error to the caller
    let out = d.ctl(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `bogus`"));
    d.kill(libc::SIGTERM);
}

#[tokio::test(flavor = "current_thread")]
async fn enforcement_changes_are_signalled() {
    use futures_util::StreamExt;
    use hardend::api::ManagerProxy;
    let bus = TestBus::start();
    let d = TestDaemon::start(&bus, "verify_interval = 1", "");
    with_sleeper(&d);
    // assigned first (inactive: nothing runs), so the first signal is the confined start
    d.assign("sleeper.service", "sleeper");
    d.wait_state("sleeper.service", "inactive");
    let conn = zbus::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .build()
        .await
        .unwrap();
    let proxy = ManagerProxy::new(&conn).await.unwrap();
    let mut signals = proxy.receive_service_enforcement_changed().await.unwrap();
    let mut child = d.start_unassigned("sleeper.service", "sleeper", &["sleep", "30"]);
    let sig = tokio::time::timeout(std::time::Duration::from_secs(10), signals.next())
        .await
        .expect("a signal within 10 s")
        .unwrap();
    let a = sig.args().unwrap();
    assert_eq!(*a.unit(), "sleeper.service");
    assert_eq!(*a.new_state(), confined_state());
    fs::write(
        d.path("profiles/sleeper.toml"),
        format!("{SLEEPER}deny = [\"@ipc\"]\n"),
    )
    .unwrap();
    let sig = tokio::time::timeout(std::time::Duration::from_secs(10), signals.next())
        .await
        .expect("a second signal")
        .unwrap();
    let a = sig.args().unwrap();
    assert_eq!(
        (*a.old_state(), *a.new_state()),
        (confined_state(), "stale")
    );
    // the read-only calls through the generated proxy
    assert_eq!(proxy.version().await.unwrap(), env!("CARGO_PKG_VERSION"));
    let (svc,) = proxy.get_service("sleeper.service").await.unwrap();
    assert_eq!(svc.state, hardend::api::ServiceState::Stale);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn verity_status_of_a_root_that_is_not_on_verity() {
    let bus = TestBus::start();
    let d = TestDaemon::start(&bus, "", "[verity]\nroot_hash = \"ABCDEF01\"\n");
    let out = d.ctl(&["--json", "verity", "status"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "answered, but / is not verified"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = &v["verity"];
    // this host's / is a plain block device (CI and developer machines alike): a root hash
    // is expected, so that is the boot not having opened the verified root
    assert_eq!(v["state"], "unverified", "{v:#}");
    assert_eq!(v["mountpoint"], "/");
    assert_eq!(v["expected_root_hash"], "abcdef01");
    assert_eq!(v["expected_source"], "config");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("not a device-mapper device"),
        "{v:#}"
    );
    // ... and the daemon is degraded for it, naming why
    let st = d.ctl_json(&["status"]);
    assert_eq!(st["state"], "degraded", "{st:#}");
    assert_eq!(st["verity"]["bad"], true, "{st:#}");
    assert!(
        st["detail"]
            .as_str()
            .unwrap()
            .contains("dm-verity unverified: a root hash is expected (config)"),
        "{st:#}"
    );
    // a bad expected hash in the config is a startup error with file and line
    fs::write(d.path("bad.toml"), "[verity]\n\nroot_hash = \"xyz\"\n").unwrap();
    let out = Command::new(hardend())
        .arg("--config")
        .arg(d.path("bad.toml"))
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml:3: verity.root_hash"));
}

#[test]
fn release_dropins_for_the_packages_prerm_honours_the_configured_directories() {
    let d = tempfile::tempdir().unwrap();
    let etc = d.path().join("etc-systemd");
    let run = d.path().join("run-systemd");
    let cfg = d.path().join("hardend.toml");
    fs::write(
        &cfg,
        format!(
            "[daemon]\ndropin_dir = \"{}\"\nruntime_dropin_dir = \"{}\"\n",
            etc.display(),
            run.display()
        ),
    )
    .unwrap();
    let ours = "# managed by hardend: profile=web\n[Service]\n";
    for (dir, unit) in [(&etc, "web.service"), (&run, "try.service")] {
        fs::create_dir_all(dir.join(format!("{unit}.d"))).unwrap();
        fs::write(dir.join(format!("{unit}.d/50-hardend.conf")), ours).unwrap();
    }
    // an admin's own drop-in next to ours, and a file of the same name that is not ours
    fs::write(etc.join("web.service.d/60-admin.conf"), "[Service]\n").unwrap();
    fs::create_dir_all(etc.join("other.service.d")).unwrap();
    fs::write(etc.join("other.service.d/50-hardend.conf"), "[Service]\n").unwrap();
    let out = Command::new(hardend())
        .arg("--config")
        .arg(&cfg)
        .arg("--release-dropins")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let units: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(units, ["web.service", "try.service"]);
    assert!(!etc.join("web.service.d/50-hardend.conf").exists());
    assert!(
        etc.join("web.service.d/60-admin.conf").exists(),
        "the admin's file stays"
    );
    assert!(
        !run.join("try.service.d").exists(),
        "an emptied directory goes"
    );
    assert!(
        etc.join("other.service.d/50-hardend.conf").exists(),
        "not ours: kept"
    );
}

#[test]
fn an_expected_root_hash_on_a_root_that_is_not_verity_is_signalled() {
    use futures_util::StreamExt;
    let bus = TestBus::start();
    let d = TestDaemon::start(&bus, "", "");
    assert_eq!(
        d.ctl_json(&["verity", "status"])["verity"]["state"],
        "not-verity"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = hardend::api::connect(&d.bus).await.unwrap();
        let v = hardend::api::VerityProxy::new(&conn).await.unwrap();
        let mut sig = v.receive_verity_corruption().await.unwrap();
        // the integrator configures the expected hash; the boot did not open verity
        let cfg = fs::read_to_string(d.path("hardend.toml")).unwrap();
        fs::write(
            d.path("hardend.toml"),
            format!("{cfg}\n[verity]\nroot_hash = \"abcdef01\"\n"),
        )
        .unwrap();
        assert!(d.ctl(&["reload"]).status.success());
        let s = tokio::time::timeout(std::time::Duration::from_secs(10), sig.next())
            .await
            .expect("VerityCorruption within 10 s")
            .unwrap();
        let a = s.args().unwrap();
        assert!(
            a.detail().contains("a root hash is expected (config)"),
            "{}",
            a.detail()
        );
    });
    assert_eq!(
        d.ctl_json(&["verity", "status"])["verity"]["state"],
        "unverified"
    );
}
