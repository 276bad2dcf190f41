//! Prints a drafted contract: `cargo run -p lakegate-validate --example draft -- <dataset> <files>...`
//! (the same as `lakegate contract draft`, without building the worker).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dataset = args.next().ok_or("usage: draft <dataset> <files>...")?;
    let files: Vec<std::path::PathBuf> = args.map(Into::into).collect();
    print!(
        "{}",
        lakegate_validate::draft(&files, &lakegate_validate::DraftOptions::new(&dataset))?
    );
    Ok(())
}
