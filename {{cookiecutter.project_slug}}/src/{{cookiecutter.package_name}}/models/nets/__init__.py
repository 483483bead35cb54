"""Plain torch networks, chosen in configs/model/*.yaml under `net`."""
