"""Feature collections as published to GIS tools: the collection definitions (`collections`), basic
CQL2-text filters (`cql2`) and the items query with bbox, datetime, CRS and paging (`query`)."""
