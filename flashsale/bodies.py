"""Request bodies (and query strings) declared once: the same `Body` checks a request through
validate.Fields and writes the JSON Schema that /api/openapi.json publishes.

A service declares `BODY = Body(Field.text("name", max_len=64), Field.integer("stock", 0, 99), ...)`
at the top, and `clean = BODY.clean(body)` gives every field's clean value by name, or raises one
Validation with every error (the messages are Fields'). Checks that need the database or compare
fields stay in the service: `BODY.read(body)` returns `(clean, fields)` so it can add errors and
`fields.check()` itself."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from flashsale.jsonio import parse_money, parse_time
from flashsale.validate import Fields

REQUIRED = "This field is required."
MONEY_PATTERN = r"^[0-9]{1,8}(\.[0-9]{1,2})?$"
# kinds read through a Fields method; a partial update keeps the current value for a null or "" one
FIELDS_KINDS = frozenset({"text", "integer", "choice", "boolean"})


class Field:
    """One named field: how Fields reads it and the JSON Schema it publishes."""

    def __init__(self, name: str, kind: str, *, required: bool = True, default: Any = None,
                 doc: str = "", **opts: Any):
        self.name, self.kind, self.required, self.default, self.doc = name, kind, required, default, doc
        self.opts = opts

    # --- constructors -------------------------------------------------------------------------

    @classmethod
    def text(cls, name: str, *, min_len: int = 1, max_len: int = 255, required: bool = True,
             default: str | None = None, pattern: re.Pattern[str] | None = None,
             pattern_message: str = "", fmt: str | None = None, doc: str = "") -> Field:
        """Trimmed text; `pattern` (checked on the trimmed text) adds `pattern_message` when it fails."""
        return cls(name, "text", required=required, default=default, doc=doc, min_len=min_len,
                   max_len=max_len, pattern=pattern, pattern_message=pattern_message, fmt=fmt)

    @classmethod
    def integer(cls, name: str, low: int, high: int, *, required: bool = True, default: int | None = None,
                doc: str = "") -> Field:
        return cls(name, "integer", required=required, default=default, doc=doc, low=low, high=high)

    @classmethod
    def choice(cls, name: str, options: Iterable[str], *, required: bool = True, default: str | None = None,
               doc: str = "") -> Field:
        return cls(name, "choice", required=required, default=default, doc=doc, options=frozenset(options))

    @classmethod
    def boolean(cls, name: str, *, default: bool = False, doc: str = "") -> Field:
        return cls(name, "boolean", required=False, default=default, doc=doc)

    @classmethod
    def money(cls, name: str, *, required: bool = True, message: str, missing: str = REQUIRED,
              doc: str = "") -> Field:
        """An amount like "19.90" (jsonio.parse_money); `missing` when absent and required, else `message`."""
        return cls(name, "money", required=required, doc=doc, message=message, missing=missing)

    @classmethod
    def time(cls, name: str, *, message: str, doc: str = "") -> Field:
        """ISO 8601 with any offset (jsonio.parse_time); always required, `message` when absent or bad."""
        return cls(name, "time", required=True, doc=doc, message=message)

    @classmethod
    def password(cls, name: str, *, min_len: int = 8, max_len: int | None = 128, doc: str = "") -> Field:
        """A required non-empty string taken as sent (never trimmed); length checked when max_len is set."""
        return cls(name, "password", required=True, doc=doc, min_len=min_len, max_len=max_len)

    # --- checking -----------------------------------------------------------------------------

    def read(self, fields: Fields, *, required: bool | None = None, default: Any = None) -> Any:
        """The clean value, or `default` with an error recorded in `fields`."""
        o, required = self.opts, self.required if required is None else required
        if self.kind == "text":
            value = fields.text(self.name, min_len=o["min_len"], max_len=o["max_len"], required=required,
                                default=default)
            if value is not None and o["pattern"] is not None and not o["pattern"].match(value):
                fields.error(self.name, o["pattern_message"])
            return value
        if self.kind == "integer":
            return fields.integer(self.name, low=o["low"], high=o["high"], required=required, default=default)
        if self.kind == "choice":
            return fields.choice(self.name, o["options"], required=required, default=default)
        if self.kind == "boolean":
            return fields.boolean(self.name, default=default)
        raw = fields.body.get(self.name)
        if self.kind == "money":
            if raw is None or raw == "":
                if required:
                    fields.error(self.name, o["missing"])
                return default
            value = parse_money(raw)
            if value is None:
                fields.error(self.name, o["message"])
            return value
        if self.kind == "time":
            value = parse_time(raw)
            if value is None:
                fields.error(self.name, o["message"])
            return value
        if self.kind == "password":
            if not isinstance(raw, str) or not raw:
                fields.error(self.name, REQUIRED)
                return None
            if o["max_len"] is not None and not o["min_len"] <= len(raw) <= o["max_len"]:
                fields.error(self.name, f"Must be {o['min_len']} to {o['max_len']} characters.")
                return None
            return raw
        raise AssertionError(self.kind)

    # --- describing ---------------------------------------------------------------------------

    def schema(self) -> dict[str, Any]:
        o = self.opts
        if self.kind == "text":
            out: dict[str, Any] = {"type": "string", "minLength": o["min_len"], "maxLength": o["max_len"]}
            if o["pattern"] is not None:
                out["pattern"] = o["pattern"].pattern
            if o["fmt"]:
                out["format"] = o["fmt"]
        elif self.kind == "integer":
            out = {"type": "integer", "minimum": o["low"], "maximum": o["high"]}
        elif self.kind == "choice":
            out = {"type": "string", "enum": sorted(o["options"])}
        elif self.kind == "boolean":
            out = {"type": "boolean"}
        elif self.kind == "money":
            out = {"type": "string", "pattern": MONEY_PATTERN,
                   "description": "An amount with at most two decimals, below 100000000."}
        elif self.kind == "time":
            out = {"type": "string", "format": "date-time"}
        else:
            out = {"type": "string", "minLength": o["min_len"]}
            if o["max_len"] is not None:
                out["maxLength"] = o["max_len"]
        if self.default is not None and not isinstance(self.default, bool) or self.kind == "boolean":
            out["default"] = self.default
        if self.doc:
            out["description"] = self.doc
        return out


class Body:
    """The fields of one request body (or query string), in order."""

    def __init__(self, *fields: Field, doc: str = ""):
        self.fields = fields
        self.doc = doc

    def __getitem__(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def without(self, *names: str) -> Body:
        return Body(*(f for f in self.fields if f.name not in names), doc=self.doc)

    def read(self, body: Mapping[str, Any], current: Mapping[str, Any] | None = None, *,
             defaults: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], Fields]:
        """Every field's clean value by name and the Fields holding the errors (not raised yet).

        `defaults` replace the fields' own defaults (what a missing or refused field reads as).
        With `current` (a partial update) an absent field keeps its current value (its default when
        `current` lacks it), and a null or "" one of the Fields kinds too; a present money or time
        field is checked as on create."""
        fields = Fields(body if isinstance(body, dict) else dict(body))
        defaults = defaults or {}
        clean: dict[str, Any] = {}
        for field in self.fields:
            default = defaults.get(field.name, field.default)
            if current is None:
                clean[field.name] = field.read(fields, default=default)
            elif field.name not in body:
                clean[field.name] = current.get(field.name, default)
            elif field.kind in FIELDS_KINDS:
                clean[field.name] = field.read(fields, required=False,
                                               default=current.get(field.name, default))
            else:
                clean[field.name] = field.read(fields)
        return clean, fields

    def clean(self, body: Mapping[str, Any], current: Mapping[str, Any] | None = None, *,
              defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """`read`, raising one Validation with every error."""
        clean, fields = self.read(body, current, defaults=defaults)
        fields.check()
        return clean

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object", "properties": {f.name: f.schema() for f in self.fields}}
        required = [f.name for f in self.fields if f.required]
        if required:
            out["required"] = required
        if self.doc:
            out["description"] = self.doc
        return out

    def parameters(self) -> list[dict[str, Any]]:
        """The fields as OpenAPI query parameters."""
        return [{"name": f.name, "in": "query", "required": f.required, "schema": f.schema()}
                for f in self.fields]
