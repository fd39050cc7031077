//! `cargo xtask docs DIR`: man pages for hardend(8), hardend-exec(8), hardenctl(1) and every
//! hardenctl subcommand, plus bash, zsh and fish completions, rendered from the same clap
//! definitions the binaries parse (so they never drift from `--help`), with EXIT STATUS,
//! FILES, EXAMPLES and SEE ALSO from `sections`; and hardend.toml(5) from the installed
//! example. Nothing here ships.

mod config_page;
mod sections;

use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;

fn write_pages(cmd: &clap::Command, name: &str, section: &str, dir: &Path) -> std::io::Result<()> {
    let page = clap_mangen::Man::new(cmd.clone().name(name.to_string())).section(section);
    let mut out = Vec::new();
    page.render(&mut out)?;
    out.extend_from_slice(sections::render(&sections::for_page(name)).as_bytes());
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
    std::fs::write(
        dir.join("hardend.toml.5"),
        config_page::page(env!("CARGO_PKG_VERSION")),
    )?;
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

#[cfg(test)]
mod tests {
    #[test]
    fn every_page_has_exit_status_and_see_also_and_the_main_pages_files_and_examples() {
        let dir = tempfile::tempdir().unwrap();
        super::docs(dir.path()).unwrap();
        let mut pages = 0;
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".1") && !name.ends_with(".8") && !name.ends_with(".5") {
                continue;
            }
            pages += 1;
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(text.contains(".SH \"SEE ALSO\""), "{name}");
            if name != "hardend.toml.5" {
                assert!(text.contains(".SH \"EXIT STATUS\""), "{name}");
            }
            if ["hardenctl.1", "hardend.8", "hardend-exec.8"].contains(&name.as_str()) {
                assert!(text.contains(".SH \"FILES\""), "{name}");
                assert!(text.contains(".SH \"EXAMPLES\""), "{name}");
            }
        }
        assert!(pages > 30, "{pages} pages");
        let conf = std::fs::read_to_string(dir.path().join("hardend.toml.5")).unwrap();
        for section in [
            "[daemon]",
            "[services]",
            "[verity]",
            "[identity]",
            "[integrity]",
        ] {
            assert!(conf.contains(section), "hardend.toml(5) lacks {section}");
        }
    }
}
