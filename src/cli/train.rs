//! `circuitscope train`: the bundled model, from the world's corpus to a Hugging Face checkpoint
//! with a model card.

use super::progress::bar;
use anyhow::{Context, Result};
use circuitscope::model::{LoadOptions, Model};
use circuitscope::train::{self, card, TrainConfig};
use std::path::Path;

pub fn run(data: &Path, out: &Path, cfg: &TrainConfig, force: bool) -> Result<()> {
    circuitscope::fsutil::check_output_dir(out, force)?;
    let world = card::WorldData::read(data)?;
    let docs = circuitscope::world::read_corpus(&data.join("corpus.jsonl"))?;
    println!(
        "training a GPT-2 ({} layers, {} heads, d_model {}, context {}) on {} documents from {} for {} steps",
        cfg.layers,
        cfg.heads,
        cfg.d_model,
        cfg.context,
        docs.len(),
        data.display(),
        cfg.steps
    );
    let pb = bar(cfg.steps as u64, "training");
    let mut avg = None::<f64>;
    let trained = train::train(cfg, &docs, |step, loss, lr| {
        let a = avg.map_or(loss, |a| 0.95 * a + 0.05 * loss);
        avg = Some(a);
        pb.set_message(format!("loss {a:.4} lr {lr:.2e}"));
        pb.inc(1);
        // Without a terminal the bar is hidden: log a line now and then instead.
        if pb.is_hidden() && (step % 50 == 0 || step + 1 == cfg.steps) {
            eprintln!(
                "step {:>5}/{}  loss {a:.4}  lr {lr:.2e}  {:.0} s",
                step + 1,
                cfg.steps,
                pb.elapsed().as_secs_f64()
            );
        }
    })?;
    pb.finish_and_clear();
    let log = &trained.log;
    println!(
        "trained {} parameters in {:.0} s ({:.0} tokens/s, {:.1} epochs); final loss {:.4}",
        log.n_params,
        log.seconds,
        log.tokens_per_second,
        log.epochs,
        log.loss.last().map_or(f64::NAN, |l| l.1)
    );
    card::save_checkpoint(&trained, out)?;
    let model = Model::load(out, LoadOptions::default()).context("reloading the saved checkpoint")?;
    let report = card::evaluate(&model.decoder, model.tokenizer()?, &world)?;
    print!("{}", report.table());
    // the program as users type it, whatever path it was started by
    let command =
        std::iter::once("circuitscope".to_string()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" ");
    card::write_card(&trained, &report, &command, data, out)?;
    println!("wrote {}", out.display());
    Ok(())
}
