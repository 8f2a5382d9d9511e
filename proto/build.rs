//! Generates the tonic/prost code for proto/chokepoint.proto with a vendored protoc, so a fresh
//! machine needs nothing installed; also writes the file descriptor set that server reflection
//! serves.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("chokepoint_descriptor.bin"))
        .compile_protos(&["proto/chokepoint.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/chokepoint.proto");
    Ok(())
}
