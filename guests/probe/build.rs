//! Links the probe as a position-independent executable that relocates itself,
//! so one binary runs wherever Janus places a personality's RAM.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default() == "aarch64" {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
        println!("cargo:rustc-link-arg-bins=-pie");
        println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
        println!("cargo:rustc-link-arg-bins=-znotext");
        println!("cargo:rerun-if-changed=linker.ld");
    }
}
