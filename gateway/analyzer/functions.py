"""The function allowlist: only built-in functions that compute on their arguments may run.

Everything else is refused: user-defined functions (their bodies can read any table), functions that
run SQL given as a string (``query_to_xml``, ``ts_stat``...), server file access, sizes and
statistics (a table's size depends on the widths of its classified values), locks, sequences and
settings. sqlglot turns many PostgreSQL functions into typed nodes (``LOWER`` -> ``exp.Lower``), so
the allowlist is kept as PostgreSQL names and the matching sqlglot classes are learnt once, at import,
by parsing a call of each name.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

#: PostgreSQL built-ins that only compute on their arguments.
SAFE_FUNCTIONS: frozenset[str] = frozenset(
    """
    abs cbrt ceil ceiling degrees div exp floor ln log log10 mod pi power radians round scale sign sqrt
    trunc width_bucket random gcd lcm factorial min_scale trim_scale
    acos asin atan atan2 cos cot sin tan sinh cosh tanh
    ascii bit_length btrim char_length character_length chr concat concat_ws format initcap left length
    lower lpad ltrim md5 octet_length overlay position quote_ident quote_literal quote_nullable
    regexp_count regexp_instr regexp_like regexp_match regexp_matches regexp_replace regexp_split_to_array
    regexp_split_to_table regexp_substr repeat replace reverse right rpad rtrim split_part starts_with
    strpos substr substring to_ascii to_hex translate trim upper unistr normalize casefold
    sha224 sha256 sha384 sha512 encode decode convert_from convert_to get_byte get_bit
    to_char to_date to_number to_timestamp
    age clock_timestamp current_date current_time current_timestamp date_bin date_part date_trunc extract
    isfinite justify_days justify_hours justify_interval localtime localtimestamp make_date make_interval
    make_time make_timestamp make_timestamptz now statement_timestamp timeofday transaction_timestamp
    timezone date_add date_subtract
    coalesce nullif greatest least num_nulls num_nonnulls
    array_append array_cat array_dims array_fill array_length array_lower array_ndims array_position
    array_positions array_prepend array_remove array_replace array_to_string array_upper cardinality
    string_to_array trim_array array_sample array_shuffle unnest generate_series generate_subscripts
    array_agg avg bit_and bit_or bool_and bool_or count every max min string_agg sum json_agg jsonb_agg
    json_object_agg jsonb_object_agg corr covar_pop covar_samp regr_avgx regr_avgy regr_count
    regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy stddev stddev_pop stddev_samp variance
    var_pop var_samp mode percentile_cont percentile_disc any_value
    row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value
    to_json to_jsonb row_to_json array_to_json json_build_array jsonb_build_array json_build_object
    jsonb_build_object json_object jsonb_object json_array_length jsonb_array_length json_typeof
    jsonb_typeof jsonb_pretty json_extract_path json_extract_path_text jsonb_extract_path
    jsonb_extract_path_text jsonb_set jsonb_insert jsonb_strip_nulls json_strip_nulls
    json_array_elements jsonb_array_elements json_array_elements_text jsonb_array_elements_text
    json_each jsonb_each json_each_text jsonb_each_text json_object_keys jsonb_object_keys
    jsonb_path_exists jsonb_path_match jsonb_path_query jsonb_path_query_array jsonb_path_query_first
    to_tsvector to_tsquery plainto_tsquery phraseto_tsquery websearch_to_tsquery ts_rank ts_headline
    host hostmask masklen netmask network family abbrev broadcast
    gen_random_uuid uuid_generate_v4
    version current_user current_role session_user user current_schema current_database
    current_catalog pg_backend_pid inet_client_addr inet_client_port inet_server_addr inet_server_port
    format_type pg_get_constraintdef pg_get_expr pg_get_indexdef pg_get_viewdef pg_get_userbyid
    pg_get_function_arguments pg_get_function_result pg_get_function_identity_arguments
    pg_get_triggerdef pg_get_ruledef pg_get_serial_sequence pg_get_statisticsobjdef_columns
    pg_table_is_visible pg_type_is_visible pg_function_is_visible obj_description col_description
    shobj_description pg_encoding_to_char pg_typeof pg_get_keywords to_regclass to_regtype
    to_regproc to_regnamespace has_table_privilege has_schema_privilege has_column_privilege
    has_database_privilege has_function_privilege pg_has_role pg_is_in_recovery
    row array_in int4 int8 text bool
    current_schemas pg_get_partkeydef pg_relation_is_publishable pg_current_xact_id txid_current
    pg_get_function_sqlbody pg_get_statisticsobjdef pg_get_triggerdef pg_get_constraintdef pg_tablespace_location
    to_regrole to_regoper to_regoperator to_regprocedure to_regcollation pg_collation_is_visible
    pg_opclass_is_visible pg_operator_is_visible pg_conversion_is_visible pg_ts_config_is_visible
    pg_char_to_encoding pg_get_function_arg_default pg_postmaster_start_time pg_conf_load_time
    pg_is_other_temp_schema pg_my_temp_schema pg_jit_available array_to_string string_to_array
    has_any_column_privilege has_sequence_privilege has_type_privilege has_tablespace_privilege
    has_foreign_data_wrapper_privilege has_server_privilege has_language_privilege pg_get_viewdef
    pg_size_pretty pg_size_bytes current_setting set_config pg_get_function_identity_arguments
    pg_encoding_max_length pg_client_encoding pg_partition_ancestors pg_partition_root pg_partition_tree
    pg_get_userbyid pg_index_column_has_property pg_index_has_property pg_indexam_has_property
    """.split()
)

#: Schema-qualified functions outside pg_catalog that may run, as (schema, name).
QUALIFIED_FUNCTIONS: frozenset[tuple[str, str]] = frozenset({("information_schema", "_pg_expandarray")})

#: Explicitly refused even though they look harmless, with the reason shown to the requester.
REFUSED_REASONS: dict[str, str] = {
    "query_to_xml": "runs SQL given as a string",
    "query_to_xmlschema": "runs SQL given as a string",
    "query_to_xml_and_xmlschema": "runs SQL given as a string",
    "table_to_xml": "reads a whole table by name",
    "cursor_to_xml": "reads a cursor",
    "ts_stat": "runs SQL given as a string",
    "dblink": "opens another database connection",
    "pg_read_file": "reads server files",
    "pg_read_binary_file": "reads server files",
    "pg_ls_dir": "lists server files",
    "pg_stat_file": "reads server files",
    "lo_get": "reads large objects",
    "lo_import": "reads server files",
    "lo_export": "writes server files",
    "pg_relation_size": "table sizes depend on classified values",
    "pg_total_relation_size": "table sizes depend on classified values",
    "pg_table_size": "table sizes depend on classified values",
    "pg_column_size": "value sizes depend on classified values",
    "pg_sleep": "delays the server",
    "nextval": "writes a sequence",
    "setval": "writes a sequence",
}


def _learn_classes() -> frozenset[type]:
    """The sqlglot node classes that the safe PostgreSQL names parse into."""
    classes: set[type] = set()
    for name in SAFE_FUNCTIONS:
        for args in ("", "a", "a, b", "a, b, c"):
            try:
                tree = sqlglot.parse_one(f"SELECT {name}({args})", read="postgres")
            except Exception:  # noqa: BLE001 - a call shape sqlglot rejects teaches nothing
                continue
            node = tree.expressions[0] if tree.expressions else None
            if isinstance(node, exp.Func) and not isinstance(node, exp.Anonymous):
                classes.add(type(node))
    return frozenset(classes)


SAFE_FUNCTION_CLASSES: frozenset[type] = _learn_classes()


def function_name(node: exp.Func, sql: str | None = None) -> str:
    """The PostgreSQL name of a call, as written when the source text is known."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    meta = node.meta
    if sql is not None and "start" in meta and "end" in meta:
        return sql[meta["start"] : meta["end"] + 1].strip('"').lower()
    return node.sql_name().lower()


def refusal(node: exp.Func, sql: str | None = None) -> str | None:
    """Why a call is refused, or None when it is allowed."""
    name = function_name(node, sql)
    parent = node.parent
    if isinstance(parent, exp.Dot) and parent.expression is node and isinstance(parent.this, exp.Identifier):
        if (parent.this.name.lower(), name) in QUALIFIED_FUNCTIONS:
            return None
        return f"function {parent.this.name}.{name}() is not on the gateway's allowlist"
    if name in REFUSED_REASONS:
        return f"function {name}() is not allowed ({REFUSED_REASONS[name]})"
    if isinstance(node, exp.Anonymous):
        return None if name in SAFE_FUNCTIONS else f"function {name}() is not on the gateway's allowlist"
    if type(node) in SAFE_FUNCTION_CLASSES:
        return None
    return f"function {name}() is not on the gateway's allowlist"
