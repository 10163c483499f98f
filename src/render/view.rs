//! A circuit to explore in a browser: one self-contained HTML file (no server, no network) with
//! the drawing of [`circuit_svg()`](super::circuit_svg()) and a little script over it. Hovering an edge or a node
//! shows its name and score; clicking a node highlights the edges into and out of it (clicking
//! it again, or the background, clears that); a top-n slider and a |score| threshold filter the
//! drawn edges, strongest first.
//!
//! The script reads everything from the drawing itself: each edge is a `<path>` whose `<title>`
//! is `writer->reader = score`, each node a `<rect>` whose `<title>` is its name. Opening the file
//! with `#selftest` makes the page exercise its own controls and write what it saw into
//! `<pre id="selftest">` (the test reads it back from a headless browser).

use super::circuit_svg::{circuit_svg, CircuitSvgOptions};
use super::svg::escape;
use crate::graph::Circuit;

const STYLE: &str = r#"
body { font-family: Helvetica, Arial, sans-serif; margin: 0; color: #222; }
#controls { position: sticky; top: 0; background: #fafafa; border-bottom: 1px solid #ddd; padding: 8px 14px;
  display: flex; gap: 22px; align-items: center; flex-wrap: wrap; font-size: 14px; z-index: 2; }
#controls input[type=number] { width: 8em; }
#drawing { padding: 10px; }
#drawing svg { max-width: 100%; height: auto; }
#tooltip { position: fixed; pointer-events: none; background: #222; color: #fff; padding: 4px 8px; border-radius: 4px;
  font-size: 13px; display: none; z-index: 3; white-space: nowrap; }
path.edge { cursor: pointer; }
path.edge.hidden { display: none; }
rect.node { cursor: pointer; }
svg.focused path.edge { opacity: 0.08; }
svg.focused path.edge.linked { opacity: 1; }
rect.node.focus { stroke-width: 3; }
#selftest { display: none; }
"#;

const SCRIPT: &str = r#"
(function () {
  const svg = document.querySelector('#drawing svg');
  const tooltip = document.getElementById('tooltip');
  const slider = document.getElementById('top-n');
  const threshold = document.getElementById('threshold');
  const shown = document.getElementById('shown');
  const edges = [];
  svg.querySelectorAll('path').forEach(function (p) {
    const t = p.querySelector('title');
    if (!t) return;
    const [name, score] = t.textContent.split(' = ');
    const [from, to] = name.split('->');
    p.classList.add('edge');
    edges.push({ el: p, name: name, score: Number(score), from: from, to: to.replace(/<.>$/, '') });
  });
  edges.sort(function (a, b) { return Math.abs(b.score) - Math.abs(a.score) || (a.name < b.name ? -1 : 1); });
  const nodes = [];
  svg.querySelectorAll('rect').forEach(function (r) {
    const t = r.querySelector('title');
    if (!t || !r.parentNode.closest('#nodes, #inactive-nodes')) return;
    r.classList.add('node');
    r.dataset.node = t.textContent;
    nodes.push(r);
  });
  slider.max = edges.length;
  slider.value = edges.length;
  function apply() {
    const n = Number(slider.value), t = Number(threshold.value) || 0;
    let visible = 0;
    edges.forEach(function (e, i) {
      const on = i < n && Math.abs(e.score) >= t;
      e.el.classList.toggle('hidden', !on);
      if (on) visible += 1;
    });
    shown.textContent = visible + ' of ' + edges.length + ' edges';
    document.getElementById('top-n-value').textContent = n;
    return visible;
  }
  function show(text, x, y) {
    tooltip.textContent = text;
    tooltip.style.display = 'block';
    tooltip.style.left = (x + 12) + 'px';
    tooltip.style.top = (y + 12) + 'px';
  }
  function hide() { tooltip.style.display = 'none'; }
  edges.forEach(function (e) {
    e.el.addEventListener('mousemove', function (ev) { show(e.name + ' = ' + e.score, ev.clientX, ev.clientY); });
    e.el.addEventListener('mouseleave', hide);
  });
  let focus = null;
  function setFocus(node) {
    focus = node;
    svg.classList.toggle('focused', node !== null);
    nodes.forEach(function (r) { r.classList.toggle('focus', r.dataset.node === node); });
    edges.forEach(function (e) { e.el.classList.toggle('linked', node !== null && (e.from === node || e.to === node)); });
    return edges.filter(function (e) { return e.el.classList.contains('linked'); }).length;
  }
  nodes.forEach(function (r) {
    r.addEventListener('mousemove', function (ev) {
      const into = edges.filter(function (e) { return e.to === r.dataset.node; }).length;
      const out = edges.filter(function (e) { return e.from === r.dataset.node; }).length;
      show(r.dataset.node + ': ' + into + ' edges in, ' + out + ' out', ev.clientX, ev.clientY);
    });
    r.addEventListener('mouseleave', hide);
    r.addEventListener('click', function (ev) { ev.stopPropagation(); setFocus(focus === r.dataset.node ? null : r.dataset.node); });
  });
  svg.addEventListener('click', function () { setFocus(null); });
  slider.addEventListener('input', apply);
  threshold.addEventListener('input', apply);
  apply();

  if (location.hash === '#selftest') {
    const out = { edges: edges.length, nodes: nodes.length };
    slider.value = 1; slider.dispatchEvent(new Event('input'));
    out.top1 = svg.querySelectorAll('path.edge:not(.hidden)').length;
    slider.value = edges.length; slider.dispatchEvent(new Event('input'));
    out.all = svg.querySelectorAll('path.edge:not(.hidden)').length;
    threshold.value = Math.abs(edges[Math.floor(edges.length / 2)].score); threshold.dispatchEvent(new Event('input'));
    out.above_median = svg.querySelectorAll('path.edge:not(.hidden)').length;
    threshold.value = ''; threshold.dispatchEvent(new Event('input'));
    const box = edges[0].el.getBoundingClientRect();
    edges[0].el.dispatchEvent(new MouseEvent('mousemove', { clientX: box.x, clientY: box.y, bubbles: true }));
    out.hover_edge = tooltip.style.display === 'block' ? tooltip.textContent : null;
    out.strongest = edges[0].name + ' = ' + edges[0].score;
    const target = nodes.find(function (r) { return r.dataset.node === edges[0].to; }) || nodes[0];
    target.dispatchEvent(new MouseEvent('click', { bubbles: true }));
    out.clicked = target.dataset.node;
    out.linked = svg.querySelectorAll('path.edge.linked').length;
    out.expected_linked = edges.filter(function (e) { return e.from === target.dataset.node || e.to === target.dataset.node; }).length;
    document.getElementById('selftest').textContent = JSON.stringify(out);
  }
})();
"#;

/// The circuit as one self-contained HTML page to explore.
pub fn circuit_html(c: &Circuit, opts: &CircuitSvgOptions) -> String {
    let svg = circuit_svg(c, opts);
    // the drawing inline, without its XML declaration
    let svg = svg.split_once("?>\n").map_or(svg.as_str(), |(_, rest)| rest);
    let title = escape(&opts.title);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
<div id=\"controls\"><strong>{title}</strong>\
<label>top <span id=\"top-n-value\"></span> edges by |score| <input type=\"range\" id=\"top-n\" min=\"1\" step=\"1\"></label>\
<label>|score| ≥ <input type=\"number\" id=\"threshold\" min=\"0\" step=\"any\" placeholder=\"0\"></label>\
<span id=\"shown\"></span><span style=\"color:#777\">hover an edge or node for its score; click a node to trace it</span></div>\n\
<div id=\"drawing\">\n{svg}</div>\n<div id=\"tooltip\"></div>\n<pre id=\"selftest\"></pre>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )
}
