"""Logger factories for configs/logger/ where Lightning's own class needs help."""
