//! SVG drawings: circuits from a 2-layer toy up to SmolLM2's 30 layers × 9 heads are
//! well-formed, have no overlapping labels, scale with the model, and are deterministic;
//! faithfulness plots likewise. Set CIRCUITSCOPE_EXAMPLES=dir to also write the drawings
//! there for a look.

mod common;

use circuitscope::graph::{curve_areas, Circuit, EdgeScores, GraphShape, Writer};
use circuitscope::render::svg::{check_well_formed, overlapping_texts, text_items};
use circuitscope::render::{
    circuit_svg, write_circuit_svg, BarChart, CircuitSvgOptions, InactiveNodes, LinePlot, NodeFills, Series,
};
use common::TempDir;

fn random_scores(shape: GraphShape, seed: u64) -> EdgeScores {
    let mut x = seed | 1;
    let mut s = EdgeScores::zeros(shape);
    for (w, r) in shape.edges() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let u = (x >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
                                                        // Heavy-tailed magnitudes, random sign, so a few edges dominate as in real scores.
        s.set(w, r, if x & 1 == 0 { u.powi(6) } else { -u.powi(6) });
    }
    s
}

fn example(name: &str, svg: &str) {
    if let Ok(dir) = std::env::var("CIRCUITSCOPE_EXAMPLES") {
        std::fs::write(std::path::Path::new(&dir).join(name), svg).unwrap();
    }
}

/// The checks every drawing must pass.
fn assert_publishable(svg: &str) {
    check_well_formed(svg).unwrap_or_else(|e| panic!("malformed SVG: {e}"));
    let items = text_items(svg);
    assert!(!items.is_empty());
    if let Some((a, b)) = overlapping_texts(&items) {
        panic!("labels overlap: {a:?} and {b:?}");
    }
}

fn size(svg: &str) -> (f64, f64) {
    let attr = |name: &str| -> f64 {
        let key = format!(" {name}=\"");
        let i = svg.find(&key).unwrap() + key.len();
        svg[i..i + svg[i..].find('"').unwrap()].parse().unwrap()
    };
    (attr("width"), attr("height"))
}

#[test]
fn four_layer_circuit_renders() {
    let shape = GraphShape { n_layers: 4, n_heads: 8, parallel_residual: false };
    let c = Circuit::greedy(&random_scores(shape, 5), 60).unwrap().pruned();
    assert!(c.n_edges_in_graph() > 10);
    let opts =
        CircuitSvgOptions { title: "Random circuit, 4 layers × 8 heads (greedy 60)".into(), ..Default::default() };
    let svg = circuit_svg(&c, &opts);
    assert_publishable(&svg);
    // One path per edge, q/k/v styles present, a legend and a title.
    assert_eq!(svg.matches("<path d=\"M").count(), c.n_edges_in_graph());
    assert!(svg.contains("stroke-dasharray=\"7 4\"") && svg.contains("stroke-dasharray=\"0.1 3.5\""));
    assert!(svg.contains("<g id=\"legend\">") && svg.contains("<title>Random circuit"));
    assert!(svg.contains("#0072B2") && svg.contains("#D55E00"));
    example("circ-example-4x8.svg", &svg);

    let hidden = circuit_svg(&c, &CircuitSvgOptions { inactive: InactiveNodes::Hidden, ..opts.clone() });
    assert_publishable(&hidden);
    assert_eq!(
        hidden.matches("<text ").count(),
        svg.matches("<text ").count() - (shape.n_nodes() - c.n_nodes_in_graph() - 1) - 1
    );
    example("circ-example-4x8-hidden.svg", &hidden);
}

#[test]
fn smollm2_sized_circuit_renders_without_overlaps() {
    let shape = GraphShape { n_layers: 30, n_heads: 9, parallel_residual: false };
    let scores = random_scores(shape, 9);
    let c = Circuit::greedy(&scores, 250).unwrap().pruned();
    let opts = CircuitSvgOptions { title: "SmolLM2-135M shape: 30 layers × 9 heads".into(), ..Default::default() };
    let svg = circuit_svg(&c, &opts);
    assert_publishable(&svg);
    // Every node is drawn (faint or not): 30 × 9 heads + 30 MLPs + input + logits labels.
    assert!(text_items(&svg).iter().filter(|t| t.content == "a29.h8").count() == 1);
    // Rects: background, one per node, legend frame, three legend node swatches.
    assert_eq!(svg.matches("<rect x=").count(), 1 + shape.n_nodes() + 1 + 3);
    example("circ-example-30x9.svg", &svg);

    // The canvas scales with the model: taller with more layers, wider with more heads.
    let small =
        circuit_svg(&Circuit::greedy(&random_scores(GraphShape { n_layers: 4, ..shape }, 9), 40).unwrap(), &opts);
    let wide = circuit_svg(&Circuit::full(EdgeScores::zeros(GraphShape { n_heads: 16, ..shape })), &opts);
    let ((w30, h30), (w4, h4), (w16, _)) = (size(&svg), size(&small), size(&wide));
    assert!(h30 > 4.0 * h4 && h30 > 30.0 * 60.0, "{h30} vs {h4}");
    assert!(w16 > w30 && w30 >= w4, "{w16} {w30} {w4}");
    assert_publishable(&wide);

    // A dense circuit (every edge) still renders well-formed.
    let dense = Circuit::top_n(&scores, 3000).unwrap();
    assert_publishable(&circuit_svg(&dense, &opts));
}

#[test]
fn drawings_are_deterministic_and_written_atomically() {
    let shape = GraphShape { n_layers: 3, n_heads: 4, parallel_residual: true };
    let c = Circuit::top_n(&random_scores(shape, 1), 30).unwrap().pruned();
    let opts = CircuitSvgOptions { title: "Déjà <vu> & \"quotes\"".into(), ..Default::default() };
    let a = circuit_svg(&c, &opts);
    assert_eq!(a, circuit_svg(&c.clone(), &opts));
    assert!(a.contains("Déjà &lt;vu&gt; &amp; &quot;quotes&quot;"));
    assert_publishable(&a);
    let dir = TempDir::new();
    let path = dir.join("c.svg");
    write_circuit_svg(&path, &c, &opts).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), a);
    assert_eq!(dir.entries(), ["c.svg"]);
}

#[test]
fn faithfulness_plot_renders_with_areas() {
    let n_edges: f64 = 32_491.0;
    let xs = [10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 32_491.0];
    let eap: Vec<(f64, f64)> = xs.iter().map(|&x: &f64| (x, (x.ln() / n_edges.ln()).powf(1.5))).collect();
    let ig: Vec<(f64, f64)> = xs.iter().map(|&x: &f64| (x, (x.ln() / n_edges.ln()).powf(0.7).min(1.05))).collect();
    let (a_eap, a_ig) = (curve_areas(&eap, n_edges), curve_areas(&ig, n_edges));
    assert!(a_ig.cpr > a_eap.cpr && a_ig.cmd < a_eap.cmd);
    assert!((0.0..=1.0).contains(&a_eap.cpr));
    let title = format!("IOI faithfulness (CPR: EAP {:.2}, EAP-IG {:.2})", a_eap.cpr, a_ig.cpr);
    let plot = LinePlot::faithfulness(title, vec![Series::new("EAP", eap), Series::new("EAP-IG", ig)]);
    let svg = plot.to_svg().unwrap();
    assert_publishable(&svg);
    assert_eq!(svg, plot.to_svg().unwrap());
    for label in ["10", "100", "1000", "10k", "100k", "normalised faithfulness", "EAP-IG", "full model (1.0)"] {
        assert!(text_items(&svg).iter().any(|t| t.content == label), "missing label {label}");
    }
    example("circ-example-faithfulness.svg", &svg);
}

#[test]
fn bar_chart_of_edges_per_layer_renders() {
    let shape = GraphShape { n_layers: 30, n_heads: 9, parallel_residual: false };
    let count = |c: &Circuit| {
        let mut per_layer = vec![0.0; shape.n_layers];
        for (w, _, _) in c.edges_in_graph() {
            if let Writer::Head { layer, .. } | Writer::Mlp { layer } = shape.writer(w) {
                per_layer[layer] += 1.0;
            }
        }
        per_layer
    };
    let easy = Circuit::greedy(&random_scores(shape, 3), 75).unwrap().pruned();
    let hard = Circuit::greedy(&random_scores(shape, 4), 75).unwrap().pruned();
    let mut chart = BarChart::new("Edges per layer (by writer)", "layer", "edges");
    chart.categories = (0..shape.n_layers).map(|l| l.to_string()).collect();
    chart.series = vec![("easy".into(), count(&easy)), ("hard".into(), count(&hard))];
    let svg = chart.to_svg().unwrap();
    assert_publishable(&svg);
    // a bar per layer of each series and one legend swatch, in the series' colour
    for colour in ["#0072B2", "#D55E00"] {
        assert_eq!(svg.matches(&format!("fill=\"{colour}\" stroke=\"none\"")).count(), 31, "{colour}");
    }
    example("circ-example-bars.svg", &svg);
}

/// A near-vertical edge that passes other rows climbs in a lane between the columns instead of
/// under the boxes between (m0 → m3 beside m1 and m2; a0.h1 → a3.h1; input → logits and
/// input → a2.h1, which with 3 heads overlap the middle column); one into the next row, or
/// across columns, is a single curve, and no lane runs through a box. Nodes outside the
/// circuit are drawn under the edges, the circuit's over them.
#[test]
fn near_vertical_edges_that_pass_other_rows_climb_in_a_lane() {
    let shape = GraphShape { n_layers: 4, n_heads: 3, parallel_residual: false };
    let mut s = EdgeScores::zeros(shape);
    let named: Vec<(usize, usize)> = shape.edges().collect();
    let find = |n: &str| *named.iter().find(|&&(w, r)| shape.edge_name_of(w, r) == n).unwrap_or_else(|| panic!("{n}"));
    let laned = ["m0->m3", "a0.h1->a3.h1<k>", "input->logits", "input->a2.h1<v>", "a2.h1->logits"];
    let direct = ["input->a0.h1<q>", "a0.h1->m0", "m0->m1", "m1->logits", "m3->logits", "a3.h1->logits"];
    for (i, e) in laned.iter().chain(&direct).enumerate() {
        let (w, r) = find(e);
        s.set(w, r, 1.0 + i as f32);
    }
    let c = Circuit::threshold(&s, 0.5).pruned();
    let svg = circuit_svg(&c, &CircuitSvgOptions::default());
    example("circ-lanes.svg", &svg);
    assert_publishable(&svg);
    let path_of = |edge: &str| {
        let title = format!("<title>{} = ", edge.replace('>', "&gt;").replace('<', "&lt;"));
        let i = svg.find(&title).unwrap_or_else(|| panic!("{edge} not drawn"));
        let start = svg[..i].rfind("<path d=\"").unwrap() + "<path d=\"".len();
        svg[start..start + svg[start..].find('"').unwrap()].to_string()
    };
    // the boxes of the circuit's nodes: (x, y, width, height)
    let nodes = &svg[svg.find("<g id=\"nodes\">").unwrap()..];
    let num = |tag: &str, key: &str| -> f64 {
        let i = tag.find(&format!(" {key}=\"")).unwrap() + key.len() + 3;
        tag[i..i + tag[i..].find('"').unwrap()].parse().unwrap()
    };
    let boxes: Vec<[f64; 4]> = nodes
        .split("<rect ")
        .skip(1)
        .take_while(|t| !t.contains("fill=\"#FFFFFF\""))
        .map(|t| {
            let rect = format!(" {}", &t[..t.find('>').unwrap()]);
            [num(&rect, "x"), num(&rect, "y"), num(&rect, "width"), num(&rect, "height")]
        })
        .collect();
    assert_eq!(boxes.len(), c.n_nodes_in_graph() + 1, "every node of the circuit and logits");
    for e in laned {
        let d = path_of(e);
        let tokens: Vec<f64> =
            d.split(|ch: char| ch == ' ' || ch.is_ascii_alphabetic()).filter_map(|t| t.parse().ok()).collect();
        assert!(d.contains(" L"), "{e} should climb in a lane: {d}");
        // the straight climb: from the 4th point to the 5th, at one x
        let (lane, top, bottom) = (tokens[6], tokens[9], tokens[7]);
        assert_eq!(lane, tokens[8], "{e}: the lane is vertical: {d}");
        for [x, y, w, h] in &boxes {
            let crosses = *x < lane && lane < x + w && *y < bottom && top < y + h;
            assert!(!crosses, "{e}: its lane x = {lane} runs through the box at ({x}, {y}): {d}");
        }
    }
    for e in direct {
        assert!(!path_of(e).contains(" L"), "{e} should be one curve: {}", path_of(e));
    }
    let at = |g: &str| svg.find(g).unwrap();
    assert!(at("<g id=\"inactive-nodes\">") < at("<g id=\"edges\"") && at("<g id=\"edges\"") < at("<g id=\"nodes\">"));
}

/// The text of a one-page PDF in content order, as a reader extracts it: each text-showing
/// operator's glyph codes mapped to Unicode through its font's ToUnicode CMap (read here, since
/// lopdf's own extraction does not parse svg2pdf's CMaps).
fn pdf_text(bytes: &[u8]) -> String {
    use lopdf::{Document, Object};
    use std::collections::BTreeMap;
    let doc = Document::load_mem(bytes).expect("the PDF parses");
    let pages = doc.get_pages();
    assert_eq!(pages.len(), 1, "one page per picture");
    let page = *pages.values().next().unwrap();
    // font name → (glyph code → text)
    let mut maps: BTreeMap<Vec<u8>, BTreeMap<u16, String>> = BTreeMap::new();
    for (name, font) in doc.get_page_fonts(page).expect("the page's fonts") {
        let id = font.get(b"ToUnicode").and_then(Object::as_reference).expect("each font maps its glyphs to text");
        let stream = doc.get_object(id).and_then(Object::as_stream).unwrap();
        // uncompressed streams have no filter to undo
        let cmap = stream.decompressed_content().unwrap_or_else(|_| stream.content.clone());
        let cmap = String::from_utf8_lossy(&cmap).into_owned();
        let hex = |t: &str| u32::from_str_radix(t.trim_matches(|c| c == '<' || c == '>'), 16).unwrap();
        let mut map = BTreeMap::new();
        let mut section = "";
        for line in cmap.lines() {
            match line.split_whitespace().last() {
                Some("beginbfchar") => section = "char",
                Some("beginbfrange") => section = "range",
                Some("endbfchar" | "endbfrange") => section = "",
                _ => {
                    let t: Vec<&str> = line.split_whitespace().collect();
                    match (section, t.as_slice()) {
                        ("char", [code, text]) => {
                            map.insert(hex(code) as u16, char::from_u32(hex(text)).unwrap().to_string());
                        }
                        ("range", [lo, hi, first]) => {
                            for c in hex(lo)..=hex(hi) {
                                map.insert(c as u16, char::from_u32(hex(first) + c - hex(lo)).unwrap().to_string());
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        maps.insert(name, map);
    }
    let content = doc.get_and_decode_page_content(page).expect("the page's content decodes");
    let (mut text, mut font) = (String::new(), Vec::new());
    let mut show = |s: &[u8], font: &[u8]| {
        for pair in s.chunks(2) {
            let code = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            text.push_str(maps[font].get(&code).map_or("\u{fffd}", String::as_str));
        }
    };
    for op in content.operations {
        match (op.operator.as_str(), op.operands.as_slice()) {
            ("Tf", [Object::Name(n), _]) => font = n.clone(),
            ("Tj", [Object::String(s, _)]) => show(s, &font),
            ("TJ", [Object::Array(items)]) => items.iter().for_each(|i| {
                if let Object::String(s, _) = i {
                    show(s, &font)
                }
            }),
            _ => {}
        }
    }
    text
}

#[test]
fn pictures_export_as_pdf_with_text_and_as_png_the_same_across_runs() {
    use circuitscope::render::{write_picture, PictureFormat};
    let shape = GraphShape { n_layers: 4, n_heads: 4, parallel_residual: false };
    let c = Circuit::greedy(&random_scores(shape, 5), 40).unwrap().pruned();
    let opts = CircuitSvgOptions { title: "Exported circuit".into(), ..Default::default() };
    let svg = circuit_svg(&c, &opts);
    let mut plot = LinePlot::faithfulness("Exported curve", vec![Series::new("top-n", vec![(0.0, 0.0), (0.5, 0.9)])]);
    plot.x_label = "edges kept".into();
    let dir = TempDir::new();
    for (name, picture) in [("circuit", svg.clone()), ("curve", plot.to_svg().unwrap())] {
        let (pdf, png) = (dir.join(&format!("{name}.pdf")), dir.join(&format!("{name}.png")));
        write_picture(&pdf, &picture).unwrap();
        write_picture(&png, &picture).unwrap();
        let (pdf_bytes, png_bytes) = (std::fs::read(&pdf).unwrap(), std::fs::read(&png).unwrap());
        // the same picture gives the same PNG and a PDF of the same size (svg2pdf lists a page's
        // resources in hash-map order, so their order may differ)
        write_picture(&pdf, &picture).unwrap();
        write_picture(&png, &picture).unwrap();
        let again = std::fs::read(&pdf).unwrap();
        assert!(again.len() == pdf_bytes.len() && pdf_text(&again) == pdf_text(&pdf_bytes), "{name}.pdf changed");
        assert!(std::fs::read(&png).unwrap() == png_bytes, "{name}.png differs between runs");
        // the PNG decodes, at twice the SVG's size
        let pixmap = resvg::tiny_skia::Pixmap::decode_png(&png_bytes).expect("the PNG decodes");
        let (w, h) = size(&picture);
        assert_eq!((pixmap.width(), pixmap.height()), ((2.0 * w).ceil() as u32, (2.0 * h).ceil() as u32));
        assert!(pixmap.pixels().iter().any(|p| p.red() < 100), "{name}.png has ink");
        // the PDF parses, and its text is text
        let text = pdf_text(&pdf_bytes);
        assert!(text.contains("Exported"), "{name}.pdf text: {text}");
        if name == "circuit" {
            // the legend's ∝, which Liberation Sans lacks, comes from a sans-serif face where
            // the system has one with it (Debian's DejaVu Sans), not from the first face with it
            let sans_has_it =
                std::process::Command::new("fc-list").arg(":charset=221d").arg("family").output().is_ok_and(|o| {
                    String::from_utf8_lossy(&o.stdout).lines().any(|f| f.contains("Sans") && !f.contains("Mono"))
                });
            let fonts: Vec<String> = String::from_utf8_lossy(&pdf_bytes)
                .split("/BaseFont /")
                .skip(1)
                .map(|f| f.split(|c: char| c.is_whitespace() || c == '/' || c == '>').next().unwrap_or("").to_string())
                .collect();
            assert!(!fonts.is_empty(), "no fonts named in the PDF");
            if sans_has_it {
                assert!(fonts.iter().all(|f| !f.contains("Serif") && !f.contains("Math")), "{fonts:?}");
            } else {
                eprintln!("SKIPPED the fallback font check: fc-list finds no sans-serif font with ∝");
            }
            let shape = c.shape();
            for n in (0..shape.n_nodes()).filter(|&n| c.node_in_graph(n)) {
                assert!(text.contains(&shape.node_name(n)), "{} is not in the PDF's text: {text}", shape.node_name(n));
            }
        }
    }
    // the extension picks the format; anything else is refused with nothing written
    assert_eq!(PictureFormat::of(std::path::Path::new("a/b.PDF")).unwrap(), PictureFormat::Pdf);
    let bad = dir.join("circuit.gif");
    let e = write_picture(&bad, &svg).unwrap_err().to_string();
    assert!(e.contains("circuit.gif") && e.contains(".svg, .pdf or .png"), "{e}");
    assert!(!bad.exists());
    assert_eq!(dir.entries().len(), 4);
}

#[test]
fn compact_drawings_keep_only_the_circuits_layers_and_nodes() {
    let shape = GraphShape { n_layers: 30, n_heads: 9, parallel_residual: false };
    let c = Circuit::greedy(&random_scores(shape, 11), 40).unwrap().pruned();
    let opts = CircuitSvgOptions { title: "Compact".into(), compact: true, ..Default::default() };
    let (full, compact) =
        (circuit_svg(&c, &CircuitSvgOptions { compact: false, ..opts.clone() }), circuit_svg(&c, &opts));
    assert_publishable(&compact);
    example("circ-example-30x9-compact.svg", &compact);
    let items = text_items(&compact);
    // every circuit node once, no other node
    for n in 0..shape.n_nodes() {
        let count = items.iter().filter(|t| t.content == shape.node_name(n)).count();
        assert_eq!(count, usize::from(c.node_in_graph(n)), "{}", shape.node_name(n));
    }
    assert_eq!(compact.matches("<path d=\"M").count(), c.n_edges_in_graph());
    // the layers without a circuit node are marked, the others labelled
    let kept: Vec<usize> = (0..shape.n_layers)
        .filter(|&l| {
            c.node_in_graph(shape.writer_index(Writer::Mlp { layer: l }))
                || (0..shape.n_heads).any(|h| c.node_in_graph(shape.writer_index(Writer::Head { layer: l, head: h })))
        })
        .collect();
    assert!(kept.len() < shape.n_layers, "the random circuit leaves some layers out");
    for l in 0..shape.n_layers {
        let labelled = items.iter().any(|t| t.content == format!("layer {l}"));
        assert_eq!(labelled, kept.contains(&l), "layer {l}");
    }
    let markers = items.iter().filter(|t| t.content.starts_with("… layer")).count();
    let runs = (0..shape.n_layers).filter(|&l| !kept.contains(&l) && (l == 0 || kept.contains(&(l - 1)))).count();
    assert_eq!(markers, runs);
    let ((wf, hf), (wc, hc)) = (size(&full), size(&compact));
    assert!(hc < hf && wc <= wf, "compact {wc}×{hc} against full {wf}×{hf}");

    // a paper column's width in points, the proportions kept; greys for greyscale printing
    let column = circuit_svg(&c, &CircuitSvgOptions { width_pt: Some(240.0), ..opts.clone() });
    assert!(column.contains("width=\"240.00pt\""), "{}", &column[..300]);
    let h_pt: f64 = column.split("height=\"").nth(1).unwrap().split("pt\"").next().unwrap().parse().unwrap();
    assert!((h_pt / 240.0 - hc / wc).abs() < 1e-3);
    let grey = circuit_svg(&c, &CircuitSvgOptions { greyscale: true, ..opts });
    assert_publishable(&grey);
    for colour in ["#0072B2", "#D55E00", "#E3EDF7", "#FCE8D5"] {
        assert!(!grey.contains(colour), "{colour} in the greyscale drawing");
    }
}

/// Fills by node name (a CURE partition's categories) colour the circuit's nodes they name, and
/// their legend rows stand in for the palette's head and MLP rows.
#[test]
fn node_fills_colour_the_named_nodes_and_the_legend_explains_them() {
    let shape = GraphShape { n_layers: 3, n_heads: 4, parallel_residual: false };
    let c = Circuit::greedy(&random_scores(shape, 5), 30).unwrap().pruned();
    let modules: Vec<String> = (0..shape.n_nodes())
        .filter(|&n| n != shape.logits_node() && !matches!(shape.writer(n), Writer::Input) && c.node_in_graph(n))
        .map(|n| shape.node_name(n))
        .collect();
    assert!(modules.len() >= 4, "{modules:?}");
    let colours = ["#AA0000", "#00AA00"];
    let fills = NodeFills {
        by_node: modules.iter().enumerate().map(|(i, m)| (m.clone(), colours[i % 2].to_string())).collect(),
        legend: vec![(colours[0].into(), "forget-specific".into()), (colours[1].into(), "task-shared".into())],
    };
    let svg = circuit_svg(&c, &CircuitSvgOptions { fills: Some(fills), ..Default::default() });
    assert_publishable(&svg);
    example("circ-example-partition.svg", &svg);
    for (i, m) in modules.iter().enumerate() {
        let end = svg.find(&format!("><title>{m}</title></rect>")).unwrap_or_else(|| panic!("no box for {m}"));
        let fill = svg[..end].rsplit("fill=\"").next().unwrap().split('"').next().unwrap();
        assert_eq!(fill, colours[i % 2], "{m}");
    }
    let labels: Vec<String> = text_items(&svg).into_iter().map(|t| t.content).collect();
    assert!(labels.iter().any(|l| l == "forget-specific") && labels.iter().any(|l| l == "task-shared"));
    assert!(!labels.iter().any(|l| l == "attention head" || l == "MLP"), "{labels:?}");
}

/// With `group_heads` a layer's circuit heads are one node (`a5.h1,3,7`, or `a5: 4 heads` for
/// more) and the edges between the same two nodes and port are one, with their summed score:
/// as many drawn edges as distinct edge names once the head numbers are struck out.
#[test]
fn grouped_heads_are_one_node_per_layer_and_merged_edges_sum_their_scores() {
    let shape = GraphShape { n_layers: 6, n_heads: 8, parallel_residual: false };
    let c = Circuit::greedy(&random_scores(shape, 7), 80).unwrap().pruned();
    let opts =
        CircuitSvgOptions { title: "Grouped heads".into(), compact: true, group_heads: true, ..Default::default() };
    let svg = circuit_svg(&c, &opts);
    assert_publishable(&svg);
    example("circ-example-grouped.svg", &svg);
    let items = text_items(&svg);
    let mut merged_layers = 0;
    for layer in 0..shape.n_layers {
        let heads: Vec<usize> = (0..shape.n_heads)
            .filter(|&head| c.node_in_graph(shape.writer_index(Writer::Head { layer, head })))
            .collect();
        let labels: Vec<&str> = items
            .iter()
            .map(|t| t.content.as_str())
            .filter(|t| t.starts_with(&format!("a{layer}.h")) || t.starts_with(&format!("a{layer}:")))
            .collect();
        let want = match heads.len() {
            0 => vec![],
            1..=3 => vec![format!("a{layer}.h{}", heads.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(","))],
            k => vec![format!("a{layer}: {k} heads")],
        };
        assert_eq!(labels, want, "layer {layer}");
        merged_layers += usize::from(heads.len() > 1);
    }
    assert!(merged_layers >= 2, "the random circuit has layers with several heads");
    // the drawn edges: one per edge name with the head numbers struck out
    let strip = |name: String| {
        let mut out = String::new();
        let mut rest = name.as_str();
        while let Some(i) = rest.find(".h") {
            out.push_str(&rest[..i]);
            rest = rest[i + 2..].trim_start_matches(|ch: char| ch.is_ascii_digit());
        }
        out + rest
    };
    let mut sums: std::collections::BTreeMap<String, f64> = Default::default();
    for (w, r, s) in c.edges_in_graph() {
        *sums.entry(strip(shape.edge_name_of(w, r))).or_default() += s as f64;
    }
    assert!(sums.len() < c.n_edges_in_graph(), "some edges merge");
    let titles: Vec<&str> = svg
        .split("<path d=\"M")
        .skip(1)
        .map(|p| &p[p.find("<title>").unwrap() + 7..p.find("</title>").unwrap()])
        .collect();
    assert_eq!(titles.len(), sums.len());
    // each drawn edge's score is its group's sum (to the 3 significant digits written)
    let mut drawn: Vec<f64> = titles.iter().map(|t| t.rsplit("= ").next().unwrap().parse::<f64>().unwrap()).collect();
    let mut want: Vec<f64> = sums.values().copied().collect();
    drawn.sort_by(f64::total_cmp);
    want.sort_by(f64::total_cmp);
    for (d, w) in drawn.iter().zip(&want) {
        assert!((d - w).abs() <= 5e-3 * w.abs().max(1e-3), "drawn {d}, summed {w}");
    }
    assert!(titles.iter().any(|t| t.contains(": sum = ")), "{titles:?}");
    assert!(items.iter().any(|t| t.content.contains("summed score")));
}
