//! The bundled model's tokenizer: GPT-2's byte-level BPE, trained on the world's corpus with the
//! tokenizers crate and saved as a Hugging Face `tokenizer.json`.

use crate::error::{Error, Result};
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

/// The one special token: separates documents, ends answers, and is id 0.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// Trains a byte-level BPE of `vocab_size` tokens (including the 256 byte tokens and
/// [`END_OF_TEXT`]) on `docs`. No prefix space, like GPT-2: a word after a space is one piece.
pub fn train_tokenizer(docs: &[String], vocab_size: usize) -> Result<Tokenizer> {
    if vocab_size < 300 {
        return Err(Error::input(format!(
            "vocab_size = {vocab_size}: a byte-level BPE needs at least 257 tokens (256 bytes and {END_OF_TEXT}); \
             use 300 or more"
        )));
    }
    let mut tok = Tokenizer::new(BPE::default());
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tok.with_post_processor(Some(ByteLevel::new(false, true, true)));
    tok.with_decoder(Some(ByteLevel::default()));
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    tok.train(&mut trainer, docs.iter()).map_err(|e| Error::input(format!("tokenizer training failed: {e}")))?;
    if tok.token_to_id(END_OF_TEXT) != Some(0) {
        return Err(Error::input(format!("tokenizer training did not give {END_OF_TEXT} id 0")));
    }
    Ok(tok)
}
