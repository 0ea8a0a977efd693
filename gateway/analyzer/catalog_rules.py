"""Which system catalog relations a requester may read, and which of their columns.

Catalogs describe the schema, which is not classified; but some of them describe the *data*: the
statistics views (``pg_stats``: most common values, histograms), sizes and row estimates (they depend
on the widths of classified values), other sessions' SQL (``pg_stat_activity``), password hashes.
Relations not listed here are refused; listed columns are masked (NULL) like classified columns.
"""

from __future__ import annotations

#: Tag given to catalog columns that describe data; no purpose grants it.
CATALOG_STATISTICS = "catalog_statistics"

#: schema -> relation -> columns masked (empty: every column readable).
ALLOWED_CATALOG_RELATIONS: dict[str, dict[str, frozenset[str]]] = {
    "pg_catalog": {
        "pg_namespace": frozenset(),
        "pg_class": frozenset({"relpages", "reltuples", "relallvisible", "relfrozenxid", "relminmxid", "relallfrozen"}),
        "pg_attribute": frozenset({"attmissingval", "attstattarget"}),
        "pg_type": frozenset(),
        "pg_proc": frozenset(),
        "pg_description": frozenset(),
        "pg_index": frozenset(),
        "pg_constraint": frozenset(),
        "pg_attrdef": frozenset(),
        "pg_am": frozenset(),
        "pg_collation": frozenset(),
        "pg_inherits": frozenset(),
        "pg_enum": frozenset(),
        "pg_range": frozenset(),
        "pg_extension": frozenset(),
        "pg_database": frozenset({"datfrozenxid", "datminmxid"}),
        "pg_tables": frozenset(),
        "pg_views": frozenset(),
        "pg_indexes": frozenset(),
        "pg_matviews": frozenset(),
        "pg_sequence": frozenset(),
        "pg_trigger": frozenset(),
        "pg_rewrite": frozenset(),
        "pg_depend": frozenset(),
        "pg_opclass": frozenset(),
        "pg_operator": frozenset(),
        "pg_cast": frozenset(),
        "pg_language": frozenset(),
        "pg_foreign_table": frozenset(),
        "pg_partitioned_table": frozenset(),
        "pg_policy": frozenset(),
        "pg_publication": frozenset(),
        "pg_publication_rel": frozenset(),
        "pg_statistic_ext": frozenset(),
        "pg_tablespace": frozenset(),
        "pg_conversion": frozenset(),
        "pg_roles": frozenset({"rolpassword"}),
        "pg_user": frozenset({"passwd"}),
        "pg_auth_members": frozenset(),
        "pg_settings": frozenset(),
        "pg_shdescription": frozenset(),
        "pg_seclabel": frozenset(),
        "pg_shseclabel": frozenset(),
        "pg_event_trigger": frozenset(),
        "pg_foreign_data_wrapper": frozenset(),
        "pg_foreign_server": frozenset(),
        "pg_opfamily": frozenset(),
        "pg_amop": frozenset(),
        "pg_amproc": frozenset(),
        "pg_aggregate": frozenset(),
        "pg_ts_config": frozenset(),
        "pg_ts_dict": frozenset(),
        "pg_ts_parser": frozenset(),
        "pg_ts_template": frozenset(),
        "pg_default_acl": frozenset(),
        "pg_init_privs": frozenset(),
        "pg_transform": frozenset(),
        "pg_available_extensions": frozenset(),
        "pg_timezone_names": frozenset(),
        "pg_timezone_abbrevs": frozenset(),
        "pg_sequences": frozenset({"last_value"}),
        "pg_policies": frozenset(),
        "pg_rules": frozenset(),
        "pg_publication_tables": frozenset(),
        "pg_publication_namespace": frozenset(),
        "pg_subscription_rel": frozenset(),
        "pg_shdepend": frozenset(),
    },
    "information_schema": {
        "schemata": frozenset(),
        "tables": frozenset(),
        "columns": frozenset(),
        "views": frozenset(),
        "table_constraints": frozenset(),
        "key_column_usage": frozenset(),
        "referential_constraints": frozenset(),
        "constraint_column_usage": frozenset(),
        "check_constraints": frozenset(),
        "routines": frozenset(),
        "parameters": frozenset(),
        "element_types": frozenset(),
        "character_sets": frozenset(),
        "domains": frozenset(),
        "table_privileges": frozenset(),
        "column_privileges": frozenset(),
        "usage_privileges": frozenset(),
        "role_table_grants": frozenset(),
        "sequences": frozenset(),
        "triggers": frozenset(),
        "view_table_usage": frozenset(),
        "view_column_usage": frozenset(),
        "columns_udt_usage": frozenset(),
        "constraint_table_usage": frozenset(),
        "enabled_roles": frozenset(),
        "applicable_roles": frozenset(),
        "information_schema_catalog_name": frozenset(),
        "attributes": frozenset(),
    },
}

#: Refused catalog relations with the reason shown to the requester.
REFUSED_CATALOG_REASONS: dict[str, str] = {
    "pg_stats": "it exposes column contents (most common values, histograms)",
    "pg_stats_ext": "it exposes column contents",
    "pg_stats_ext_exprs": "it exposes column contents",
    "pg_statistic": "it exposes column contents",
    "pg_statistic_ext_data": "it exposes column contents",
    "pg_stat_activity": "it shows other sessions' SQL",
    "pg_stat_statements": "it shows other sessions' SQL",
    "pg_authid": "it holds password hashes",
    "pg_shadow": "it holds password hashes",
    "pg_largeobject": "it holds stored data",
    "pg_user_mappings": "it holds credentials",
    "pg_user_mapping": "it holds credentials",
}

SYSTEM_SCHEMAS = frozenset(ALLOWED_CATALOG_RELATIONS)


def catalog_refusal(schema: str, relation: str) -> str | None:
    """Why a system relation is refused, or None when it may be read."""
    if relation in ALLOWED_CATALOG_RELATIONS.get(schema, {}):
        return None
    reason = REFUSED_CATALOG_REASONS.get(relation)
    if reason is None:
        if relation.startswith(("pg_stat", "pg_statio")):
            reason = "statistics describe the data"
        else:
            reason = "it is not on the gateway's catalog allowlist"
    return f"{schema}.{relation} is not available through the gateway: {reason}"


def masked_catalog_columns(schema: str, relation: str) -> frozenset[str]:
    return ALLOWED_CATALOG_RELATIONS.get(schema, {}).get(relation, frozenset())
