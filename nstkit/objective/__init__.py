"""What a run minimises: small loss functions of tensors (`losses`), the style statistics they match
(`style_stats`), and the named terms that weigh them into one objective with their targets (`terms`)."""
