"""Multi-entity knowledge transfer (MKT; Guan et al. 2024): feature-aligned tables, the
multi-entity model (MEM), the target entity model (TEM), baselines and the experiment."""
