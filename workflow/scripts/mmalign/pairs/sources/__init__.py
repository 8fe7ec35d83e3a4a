"""Adapters from real, published data sets to the shared on-disk contracts in ``mmalign.schema``.

Each adapter reads one source's own format and writes only the common pair table, with a Manifest
of what it read, kept and dropped. Downstream stages never see a source's own format.
"""
