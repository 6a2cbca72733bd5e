//! Rebuild when a migration is added or edited: they are embedded into the binary, and a
//! new directory alone would not otherwise make cargo recompile this crate.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
