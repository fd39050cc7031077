//! hardend.prom against the real peer: Debian's `prometheus-node-exporter` with its textfile
//! collector reads the directory the daemon writes into and serves the series over HTTP; a
//! file it could not parse would show as `node_textfile_scrape_error 1`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::vulns::{NEW_FIXABLE, evaluated, feed_daemon_with, image_feed};

struct NodeExporter {
    child: Child,
    port: u16,
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeExporter {
    fn start(dir: &std::path::Path) -> NodeExporter {
        let (port, _) = crate::common::swtpm::two_free_ports();
        let child = Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(["--collector.disable-defaults", "--collector.textfile"])
            .arg(format!("--collector.textfile.directory={}", dir.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter (apt-get install prometheus-node-exporter)");
        let n = NodeExporter { child, port };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return n;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("node_exporter did not listen on {port}");
    }

    /// One scrape of /metrics.
    fn scrape(&self) -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// Scrapes until `f` holds (at most 30 s); returns that scrape.
    fn until(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let m = self.scrape();
            if f(&m) {
                return m;
            }
            assert!(Instant::now() < end, "{what} never scraped; last:\n{m}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn node_exporter_scrapes_every_pillar_and_a_state_change_shows_in_the_next_scrape() {
    let prom = tempfile::tempdir().unwrap();
    let d = tempfile::tempdir().unwrap();
    let (_bus, daemon, key) = feed_daemon_with(
        d.path(),
        &image_feed(""),
        &format!(
            "[metrics]\ndir = \"{}\"\ninterval = \"5s\"\n",
            prom.path().display()
        ),
    );
    assert_eq!(evaluated(&daemon)["state"], "ok");
    let ne = NodeExporter::start(prom.path());
    // tar's CVE-2024-0002 is open (urgency low); labels come back sorted by name
    let m = ne.until("the vulnerability state", |m| {
        m.contains("hardend_vulns_state{state=\"ok\"} 1")
            && m.contains("hardend_vulnerabilities{urgency=\"low\",verdict=\"open\"} 1")
    });
    assert!(m.contains("node_textfile_scrape_error 0"), "{m}");
    assert!(
        m.contains(&format!(
            "hardend_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{m}"
    );
    for pillar in ["services", "integrity", "identity", "verity", "vulns"] {
        assert!(
            m.contains(&format!("hardend_bad{{pillar=\"{pillar}\"}} ")),
            "{pillar}: {m}"
        );
    }
    assert!(
        m.contains("hardend_identity_state{state=\"disabled\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("hardend_integrity_violations{severity=\"critical\"} 0"),
        "{m}"
    );
    assert!(m.contains("# HELP hardend_bad "), "HELP kept: {m}");
    let mtime = m
        .lines()
        .find(|l| l.starts_with("node_textfile_mtime_seconds{") && l.contains("hardend.prom"))
        .unwrap_or_else(|| panic!("no mtime for hardend.prom: {m}"))
        .to_string();

    // a new fixable CVE: the next scrapes show it, the pillar is bad
    let feed = d.path().join("feed.json");
    std::fs::write(&feed, image_feed(NEW_FIXABLE)).unwrap();
    key.sign(&feed);
    let m = ne.until("the new fixable CVE", |m| {
        m.contains("hardend_vulns_state{state=\"fix-available\"} 1")
            && m.contains("hardend_vulnerabilities{urgency=\"high\",verdict=\"fix-available\"} 1")
    });
    assert!(m.contains("hardend_bad{pillar=\"vulns\"} 1"), "{m}");
    assert!(m.contains("node_textfile_scrape_error 0"), "{m}");
    // the file was rewritten, not edited in place: node_exporter sees a new mtime
    assert!(!m.contains(&mtime), "{mtime}");
    // written atomically: no temporary file left beside it
    let left: Vec<_> = std::fs::read_dir(prom.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from("hardend.prom")]);

    // metrics turned off: the file goes, node_exporter serves no stale hardend series
    let conf = daemon.path("hardend.toml");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        text.replace("[metrics]\n", "[metrics]\nenabled = false\n"),
    )
    .unwrap();
    assert_eq!(daemon.ctl(&["reload"]).status.code(), Some(0));
    ne.until("no hardend series", |m| !m.contains("hardend_bad"));
    assert!(!prom.path().join("hardend.prom").exists());
}

#[test]
fn a_directory_others_may_change_or_a_link_to_one_is_not_written_into() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let open = d.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let target = d.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let link = d.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for (dir, why) in [
        (&open, "only a directory only root can change is written to"),
        (&link, "not a directory (a link is not followed)"),
    ] {
        let feeds = tempfile::tempdir().unwrap();
        let (_bus, daemon, _key) = feed_daemon_with(
            feeds.path(),
            &image_feed(""),
            &format!("[metrics]\ndir = \"{}\"\n", dir.display()),
        );
        let end = Instant::now() + Duration::from_secs(20);
        while !daemon.log().contains(why) {
            assert!(Instant::now() < end, "{why}: {}", daemon.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!dir.join("hardend.prom").exists());
        assert!(!target.join("hardend.prom").exists());
        // said once, not at every tick
        std::thread::sleep(Duration::from_secs(3));
        assert_eq!(daemon.log().matches(why).count(), 1, "{}", daemon.log());
    }
}
