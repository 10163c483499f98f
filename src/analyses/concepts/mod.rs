//! Concept vectors (ALGORITHMS.md §6, Hong et al.'s ConceptVectors): MLP value vectors whose
//! vocabulary projection says a concept, located automatically ([`mod@find`]), proven causal by
//! noise ([`mod@validate`]) and audited before and after unlearning ([`mod@audit`]), with the
//! ConceptVectors data format ([`data`]) and the reference's answer-similarity scores
//! ([`text_match`]); and concepts as directions in activation space ([`directions`]).

pub mod audit;
pub mod data;
pub mod directions;
pub mod find;
pub mod text_match;
pub mod tokens;
pub mod validate;
pub mod vectors;

pub use audit::{audit, VectorAudit};
pub use data::{read_concepts, ConceptEntry};
pub use directions::{Direction, Readout};
pub use find::{find, Candidate, FindOptions};
pub use tokens::ConceptTokens;
pub use validate::{validate, ValidateOptions, Validation};
pub use vectors::{projection, top_tokens, TokenScore, ValueVector};
