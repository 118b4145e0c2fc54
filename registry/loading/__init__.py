"""Set-based bulk loading on the domain side: staging, validation with reason codes, matching
by id or natural key, versioned writes, one change set per load. No file formats here: the
readers live in `loaders/` and hand over `RowBatch`es (see registry.loading.base)."""
from registry.loading.addresses import AddressLoad, AddressOptions
from registry.loading.base import LoadReport, RowBatch
from registry.loading.entities import EntityLoad, EntityOptions
from registry.loading.entity_kinds import SPECS
from registry.loading.reasons import REASONS, WARNINGS, RowIssue

__all__ = ["AddressLoad", "AddressOptions", "EntityLoad", "EntityOptions", "LoadReport", "REASONS", "RowBatch",
           "RowIssue", "SPECS", "WARNINGS"]
