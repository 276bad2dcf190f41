//! Hands the replay module the descriptor set that temporalio-protos compiled from Temporal's API
//! protos (its build script publishes the path as `links` metadata). Canonical proto3-JSON
//! histories are then read with exactly the schema the SDK was built from, and nothing is compiled
//! twice.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH");
    let published = std::env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH").expect(
        "temporalio-protos publishes `descriptor_path`; is it a direct dependency of this crate?",
    );
    let path = Some(PathBuf::from(&published))
        .filter(|p| p.is_file())
        .or_else(|| in_this_target_dir(&published))
        .unwrap_or_else(|| {
            panic!("{published} is missing; run `cargo clean -p temporalio-protos` and build again")
        });
    println!(
        "cargo:rustc-env=LAKEGATE_TEMPORAL_DESCRIPTORS={}",
        path.display()
    );
}

/// A target directory copied from another location (the warm caches this project hands out)
/// replays the build script output recorded there, so the path may name the old location: look
/// for the same file under this build's own `build/` directory.
fn in_this_target_dir(published: &str) -> Option<PathBuf> {
    let (_, tail) = published.split_once("/build/temporalio-protos-")?;
    let out_dir = std::env::var("OUT_DIR").ok()?;
    let (build_root, _) = out_dir.split_once("/build/")?;
    Some(Path::new(build_root).join(format!("build/temporalio-protos-{tail}")))
        .filter(|p| p.is_file())
}
