//! Where the workspace and the images that `make images` builds live.

use std::path::{Path, PathBuf};

/// The workspace root: the parent of this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// `<workspace root>/target/images`, where the Makefile puts `janus.bin`,
/// `probe.bin` and the boot bundles.
pub fn images_dir() -> PathBuf {
    workspace_root().join("target").join("images")
}

/// The path of the image `name` in [`images_dir`].
///
/// # Panics
///
/// When the file does not exist, with a message saying to run `make images`:
/// a test cannot do anything useful without its image.
pub fn image_path(name: &str) -> PathBuf {
    let path = images_dir().join(name);
    assert!(
        path.is_file(),
        "image {} is missing: run `make images` in {} first",
        path.display(),
        workspace_root().display(),
    );
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml"))
            .expect("the workspace root has a Cargo.toml");
        assert!(manifest.contains("[workspace]"));
    }

    #[test]
    fn images_dir_is_under_target() {
        assert_eq!(images_dir(), workspace_root().join("target/images"));
    }

    #[test]
    #[should_panic(expected = "run `make images`")]
    fn missing_image_panics_with_the_fix() {
        image_path("no-such-image-for-harness-test.bin");
    }
}
