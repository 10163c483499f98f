//! Issue 4's checks on the bundled model (models/world-gpt2) and its world's tasks:
//! gradient attributions against exact patching (ground truth), the induction mechanism, and a
//! small faithful IOI circuit. The figures are printed; run with `--nocapture` to see them.
//!
//! Met and asserted: faithfulness ≥ 0.8 at 5 % of the edges; Spearman ≥ 0.9 on IOI for EAP-IG
//! (activations) with the reader fixes; the top induction and previous-token heads in the induction
//! circuit, and top-1 induction accuracy < 50 % with them mean-ablated. Not met: Spearman ≥ 0.9 for plain EAP-IG, and for fixed
//! EAP-IG on fact recall (~0.87); the 2-way induction accuracy with the top heads ablated stays
//! above 50 % until the top 4 of each role are. For those the assertions are regression floors
//! just under the measured figures, so a change that makes attribution or the model worse fails
//! here.

use circuitscope::analyses::compare::agreement;
use circuitscope::analyses::heads::{head_scores, HeadMeans, HeadScores};
use circuitscope::attribution::{
    attribute, faithfulness, faithfulness_sweep, AttributionConfig, Example, FaithfulnessConfig, Method, NoProgress,
    ReaderFix, SweepSelection,
};
use circuitscope::graph::{Circuit, EdgeScores, GraphShape, Writer};
use circuitscope::model::{Decoder, LoadOptions, Model};
use circuitscope::train::eval::{task_accuracy, task_accuracy_with};
use circuitscope::world::{read_tasks, Task, TaskItem};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed bundled model: missing is a failure, not a skip.
fn bundled() -> Model {
    let dir = root().join("models/world-gpt2");
    assert!(dir.join("model.safetensors").exists(), "the bundled model {} is missing", dir.display());
    Model::load(&dir, LoadOptions::default()).unwrap()
}

fn task(t: Task) -> Vec<TaskItem> {
    read_tasks(&root().join("circuits/world").join(t.file_name())).unwrap()
}

fn examples(model: &Model, items: &[TaskItem]) -> Vec<Example> {
    let tok = model.tokenizer().unwrap();
    items
        .iter()
        .enumerate()
        .map(|(i, it)| Example::from_task_texts(tok, &it.clean, &it.corrupted, &it.answer, &it.distractor, i).unwrap())
        .collect()
}

fn scores_with(dec: &Decoder, ex: &[Example], method: Method, fix: ReaderFix) -> EdgeScores {
    let cfg = AttributionConfig { method, batch_size: 16, fix, ..Default::default() };
    attribute(dec, ex, &cfg, &NoProgress).unwrap().scores
}

fn scores(dec: &Decoder, ex: &[Example], method: Method) -> EdgeScores {
    scores_with(dec, ex, method, ReaderFix::default())
}

/// Spearman correlation of EAP-IG (and EAP) with exact patching over all edges, each method
/// plain and with the reader fixes (QK and MLP, `attribution::reader_fix`), on the signed scores
/// and on |score| (the ranking that circuit selection uses), on the task's first `n` items.
/// Asserted: the signed figure of each of the README table's five rows against `floors` (in the
/// table's order: EAP-IG inputs, activations, activations + fix, EAP, EAP + fix).
///
/// The floors are regression floors, each about 3 % under its measurement on these items: CPU
/// runs are bitwise deterministic (the same code gives the same figure at any thread count), so
/// the room is for rounding-order changes (~1e-6) and a real loss of agreement fails. The figures
/// belong to these items, not to the method: on four disjoint 32-item windows of IOI (items 0–127)
/// they range over 0.61–0.74, 0.78–0.84, 0.91–0.97, 0.75–0.83, 0.92–0.96; on three of fact recall
/// over 0.52–0.56, 0.71–0.77, 0.86–0.88, 0.74–0.82, 0.87–0.88 (measured once, 2026-12-04).
fn correlation_with_exact(t: Task, n: usize, floors: [f64; 5]) {
    let model = bundled();
    let ex = examples(&model, &task(t)[..n]);
    let dec = &model.decoder;
    let exact = scores(dec, &ex, Method::Exact);
    let both = ReaderFix { qk: true, mlp: true };
    // (name, method, fix, which floor applies)
    for (name, method, fix, floor) in [
        ("EAP-IG inputs", Method::EapIgInputs { steps: 5 }, ReaderFix::default(), Some(floors[0])),
        ("EAP-IG activations", Method::EapIgActivations { steps: 5 }, ReaderFix::default(), Some(floors[1])),
        ("EAP-IG activations + QK/MLP fix", Method::EapIgActivations { steps: 5 }, both, Some(floors[2])),
        ("EAP-IG inputs + QK/MLP fix", Method::EapIgInputs { steps: 5 }, both, None),
        ("EAP", Method::Eap, ReaderFix::default(), Some(floors[3])),
        ("EAP + QK/MLP fix (AtP*-style)", Method::Eap, both, Some(floors[4])),
    ] {
        let g = agreement(&scores_with(dec, &ex, method, fix), &exact, &[24]).unwrap();
        eprintln!(
            "{}: {name} vs exact patching over {} edges, {n} items: Spearman {:.3} (signed), {:.3} (|score|), \
             Pearson {:.3}, top-24 edges shared {}",
            t.name(),
            g.n_edges,
            g.spearman,
            g.spearman_abs,
            g.pearson,
            g.top_overlap[0].shared
        );
        let by_kind: Vec<String> =
            g.by_kind.iter().map(|k| format!("{} {:.2}/{:.2}", k.kind, k.spearman, k.spearman_without)).collect();
        eprintln!("  by kind of edge (Spearman within / over all other edges): {}", by_kind.join(", "));
        if let Some(floor) = floor {
            assert!(g.spearman >= floor, "{}: {name} vs exact Spearman {:.3} < {floor}", t.name(), g.spearman);
        }
    }
}

/// Measured (items 0–31): 0.614, 0.775, 0.913, 0.760, 0.922. The third floor is issue 4's target
/// (Spearman ≥ 0.9), not a regression floor.
#[test]
fn eap_ig_agrees_with_exact_patching_on_ioi() {
    correlation_with_exact(Task::Ioi, 32, [0.595, 0.75, 0.9, 0.735, 0.895]);
}

/// Measured (items 0–31): 0.529, 0.707, 0.867, 0.747, 0.867 (issue 4's 0.9 is not met here; the
/// README says why).
#[test]
fn eap_ig_agrees_with_exact_patching_on_fact_recall() {
    correlation_with_exact(Task::FactRecall, 32, [0.51, 0.685, 0.84, 0.725, 0.84]);
}

fn circuit_from(dec: &Decoder, ex: &[Example], method: Method, fraction: f64) -> Circuit {
    let cfg = AttributionConfig { method, batch_size: 16, ..Default::default() };
    let scores = attribute(dec, ex, &cfg, &NoProgress).unwrap().scores;
    let n = ((scores.shape.n_edges() as f64) * fraction).floor() as usize;
    Circuit::greedy(&scores, n).unwrap().pruned()
}

fn circuit(dec: &Decoder, ex: &[Example], fraction: f64) -> Circuit {
    circuit_from(dec, ex, Method::EapIgInputs { steps: 5 }, fraction)
}

/// Greedy circuits of at most 5 % of the edges, scored on 32 items by exact patching (the
/// ground truth; cheap on a 479-edge model) and by EAP-IG, evaluated on 64 held-out items.
#[test]
fn a_greedy_ioi_circuit_with_5_percent_of_the_edges_is_faithful() {
    let model = bundled();
    let dec = &model.decoder;
    let items = task(Task::Ioi);
    let (fit, held) = (examples(&model, &items[..32]), examples(&model, &items[32..96]));
    let circuits =
        [("exact patching", circuit_from(dec, &fit, Method::Exact, 0.05)), ("EAP-IG inputs", circuit(dec, &fit, 0.05))];
    let total = GraphShape::of(&dec.cfg).n_edges();
    let masks: Vec<_> = circuits.iter().map(|(_, c)| c.edge_mask()).collect();
    let f = faithfulness(dec, &held, &masks, &FaithfulnessConfig::default(), &NoProgress).unwrap();
    for (i, (name, c)) in circuits.iter().enumerate() {
        eprintln!(
            "IOI: greedy circuit from {name} scores, {} / {total} edges ({:.1} %), {} nodes: normalised faithfulness \
             {:.3} on 64 held-out items (model {:.3}, corrupted {:.3}, circuit {:.3})",
            c.n_edges_in_graph(),
            100.0 * c.n_edges_in_graph() as f64 / total as f64,
            c.n_nodes_in_graph(),
            f.normalised[i],
            f.model,
            f.corrupted,
            f.circuits[i]
        );
        assert!(c.n_edges_in_graph() as f64 <= 0.05 * total as f64);
    }
    assert!(f.normalised[0] >= 0.8, "exact-patching circuit: faithfulness {:.3} < 0.8", f.normalised[0]);
    assert!(f.normalised[1] >= 0.8, "EAP-IG circuit: faithfulness {:.3} < 0.8", f.normalised[1]);
}

/// The induction mechanism against the attention-pattern head roles (scores on 50 prompts; accuracy
/// on 100 other items). The extracted circuit is the smallest greedy EAP-IG circuit (scores on 32
/// items, sizes in steps of 2.5 % of the edges) whose normalised faithfulness reaches 0.8 on 50
/// held-out items: the circuit that carries the task, not a fixed size. (A 5 % circuit carries
/// only ~0.65 of induction's logit difference and leaves the top induction head L2H1 out; the
/// faithful one holds ~15 % of the edges.)
///
/// Two accuracies: 2-way (the answer's logit above the distractor's; chance 50 %) and top-1 (the
/// answer is the model's top prediction over the whole vocabulary: in-context copying). The
/// distractor is a later word of the sequence, in view once like the answer, so only induction
/// separates them. The model solves it (~98 % 2-way, ~84 % top-1), but its copying is spread
/// over many heads with diffuse attention: no head puts more than ~0.3 of its attention on the
/// induction target or the previous token. What is most necessary is layer 0's previous-token
/// information: the heads whose ablation alone costs most are layer-0 heads.
///
/// Asserted: the top induction head, the top previous-token head and the most necessary head are
/// in the circuit (a weak check: it holds 20 of the 21 writers); and, discriminating, the top
/// previous-token head (L0H2) and the most necessary head (L0H1) are the two heads of largest
/// |EAP-IG node score|. The top induction head ranks only ~13th of 16: the logit difference
/// hardly depends on it (ablated alone, 2-way accuracy stays ~99 %). Mean-ablating the top induction and the top previous-token head (L2H1, L0H2)
/// takes top-1 accuracy from ~84 % to ~41 %, below 50 % (asserted); the 2-way accuracy falls only
/// to ~86 % (the target read on it is not met), and reaches chance (50 %, logit difference ~0: no
/// induction left) with the top 4 of each role (asserted ≤ 55 %). Ablated alone, the heads
/// outside layer 0 cost at most ~10 points of top-1; L0H1 (6 % left) and L0H2 (40 %) are the
/// bottleneck.
#[test]
fn induction_heads_are_in_the_circuit_and_necessary() {
    let model = bundled();
    let dec = &model.decoder;
    let tok = model.tokenizer().unwrap();
    let items = task(Task::Induction);
    let prompts: Vec<Vec<u32>> =
        items[..50].iter().map(|it| tok.encode(&format!("{}{}", it.clean, it.answer)).unwrap()).collect();
    let roles = head_scores(dec, &prompts).unwrap();
    let shape = GraphShape::of(&dec.cfg);
    let cfg = AttributionConfig { method: Method::EapIgInputs { steps: 5 }, batch_size: 16, ..Default::default() };
    let attribution = attribute(dec, &examples(&model, &items[..32]), &cfg, &NoProgress).unwrap();
    let scores = attribution.scores;
    // heads by |EAP-IG node score|, largest first
    let node_scores = attribution.node_scores.unwrap();
    let mut ranked: Vec<(usize, usize)> =
        (0..dec.cfg.n_layers).flat_map(|l| (0..dec.cfg.n_heads).map(move |h| (l, h))).collect();
    let head_score =
        |&(l, h): &(usize, usize)| node_scores[shape.writer_index(Writer::Head { layer: l, head: h })].abs();
    ranked.sort_by(|a, b| head_score(b).total_cmp(&head_score(a)));
    let total = shape.n_edges();
    let points: Vec<usize> = (1..=20).map(|i| i * total / 40).collect();
    let cfg = FaithfulnessConfig { batch_size: 16, ..Default::default() };
    let held = examples(&model, &items[150..200]);
    let sweep = faithfulness_sweep(dec, &held, &scores, SweepSelection::Greedy, &points, &cfg, &NoProgress).unwrap();
    let smallest = sweep.smallest_reaching(0.8).expect("no greedy circuit of up to half the edges reaches 0.8");
    let c = SweepSelection::Greedy.select(&scores, smallest.requested).unwrap();
    eprintln!(
        "induction circuit: the smallest greedy EAP-IG circuit reaching faithfulness 0.8 on 50 held-out items: {} \
         / {total} edges ({:.1} %), {} nodes, faithfulness {:.3}",
        c.n_edges_in_graph(),
        100.0 * c.n_edges_in_graph() as f64 / total as f64,
        c.n_nodes_in_graph(),
        smallest.faithfulness
    );
    let in_circuit = |l: usize, h: usize| c.node_in_graph(shape.writer_index(Writer::Head { layer: l, head: h }));
    let eval = &items[50..150];
    let base = task_accuracy(dec, tok, eval, 32).unwrap();
    // means over every position of the evaluation items' clean prompts
    let prompts: Vec<Vec<u32>> = eval.iter().map(|it| tok.encode(&it.clean).unwrap()).collect();
    let means = HeadMeans::of(dec, &prompts).unwrap();
    let with_heads_mean_ablated =
        |heads: &[(usize, usize)]| task_accuracy_with(dec, tok, eval, 32, &means.ablation(heads).unwrap()).unwrap();
    eprintln!(
        "induction accuracy {:.1} % 2-way, {:.1} % top-1; per head: previous-token score, induction score, \
         accuracy (2-way, top-1) with the head mean-ablated, in the circuit",
        100.0 * base.accuracy,
        100.0 * base.top1
    );
    let mut most_necessary = ((0, 0), f64::INFINITY);
    for l in 0..dec.cfg.n_layers {
        for h in 0..dec.cfg.n_heads {
            let score = with_heads_mean_ablated(&[(l, h)]);
            let acc = score.accuracy;
            eprintln!(
                "  L{l}H{h}: {:.2} {:.2} {:5.1} % {:5.1} % {}",
                roles.previous_token[l][h],
                roles.induction[l][h],
                100.0 * acc,
                100.0 * score.top1,
                in_circuit(l, h)
            );
            if acc < most_necessary.1 {
                most_necessary = ((l, h), acc);
            }
        }
    }
    let ind = HeadScores::top(&roles.induction, 1)[0];
    let prev = HeadScores::top(&roles.previous_token, 1)[0];
    eprintln!(
        "top induction head L{}H{} ({:.2}) in circuit: {}; top previous-token head L{}H{} ({:.2}) in circuit: {}; most \
         necessary head L{}H{} in circuit: {}",
        ind.0,
        ind.1,
        ind.2,
        in_circuit(ind.0, ind.1),
        prev.0,
        prev.1,
        prev.2,
        in_circuit(prev.0, prev.1),
        most_necessary.0 .0,
        most_necessary.0 .1,
        in_circuit(most_necessary.0 .0, most_necessary.0 .1)
    );
    assert!(in_circuit(ind.0, ind.1), "the top induction head L{}H{} is not in the circuit", ind.0, ind.1);
    assert!(in_circuit(prev.0, prev.1), "the top previous-token head L{}H{} is not in the circuit", prev.0, prev.1);
    let (l, h) = most_necessary.0;
    assert!(in_circuit(l, h), "the most necessary head L{l}H{h} is not in the circuit");
    // Membership alone says little when the circuit holds nearly every head; the ranking does:
    // the attribution puts the top previous-token head and the most necessary head first.
    let rank = |head: (usize, usize)| ranked.iter().position(|&x| x == head).unwrap() + 1;
    eprintln!(
        "by |EAP-IG node score| of 16 heads: top previous-token head rank {}, most necessary head rank {}, top \
         induction head rank {}",
        rank((prev.0, prev.1)),
        rank(most_necessary.0),
        rank((ind.0, ind.1))
    );
    assert!(rank((prev.0, prev.1)) <= 2 && rank(most_necessary.0) <= 2, "{ranked:?}");
    let mut ablated = Vec::new();
    for k in [1, 2, 4] {
        let heads = roles.top_of_each(k);
        let score = with_heads_mean_ablated(&heads);
        eprintln!(
            "top {k} induction and top {k} previous-token heads {heads:?} mean-ablated: 2-way accuracy {:.1} % → {:.1} %, \
             top-1 {:.1} % → {:.1} %, logit difference {:.3} → {:.3}",
            100.0 * base.accuracy,
            100.0 * score.accuracy,
            100.0 * base.top1,
            100.0 * score.top1,
            base.mean_logit_diff,
            score.mean_logit_diff
        );
        ablated.push(score);
    }
    assert!(base.accuracy > 0.9 && ablated.iter().all(|a| a.accuracy < base.accuracy && a.top1 < base.top1));
    assert!(ablated[0].top1 < 0.5, "top-1 induction accuracy {:.3} with the top heads ablated", ablated[0].top1);
    // A regression ceiling: measured 0.50 (chance: no induction left), 0.55 leaves room for
    // rounding only, since the run is deterministic.
    assert!(
        ablated[2].accuracy <= 0.55,
        "2-way accuracy {:.3} with the top 4 of each role ablated",
        ablated[2].accuracy
    );
}
