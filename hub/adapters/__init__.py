"""Protocol adapters: each drives one radio stack and speaks ``hub.adapters.base.Adapter``."""
