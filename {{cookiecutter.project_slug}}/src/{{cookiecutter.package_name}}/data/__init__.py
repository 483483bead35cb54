"""LightningDataModules: where examples come from and how they are batched."""
