"""Session identity answered for the requester, not the backend role (SPEC 8).

The backend runs every statement as one role with ``search_path = pg_catalog``; a client asking who
it is and where it is must hear the requester's answer, the same one ``SHOW search_path`` and
``SHOW session_authorization`` give. So ``current_user``, ``session_user``, ``user``,
``current_role``, ``current_schema()`` and ``current_schemas(b)`` become literals before analysis.

>>> from gateway.analyzer.dialect import DIALECT
>>> tree = DIALECT.parse("SELECT current_user, current_schema(), current_schemas(true)")[0]
>>> answer_identity(tree, "cbi_analyst", ("dmv", "public")).sql(dialect="postgres")
"SELECT CAST('cbi_analyst' AS name) AS current_user, CAST('dmv' AS name) AS current_schema, CAST(ARRAY['pg_catalog', 'dmv', 'public'] AS name[]) AS current_schemas"
"""

from __future__ import annotations

from sqlglot import exp

from gateway.analyzer.errors import refused
from gateway.analyzer.settings import is_gateway_setting, setting

_NAME = exp.DataType.build("name", udt=True)
_NAMES = exp.DataType(this=exp.DataType.Type.ARRAY, expressions=[exp.DataType.build("name", udt=True)], nested=True)
_USER_WORDS = frozenset({"user", "current_role", "current_user", "session_user"})


def _name(value: str) -> exp.Expr:
    return exp.Cast(this=exp.Literal.string(value), to=_NAME.copy())


def _output(node: exp.Expr, replacement: exp.Expr, name: str) -> exp.Expr:
    """Keep the column name PostgreSQL gives the call when it is a bare projection."""
    parent = node.parent
    if isinstance(parent, exp.Select) and node.arg_key == "expressions":
        return exp.Alias(this=replacement, alias=exp.to_identifier(name))
    return replacement


def answer_identity(tree: exp.Expr, requester: str, search_path: tuple[str, ...]) -> exp.Expr:
    """Replace the identity functions in ``tree`` (in place) by the requester's answers."""
    from gateway.analyzer.safety import normalize

    path = tuple(search_path)
    for node in list(normalize(tree).walk()):
        if isinstance(node, exp.Anonymous) and str(node.name).lower() in ("current_schemas", "current_schema") \
                and len(node.expressions) <= 1:
            known = exp.CurrentSchemas(this=node.expressions[0]) if node.expressions else exp.CurrentSchema()
            node.replace(known)
            node = known
        target: exp.Expr | None = None
        name = ""
        if isinstance(node, (exp.CurrentUser, exp.SessionUser)):
            name = "current_user" if isinstance(node, exp.CurrentUser) else "session_user"
            target = _name(requester)
        elif isinstance(node, exp.Column) and not node.table and not node.this.quoted \
                and node.name.lower() in _USER_WORDS:  # reserved words: never a column in PostgreSQL
            name = node.name.lower()
            target = _name(requester)
        elif isinstance(node, exp.Anonymous) and str(node.name).lower() in _VISIBLE and len(node.expressions) == 1:
            name = str(node.name).lower()
            target = _visible(name, node.expressions[0], ("pg_catalog", *path))
        elif isinstance(node, exp.Anonymous) and str(node.name).lower() in ("current_setting", "set_config"):
            answer = _setting_call(node, requester, path)
            if answer is not None:
                name, target = "current_setting", answer
        elif isinstance(node, exp.CurrentSchema):
            name = "current_schema"
            target = _name(path[0]) if path else exp.Cast(this=exp.Null(), to=_NAME.copy())
        elif isinstance(node, exp.CurrentSchemas):
            name = "current_schemas"
            implicit = node.this
            if not isinstance(implicit, exp.Boolean):
                continue  # not a constant: left for the allowlist to refuse
            schemas = (("pg_catalog",) if implicit.this else ()) + path
            target = exp.Cast(this=exp.Array(expressions=[exp.Literal.string(s) for s in schemas]), to=_NAMES.copy())
        if target is not None and name in _USER_WORDS and _privilege_role(node):
            continue  # has_table_privilege(current_user, ...): the backend's role is the one that reads
        if target is not None:
            node.replace(_output(node, target, name))
    return tree


def _setting_call(node: exp.Anonymous, requester: str, path: tuple[str, ...]) -> exp.Expr | None:
    """``current_setting('name')`` / ``set_config('name', v, local)`` as drivers use them (asyncpg reads
    and turns off ``jit``): the gateway's answer for settings it answers itself (a literal), the
    backend's for the client's own settings; anything else is refused, like SHOW and SET."""
    function = str(node.name).lower()
    args = node.expressions
    first = args[0].this if args and isinstance(args[0], exp.Cast) else (args[0] if args else None)
    if isinstance(first, (exp.Placeholder, exp.Parameter)) and function == "current_setting":
        return None  # a bound name (SQLAlchemy's reflection): the backend answers, as SHOW of it would
    if not args or not isinstance(args[0], exp.Literal) or not args[0].is_string:
        raise refused(f"{function}() needs a setting name written as a literal", "function.settings")
    name = args[0].this
    if is_gateway_setting(name):
        raise refused(f"{function}() of {name}: use SHOW {name} / SET {name}", "function.settings")
    known = setting(name)
    if function == "set_config":
        if known is None or known.kind != "client" or len(args) != 3:
            raise refused(f"setting {name} may not be changed through the gateway", "statement.pinned_setting")
        return None  # the backend sets it, as SET would
    if known is None or len(args) > 2:
        raise refused(f"current_setting('{name}') is not available through the gateway", "function.settings")
    if not known.gateway_answers:
        return None  # the backend's own answer
    if known.answer == "search_path":
        value = ", ".join(path)
    elif known.answer == "requester":
        value = requester
    else:
        value = known.value or ""
    return exp.Cast(this=exp.Literal.string(value), to=exp.DataType.build("text"))


def _privilege_role(node: exp.Expr) -> bool:
    """``node`` is the role argument of a privilege function (``has_*_privilege``, ``pg_has_role``)."""
    parent = node.parent
    if not isinstance(parent, exp.Func):
        return False
    name = (str(parent.name) if isinstance(parent, exp.Anonymous) else parent.sql_name()).lower()
    return (name.startswith("has_") and name.endswith("_privilege")) or name == "pg_has_role"


#: pg_X_is_visible(oid): the catalog, its name column and its schema column.
_VISIBLE = {"pg_table_is_visible": ("pg_class", "relname", "relnamespace"),
            "pg_type_is_visible": ("pg_type", "typname", "typnamespace"),
            "pg_function_is_visible": ("pg_proc", "proname", "pronamespace")}


def _visible(function: str, oid: exp.Expr, path: tuple[str, ...]) -> exp.Expr:
    """``pg_table_is_visible(oid)`` for the requester's search_path (the backend's is pg_catalog): the
    object's schema is on the path and no earlier schema on it holds an object of the same name."""
    from gateway.analyzer.dialect import DIALECT

    table, name, schema = _VISIBLE[function]
    array = "ARRAY[" + ", ".join("'" + s.replace("'", "''") + "'" for s in path) + "]::text[]"
    sql = (f"SELECT COALESCE((SELECT vn.nspname::text = (SELECT wn.nspname::text FROM pg_catalog.{table} AS wc "
           f"JOIN pg_catalog.pg_namespace AS wn ON wn.oid = wc.{schema} WHERE wc.{name} = vc.{name} "
           f"AND wn.nspname::text = ANY({array}) ORDER BY array_position({array}, wn.nspname::text) LIMIT 1) "
           f"FROM pg_catalog.{table} AS vc JOIN pg_catalog.pg_namespace AS vn ON vn.oid = vc.{schema} "
           f"WHERE vc.oid = __gw_oid__), false)")
    expression = DIALECT.parse(sql)[0].expressions[0]
    for column in list(expression.find_all(exp.Column)):
        if column.name == "__gw_oid__":
            column.replace(exp.Paren(this=oid.copy()))
    return expression

