//! The project a spec belongs to: the nearest directory, from the spec's own upwards, that
//! holds a `fabrik.toml`; without one, the spec's directory.

use std::path::{Path, PathBuf};

/// Name of the project file that marks a project's root.
pub const PROJECT_FILE: &str = "fabrik.toml";

/// The project directory of the spec at `spec_path`.
pub fn project_dir(spec_path: &Path) -> PathBuf {
    let absolute = std::path::absolute(spec_path).unwrap_or_else(|_| spec_path.to_path_buf());
    let spec_dir = absolute
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    spec_dir
        .ancestors()
        .find(|dir| dir.join(PROJECT_FILE).is_file())
        .map_or(spec_dir.clone(), Path::to_path_buf)
}
