"""LightningModules (what is trained and how) and, in nets/, the plain torch networks they wrap."""
