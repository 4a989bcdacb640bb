"""PyTorch bridge (placeholder until the bridge lands)."""
