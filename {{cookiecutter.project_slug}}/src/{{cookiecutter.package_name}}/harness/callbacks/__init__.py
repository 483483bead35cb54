"""Lightning callbacks the ecosystem does not provide; the rest come straight from Lightning in configs/callbacks/."""
