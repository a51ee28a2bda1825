"""Claims about stampede mitigations, written once against the models' ``Observation``."""

from herdproof.properties.catalog import (
    DEFAULT_PROPERTIES,
    QUANTITIES,
    Kind,
    Property,
    Quantity,
    applicable_properties,
    property_named,
    quantity_named,
)

__all__ = [
    "DEFAULT_PROPERTIES",
    "QUANTITIES",
    "Kind",
    "Property",
    "Quantity",
    "applicable_properties",
    "property_named",
    "quantity_named",
]
