//! `hardenctl sbom`: the CycloneDX document on standard output or into a file, a summary
//! on standard error.

use std::path::Path;

use super::{CliError, Exit};
use crate::sbom::cyclonedx;

pub fn run(root: &Path, output: Option<&Path>) -> Result<Exit, CliError> {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let (doc, summary) =
        cyclonedx::document(root, &now).map_err(|e| CliError::Input(e.to_string()))?;
    let mut text = serde_json::to_string_pretty(&doc)
        .map_err(|e| CliError::Input(format!("cannot encode the SBOM: {e}")))?;
    text.push('\n');
    match output {
        Some(p) => crate::fsutil::write_atomic(p, text.as_bytes(), 0o644)
            .map_err(|e| CliError::Input(format!("{}: {e}", p.display())))?,
        None => print!("{text}"),
    }
    eprintln!(
        "sbom: {} packages, {} without a machine-readable licence (stated as unknown), {} dependencies not installed",
        summary.components, summary.unknown_licences, summary.unresolved_dependencies
    );
    Ok(Exit::Ok)
}
