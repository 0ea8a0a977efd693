"""Session identity answered for the requester, not the backend role (SPEC 8).

The backend runs every statement as one role with ``search_path = pg_catalog``; a client asking who
it is and where it is must hear the requester's answer, the same one ``SHOW search_path`` and
``SHOW session_authorization`` give. So ``current_user``, ``session_user``, ``user``,
``current_role``, ``current_schema()`` and ``current_schemas(b)`` become literals before analysis.

The role catalogs answer the same way: ``pg_roles`` and ``pg_user`` hold one row, the requester as a
plain login role (what ``CREATE ROLE name LOGIN`` shows), and ``pg_auth_members`` is empty. Each is
replaced by a derived table with the catalog's own columns and types (so ``SELECT *`` and psql's
``\du`` see the same shape as from PostgreSQL); the backend's roles are never listed.

>>> from gateway.analyzer.dialect import DIALECT
>>> tree = DIALECT.parse("SELECT current_user, current_schema(), current_schemas(true)")[0]
>>> answer_identity(tree, "cbi_analyst", ("dmv", "public")).sql(dialect="postgres")
"SELECT CAST('cbi_analyst' AS name) AS current_user, CAST('dmv' AS name) AS current_schema, CAST(ARRAY['pg_catalog', 'dmv', 'public'] AS name[]) AS current_schemas"
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlglot import exp

from gateway.analyzer.errors import refused
from gateway.analyzer.pinned import pin_literal
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


def answer_identity(tree: exp.Expr, requester: str, search_path: tuple[str, ...], catalog: Any = None) -> exp.Expr:
    """Replace the identity functions in ``tree`` (in place) by the requester's answers, and the role
    catalogs by the requester's own row (``catalog``: where their columns are read)."""
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
    if catalog is not None:
        _answer_role_catalogs(tree, requester, catalog, path)
    return tree


#: Role catalogs that list the requester alone, and those that are empty for it (no memberships), with
#: the schema each lives in: information_schema's role views answer like pg_roles / pg_auth_members
#: (``enabled_roles`` is the current user's roles, ``applicable_roles`` its memberships).
_ROLE_CATALOGS = {"pg_roles": "pg_catalog", "pg_user": "pg_catalog", "enabled_roles": "information_schema"}
_EMPTY_CATALOGS = {"pg_auth_members": "pg_catalog", "applicable_roles": "information_schema"}
#: A plain ``CREATE ROLE x LOGIN``: the flags that are true; every other boolean is false.
_TRUE_FLAGS = frozenset({"rolinherit", "rolcanlogin"})


def _answer_role_catalogs(tree: exp.Expr, requester: str, catalog: Any, path: tuple[str, ...] = ()) -> None:
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in list(tree.find_all(exp.Table)):
        ident = table.this
        if not isinstance(ident, exp.Identifier) or table.args.get("catalog") is not None:
            continue
        name = ident.this if ident.quoted else ident.this.lower()
        if name not in _ROLE_CATALOGS and name not in _EMPTY_CATALOGS:
            continue
        home = _ROLE_CATALOGS.get(name) or _EMPTY_CATALOGS[name]
        schema = table.args.get("db")
        if schema is None and name in ctes:
            continue  # a CTE of that name hides the catalog
        if schema is None and home != "pg_catalog" and home not in path:
            continue  # not on the requester's path: left for resolution
        if schema is not None and (not isinstance(schema, exp.Identifier)
                                   or (schema.this if schema.quoted else schema.this.lower()) != home):
            continue
        relation = catalog.relation(home, name)
        if relation is None:
            continue  # left for resolution (unknown relation: refused)
        alias = table.args.get("alias")
        derived = exp.Subquery(this=_role_rows(relation, requester, name in _EMPTY_CATALOGS),
                               alias=alias.copy() if alias is not None else exp.TableAlias(this=exp.to_identifier(name)))
        table.replace(derived)


def _role_rows(relation: Any, requester: str, empty: bool) -> exp.Select:
    """``SELECT <the requester's values, cast to each column's type>`` (``WHERE false`` if ``empty``)."""
    from gateway.analyzer.dialect import DIALECT  # oid, regclass... as plain type names

    oid = 16384 + int.from_bytes(hashlib.sha256(requester.encode()).digest()[:4], "big") % (2**31 - 16384)
    columns = []
    for column in relation.columns:
        kind = column.type_sql
        value: exp.Expr = exp.Null()
        if not empty:
            if kind in ("name", "information_schema.sql_identifier"):
                value = exp.Literal.string(requester)
            elif kind == "oid":
                value = exp.Literal.number(oid)  # a stable stand-in: never the backend role's own
            elif kind == "boolean":
                value = exp.Boolean(this=column.name in _TRUE_FLAGS)
            elif kind == "integer" and column.name.endswith("connlimit"):
                value = exp.Literal.number(-1)
            elif kind == "text" and "passw" in column.name or column.name == "passwd":
                value = exp.Literal.string("********")  # what pg_roles shows for every role
        to = _NAME.copy() if kind == "name" else exp.DataType.build(kind, dialect=DIALECT, udt=True)
        columns.append(exp.Alias(this=exp.Cast(this=value, to=to), alias=exp.to_identifier(column.name)))
    select = exp.Select(expressions=columns)
    return select.where(exp.false(), copy=False) if empty else select


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
    pin_literal(args[0])  # which setting it is decides: another name is another plan
    if is_gateway_setting(name):
        raise refused(f"{function}() of {name}: use SHOW {name} / SET {name}", "function.settings")
    known = setting(name)
    if function == "set_config":
        if known is None or known.kind != "client" or len(args) != 3:
            raise refused(f"setting {name} may not be changed through the gateway", "statement.pinned_setting")
        local = args[2]
        if not (isinstance(local, exp.Boolean) and local.this):
            # a session-level set_config() stays on the pooled backend connection, where the next
            # requester's statements would run under it (a SET is tracked per session, this is not)
            if known.key != "jit":
                raise refused(f"set_config('{name}', ..., false) would outlive the statement on a shared backend "
                              f"connection; use SET {name} = ... (or set_config(..., true) in a transaction)",
                              "statement.session_set_config")
            local.replace(exp.Boolean(this=True))  # asyncpg turns jit off for its type introspection: planning only
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

