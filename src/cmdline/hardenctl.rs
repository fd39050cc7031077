//! `hardenctl`'s command line (clap). The binary parses it and hands it to
//! [`crate::cli::run`]; the man page generator renders it.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::profile::DEFAULT_SEARCH_PATH;

/// Administer hardend: confined services, profiles, confined execution.
#[derive(Parser, Debug)]
#[command(name = "hardenctl", version, about, long_about = None)]
pub struct Args {
    /// Print one JSON document instead of human-readable text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing on stdout (the exit status says how it went; errors still go to
    /// stderr). With --json the document is still printed. For exec: no summary.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Colon-separated directories searched for bare profile names.
    #[arg(long, global = true, value_delimiter = ':', default_values = DEFAULT_SEARCH_PATH)]
    pub profile_path: Vec<PathBuf>,
    /// The bus hardend is on: "system" or a D-Bus address (also $HARDEND_BUS).
    #[arg(long, global = true, env = "HARDEND_BUS", default_value = "system")]
    pub bus: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// One screen: the daemon and a line per pillar (services, integrity, identity, verity),
    /// the bad ones first. Exit 3 when degraded.
    Status,
    /// Every unit with a profile: state, PID, Landlock ABI. Exit 3 if one is not enforced.
    Services,
    /// Confine a unit by a profile: write its drop-in, reload systemd, restart, verify.
    Confine {
        /// The service unit, e.g. mosquitto.service (or just mosquitto).
        unit: String,
        /// A profile name from the daemon's profile path.
        profile: String,
        /// Write the drop-in under /run (gone at reboot), to try a profile.
        #[arg(long)]
        runtime: bool,
        /// Do not restart the unit (the profile applies from its next start).
        #[arg(long)]
        no_restart: bool,
    },
    /// Remove hardend's drop-in from a unit, reload systemd, restart it.
    Release {
        unit: String,
        #[arg(long)]
        no_restart: bool,
    },
    /// Make the daemon re-read its configuration and profiles.
    Reload,
    /// The device identity key in the TPM (through hardend, or --direct).
    Identity(IdentityArgs),
    /// Integrity monitoring of critical files (the daemon's baseline, violations, events).
    #[command(subcommand)]
    Integrity(IntegrityCmd),
    /// dm-verity hash trees (byte-compatible with veritysetup).
    #[command(subcommand)]
    Verity(VerityCmd),
    /// Inspect and validate profiles.
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// Check that this device is set up so that hardend's guarantees hold: the kernel's
    /// Landlock against every profile, the records directory, the D-Bus policy, the TPM
    /// device, the initramfs for a verified root, the integrity baseline, the drop-ins.
    /// Each problem comes with its remedy. Exit 3 when something is wrong.
    Doctor {
        /// Check the image mounted here instead of this system (the daemon and the kernel
        /// command line are then not checked).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// hardend.toml, as a path on the device.
        #[arg(long, default_value = crate::config::DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// How exposed each service is and how well the device is kept: per service unit,
    /// systemd's exposure (recomputed with the table of the systemd on this device, equal to
    /// `systemd-analyze security`) next to the combined score that counts hardend's proven
    /// layers, the biggest improvements with the command that makes them; then the device
    /// checks (SSH, accounts, world-writable and setuid files against dpkg, kernel sysctls,
    /// Secure Boot, TPM, verified root, integrity baseline, firewall, listening sockets).
    /// Exit 3 when a unit is above the threshold or a check fails at --fail-on or above.
    Audit {
        /// Only this service (no device checks).
        unit: Option<String>,
        /// Check the image mounted here (file checks only; units are not assessed).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// hardend.toml, as a path on the device (for [audit] threshold and fail_on).
        #[arg(long, default_value = crate::config::DEFAULT_CONFIG)]
        config: PathBuf,
        /// Units whose combined exposure is above this (0.0–10.0) make the audit bad
        /// (default: [audit] threshold, 8.9).
        #[arg(long)]
        threshold: Option<f64>,
        /// Failed device checks of this severity or higher make the audit bad (info, low,
        /// medium, high, critical; default: [audit] fail_on, high).
        #[arg(long, value_parser = parse_severity)]
        fail_on: Option<crate::audit::device::Severity>,
    },
    /// The CRA readiness report: each essential requirement of the Cyber Resilience Act's
    /// Annex I (and the support period) with this device's evidence — confinement and
    /// exposure (the audit), the verified root, the identity, integrity monitoring, update
    /// sources, the SBOM, vulnerability status, [report] of hardend.toml — a verdict (met,
    /// partial, not-met, not-assessed) and the remedy. Exit 3 when a requirement is not met.
    Report {
        /// Also write the report as one self-contained HTML page (no external resources).
        #[arg(long)]
        html: Option<PathBuf>,
        /// hardend.toml (for [report] and [audit]).
        #[arg(long, default_value = crate::config::DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// The device's software bill of materials: a CycloneDX 1.6 JSON document from dpkg's
    /// records (every installed package with purl, supplier, declared licences, the .deb's
    /// SHA-512 when apt's cache has it, the dependency graph) and the device as its subject.
    /// Offline; the document is printed (or written to --output) as is, also with --json.
    Sbom {
        /// The system mounted here instead of this one.
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Write the document to this file (atomically) instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Known vulnerabilities of the installed packages: the daemon's view of its signed
    /// feed ([vulns] in hardend.toml), or with --feed a feed read here — the Debian security
    /// tracker's JSON or OSV records, used only when its detached Ed25519 signature
    /// verifies, matched by source package and version for this release. Exit 3 when a fix
    /// is available, or the daemon's feed was refused.
    Vulns(VulnsArgs),
    /// Run a command confined by a profile, in the foreground (the same code path as
    /// hardend-exec). A summary of what is enforced goes to stderr.
    Exec {
        /// Profile name or path.
        #[arg(long)]
        profile: String,
        /// Use at most this Landlock ABI (to try the old-kernel path).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=10))]
        max_landlock_abi: Option<u8>,
        /// Also write an enforcement record into this directory.
        #[arg(long)]
        record_dir: Option<PathBuf>,
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
}

#[derive(clap::Args, Debug)]
pub struct IdentityArgs {
    /// Talk to the TPM directly instead of through hardend (root; for provisioning before
    /// the daemon runs).
    #[arg(long, global = true)]
    pub direct: bool,
    /// TCTI for --direct, e.g. device:/dev/tpmrm0 or swtpm:host=127.0.0.1,port=2321
    /// (default: $TCTI, else device:/dev/tpmrm0). Implies --direct.
    #[arg(long, global = true)]
    pub tcti: Option<String>,
    /// Where the key blobs are kept, with --direct (default /var/lib/hardend/identity).
    #[arg(long, global = true)]
    pub identity_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: IdentityCmd,
}

#[derive(Subcommand, Debug)]
pub enum IdentityCmd {
    /// State, public key, fingerprint, TPM, EK certificate, pending rotation; exit 3 unless
    /// the identity is ok or deliberately off (none, lost, no TPM, error).
    Show,
    /// Create the identity key (refused when one exists, also when it is lost).
    Create,
    /// A PKCS#10 certificate signing request for the fleet CA, signed inside the TPM.
    Csr {
        /// e.g. CN=gw-0042,O=Acme,C=DE (default: the daemon's [identity] subject, else
        /// CN=<hostname>).
        #[arg(long, default_value = "")]
        subject: String,
        /// For the pending identity of a rotation, to enrol it before committing.
        #[arg(long)]
        next: bool,
    },
    /// Quote sha256 PCRs with a verifier's nonce (attestation key, created on first use);
    /// prints a JSON bundle.
    Quote {
        #[arg(long)]
        nonce: String,
        /// PCR indices.
        #[arg(long, value_delimiter = ',', default_value = "0,1,2,3,4,5,6,7")]
        pcrs: Vec<u8>,
    },
    /// Check a quote bundle offline against your own nonce and a pinned attestation key:
    /// TPM_GENERATED magic, quote type, qualifiedSigner, nonce, PCR selection and digest,
    /// the key's attributes (exit 3 when invalid).
    #[command(group(clap::ArgGroup::new("pin").required(true).args(["ak", "ak_name"])))]
    VerifyQuote {
        file: PathBuf,
        /// The nonce the verifier sent (hex). Required: without it a valid quote proves no
        /// freshness.
        #[arg(long)]
        nonce: String,
        /// The enrolled attestation key: TPM2B_PUBLIC (binary or hex) or `enroll --json` output.
        #[arg(long)]
        ak: Option<PathBuf>,
        /// The enrolled attestation key's name (hex, from `enroll`).
        #[arg(long)]
        ak_name: Option<String>,
    },
    /// Sign a verifier's data inside the TPM: a DER ECDSA-SHA256 signature (hex) over
    /// "hardend device statement v1\0" followed by the data (see docs/attestation.md).
    Sign {
        /// The data, hex (1-1024 bytes); data beginning with ff544347 is refused.
        #[arg(long)]
        nonce: String,
    },
    /// What a fleet CA needs: the EK (certificate or public area), the attestation key's
    /// TPM2B_PUBLIC and name, an identity CSR; the EK certificate checked (exit 3 when it
    /// does not chain to --ek-ca or is not this TPM's EK).
    Enroll {
        /// Which endorsement key: rsa2048 or ecc-p256.
        #[arg(long, default_value = "rsa2048", value_parser = parse_ek)]
        ek: crate::tpm::ek::EkAlgorithm,
        /// CSR subject (default as for `csr`).
        #[arg(long, default_value = "")]
        subject: String,
        /// Directory of CA certificates the EK certificate must chain to (each a trust anchor).
        #[arg(long, default_value = "/etc/hardend/ek-ca")]
        ek_ca: PathBuf,
    },
    /// Answer a fleet's credential challenge (MakeCredential for this TPM's EK and the
    /// attestation key's name): prints the secret (hex) only this TPM can recover (root).
    Activate {
        /// tpm2-tools credential file (`tpm2_makecredential -o`).
        credential: PathBuf,
        #[arg(long, default_value = "rsa2048", value_parser = parse_ek)]
        ek: crate::tpm::ek::EkAlgorithm,
    },
    /// This device as a Keylime agent (`[attestation]`): register with a Keylime registrar,
    /// push quotes to a Keylime verifier. Uses the TPM directly (root), with an RSA
    /// attestation key of its own (see docs/attestation.md).
    Keylime {
        /// The configuration with `[attestation]` and `[identity]`.
        #[arg(long, default_value = crate::config::DEFAULT_CONFIG)]
        config: PathBuf,
        #[command(subcommand)]
        cmd: KeylimeCmd,
    },
    /// Make a new identity key beside the current one, which stays in use until --commit.
    /// Also the way to replace a lost identity.
    Rotate {
        /// Make the pending identity current and delete the old key.
        #[arg(long, conflicts_with = "abort")]
        commit: bool,
        /// Discard the pending identity.
        #[arg(long)]
        abort: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeylimeCmd {
    /// Register the EK and the attestation key with the registrar and answer its credential
    /// challenge in the TPM; the registrar then marks the agent active (root).
    Register,
    /// Attest to the verifier in push mode: prove the attestation key in a session, quote the
    /// PCRs the verifier asks for over its nonce, wait for its verdict (exit 3 unless it
    /// passed).
    Attest {
        /// Keep attesting at the pace the verifier asks for (at least [attestation] interval).
        #[arg(long = "loop")]
        forever: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum IntegrityCmd {
    /// The monitor and every path that differs from the baseline; exit 3 unless ok.
    Status,
    /// Make a new baseline from a full scan of every watch set (root).
    Init,
    /// Scan every watch set now and compare with the baseline (root); exit 3 on differences.
    Scan,
    /// The persistent event log; --follow then prints violations as they happen.
    Events {
        /// How many logged events to show.
        #[arg(short = 'n', long, default_value_t = 50)]
        count: u32,
        #[arg(long, short)]
        follow: bool,
    },
    /// dpkg is about to run (the dpkg pre-invoke hook, root): alerts wait for
    /// `accept --from-dpkg` (at most an hour from the first call), so package updates raise
    /// none; removals are later judged by what dpkg's database lists now.
    DpkgHold {
        /// dpkg's admin directory (default /var/lib/dpkg).
        #[arg(long)]
        dpkg_admin: Option<PathBuf>,
    },
    /// Take the current state of PATHs into the baseline (root), or with --from-dpkg
    /// every violation whose content matches its package's md5sum (the dpkg hook).
    Accept {
        #[arg(required_unless_present = "from_dpkg", conflicts_with = "from_dpkg")]
        paths: Vec<PathBuf>,
        #[arg(long)]
        from_dpkg: bool,
        /// dpkg's admin directory (default /var/lib/dpkg).
        #[arg(long, requires = "from_dpkg")]
        dpkg_admin: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum VerityCmd {
    /// Build the hash tree of DATA into HASH and print the root hash (exit 0).
    Format {
        data: PathBuf,
        #[arg(value_name = "HASH")]
        hash_device: PathBuf,
        #[command(flatten)]
        tree: crate::cli::verity::TreeArgs,
    },
    /// Recompute everything and compare with ROOT_HASH; names the first bad block (exit 3).
    Verify {
        data: PathBuf,
        #[arg(value_name = "HASH")]
        hash_device: PathBuf,
        root_hash: String,
        #[command(flatten)]
        tree: crate::cli::verity::TreeArgs,
    },
    /// Open a verity device (block devices) read-only as /dev/mapper/NAME (root).
    Open {
        name: String,
        data: PathBuf,
        #[arg(value_name = "HASH")]
        hash_device: PathBuf,
        root_hash: String,
        #[command(flatten)]
        tree: crate::cli::verity::TreeArgs,
        #[command(flatten)]
        open: crate::cli::verity::OpenArgs,
    },
    /// Remove a verity device.
    Close { name: String },
    /// Kernel status of a verity device (exit 0 verified, 3 corrupted); without NAME, the
    /// daemon's check of the root file system (exit 3 when corrupted, the wrong root hash,
    /// or not verified although a root hash is expected).
    Status { name: Option<String> },
    /// Print the superblock of HASH.
    Dump {
        #[arg(value_name = "HASH")]
        hash_device: PathBuf,
        #[arg(long, default_value_t = 0)]
        hash_offset: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProfileCmd {
    /// List the profiles: the daemon's, or the local profile path when it is not running.
    List,
    /// Show a profile with its includes merged.
    Show {
        /// Profile name or path.
        name: String,
        /// Expand syscall groups into syscall names for the architecture.
        #[arg(long)]
        expand: bool,
        /// Architecture for --expand (x86_64 or aarch64; default: this machine's).
        #[arg(long)]
        arch: Option<String>,
    },
    /// Validate profile files: syntax, keys, paths, ports, syscalls, includes, and that the
    /// seccomp filter compiles for x86_64 and aarch64. Exit 3 if any is invalid.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn parse_ek(s: &str) -> Result<crate::tpm::ek::EkAlgorithm, String> {
    s.parse().map_err(|e: crate::tpm::TpmError| e.to_string())
}

/// `hardenctl vulns`: where the feed, its signature and key are and what to match it against.
#[derive(clap::Args, Debug)]
pub struct VulnsArgs {
    /// The feed to read here (default: ask the daemon about its own).
    #[arg(long)]
    pub feed: Option<PathBuf>,
    /// Have the daemon read and match its feed now instead of at its next check (root).
    #[arg(long, conflicts_with = "feed")]
    pub evaluate: bool,
    /// Its detached signature (default: FEED.sig).
    #[arg(long, requires = "feed")]
    pub signature: Option<PathBuf>,
    /// The Ed25519 public key (PEM) the feed must be signed with.
    #[arg(long, requires = "feed", default_value = "/etc/hardend/feed-key.pem")]
    pub key: PathBuf,
    /// The system mounted here instead of this one.
    #[arg(long, requires = "feed", default_value = "/")]
    pub root: PathBuf,
    /// The release to match: a codename for the tracker's format, the version number
    /// for OSV (default: VERSION_CODENAME or VERSION_ID from os-release).
    #[arg(long, requires = "feed")]
    pub release: Option<String>,
    /// The feed's format.
    #[arg(long, requires = "feed", value_enum, default_value = "tracker")]
    pub format: crate::vulns::feed::Format,
}

fn parse_severity(s: &str) -> Result<crate::audit::device::Severity, String> {
    crate::audit::device::Severity::parse(s)
        .ok_or_else(|| format!("{s:?} is not a severity (info, low, medium, high, critical)"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
