//! From the parsed command line to the command that answers it.

use std::process::ExitCode;

use super::{CliError, Exit, Output};
use crate::cmdline::hardenctl::{
    Args, Command, IdentityArgs, IdentityCmd, IntegrityCmd, KeylimeCmd, ProfileCmd, VerityCmd,
};
use crate::profile::ProfileLoader;

fn identity(out: &Output, bus: &str, a: IdentityArgs) -> Result<Exit, CliError> {
    use super::identity::{self as id, Backend, Rotation};
    if let IdentityCmd::Keylime { config, cmd } = &a.cmd {
        use super::keylime;
        let agent = keylime::Agent::load(config, a.tcti.as_deref(), a.identity_dir.as_deref())?;
        return match cmd {
            KeylimeCmd::Register => keylime::register(out, &agent),
            KeylimeCmd::Attest { forever } => keylime::attest(out, &agent, *forever),
        };
    }
    let b = Backend::choose(bus, a.direct, a.tcti.as_deref(), a.identity_dir.as_deref())?;
    match a.cmd {
        IdentityCmd::Show => id::show(out, &b),
        IdentityCmd::Create => id::create(out, &b),
        IdentityCmd::Csr { subject, next } => id::csr(out, &b, &subject, next),
        IdentityCmd::Quote { nonce, pcrs } => id::quote(out, &b, &nonce, &pcrs),
        IdentityCmd::Sign { nonce } => id::sign(out, &b, &nonce),
        IdentityCmd::Rotate { commit, abort } => {
            let what = match (commit, abort) {
                (true, _) => Rotation::Commit,
                (_, true) => Rotation::Abort,
                _ => Rotation::Start,
            };
            id::rotate(out, &b, what)
        }
        IdentityCmd::Enroll { ek, subject, ek_ca } => id::enroll(out, &b, ek, &subject, &ek_ca),
        IdentityCmd::Activate { credential, ek } => id::activate(out, &b, ek, &credential),
        IdentityCmd::VerifyQuote {
            file,
            nonce,
            ak,
            ak_name,
        } => id::verify_quote(out, &file, &nonce, ak.as_deref(), ak_name.as_deref()),
        IdentityCmd::Keylime { .. } => Err(CliError::Usage("keylime: handled above".into())),
    }
}

/// Whether `id` was given on the command line (not a default, not the environment), at
/// whatever level of subcommands.
fn given(m: &clap::ArgMatches, id: &str) -> bool {
    let here = matches!(
        m.try_get_raw(id).ok().flatten().and(m.value_source(id)),
        Some(clap::parser::ValueSource::CommandLine)
    );
    here || m.subcommand().is_some_and(|(_, sub)| given(sub, id))
}

/// A global option given to a command that does not use it (it would be ignored silently).
fn inapplicable(args: &Args, m: &clap::ArgMatches) -> Option<String> {
    let uses_bus = match &args.command {
        Command::Exec { .. } => false,
        Command::Profile(ProfileCmd::Show { .. } | ProfileCmd::Check { .. }) => false,
        Command::Verity(VerityCmd::Status { name }) => name.is_none(),
        Command::Verity(_) => false,
        Command::Identity(IdentityArgs {
            cmd: IdentityCmd::VerifyQuote { .. },
            ..
        }) => false,
        Command::Identity(a) => !a.direct && a.tcti.is_none(),
        Command::Sbom { .. } => false,
        Command::Audit { root, .. } => root == std::path::Path::new("/"),
        Command::Report { .. } => true,
        Command::Vulns(v) => v.feed.is_none(),
        _ => true,
    };
    let uses_profile_path = matches!(&args.command, Command::Exec { .. } | Command::Profile(_));
    if given(m, "bus") && !uses_bus {
        return Some("--bus does not apply to this command: it does not talk to the daemon".into());
    }
    if given(m, "profile_path") && !uses_profile_path {
        return Some(
            "--profile-path does not apply to this command: only `profile` and `exec` read profiles here (the daemon uses [daemon] profile_path in hardend.toml)".into(),
        );
    }
    None
}

/// [`run`], after refusing global options the command would ignore.
pub fn run_matched(args: Args, m: &clap::ArgMatches) -> ExitCode {
    if let Some(why) = inapplicable(&args, m) {
        Output::new(args.json).error(&CliError::Usage(why));
        return ExitCode::from(2);
    }
    run(args)
}

/// `--quiet`: stdout goes to /dev/null for the rest of the process (every println! of every
/// command, without threading a flag through each).
fn silence_stdout() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // dup2 onto fd 1 replaces stdout atomically; `null` is closed when dropped
        let _ = rustix::stdio::dup2_stdout(&null);
    }
}

/// Runs one `hardenctl` command and returns its exit status (0 good, 1 error, 2 usage,
/// 3 answered but the state is bad).
pub fn run(args: Args) -> ExitCode {
    let loader = ProfileLoader::new(args.profile_path);
    let mut out = Output::new(args.json);
    // exec: stdout belongs to the program; the record and any error go to stderr
    out.json_to_stderr = matches!(args.command, Command::Exec { .. });
    out.quiet = args.quiet;
    if args.quiet && !args.json && !out.json_to_stderr {
        silence_stdout();
    }
    let result = match args.command {
        Command::Status => super::manager::status(&out, &args.bus),
        Command::Services => super::manager::services(&out, &args.bus),
        Command::Confine {
            unit,
            profile,
            runtime,
            no_restart,
        } => super::manager::confine(&out, &args.bus, &unit, &profile, runtime, no_restart),
        Command::Release { unit, no_restart } => {
            super::manager::release(&out, &args.bus, &unit, no_restart)
        }
        Command::Reload => super::manager::reload(&out, &args.bus),
        Command::Sbom { root, output } => super::sbom::run(&root, output.as_deref()),
        Command::Report { html, config } => super::report::run(
            &out,
            &super::report::Request {
                config: &config,
                bus: &args.bus,
                html: html.as_deref(),
            },
        ),
        Command::Audit {
            unit,
            root,
            config,
            threshold,
            fail_on,
        } => super::audit::run(
            &out,
            &super::audit::Request {
                unit: unit.as_deref(),
                root: &root,
                config: &config,
                bus: &args.bus,
                threshold,
                fail_on,
            },
        ),
        Command::Vulns(v) => super::vulns::run(&out, &args.bus, &v),
        Command::Doctor { root, config } => super::doctor::run(
            &out,
            &super::doctor::Target {
                live: root == std::path::Path::new("/"),
                root: &root,
                config: &config,
                bus: &args.bus,
            },
        ),
        Command::Verity(VerityCmd::Format {
            data,
            hash_device,
            tree,
        }) => super::verity::format(&out, &tree, &data, &hash_device),
        Command::Verity(VerityCmd::Verify {
            data,
            hash_device,
            root_hash,
            tree,
        }) => super::verity::verify(&out, &tree, &data, &hash_device, &root_hash),
        Command::Identity(IdentityArgs {
            cmd:
                IdentityCmd::VerifyQuote {
                    file,
                    nonce,
                    ak,
                    ak_name,
                },
            ..
        }) => super::identity::verify_quote(&out, &file, &nonce, ak.as_deref(), ak_name.as_deref()),
        Command::Identity(id) => identity(&out, &args.bus, id),
        Command::Integrity(IntegrityCmd::Status) => super::integrity::status(&out, &args.bus),
        Command::Integrity(IntegrityCmd::Init) => super::integrity::init(&out, &args.bus),
        Command::Integrity(IntegrityCmd::Scan) => super::integrity::scan(&out, &args.bus),
        Command::Integrity(IntegrityCmd::DpkgHold { dpkg_admin }) => {
            super::integrity::dpkg_hold(&out, &args.bus, dpkg_admin.as_deref())
        }
        Command::Integrity(IntegrityCmd::Events { count, follow }) => {
            super::integrity::events(&out, &args.bus, count, follow)
        }
        Command::Integrity(IntegrityCmd::Accept {
            paths,
            from_dpkg,
            dpkg_admin,
        }) => super::integrity::accept(&out, &args.bus, &paths, from_dpkg, dpkg_admin.as_deref()),
        Command::Verity(VerityCmd::Open {
            name,
            data,
            hash_device,
            root_hash,
            tree,
            open,
        }) => super::verity::open(&out, &tree, &open, &name, &data, &hash_device, &root_hash),
        Command::Verity(VerityCmd::Close { name }) => super::verity::close(&out, &name),
        Command::Verity(VerityCmd::Status { name: Some(name) }) => {
            super::verity::status(&out, &name)
        }
        Command::Verity(VerityCmd::Status { name: None }) => {
            super::manager::verity_status(&out, &args.bus)
        }
        Command::Verity(VerityCmd::Dump {
            hash_device,
            hash_offset,
        }) => super::verity::dump(&out, &hash_device, hash_offset),
        Command::Profile(ProfileCmd::List) => super::manager::profile_list(&out, &args.bus)
            .unwrap_or_else(|| {
                if !out.json {
                    eprintln!("hardenctl: hardend is not running; listing the local profile path");
                }
                super::profile::list(&out, &loader)
            }),
        Command::Profile(ProfileCmd::Show { name, expand, arch }) => {
            super::profile::show(&out, &loader, &name, expand, arch.as_deref())
        }
        Command::Profile(ProfileCmd::Check { files }) => {
            super::profile::check(&out, &loader, &files)
        }
        Command::Exec {
            profile,
            max_landlock_abi,
            record_dir,
            command,
        } => super::exec::run(
            &out,
            loader,
            profile,
            max_landlock_abi,
            record_dir,
            args.quiet,
            command,
        ),
    };
    match result {
        Ok(Exit::Ok) => ExitCode::SUCCESS,
        Ok(Exit::Bad) => ExitCode::from(3),
        Ok(Exit::InputError) => ExitCode::from(1),
        Err(e) => {
            out.error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
