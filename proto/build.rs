//! Compiles `cablewatch/telemetry/v1/telemetry.proto` with protox (pure Rust, no system `protoc`)
//! into prost messages and tonic client and server code in `OUT_DIR`, and writes the encoded file
//! descriptor set next to it for gRPC reflection.

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "cablewatch/telemetry/v1/telemetry.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["."])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("cablewatch_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Contiguous-slice codec instead of tonic's per-value buffer calls (see src/codec.rs).
        .codec_path("crate::codec::WireCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
