//! The library's convert alone, for profiling the write path without building
//! the CLI: `cargo run --release -p cloudimg-vhd --example convert -- IN OUT raw|vpc [--no-sync]`
//! (the input format is probed).

use cloudimg_vhd::convert::{convert, ConvertOptions, Output, OutputFormat};
use cloudimg_vhd::write::DynamicOptions;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, format, rest @ ..] = args.as_slice() else {
        eprintln!("usage: convert IN OUT raw|vpc [--no-sync]");
        std::process::exit(2);
    };
    let opts = ConvertOptions {
        output: match format.as_str() {
            "raw" => OutputFormat::Raw,
            _ => OutputFormat::Dynamic(DynamicOptions::default()),
        },
        sync: !rest.iter().any(|a| a == "--no-sync"),
        replaced: cloudimg_vhd::replace::Replaced::Process,
        ..Default::default()
    };
    let out = std::path::Path::new(output);
    match convert(input.as_ref(), Output::Path(out), &opts, &mut |_| {}) {
        Ok(r) => println!("{} bytes", r.bytes_written),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
