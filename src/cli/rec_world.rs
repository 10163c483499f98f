//! `circuitscope rec-world`: writes the recommendation world's data (`world::recommend`).

use anyhow::Result;
use circuitscope::world::recommend::{RecConfig, RecWorld};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct RecWorldArgs {
    /// the folder to write (refused if it exists and is not empty, unless --force)
    #[arg(long, default_value = "circuits/rec-world")]
    pub out: PathBuf,
    #[arg(long, default_value_t = RecConfig::default().seed)]
    pub seed: u64,
    /// readers, at least 100 (1 % of them is the smallest forget set)
    #[arg(long, default_value_t = RecConfig::default().readers)]
    pub readers: usize,
    #[arg(long, default_value_t = RecConfig::default().books)]
    pub books: usize,
    #[arg(long, default_value_t = RecConfig::default().authors)]
    pub authors: usize,
    /// overwrite the files of an existing folder
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: &RecWorldArgs) -> Result<()> {
    super::common::check_output_dir(&a.out, a.force)?;
    let config = RecConfig { seed: a.seed, readers: a.readers, books: a.books, authors: a.authors };
    let world = RecWorld::generate(config)?;
    let files = world.write(&a.out, a.force)?;
    println!(
        "wrote {} (seed {}, {} readers, {} books by {} authors)",
        a.out.display(),
        a.seed,
        a.readers,
        a.books,
        a.authors
    );
    for (name, n) in files {
        println!("  {name:<22} {n:>6}");
    }
    Ok(())
}
