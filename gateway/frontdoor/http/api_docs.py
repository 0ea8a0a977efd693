"""``/docs``: the HTTP API, browsable. The OpenAPI document rendered to one HTML page on the server.

No script, no CDN, no front-end build: every path, its parameters, request body, responses and
examples, and the schemas they refer to, as escaped HTML with in-page links. The page is built once
per app from the same document ``/openapi.json`` serves, so the two cannot disagree.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from gateway.frontdoor.http.audit_api import CSP
from gateway.frontdoor.http.templates import STYLE

_EXTRA_STYLE = """
h2 code, h3 code { font-size: 15px; } .method { text-transform: uppercase; font-weight: 700; margin-right: 8px; }
.method.get { color: var(--allow); } .method.post { color: var(--accent); }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; } td, th { text-align: left; padding: 4px 8px;
border-bottom: 1px solid var(--line); vertical-align: top; } nav.toc a { display: block; }
"""

_METHODS = ("get", "post", "put", "patch", "delete")


def _anchor(path: str, method: str) -> str:
    return "op-" + method + "-" + "".join(ch if ch.isalnum() else "-" for ch in path).strip("-")


def _schema_html(schema: Any) -> str:
    """A schema as pretty JSON, ``$ref`` values linked to their section."""
    text = escape(json.dumps(schema, indent=2, ensure_ascii=False))
    prefix = escape('"#/components/schemas/')
    out, rest = [], text
    while prefix in rest:
        before, _, after = rest.partition(prefix)
        name, _, rest = after.partition(escape('"'))
        out.append(f'{before}"<a href="#schema-{name}">#/components/schemas/{name}</a>"')
    return "<pre>" + "".join(out) + rest + "</pre>"


def _parameters(params: list[dict[str, Any]]) -> str:
    if not params:
        return ""
    rows = "".join(
        f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p.get('in', ''))}</td>"
        f"<td>{'yes' if p.get('required') else ''}</td>"
        f"<td><code>{escape(json.dumps(p.get('schema', {}), ensure_ascii=False))}</code></td>"
        f"<td>{escape(p.get('description', ''))}</td></tr>"
        for p in params
    )
    return ("<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>required</th><th>schema</th>"
            f"<th>description</th></tr>{rows}</table>")


def _content(content: dict[str, Any]) -> str:
    parts = []
    for media, body in content.items():
        parts.append(f"<p><code>{escape(media)}</code></p>")
        if "schema" in body:
            parts.append(_schema_html(body["schema"]))
        if "example" in body:
            parts.append("<p class=\"muted\">example</p>" + _schema_html(body["example"]))
    return "".join(parts)


def _operation(path: str, method: str, op: dict[str, Any]) -> str:
    parts = [f'<div class="card" id="{_anchor(path, method)}"><h3><span class="method {method}">{method}</span>'
             f"<code>{escape(path)}</code></h3><p>{escape(op.get('summary', ''))}</p>"]
    if op.get("description"):
        parts.append(f"<p>{escape(op['description'])}</p>")
    if op.get("security"):
        names = sorted({name for req in op["security"] for name in req})
        parts.append(f"<p class=\"muted\">authentication: {escape(', '.join(names))}</p>")
    parts.append(_parameters(op.get("parameters", [])))
    if "requestBody" in op:
        parts.append("<h4>Request body</h4>" + _content(op["requestBody"].get("content", {})))
    parts.append("<h4>Responses</h4>")
    for status, response in op.get("responses", {}).items():
        parts.append(f"<p><b>{escape(str(status))}</b> {escape(response.get('description', ''))}</p>")
        parts.append(_content(response.get("content", {})))
    parts.append("</div>")
    return "".join(parts)


def render(doc: dict[str, Any]) -> str:
    """The whole page for an OpenAPI document."""
    info = doc.get("info", {})
    title = f"{info.get('title', 'API')} {info.get('version', '')}".strip()
    toc, ops = [], []
    for path, item in doc.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                toc.append(f'<a href="#{_anchor(path, method)}"><span class="method {method}">{method}</span>'
                           f"<code>{escape(path)}</code> {escape(item[method].get('summary', ''))}</a>")
                ops.append(_operation(path, method, item[method]))
    schemas = doc.get("components", {}).get("schemas", {})
    schema_cards = "".join(f'<div class="card" id="schema-{escape(name)}"><h3><code>{escape(name)}</code></h3>'
                           f"{_schema_html(schema)}</div>" for name, schema in schemas.items())
    security = doc.get("components", {}).get("securitySchemes", {})
    sec = "".join(f"<dt><code>{escape(name)}</code></dt><dd>{escape(json.dumps(s, ensure_ascii=False))}</dd>"
                  for name, s in security.items())
    body = (f'<h2>{escape(title)}</h2><p>{escape(info.get("description", ""))} '
            'Machine-readable: <a href="/openapi.json">/openapi.json</a>.</p>'
            f'<div class="card"><nav class="toc">{"".join(toc)}</nav></div>'
            f'<div class="card"><h3>Authentication</h3><dl>{sec}</dl></div>'
            f'{"".join(ops)}<h2>Schemas</h2>{schema_cards}')
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{escape(title)}</title>"
            f"<style>{STYLE}{_EXTRA_STYLE}</style></head><body><header><h1>Gateway HTTP API</h1></header>"
            f"<main>{body}</main></body></html>")


async def docs_endpoint(request: Request) -> Response:
    page = getattr(request.app.state, "api_docs", None)
    if page is None:
        page = request.app.state.api_docs = render(request.app.state.openapi)
    return HTMLResponse(page, headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"})
