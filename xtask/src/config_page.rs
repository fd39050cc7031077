//! hardend.toml(5), from `units/hardend.toml`: the installed example is the reference — every
//! key with its default and meaning — so the page shows it as it is, with what applies to
//! all keys around it.

use crate::sections::roff;

const EXAMPLE: &str = include_str!("../../units/hardend.toml");

pub fn page(version: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        ".TH hardend.toml 5 \"\" \"hardend {version}\" \"File Formats\"\n"
    ));
    out.push_str(".SH NAME\nhardend.toml \\- configuration of the hardend daemon\n");
    out.push_str(".SH SYNOPSIS\n/etc/hardend/hardend.toml\n");
    out.push_str(&format!(
        ".SH DESCRIPTION\n{}\n.PP\n{}\n.PP\n{}\n",
        roff("A TOML file read by hardend(8) at startup and on reload (SIGHUP, systemctl reload hardend, hardenctl reload). Every key is optional; a missing file means the defaults. Unknown keys and bad values are errors naming the file, line and key: the daemon does not start with such a file, and on reload it keeps its previous configuration."),
        roff("Durations (verify_interval, restart_timeout, scan_interval) are strings such as \"30s\", \"5m\", \"24h\", or a number of seconds. Paths must be absolute."),
        roff("hardend --check-config validates the file; hardenctl doctor checks it together with the rest of the set-up."),
    ));
    out.push_str(".SH \"KEYS AND DEFAULTS\"\nThe file as the package installs it, every key commented out at its default:\n.PP\n.nf\n.RS 2\n");
    for line in EXAMPLE.lines() {
        out.push_str(&roff(line));
        out.push('\n');
    }
    out.push_str(".RE\n.fi\n");
    out.push_str(".SH FILES\n.TP\n\\fB/etc/hardend/hardend.toml\\fR\nthe configuration\n.TP\n\\fB/etc/hardend/profiles\\fR, \\fB/usr/share/hardend/profiles\\fR\nprofiles ([daemon] profile_path)\n");
    out.push_str(".SH \"SEE ALSO\"\nhardend(8), hardenctl(1), hardend\\-exec(8)\n");
    out
}
