//! Layer 4: attribution of a metric to the edges and nodes of the graph (EAP, EAP-IG, exact
//! patching), metrics, per-sample scores and faithfulness. See ALGORITHMS.md §2 and §4.
