//! Hands the replay module the descriptor set that temporalio-protos compiled from Temporal's API
//! protos (its build script publishes the path as `links` metadata). Canonical proto3-JSON
//! histories are then read with exactly the schema the SDK was built from, and nothing is compiled
//! twice.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH");
    let path = std::env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH").expect(
        "temporalio-protos publishes `descriptor_path`; is it a direct dependency of this crate?",
    );
    // A target directory copied from elsewhere keeps the build script output of its old location.
    assert!(
        std::path::Path::new(&path).is_file(),
        "{path} is missing; run `cargo clean -p temporalio-protos` and build again"
    );
    println!("cargo:rustc-env=LAKEGATE_TEMPORAL_DESCRIPTORS={path}");
}
