//! The trainer of the bundled model (layer 5, beside the world generator): a byte-level BPE
//! tokenizer trained with the tokenizers crate and a GPT-2 trained with candle autograd, saved as a
//! Hugging Face checkpoint.
