//! What the hooks promise: captures have the documented shapes, optional activations (per-head
//! inputs and results) change nothing, and each intervention does exactly what it says.

mod common;

use candle_core::{DType, Device, IndexOp, Tensor};
use circuitscope::analyses::heads::HeadMeans;
use circuitscope::hooks::{Edit, HookPoint, HookSet, Intervention, MeanOver, Site};
use circuitscope::model::inspect::{greedy_batch, greedy_cached, hook_shape};
use circuitscope::model::{KvCache, LoadOptions, Model};
use common::{fixture, max_abs_diff};

fn load(family: &str) -> Model {
    Model::load(fixture(&format!("parity/{family}")), LoadOptions::default()).unwrap()
}

fn clean() -> Tensor {
    Tensor::new(&[[5u32, 17, 3, 40, 9, 77, 21], [1, 2, 60, 4, 33, 8, 90]], &Device::Cpu).unwrap()
}

fn corrupt() -> Tensor {
    Tensor::new(&[[5u32, 17, 3, 41, 9, 70, 21], [1, 2, 61, 4, 33, 18, 90]], &Device::Cpu).unwrap()
}

const FAMILIES: [&str; 7] = ["gpt2", "llama", "llama3", "qwen2", "mistral", "gpt_neox", "gemma"];

#[test]
fn capturing_everything_changes_no_logit_and_shapes_are_as_documented() {
    for family in FAMILIES {
        let m = load(family);
        let plain = m.decoder.logits(&clean()).unwrap();
        let out = m.decoder.forward(&clean(), &HookSet::new().capture_all()).unwrap();
        assert!(max_abs_diff(&plain, &out.logits) < 1e-5, "{family}");
        assert_eq!(out.cache.len(), m.decoder.hook_points().len(), "{family}: every point captured");
        for (p, t) in out.cache.iter() {
            let want: Vec<usize> = hook_shape(&m.decoder, *p)
                .iter()
                .map(|d| match d.as_str() {
                    "batch" => 2,
                    "seq" => 7,
                    n => n.parse().unwrap(),
                })
                .collect();
            assert_eq!(t.dims(), want.as_slice(), "{family}: {p}");
        }
    }
}

#[test]
fn logits_at_chosen_rows_are_those_rows_of_the_full_logits() {
    let rows = Tensor::new(&[6u32, 0, 9, 13], &Device::Cpu).unwrap(); // flat item·7 + position
    for family in FAMILIES {
        let m = load(family);
        let full = m.decoder.logits(&clean()).unwrap();
        let v = full.dim(2).unwrap();
        let want = full.reshape((14, v)).unwrap().index_select(&rows, 0).unwrap();
        let got = m.decoder.forward(&clean(), &HookSet::new().logits_at(&rows)).unwrap().logits;
        assert_eq!(got.dims(), &[4, v], "{family}");
        assert!(max_abs_diff(&want, &got) < 1e-5, "{family}: {}", max_abs_diff(&want, &got));
    }
    let m = load("llama");
    let past = Tensor::new(&[3u32, 14], &Device::Cpu).unwrap();
    let err = m.decoder.forward(&clean(), &HookSet::new().logits_at(&past)).err().expect("row 14 of 2 x 7");
    assert!(err.to_string().contains("logit row 14 is past the batch's 2 x 7 positions"), "{err}");
}

#[test]
fn a_cached_pass_gives_the_full_passes_logits_position_by_position() {
    for family in FAMILIES {
        let m = load(family);
        let ids = clean();
        let full = m.decoder.logits(&ids).unwrap(); // (2, 7, V)
        let mut cache = KvCache::default();
        // a prefix of 4 in one pass, then one token a pass
        let mut got =
            vec![m.decoder.forward_cached(&ids.narrow(1, 0, 4).unwrap(), &mut cache, &HookSet::new()).unwrap().logits];
        for p in 4..7 {
            got.push(
                m.decoder.forward_cached(&ids.narrow(1, p, 1).unwrap(), &mut cache, &HookSet::new()).unwrap().logits,
            );
        }
        assert_eq!(cache.len(), 7);
        let got = Tensor::cat(&got, 1).unwrap();
        assert!(max_abs_diff(&full, &got) < 1e-4, "{family}: {}", max_abs_diff(&full, &got));
        // an intervention applies to the new positions alike
        let steer = |x: f32| {
            let add = Tensor::full(x, m.cfg().d_model, &Device::Cpu).unwrap();
            HookSet::new().intervene(Intervention::new(HookPoint::Block(0, Site::ResidPost), Edit::Add(add)))
        };
        let full = m.decoder.forward(&ids, &steer(0.5)).unwrap().logits;
        let mut cache = KvCache::default();
        let a = m.decoder.forward_cached(&ids.narrow(1, 0, 5).unwrap(), &mut cache, &steer(0.5)).unwrap().logits;
        let b = m.decoder.forward_cached(&ids.narrow(1, 5, 2).unwrap(), &mut cache, &steer(0.5)).unwrap().logits;
        let got = Tensor::cat(&[a, b], 1).unwrap();
        assert!(max_abs_diff(&full, &got) < 1e-4, "{family} steered: {}", max_abs_diff(&full, &got));
    }
    let m = load("llama");
    let mut cache = KvCache::default();
    let hooks = HookSet::new().capture([HookPoint::Block(0, Site::Result)]);
    let err = m.decoder.forward_cached(&clean(), &mut cache, &hooks).err().expect("results are not cached");
    assert!(err.to_string().contains("cannot be hooked in a cached"), "{err}");
    let mut cache = KvCache::default();
    m.decoder.forward_cached(&clean(), &mut cache, &HookSet::new()).unwrap();
    let one = Tensor::new(&[[5u32]], &Device::Cpu).unwrap();
    let err = m.decoder.forward_cached(&one, &mut cache, &HookSet::new()).err().expect("2 rows cached, 1 given");
    assert!(err.to_string().contains("the cache holds 2 rows, the input 1"), "{err}");
}

#[test]
fn a_left_padded_batch_runs_each_row_as_it_would_alone() {
    let texts: [&[u32]; 3] = [&[5, 17, 3, 40, 9, 77, 21], &[1, 2, 60], &[8, 90, 4, 33, 6]];
    for family in FAMILIES {
        let m = load(family);
        let alone: Vec<Tensor> = texts
            .iter()
            .map(|t| m.decoder.logits(&Tensor::new(*t, &Device::Cpu).unwrap().unsqueeze(0).unwrap()).unwrap())
            .collect();
        // prompts of the first 5, 2 and 3 tokens, padded at the start to 5, then one token a pass
        let lens = [5usize, 2, 3];
        let mut cache = KvCache::left_padded(lens.iter().map(|l| 5 - l).collect());
        let prompt: Vec<u32> = texts
            .iter()
            .zip(lens)
            .flat_map(|(t, l)| [0u32].repeat(5 - l).into_iter().chain(t[..l].iter().copied()))
            .collect();
        let first = m
            .decoder
            .forward_cached(&Tensor::from_vec(prompt, (3, 5), &Device::Cpu).unwrap(), &mut cache, &HookSet::new())
            .unwrap()
            .logits;
        for (r, l) in lens.iter().enumerate() {
            let got = first.i((r, 5 - l..5)).unwrap();
            let want = alone[r].i((0, 0..*l)).unwrap();
            assert!(max_abs_diff(&want, &got) < 1e-4, "{family} row {r} prompt: {}", max_abs_diff(&want, &got));
        }
        let step = Tensor::new(&[[texts[0][5]], [texts[1][2]], [texts[2][3]]], &Device::Cpu).unwrap();
        let next = m.decoder.forward_cached(&step, &mut cache, &HookSet::new()).unwrap().logits;
        for (r, l) in lens.iter().enumerate() {
            let (got, want) = (next.i((r, 0)).unwrap(), alone[r].i((0, *l)).unwrap());
            assert!(max_abs_diff(&want, &got) < 1e-4, "{family} row {r} step: {}", max_abs_diff(&want, &got));
        }
        // the second text ends: the others go on without it
        cache.keep_rows(&[0, 2]).unwrap();
        let step = Tensor::new(&[[texts[0][6]], [texts[2][4]]], &Device::Cpu).unwrap();
        let next = m.decoder.forward_cached(&step, &mut cache, &HookSet::new()).unwrap().logits;
        for (i, (r, l)) in [(0usize, 6usize), (2, 4)].into_iter().enumerate() {
            let (got, want) = (next.i((i, 0)).unwrap(), alone[r].i((0, l)).unwrap());
            assert!(max_abs_diff(&want, &got) < 1e-4, "{family} row {r} after one left: {}", max_abs_diff(&want, &got));
        }
        // greedy continuations, batched and one at a time
        let prompts: Vec<Vec<u32>> = texts.iter().map(|t| t.to_vec()).collect();
        let batched = greedy_batch(&m.decoder, &prompts, 6, None, &HookSet::new()).unwrap();
        for (p, b) in prompts.iter().zip(&batched) {
            assert_eq!(&greedy_cached(&m.decoder, p, 6, None, &HookSet::new()).unwrap(), b, "{family}");
        }
        // a row that reaches the stop token leaves the batch; the others are unchanged
        let stop = batched[1][0];
        let stopped = greedy_batch(&m.decoder, &prompts, 6, Some(stop), &HookSet::new()).unwrap();
        for (p, b) in prompts.iter().zip(&stopped) {
            assert_eq!(&greedy_cached(&m.decoder, p, 6, Some(stop), &HookSet::new()).unwrap(), b, "{family} stopping");
        }
        assert_eq!(stopped[1], vec![stop]);
    }
    let m = load("llama");
    let mut cache = KvCache::left_padded(vec![3, 0]);
    let err = m
        .decoder
        .forward_cached(&Tensor::new(&[[1u32, 2, 3], [4, 5, 6]], &Device::Cpu).unwrap(), &mut cache, &HookSet::new())
        .err()
        .expect("all padding");
    assert!(err.to_string().contains("all padding"), "{err}");
    let err = greedy_batch(&m.decoder, &[vec![1], vec![]], 2, None, &HookSet::new()).expect_err("an empty prompt");
    assert!(err.to_string().contains("no tokens"), "{err}");
}

#[test]
fn head_results_sum_to_the_attention_output() {
    for family in FAMILIES {
        let m = load(family);
        let out = m.decoder.forward(&clean(), &HookSet::new().capture_all()).unwrap();
        for l in 0..m.cfg().n_layers {
            let result = out.cache.get(HookPoint::Block(l, Site::Result)).unwrap();
            let mut sum = result.sum(2).unwrap();
            if let Some(bo) = &m.decoder.blocks[l].attn.bo {
                sum = sum.broadcast_add(bo).unwrap();
            }
            let attn_out = out.cache.get(HookPoint::Block(l, Site::AttnOut)).unwrap();
            assert!(max_abs_diff(&sum, attn_out) < 1e-5, "{family} layer {l}");
        }
    }
}

#[test]
fn grouped_query_keys_are_exposed_per_query_head() {
    let m = load("llama"); // 4 query heads, 2 key/value heads
    let out = m.decoder.forward(&clean(), &HookSet::new().capture([HookPoint::Block(0, Site::K)])).unwrap();
    let k = out.cache.get(HookPoint::Block(0, Site::K)).unwrap();
    assert_eq!(k.dims(), &[2, 7, 4, 16]);
    let head = |h: usize| k.i((.., .., h, ..)).unwrap();
    assert_eq!(max_abs_diff(&head(0), &head(1)), 0.0);
    assert_eq!(max_abs_diff(&head(2), &head(3)), 0.0);
    assert!(max_abs_diff(&head(0), &head(2)) > 1e-3);
}

#[test]
fn patching_the_first_residual_stream_reproduces_the_other_run() {
    let m = load("gpt2");
    let p = HookPoint::Block(0, Site::ResidPre);
    let other = m.decoder.forward(&corrupt(), &HookSet::new().capture([p])).unwrap();
    let patched = m
        .decoder
        .forward(&clean(), &HookSet::new().intervene(Intervention::patch_from(p, &other.cache).unwrap()))
        .unwrap();
    assert!(max_abs_diff(&patched.logits, &other.logits) < 1e-6);
}

#[test]
fn a_per_position_patch_changes_only_that_position_and_later() {
    let m = load("llama");
    let p = HookPoint::Block(1, Site::ResidPre);
    let base = m.decoder.logits(&clean()).unwrap();
    let other = m.decoder.forward(&corrupt(), &HookSet::new().capture([p])).unwrap();
    let iv = Intervention::patch_from(p, &other.cache).unwrap().at_positions(vec![3]);
    let out = m.decoder.forward(&clean(), &HookSet::new().intervene(iv)).unwrap();
    let pos = |t: &Tensor, i: usize| t.i((.., i, ..)).unwrap();
    for i in 0..3 {
        assert_eq!(max_abs_diff(&pos(&out.logits, i), &pos(&base, i)), 0.0, "position {i} must not change");
    }
    assert!(max_abs_diff(&pos(&out.logits, 3), &pos(&base, 3)) > 1e-3);
}

#[test]
fn zeroing_one_head_touches_only_that_head() {
    let m = load("qwen2");
    let z = HookPoint::Block(0, Site::Z);
    let base = m.decoder.forward(&clean(), &HookSet::new().capture([z])).unwrap();
    let iv = Intervention::new(z, Edit::Zero).at_heads(vec![1]);
    let out = m.decoder.forward(&clean(), &HookSet::new().capture([z]).intervene(iv)).unwrap();
    let zz = out.cache.get(z).unwrap();
    let zb = base.cache.get(z).unwrap();
    for h in 0..4 {
        let d = max_abs_diff(&zz.i((.., .., h, ..)).unwrap(), &zb.i((.., .., h, ..)).unwrap());
        if h == 1 {
            assert_eq!(common::max_abs(&zz.i((.., .., h, ..)).unwrap()), 0.0);
        } else {
            assert_eq!(d, 0.0, "head {h} must not change");
        }
    }
    assert!(max_abs_diff(&out.logits, &base.logits) > 1e-4);
}

#[test]
fn a_query_input_patch_reaches_only_that_heads_query() {
    let m = load("gemma");
    let (qi, q, k) = (HookPoint::Block(0, Site::QInput), HookPoint::Block(0, Site::Q), HookPoint::Block(0, Site::K));
    let other = m.decoder.forward(&corrupt(), &HookSet::new().capture([qi])).unwrap();
    // capturing q_input too puts both runs on the per-head input path, so untouched heads agree bitwise
    let base = m.decoder.forward(&clean(), &HookSet::new().capture([qi, q, k])).unwrap();
    let iv = Intervention::patch_from(qi, &other.cache).unwrap().at_heads(vec![2]);
    let out = m.decoder.forward(&clean(), &HookSet::new().capture([q, k]).intervene(iv)).unwrap();
    let head = |c: &circuitscope::hooks::ActivationCache, p, h: usize| c.get(p).unwrap().i((.., .., h, ..)).unwrap();
    assert!(max_abs_diff(&head(&out.cache, q, 2), &head(&base.cache, q, 2)) > 1e-3);
    for h in [0, 1, 3] {
        assert_eq!(max_abs_diff(&head(&out.cache, q, h), &head(&base.cache, q, h)), 0.0, "query head {h}");
    }
    assert_eq!(max_abs_diff(out.cache.get(k).unwrap(), base.cache.get(k).unwrap()), 0.0, "keys untouched");
}

#[test]
fn mean_scale_and_add_edits() {
    let m = load("gpt_neox");
    let p = HookPoint::Block(1, Site::MlpOut);
    let base = m.decoder.forward(&clean(), &HookSet::new().capture([p])).unwrap();
    let mean = base.cache.mean(p, MeanOver::BatchAndPositions).unwrap();
    assert_eq!(mean.dims(), &[1, 1, 64]);
    let out = m
        .decoder
        .forward(&clean(), &HookSet::new().capture([p]).intervene(Intervention::new(p, Edit::Mean(mean.clone()))))
        .unwrap();
    assert!(max_abs_diff(out.cache.get(p).unwrap(), &mean.broadcast_as((2, 7, 64)).unwrap()) < 1e-7);
    let per_pos = base.cache.mean(p, MeanOver::Batch).unwrap();
    assert_eq!(per_pos.dims(), &[1, 7, 64]);

    let doubled =
        m.decoder.forward(&clean(), &HookSet::new().intervene(Intervention::new(p, Edit::Scale(2.0)))).unwrap();
    let added = m
        .decoder
        .forward(
            &clean(),
            &HookSet::new().intervene(Intervention::new(p, Edit::Add(base.cache.get(p).unwrap().clone()))),
        )
        .unwrap();
    assert!(max_abs_diff(&doubled.logits, &added.logits) < 1e-5);
}

#[test]
fn bad_hooks_are_rejected_with_the_point_named() {
    let m = load("llama");
    let err = match m.decoder.forward(&clean(), &HookSet::new().tap([HookPoint::Block(9, Site::Z)])) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a tap on layer 9 of a 2-layer model must fail"),
    };
    assert!(err.contains("blocks.9.attn.hook_z"), "{err}");
    let bad = Tensor::zeros((3, 5), DType::F32, &Device::Cpu).unwrap();
    let p = HookPoint::Block(0, Site::ResidPre);
    let err = match m.decoder.forward(&clean(), &HookSet::new().intervene(Intervention::new(p, Edit::Replace(bad)))) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a replacement of the wrong shape must fail"),
    };
    assert!(err.contains("blocks.0.hook_resid_pre") && err.contains("[3, 5]"), "{err}");
    let err = match m
        .decoder
        .forward(&clean(), &HookSet::new().intervene(Intervention::new(p, Edit::Zero).at_heads(vec![0])))
    {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a head selection on a point without heads must fail"),
    };
    assert!(err.contains("no head axis"), "{err}");
}

#[test]
fn a_repeated_batch_runs_the_shared_prefix_once_and_refuses_what_it_cannot_do() {
    let m = load("llama");
    let (ids, p) = (clean(), HookPoint::Block(1, Site::ResidPre));
    let plain = m.decoder.forward(&ids.repeat((3, 1)).unwrap(), &HookSet::new()).unwrap().logits;
    let repeated =
        m.decoder.forward(&ids, &HookSet::new().intervene(Intervention::new(p, Edit::Repeat(3)))).unwrap().logits;
    // copy c in rows c·b..(c+1)·b, as the input repeated three times gives
    assert_eq!(repeated.dims(), plain.dims());
    assert!(max_abs_diff(&repeated, &plain) < 1e-5);
    let refused = |hooks: HookSet| match m.decoder.forward(&ids, &hooks) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("the repeat must be refused"),
    };
    let err = refused(HookSet::new().intervene(Intervention::new(p, Edit::Repeat(0))));
    assert!(err.contains("at least once"), "{err}");
    let err = refused(HookSet::new().intervene(Intervention::new(p, Edit::Repeat(2)).at_positions(vec![1])));
    assert!(err.contains("positions or heads"), "{err}");
    let hooks = HookSet::new().intervene(Intervention::new(p, Edit::Repeat(2)));
    let err = match m.decoder.forward_cached(&ids, &mut KvCache::default(), &hooks) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a repeat on cached keys and values must be refused"),
    };
    assert!(err.contains("cached keys and values"), "{err}");
}

#[test]
fn forward_passes_are_bitwise_deterministic() {
    let m = load("mistral");
    let hooks = HookSet::new().tap([HookPoint::Block(0, Site::QInput)]);
    let a = m.decoder.forward(&clean(), &hooks).unwrap();
    let b = m.decoder.forward(&clean(), &hooks).unwrap();
    let ga = a.taps.gradients(&a.logits.sum_all().unwrap()).unwrap();
    let gb = b.taps.gradients(&b.logits.sum_all().unwrap()).unwrap();
    assert_eq!(max_abs_diff(&a.logits, &b.logits), 0.0);
    let p = HookPoint::Block(0, Site::QInput);
    assert_eq!(max_abs_diff(ga.get(p).unwrap(), gb.get(p).unwrap()), 0.0);
}

#[test]
fn dynamic_edits_read_this_runs_earlier_captures() {
    for family in ["gpt2", "llama", "gpt_neox"] {
        let m = load(family);
        let (m0, mlp_in) = (HookPoint::Block(0, Site::MlpOut), HookPoint::Block(1, Site::MlpIn));
        // Remove m0's contribution from the MLP input of layer 1, reading m0 in the same pass.
        let dynamic = Intervention::dynamic(mlp_in, [m0], move |x, cache| Ok((x - cache.get(m0)?)?));
        let out = m.decoder.forward(&clean(), &HookSet::new().intervene(dynamic)).unwrap();
        assert!(out.cache.get(m0).is_ok(), "{family}: what a dynamic edit reads is captured");
        // The same with two passes: m0 is upstream, so the first pass's value is this run's.
        let first = m.decoder.forward(&clean(), &HookSet::new().capture([m0])).unwrap();
        let minus = first.cache.get(m0).unwrap().neg().unwrap();
        let fixed = m.decoder.forward(&clean(), &HookSet::new().intervene(Intervention::new(mlp_in, Edit::Add(minus))));
        assert!(max_abs_diff(&out.logits, &fixed.unwrap().logits) < 1e-5, "{family}");
        assert!(max_abs_diff(&out.logits, &first.logits) > 1e-4, "{family}: the edit did something");

        // Head selections apply to dynamic edits as to static ones.
        let q = HookPoint::Block(1, Site::QInput);
        let zero_dyn = Intervention::dynamic(q, [], |x, _| Ok(x.zeros_like()?)).at_heads(vec![1]);
        let zero = Intervention::new(q, Edit::Zero).at_heads(vec![1]);
        let a = m.decoder.forward(&clean(), &HookSet::new().intervene(zero_dyn)).unwrap();
        let b = m.decoder.forward(&clean(), &HookSet::new().intervene(zero)).unwrap();
        assert_eq!(max_abs_diff(&a.logits, &b.logits), 0.0, "{family}");
    }
}

#[test]
fn dynamic_edits_cannot_read_later_points_or_change_shapes() {
    let m = load("gpt2");
    let (mlp_in, mlp_out) = (HookPoint::Block(1, Site::MlpIn), HookPoint::Block(1, Site::MlpOut));
    let late = Intervention::dynamic(mlp_in, [mlp_out], move |x, cache| Ok((x + cache.get(mlp_out)?)?));
    let err = match m.decoder.forward(&clean(), &HookSet::new().intervene(late)) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("reading a point that fires later must fail"),
    };
    assert!(err.contains("blocks.1.hook_mlp_in") && err.contains("blocks.1.hook_mlp_out"), "{err}");
    let bad = Intervention::dynamic(mlp_in, [], |x, _| Ok(x.sum_keepdim(2)?));
    let err = match m.decoder.forward(&clean(), &HookSet::new().intervene(bad)) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a dynamic edit of the wrong shape must fail"),
    };
    assert!(err.contains("blocks.1.hook_mlp_in") && err.contains("[2, 7, 1]"), "{err}");
}

#[test]
fn mean_ablating_heads_sets_their_z_to_the_reference_mean() {
    let m = load("gpt2");
    let prompts: Vec<Vec<u32>> = vec![vec![5, 17, 3, 40], vec![1, 2, 60, 4, 33, 8]];
    let means = HeadMeans::of(&m.decoder, &prompts).unwrap();
    let hooks = means.ablation(&[(0, 1), (1, 0)]).unwrap();
    // the expected means, from the z of the reference prompts, every position weighted alike
    let z = |l: usize| HookPoint::Block(l, Site::Z);
    let mut sums = [None::<Tensor>, None];
    for p in &prompts {
        let out = m
            .decoder
            .forward(
                &Tensor::new(p.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap(),
                &HookSet::new().capture([z(0), z(1)]),
            )
            .unwrap();
        for (l, s) in sums.iter_mut().enumerate() {
            let t = out.cache.get(z(l)).unwrap().squeeze(0).unwrap().sum(0).unwrap(); // (H, dh)
            *s = Some(s.take().map_or(t.clone(), |a| (a + t).unwrap()));
        }
    }
    let mean = |l: usize, h: usize| (sums[l].as_ref().unwrap().i(h).unwrap() / 10.0).unwrap();
    let base = m.decoder.forward(&clean(), &HookSet::new().capture([z(0), z(1)])).unwrap();
    let out = m.decoder.forward(&clean(), &hooks.capture([z(0), z(1)])).unwrap();
    for l in 0..2 {
        let (got, before) = (out.cache.get(z(l)).unwrap(), base.cache.get(z(l)).unwrap());
        for h in 0..4 {
            let g = got.i((.., .., h, ..)).unwrap();
            if (l, h) == (0, 1) || (l, h) == (1, 0) {
                let want = mean(l, h).broadcast_as(g.shape()).unwrap();
                assert!(max_abs_diff(&g, &want) < 1e-6, "L{l}H{h} holds its mean");
            } else if l == 0 {
                assert_eq!(max_abs_diff(&g, &before.i((.., .., h, ..)).unwrap()), 0.0, "L0H{h} must not change");
            }
        }
    }
    assert!(max_abs_diff(&out.logits, &base.logits) > 1e-4);
    let none = m.decoder.forward(&clean(), &means.ablation(&[]).unwrap()).unwrap();
    assert_eq!(max_abs_diff(&none.logits, &base.logits), 0.0, "no heads, no change");
    let Err(bad) = means.ablation(&[(0, 9)]) else { panic!("a head past the model's is refused") };
    let bad = bad.to_string();
    assert!(bad.contains("L0H9") && bad.contains("4 heads"), "{bad}");
}

/// Hooks fire in the order `HookPoint::all` (built from `Site::ALL`) documents, each point once,
/// for every family: learned positions (gpt2), parallel residual without `hook_resid_mid`
/// (gpt_neox), gated MLPs (llama and the rest). `Site::ALL` and the forward code each write the
/// order down; this is what holds them to each other.
#[test]
fn hooks_fire_in_the_documented_order() {
    use circuitscope::hooks::DynamicEdit;
    use std::sync::{Arc, Mutex};
    for family in ["gpt2", "llama", "llama3", "qwen2", "mistral", "gpt_neox", "gemma"] {
        let model = load(family);
        let points = model.decoder.hook_points().to_vec();
        let fired = Arc::new(Mutex::new(Vec::new()));
        let mut hooks = HookSet::new();
        for &p in &points {
            let fired = fired.clone();
            let edit = DynamicEdit::new([], move |x: &Tensor, _: &_| {
                fired.lock().unwrap().push(p);
                Ok(x.clone())
            });
            hooks = hooks.intervene(Intervention::new(p, Edit::Dynamic(edit)));
        }
        let ids = Tensor::new(&[[1u32, 2, 3, 4]], &Device::Cpu).unwrap();
        model.decoder.forward(&ids, &hooks).unwrap();
        assert_eq!(
            *fired.lock().unwrap(),
            points,
            "{family}: the forward pass fires hooks out of the documented order"
        );
    }
}
