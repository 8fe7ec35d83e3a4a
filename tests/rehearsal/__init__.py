"""The CPU rehearsal of the paper study (config/paper.yaml on local mirrors, a tiny LLaVA-NeXT and a served judge)."""
