//! The daemon's command line (clap).

use std::path::PathBuf;

use clap::Parser;

/// The hardend daemon (normally started by systemd as hardend.service).
#[derive(Parser, Debug)]
#[command(name = "hardend", version, about, long_about = None)]
pub struct Args {
    /// Configuration file (every key optional; a missing default file means defaults).
    #[arg(long, default_value = "/etc/hardend/hardend.toml")]
    pub config: PathBuf,
    /// D-Bus address to serve on instead of the configured bus (tests, demos).
    #[arg(long)]
    pub bus: Option<String>,
    /// Validate the configuration and exit.
    #[arg(long)]
    pub check_config: bool,
    /// Remove every drop-in hardend wrote, in the configured drop-in directories (and the
    /// default ones), print the units released, and exit: the package's prerm on removal.
    #[arg(long, conflicts_with = "check_config")]
    pub release_dropins: bool,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
