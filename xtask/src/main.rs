//! `cargo xtask docs DIR`: man pages for hardend(8), hardend-exec(8), hardenctl(1) and every
//! hardenctl subcommand, plus bash, zsh and fish completions, rendered from the same clap
//! definitions the binaries parse (so they never drift from `--help`). Nothing here ships.

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;

fn write_pages(cmd: &clap::Command, name: &str, section: &str, dir: &Path) -> std::io::Result<()> {
    let page = clap_mangen::Man::new(cmd.clone().name(name.to_string())).section(section);
    let mut out = Vec::new();
    page.render(&mut out)?;
    std::fs::write(dir.join(format!("{name}.{section}")), out)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), section, dir)?;
    }
    Ok(())
}

fn generate(mut cmd: clap::Command, section: &str, dir: &Path) -> std::io::Result<()> {
    let name = cmd.get_name().to_string();
    cmd.build();
    write_pages(&cmd, &name, section, dir)?;
    if name == "hardenctl" {
        use clap_complete::{Shell, generate_to};
        for sh in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            generate_to(sh, &mut cmd, &name, dir)?;
        }
    }
    Ok(())
}

fn docs(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    generate(hardend::cmdline::hardenctl::Args::command(), "1", dir)?;
    generate(hardend::cmdline::hardend::Args::command(), "8", dir)?;
    generate(hardend_exec::Args::command(), "8", dir)?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, dir] if cmd == "docs" => match docs(Path::new(dir)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xtask docs {dir}: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: cargo xtask docs DIR");
            ExitCode::from(2)
        }
    }
}
