"""t2i networks: the CLIP text tower (text, clip_model), its contrastive loss (contrastive), each object's
caption phrase (phrases), and the layout and image stages' networks (layout/, image/)."""
