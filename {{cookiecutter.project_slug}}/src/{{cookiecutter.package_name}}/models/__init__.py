"""LightningModules (what is trained and how) and, in components/, the networks they wrap."""
