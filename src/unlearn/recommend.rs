//! Recommendation metrics, as recommender-unlearning papers report them: each interaction's
//! probability of ` Yes` against ` No` after its prompt (the two normalised), and from it the utility on retained readers (AUC, accuracy at 0.5,
//! log loss) and the forgetting against the model retrained without the forget readers (the mean
//! Jensen–Shannon divergence and KL between the two models' Yes/No distributions, lower is
//! closer, and the forget readers' AUC, which should fall to the retrained model's).

use crate::data::{Example, PromptFormat, Target};
use crate::error::{Error, Result};
use crate::model::{Decoder, Tokenizer};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One interaction of a recommendation file (`circuitscope rec-world`'s `train.jsonl` and the
/// others): whose it is, its prompt's question and `Yes` or `No`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Interaction {
    pub reader: String,
    pub question: String,
    pub answer: String,
}

/// A file of interactions as pairs of examples, the prompt answered ` Yes` and ` No` (each
/// answer scored given the prompt, whatever number of tokens it takes), and each interaction's
/// label (true: Yes). Refuses an answer that is neither `Yes` nor `No` and a prompt and answer
/// longer than the model's context (`n_ctx`), naming the file and line.
pub fn read_interactions(path: &Path, tok: &Tokenizer, format: &PromptFormat, n_ctx: usize) -> Result<RecFile> {
    let rows: Vec<Interaction> = crate::data::read_jsonl(path)?;
    if rows.is_empty() {
        return Err(Error::format(path, "no interactions"));
    }
    let yes = tok.encode(&format!("{}Yes", format.answer_prefix))?;
    let no = tok.encode(&format!("{}No", format.answer_prefix))?;
    let mut pairs = Vec::with_capacity(rows.len());
    let mut labels = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let label = match r.answer.as_str() {
            "Yes" => true,
            "No" => false,
            a => {
                return Err(Error::format(
                    path,
                    format!("line {}: the answer is `{a}`: a recommendation is answered Yes or No", i + 1),
                ))
            }
        };
        let prompt = tok.encode(&format.prompt(&r.question))?;
        let longest = prompt.len() + yes.len().max(no.len());
        if longest > n_ctx {
            return Err(Error::format(
                path,
                format!(
                    "line {}: the prompt of {} and its answer take {longest} tokens, more than the model's context of \
                     {n_ctx} (a shorter history, or a model with a longer context)",
                    i + 1,
                    r.reader
                ),
            ));
        }
        let answered = |answer: &[u32]| Example {
            clean: prompt.iter().chain(answer).copied().collect(),
            corrupted: None,
            target: Target::Sequence { prompt_len: prompt.len() },
        };
        pairs.push([answered(&yes), answered(&no)]);
        labels.push(label);
    }
    Ok(RecFile { rows, pairs, labels })
}

/// A recommendation file read for a model ([`read_interactions`]).
pub struct RecFile {
    pub rows: Vec<Interaction>,
    /// per interaction, its prompt answered Yes and answered No
    pub pairs: Vec<[Example; 2]>,
    /// per interaction, true for Yes
    pub labels: Vec<bool>,
}

/// p(Yes) of each interaction, normalised over the two answers: σ(log p(Yes) − log p(No)), each
/// answer's log-probability summed over its tokens given the prompt (for one-token answers,
/// σ(logit Yes − logit No)).
pub fn yes_probability(dec: &Decoder, pairs: &[[Example; 2]], batch: usize) -> Result<Vec<f64>> {
    let flat: Vec<Example> = pairs.iter().flat_map(|p| p.iter().cloned()).collect();
    let stats = super::answers::token_stats(dec, &flat, batch)?;
    Ok(stats
        .chunks(2)
        .map(|c| {
            let lp = |i: usize| c[i].logprob.iter().sum::<f64>();
            1.0 / (1.0 + (lp(1) - lp(0)).exp())
        })
        .collect())
}

/// How well a model recommends: AUC of p(Yes) against the labels, accuracy at 0.5, the mean
/// log loss (natural log; probabilities clamped to [1e-12, 1 − 1e-12]).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Utility {
    pub auc: f64,
    pub accuracy: f64,
    pub log_loss: f64,
    pub n: usize,
}

pub fn utility(p_yes: &[f64], labels: &[bool]) -> Result<Utility> {
    if p_yes.len() != labels.len() || p_yes.is_empty() {
        return Err(Error::input(format!("{} probabilities for {} labels", p_yes.len(), labels.len())));
    }
    let pick =
        |want: bool| -> Vec<f64> { p_yes.iter().zip(labels).filter(|(_, &l)| l == want).map(|(p, _)| *p).collect() };
    let auc = super::evaluate::auc(&pick(false), &pick(true))?;
    let n = labels.len() as f64;
    let accuracy = p_yes.iter().zip(labels).filter(|(p, &l)| (**p > 0.5) == l).count() as f64 / n;
    let log_loss = p_yes
        .iter()
        .zip(labels)
        .map(|(p, &l)| {
            let p = p.clamp(1e-12, 1.0 - 1e-12);
            -(if l { p.ln() } else { (1.0 - p).ln() })
        })
        .sum::<f64>()
        / n;
    Ok(Utility { auc, accuracy, log_loss, n: labels.len() })
}

/// KL(P ‖ Q) between the Bernoulli distributions (p, 1 − p) and (q, 1 − q), in nats.
pub fn bernoulli_kl(p: f64, q: f64) -> f64 {
    let term = |a: f64, b: f64| if a <= 0.0 { 0.0 } else { a * (a / b.max(1e-300)).ln() };
    term(p, q) + term(1.0 - p, 1.0 - q)
}

/// The Jensen–Shannon divergence between (p, 1 − p) and (q, 1 − q), in nats (at most ln 2).
pub fn bernoulli_js(p: f64, q: f64) -> f64 {
    let m = (p + q) / 2.0;
    (bernoulli_kl(p, m) + bernoulli_kl(q, m)) / 2.0
}

/// How far a model's answers on the forget readers' interactions are from the retrained
/// reference's: mean JS and KL(model ‖ reference) over the interactions, and the AUC each model
/// reaches on them.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Forgetting {
    pub js: f64,
    pub kl: f64,
    pub auc: f64,
    pub reference_auc: f64,
    pub n: usize,
}

pub fn forgetting(p_model: &[f64], p_reference: &[f64], labels: &[bool]) -> Result<Forgetting> {
    if p_model.len() != p_reference.len() {
        return Err(Error::input("the model and the reference were scored on different interactions"));
    }
    let n = p_model.len() as f64;
    let js = p_model.iter().zip(p_reference).map(|(&p, &q)| bernoulli_js(p, q)).sum::<f64>() / n;
    let kl = p_model.iter().zip(p_reference).map(|(&p, &q)| bernoulli_kl(p, q)).sum::<f64>() / n;
    Ok(Forgetting {
        js,
        kl,
        auc: utility(p_model, labels)?.auc,
        reference_auc: utility(p_reference, labels)?.auc,
        n: labels.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divergences_of_bernoullis() {
        assert_eq!(bernoulli_kl(0.3, 0.3), 0.0);
        assert_eq!(bernoulli_js(0.8, 0.8), 0.0);
        let kl = 0.9 * (0.9f64 / 0.5).ln() + 0.1 * (0.1f64 / 0.5).ln();
        assert!((bernoulli_kl(0.9, 0.5) - kl).abs() < 1e-15);
        assert!((bernoulli_js(1.0, 0.0) - 2f64.ln()).abs() < 1e-12, "{}", bernoulli_js(1.0, 0.0));
        assert!((bernoulli_js(0.2, 0.7) - bernoulli_js(0.7, 0.2)).abs() < 1e-15);
    }

    #[test]
    fn utility_of_scores() {
        let u = utility(&[0.9, 0.8, 0.3, 0.6], &[true, false, false, true]).unwrap();
        // positives 0.9, 0.6 against negatives 0.8, 0.3: 3 of 4 pairs ordered
        assert_eq!(u.auc, 0.75);
        assert_eq!(u.accuracy, 0.75); // 0.8 on a negative is the one mistake
        let ll = -(0.9f64.ln() + 0.2f64.ln() + 0.7f64.ln() + 0.6f64.ln()) / 4.0;
        assert!((u.log_loss - ll).abs() < 1e-12);
        assert!(utility(&[0.5], &[true]).is_err(), "one class only");
    }
}
