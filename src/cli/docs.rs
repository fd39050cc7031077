//! Man pages and shell completions generated from the clap definitions (the packaging runs
//! each binary with `HARDEND_GENERATE_DOCS=DIR`), so they never drift from `--help`.

use std::path::Path;

/// Writes `<name>.<section>` (and its subcommands' pages) and, for `hardenctl`, bash, zsh
/// and fish completions into `dir`.
pub fn generate(cmd: clap::Command, section: &str, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let name = cmd.get_name().to_string();
    let mut cmd = cmd;
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

/// When `HARDEND_GENERATE_DOCS` names a directory: generate there and exit.
pub fn generate_if_asked(cmd: clap::Command, section: &str) {
    if let Some(dir) = std::env::var_os("HARDEND_GENERATE_DOCS") {
        let code = match generate(cmd, section, Path::new(&dir)) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!(
                    "cannot generate documentation in {}: {e}",
                    Path::new(&dir).display()
                );
                1
            }
        };
        std::process::exit(code);
    }
}
