//! The man page sections clap knows nothing of: EXIT STATUS, FILES, EXAMPLES, SEE ALSO —
//! per page, in roff.

/// Extra sections of one page.
#[derive(Default)]
pub struct Extra {
    /// (status, meaning).
    pub exit: &'static [(&'static str, &'static str)],
    /// (path, what it is).
    pub files: &'static [(&'static str, &'static str)],
    /// (command line, what it does).
    pub examples: &'static [(&'static str, &'static str)],
    pub see_also: &'static str,
}

const STATUS_GOOD: (&str, &str) = (
    "0",
    "Good: the command did what was asked and the state it reports is good.",
);
const STATUS_ERROR: (&str, &str) = (
    "1",
    "Error: the daemon is not running, permission denied, an input file is missing or unreadable, or the daemon refused the call.",
);
const STATUS_USAGE: (&str, &str) = (
    "2",
    "Usage: an unknown option, a malformed argument, an option that does not apply to the command.",
);

const fn answered(bad: &'static str) -> [(&'static str, &'static str); 4] {
    [STATUS_GOOD, STATUS_ERROR, STATUS_USAGE, ("3", bad)]
}

const SEE_ALSO_CTL: &str = "hardenctl(1), hardend(8), hardend-exec(8), hardend.toml(5); /usr/share/doc/hardend: profiles, operations, json, dbus, walkthrough";

const STATUS: [(&str, &str); 4] = answered(
    "Answered, but degraded: a unit not-enforced, stale or failed; integrity violations, tampered, error or no baseline; the identity lost, no TPM or error; the verified root corrupted or with the wrong root hash; a fix available for an installed package, the vulnerability feed refused or unreadable. Pillars that are deliberately off are not bad.",
);
const SERVICES: [(&str, &str); 4] = answered("A unit is not-enforced, stale or failed.");
const VULNS: [(&str, &str); 4] = answered(
    "A fix is available for an installed package, or the daemon's latest feed was refused or could not be matched (the findings shown are the last verified feed's).",
);
const PROFILES: [(&str, &str); 4] =
    answered("A profile is invalid (one that cannot be found or read is an error, 1).");
const VERIFY: [(&str, &str); 4] =
    answered("The tree does not match the root hash; the output names the first bad block.");
const VSTATUS: [(&str, &str); 4] = answered(
    "Corrupted, the wrong root hash, or not verified although a root hash is expected (with NAME: the kernel saw corruption).",
);
const IDENTITY: [(&str, &str); 4] =
    answered("The identity is none, lost, no-tpm or error (disabled is not bad).");
const QUOTE: [(&str, &str); 4] =
    answered("The quote is not valid: signature, nonce or PCR digest.");
const INTEGRITY: [(&str, &str); 4] =
    answered("Violations, tampered, error or no baseline (disabled is not bad).");
const ACCEPT: [(&str, &str); 4] =
    answered("With --from-dpkg: some changes were refused, dpkg does not vouch for them.");
const DOCTOR: [(&str, &str); 4] = answered("A check found a problem; its remedy is printed.");
const PLAIN: [(&str, &str); 3] = [STATUS_GOOD, STATUS_ERROR, STATUS_USAGE];

const CTL_FILES: &[(&str, &str)] = &[
    (
        "/etc/hardend/profiles, /usr/share/hardend/profiles",
        "profiles, searched in this order (--profile-path)",
    ),
    (
        "/etc/hardend/hardend.toml",
        "the daemon's configuration, see hardend.toml(5)",
    ),
    (
        "/run/hardend/enforced",
        "enforcement records written by hardend-exec",
    ),
];

/// The extra sections for the page `name` (`hardenctl-status`, `hardend`, ...).
pub fn for_page(name: &str) -> Extra {
    let ex = |examples| Extra {
        examples,
        see_also: SEE_ALSO_CTL,
        ..Extra::default()
    };
    let mut e = match name {
        "hardenctl" => Extra {
            exit: &STATUS,
            files: CTL_FILES,
            examples: &[
                (
                    "hardenctl status",
                    "one screen: the daemon and a line per pillar, the bad ones first",
                ),
                (
                    "hardenctl doctor",
                    "is the device set up so that the guarantees hold? each problem with its remedy",
                ),
                (
                    "hardenctl confine mosquitto mosquitto",
                    "confine mosquitto.service by the shipped profile",
                ),
                (
                    "hardenctl --json services | jq '.services[].state'",
                    "the documented JSON (docs/json.md)",
                ),
                (
                    "hardenctl exec --profile ./my.toml -- /usr/sbin/mydaemon -f",
                    "try a profile in the foreground",
                ),
            ],
            see_also: SEE_ALSO_CTL,
        },
        "hardenctl-status" => Extra {
            exit: &STATUS,
            ..ex(&[
                ("hardenctl status", "one screen"),
                (
                    "hardenctl --json status | jq .integrity",
                    "one pillar, for monitoring",
                ),
            ])
        },
        "hardenctl-services" => Extra {
            exit: &SERVICES,
            ..ex(&[(
                "hardenctl services",
                "every unit with a profile, its state, PID, Landlock ABI",
            )])
        },
        "hardenctl-confine" => Extra {
            exit: &SERVICES,
            files: &[(
                "/etc/systemd/system/UNIT.d/50-hardend.conf",
                "the drop-in (with --runtime: under /run/systemd/system)",
            )],
            ..ex(&[
                (
                    "hardenctl confine mosquitto mosquitto",
                    "confine, restart, verify; restored if the unit fails under the profile",
                ),
                (
                    "hardenctl confine --runtime web web-test",
                    "until the next reboot only",
                ),
            ])
        },
        "hardenctl-release" => Extra {
            exit: &PLAIN,
            ..ex(&[(
                "hardenctl release mosquitto",
                "remove hardend's drop-in and restart the unit",
            )])
        },
        "hardenctl-reload" => Extra {
            exit: &PLAIN,
            ..ex(&[(
                "hardenctl reload",
                "re-read hardend.toml and the profiles (also: systemctl reload hardend)",
            )])
        },
        "hardenctl-doctor" => Extra {
            exit: &DOCTOR,
            files: &[
                (
                    "/usr/share/dbus-1/system.d/org.hardend1.conf",
                    "the bus policy, compared with the shipped one",
                ),
                ("/run/hardend/enforced", "must be root-owned, mode 1733"),
                (
                    "/var/lib/hardend/integrity/baseline.db",
                    "the integrity baseline",
                ),
            ],
            ..ex(&[
                ("hardenctl doctor", "this system"),
                (
                    "hardenctl doctor --root /mnt/image",
                    "an image, before it is flashed",
                ),
            ])
        },
        "hardenctl-exec" => Extra {
            exit: &[
                (
                    "1",
                    "The profile is invalid or the confinement could not be made; nothing was run.",
                ),
                (
                    "126",
                    "The program exists but cannot be executed (not under read_exec, or not executable at all).",
                ),
                ("127", "The program was not found."),
                ("other", "Once the program runs, its own exit status."),
            ],
            ..ex(&[(
                "hardenctl exec --profile busybox-httpd -- busybox httpd -f -p 8080",
                "run a program confined, in the foreground",
            )])
        },
        "hardenctl-profile" | "hardenctl-profile-list" | "hardenctl-profile-check" => Extra {
            exit: &PROFILES,
            files: CTL_FILES,
            ..ex(&[(
                "hardenctl profile check mosquitto ./my.toml",
                "names on the profile path, or files",
            )])
        },
        "hardenctl-profile-show" => Extra {
            exit: &PLAIN,
            ..ex(&[(
                "hardenctl profile show mosquitto --expand",
                "the merged profile and every syscall it allows",
            )])
        },
        "hardenctl-verity" | "hardenctl-verity-verify" => Extra {
            exit: &VERIFY,
            ..ex(&[
                (
                    "hardenctl verity format root.img root.hash",
                    "build the hash tree, print the root hash",
                ),
                (
                    "hardenctl verity verify root.img root.hash ROOTHASH",
                    "check it offline; names the first bad block",
                ),
            ])
        },
        "hardenctl-verity-status" => Extra {
            exit: &VSTATUS,
            ..ex(&[
                ("hardenctl verity status", "the daemon's check of /"),
                (
                    "hardenctl verity status vroot",
                    "the kernel's status of one device",
                ),
            ])
        },
        "hardenctl-identity" | "hardenctl-identity-show" => Extra {
            exit: &IDENTITY,
            files: &[
                (
                    "/var/lib/hardend/identity",
                    "the key blobs (useless without this TPM)",
                ),
                ("/dev/tpmrm0", "the TPM"),
            ],
            ..ex(&[
                (
                    "hardenctl identity create",
                    "the device key, inside the TPM",
                ),
                (
                    "hardenctl identity csr --subject CN=gw-0042,O=Acme",
                    "a CSR for the fleet CA, signed in the TPM",
                ),
            ])
        },
        "hardenctl-identity-verify-quote" => Extra {
            exit: &QUOTE,
            ..ex(&[(
                "hardenctl identity verify-quote quote.json --nonce c0ffee --ak enroll.json",
                "offline check of a quote bundle against your nonce and the enrolled key",
            )])
        },
        "hardenctl-integrity" | "hardenctl-integrity-status" | "hardenctl-integrity-scan" => {
            Extra {
                exit: &INTEGRITY,
                files: &[(
                    "/var/lib/hardend/integrity",
                    "the baseline, its key (or TPM-sealed key) and the event log",
                )],
                ..ex(&[
                    (
                        "hardenctl integrity init",
                        "the first baseline, on a known-good system",
                    ),
                    (
                        "hardenctl integrity status",
                        "every path that differs from the baseline",
                    ),
                ])
            }
        }
        "hardenctl-integrity-accept" => Extra {
            exit: &ACCEPT,
            ..ex(&[(
                "hardenctl integrity accept /etc/ssh/sshd_config",
                "a change made on purpose becomes the baseline",
            )])
        },
        "hardenctl-vulns" => Extra {
            exit: &VULNS,
            files: &[
                (
                    "/etc/hardend/feed-key.pem",
                    "the fleet's Ed25519 public key the feed must verify with",
                ),
                (
                    "/var/lib/dpkg/status",
                    "the installed packages matched (under --root)",
                ),
            ],
            ..ex(&[
                (
                    "hardenctl vulns",
                    "the daemon's view of its [vulns] feed: state, counts, what has a fix",
                ),
                (
                    "hardenctl vulns --feed feed.json --key fleet.pub.pem",
                    "match a feed here, verified against the key, without the daemon",
                ),
            ])
        },
        n if n.starts_with("hardenctl-") => Extra {
            exit: &PLAIN,
            ..ex(&[])
        },
        "hardend" => Extra {
            exit: &[
                ("0", "Stopped by SIGTERM or SIGINT."),
                (
                    "1",
                    "The configuration is invalid or the bus name could not be taken.",
                ),
            ],
            files: &[
                (
                    "/etc/hardend/hardend.toml",
                    "configuration, see hardend.toml(5); SIGHUP re-reads it",
                ),
                (
                    "/run/hardend/enforced",
                    "enforcement records, read to verify each service",
                ),
                (
                    "/var/lib/hardend",
                    "identity blobs and the integrity baseline",
                ),
            ],
            examples: &[
                (
                    "hardend --check-config",
                    "validate /etc/hardend/hardend.toml",
                ),
                (
                    "hardend --config ./hardend.toml --bus unix:path=/tmp/bus",
                    "on a private bus (tests, demos)",
                ),
            ],
            see_also: "hardenctl(1), hardend-exec(8), hardend.toml(5), systemd.exec(5)",
        },
        "hardend-exec" => Extra {
            exit: &[
                (
                    "1",
                    "The profile is invalid or the confinement could not be made; the service is not started.",
                ),
                ("126", "The program cannot be executed under the profile."),
                ("127", "The program was not found."),
            ],
            files: &[(
                "/run/hardend/enforced",
                "the enforcement record of each confined process",
            )],
            examples: &[(
                "ExecStart=/usr/libexec/hardend/hardend-exec --profile mosquitto --unit mosquitto.service -- /usr/sbin/mosquitto -c /etc/mosquitto/mosquitto.conf",
                "what hardend's drop-in writes",
            )],
            see_also: "hardend(8), hardenctl(1)",
        },
        _ => Extra::default(),
    };
    if e.see_also.is_empty() {
        e.see_also = SEE_ALSO_CTL;
    }
    e
}

/// Text for roff: backslashes and a leading dot or quote escaped.
pub fn roff(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// The sections in roff, to append to clap_mangen's page.
pub fn render(e: &Extra) -> String {
    let mut out = String::new();
    let list = |out: &mut String, title: &str, items: &[(&str, &str)]| {
        if items.is_empty() {
            return;
        }
        out.push_str(&format!(".SH \"{title}\"\n"));
        for (term, text) in items {
            out.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(term), roff(text)));
        }
    };
    list(&mut out, "EXIT STATUS", e.exit);
    list(&mut out, "FILES", e.files);
    list(&mut out, "EXAMPLES", e.examples);
    if !e.see_also.is_empty() {
        out.push_str(&format!(".SH \"SEE ALSO\"\n{}\n", roff(e.see_also)));
    }
    out
}
