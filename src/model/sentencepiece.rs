//! SentencePiece-style BPE over scored pieces, as GGUF `tokenizer.ggml.model = "llama"` stores
//! it: start from characters (bytes as `<0xXX>` pieces where a character has no piece) and
//! repeatedly merge the adjacent pair whose merged piece has the highest score.

use std::collections::HashMap;

pub struct SentencePiece {
    pieces: Vec<String>,
    scores: Vec<f32>,
    ids: HashMap<String, u32>,
    /// byte value → its `<0xXX>` piece
    byte_ids: Vec<Option<u32>>,
    add_space_prefix: bool,
}

const SPACE: char = '\u{2581}';

impl SentencePiece {
    pub fn new(pieces: Vec<String>, scores: Vec<f32>, add_space_prefix: bool) -> Self {
        let mut ids = HashMap::with_capacity(pieces.len());
        let mut byte_ids = vec![None; 256];
        for (i, p) in pieces.iter().enumerate() {
            ids.entry(p.clone()).or_insert(i as u32);
            if let Some(hex) = p.strip_prefix("<0x").and_then(|r| r.strip_suffix('>')) {
                if let Ok(b) = u8::from_str_radix(hex, 16) {
                    byte_ids[b as usize] = Some(i as u32);
                }
            }
        }
        SentencePiece { pieces, scores, ids, byte_ids, add_space_prefix }
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    pub fn piece(&self, id: u32) -> Option<&str> {
        self.pieces.get(id as usize).map(String::as_str)
    }

    pub fn encode(&self, text: &str) -> Vec<u32> {
        if text.is_empty() {
            return Vec::new();
        }
        let mut normalized = String::with_capacity(text.len() + 3);
        if self.add_space_prefix {
            normalized.push(SPACE);
        }
        normalized.extend(text.chars().map(|c| if c == ' ' { SPACE } else { c }));
        let mut symbols: Vec<String> = normalized.chars().map(String::from).collect();
        loop {
            let mut best: Option<(f32, usize)> = None;
            for i in 0..symbols.len().saturating_sub(1) {
                let merged = format!("{}{}", symbols[i], symbols[i + 1]);
                if let Some(&id) = self.ids.get(&merged) {
                    let score = self.scores[id as usize];
                    if best.is_none_or(|(s, _)| score > s) {
                        best = Some((score, i));
                    }
                }
            }
            let Some((_, i)) = best else { break };
            let right = symbols.remove(i + 1);
            symbols[i].push_str(&right);
        }
        let mut out = Vec::with_capacity(symbols.len());
        for sym in &symbols {
            match self.ids.get(sym) {
                Some(&id) => out.push(id),
                None => out.extend(sym.bytes().filter_map(|b| self.byte_ids[b as usize])),
            }
        }
        out
    }

    /// Decodes pieces; the space prefix that encoding adds is removed from the start.
    pub fn decode(&self, ids: &[u32], specials: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            if specials.contains(&id) {
                continue;
            }
            bytes.extend(self.piece_bytes(id));
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        match (self.add_space_prefix, text.strip_prefix(' ')) {
            (true, Some(rest)) => rest.to_string(),
            _ => text,
        }
    }

    /// The bytes one piece stands for (`▁` → space, `<0xXX>` → that byte).
    pub fn piece_bytes(&self, id: u32) -> Vec<u8> {
        let Some(p) = self.piece(id) else { return Vec::new() };
        if let Some(b) = self.byte_ids.iter().position(|x| *x == Some(id)) {
            return vec![b as u8];
        }
        p.replace(SPACE, " ").into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> SentencePiece {
        let pieces = ["<unk>", "<s>", "</s>", "<0x21>", "\u{2581}", "h", "i", "\u{2581}h", "\u{2581}hi", "hi"];
        let scores = [0.0, 0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0];
        SentencePiece::new(pieces.iter().map(|s| s.to_string()).collect(), scores.to_vec(), true)
    }

    #[test]
    fn merges_by_score_and_falls_back_to_bytes() {
        let sp = toy();
        // "▁h" (−4) beats "hi" (−6); then "▁hi" (−5); "!" has no piece → byte 0x21
        assert_eq!(sp.encode("hi!"), vec![8, 3]);
        assert_eq!(sp.decode(&[1, 8, 3], &[1]), "hi!");
    }
}
