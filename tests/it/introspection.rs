//! `units/org.hardend1.xml` (installed as /usr/share/dbus-1/interfaces/org.hardend1.xml for
//! third-party clients) is exactly what the running daemon serves for its four interfaces.
//! After a deliberate interface change: `HARDEND_UPDATE_INTROSPECTION=1 cargo test introspection`.

use crate::common::*;

/// The lines of the `<interface name="org.hardend1.…">` elements of an introspection
/// document, as they are.
fn our_lines(xml: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in xml.lines() {
        let t = line.trim();
        if t.starts_with("<interface name=\"org.hardend1.") {
            inside = true;
        }
        if inside {
            out.push(line);
        }
        if t == "</interface>" {
            inside = false;
        }
    }
    out
}

/// The same, with indentation normalised (what is compared).
fn ours(xml: &str) -> String {
    our_lines(xml)
        .iter()
        .map(|l| format!("{}\n", l.trim()))
        .collect()
}

#[test]
fn the_checked_in_introspection_file_is_what_the_daemon_serves() {
    let bus = TestBus::start();
    let d = TestDaemon::start(&bus, "", "");
    let out = std::process::Command::new("dbus-send")
        .args([
            &format!("--bus={}", bus.address),
            "--print-reply=literal",
            "--dest=org.hardend1",
            "/org/hardend1",
            "org.freedesktop.DBus.Introspectable.Introspect",
        ])
        .output()
        .expect("dbus-send");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply = String::from_utf8_lossy(&out.stdout).into_owned();
    let served = ours(&reply);
    assert!(served.contains("org.hardend1.Manager"), "{served}");
    assert!(served.contains("org.hardend1.Integrity"), "{served}");
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("units/org.hardend1.xml");
    if std::env::var_os("HARDEND_UPDATE_INTROSPECTION").is_some() {
        let doc = format!(
            "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n<!-- org.hardend1 on /org/hardend1: generated from the running daemon by tests/it/introspection.rs; documented in docs/dbus.md -->\n<node name=\"/org/hardend1\">\n{}</node>\n",
            our_lines(&reply)
                .iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>()
        );
        std::fs::write(&file, doc).expect("write introspection file");
    }
    let checked_in = ours(&std::fs::read_to_string(&file).expect("units/org.hardend1.xml"));
    assert_eq!(
        checked_in, served,
        "units/org.hardend1.xml differs from the running daemon; if the change is deliberate, regenerate it (see this file's header)"
    );
    drop(d);
}
