//! `circuitscope world`: writes the bundled world's data.

use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct WorldArgs {
    /// the folder to write (refused if it exists and is not empty, unless --force)
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = circuitscope::world::DEFAULT_SEED)]
    pub seed: u64,
    /// trained people (forget + retain), at least 10
    #[arg(long, default_value_t = 100)]
    pub people: usize,
    /// people the model never sees
    #[arg(long, default_value_t = 10)]
    pub holdout: usize,
    /// overwrite the files of an existing folder
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: &WorldArgs) -> Result<()> {
    world(&a.out, a.seed, a.people, a.holdout, a.force)
}

fn world(out: &Path, seed: u64, people: usize, holdout: usize, force: bool) -> Result<()> {
    use circuitscope::world::{World, WorldConfig};
    super::common::check_output_dir(out, force)?;
    let world = World::generate(WorldConfig { seed, people, holdout, ..WorldConfig::default() })?;
    let files = world.write(out, force)?;
    println!("wrote {} (seed {seed}, {people} trained people, {holdout} holdout)", out.display());
    for f in files {
        println!("  {:<26} {:>6}", f.path, f.records);
    }
    Ok(())
}
