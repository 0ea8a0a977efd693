"""The PostgreSQL dialect the gateway parses with: sqlglot's, with object-identifier types as ordinary types.

sqlglot reads ``oid``, ``regclass``, ``regtype``... as a special token that cannot take ``[]``, so
``'{23,25}'::oid[]`` (asyncpg's type introspection) and ``'{..}'::regclass[]`` fail to parse. Read
as plain type names they parse like any other type, and print back unchanged.

>>> DIALECT.parse("SELECT 1 = ANY('{1}'::oid[])")[0].sql(dialect="postgres")
"SELECT 1 = ANY(CAST('{1}' AS oid[]))"
"""

from __future__ import annotations

from sqlglot.dialects.postgres import Postgres
from sqlglot.tokens import TokenType


class GatewayPostgres(Postgres):
    class Tokenizer(Postgres.Tokenizer):
        KEYWORDS = {k: v for k, v in Postgres.Tokenizer.KEYWORDS.items() if v != TokenType.OBJECT_IDENTIFIER}


DIALECT = GatewayPostgres()
