"""The resource catalog (政务数据资源目录): every pool table and source feed, in the field set of
government data resource catalogs, exported as CSV, JSON and one browsable HTML page."""

from citybrain.resource_catalog.build import DataItem, Resource, ResourceCatalog, build_catalog
from citybrain.resource_catalog.export import ExportResult, export_resource_catalog

__all__ = [
    "DataItem",
    "ExportResult",
    "Resource",
    "ResourceCatalog",
    "build_catalog",
    "export_resource_catalog",
]
