//! Compiles `proto/kpi/v1/*.proto` with protox (no system protoc) into Rust with
//! tonic-prost-build, and writes the encoded descriptor set (imports included) that the
//! server registers for gRPC reflection.

use std::path::PathBuf;

const PROTOS: [&str; 3] = [
    "kpi/v1/metrics.proto",
    "kpi/v1/records.proto",
    "kpi/v1/tenant.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    for file in PROTOS {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    }

    let mut compiler = protox::Compiler::new([&proto_root])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(PROTOS)?;
    std::fs::write(
        out_dir.join("kpi_v1_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .btree_map(".")
        .emit_rerun_if_changed(false)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
