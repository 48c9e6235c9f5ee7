"""Building `Tool`s from Python functions and pydantic models (`@allm.tool`).

Owns the decorator, the handler calling convention and argument preparation.
pydantic is imported lazily, inside the functions that build or validate a schema:
`import allm` never loads it.

Calling convention (the one rule, by how the tool was made):

- **From a function's signature** (``@allm.tool def get_weather(city: str, unit:
  str = "c")``): the parameters *are* the tool's arguments. The model's arguments
  are validated (and coerced) by pydantic and passed as keyword arguments. A
  parameter annotated `allm.ToolContext` (or named ``ctx``) is not an argument: it
  receives the `ToolContext`.
- **From a pydantic model** (``allm.tool(Model, handler=fn)``, or a decorated
  function whose only non-context parameter is annotated with a `BaseModel`): the
  arguments are validated into a model instance, passed as the first argument.
- **With a hand-written schema** (``Tool(..., handler=fn)`` or
  ``allm.tool(fn, parameters={...})``): ``fn(arguments)`` or ``fn(arguments,
  context)`` by the number of positional parameters; arguments are checked against
  the schema by `allm.tools._jsonschema` first.

Handlers may be sync or async in every form.
"""

from __future__ import annotations

import inspect
import re
import sys
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal

from ..tool import Tool
from ._jsonschema import validate_json
from ._results import ToolContext

__all__ = ["tool", "BoundHandler", "InvalidArguments", "bind", "parse_docstring"]

Style = Literal["kwargs", "model", "raw"]


class InvalidArguments(Exception):
    """Arguments failed validation; `errors` are (path, reason) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        shown = "; ".join(f"{p or '$'}: {r}" for p, r in errors[:8])
        super().__init__(f"invalid arguments: {shown}")


class BoundHandler:
    """A user function plus how to validate arguments for it and call it."""

    __slots__ = ("_fields", "context_param", "func", "is_async", "model", "pass_context",
                 "schema", "style")

    def __init__(
        self, func: Callable[..., Any], style: Style, *, model: Any = None,
        context_param: str | None = None, pass_context: bool = False,
        schema: Mapping[str, Any] | None = None,
    ) -> None:
        self.func = func
        self.style = style
        self.model = model
        self.context_param = context_param
        self.pass_context = pass_context
        self.schema = schema
        # Asked once per tool, not at every call (`ToolExecutor.aexecute`).
        self.is_async = inspect.iscoroutinefunction(func)
        self._fields: tuple[str, ...] | None = None  # the model's field names, once

    def __repr__(self) -> str:
        return f"BoundHandler({getattr(self.func, '__qualname__', self.func)!r}, {self.style})"

    # Calling it directly (tests, reuse) behaves like the plain function.
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def prepare(self, arguments: Mapping[str, Any]) -> Any:
        """Validate `arguments`; return what `invoke` needs. Raises InvalidArguments."""
        if self.style == "raw":
            if self.schema is not None:
                errors = validate_json(self.schema, dict(arguments))
                if errors:
                    raise InvalidArguments(errors)
            return dict(arguments)
        try:
            instance = self.model.model_validate(dict(arguments))
        except Exception as exc:
            from pydantic import ValidationError as PydanticError

            if not isinstance(exc, PydanticError):
                raise
            raise InvalidArguments(
                [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
            ) from None
        if self.style == "model":
            return instance
        names = self._fields
        if names is None or type(instance) is not self.model:
            names = tuple(type(instance).model_fields)
            if type(instance) is self.model:
                self._fields = names
        return {name: getattr(instance, name) for name in names}

    def invoke(self, prepared: Any, ctx: ToolContext) -> Any:
        """Call the function (the result may be awaitable for async handlers)."""
        if self.style == "kwargs":
            kwargs = dict(prepared)
            if self.context_param is not None:
                kwargs[self.context_param] = ctx
            return self.func(**kwargs)
        if self.pass_context:
            return self.func(prepared, ctx)
        return self.func(prepared)


def bind(tool_: Tool) -> BoundHandler | None:
    """The tool's handler as a `BoundHandler` (wrapping plain callables by arity)."""
    handler = tool_.handler
    if handler is None:
        return None
    if isinstance(handler, BoundHandler):
        return handler
    return BoundHandler(handler, "raw", pass_context=_positional_count(handler) >= 2,
                        schema=tool_.parameters)


def _positional_count(func: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return 1
    count = 0
    for p in params:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            return 2
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                      inspect.Parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    if count == 0 or (count > 2 and _required_positional(func) > 2):
        raise TypeError(
            f"tool handler {getattr(func, '__qualname__', func)!r} must take (arguments) "
            "or (arguments, context)"
        )
    return count


def _required_positional(func: Callable[..., Any]) -> int:
    return sum(
        1 for p in inspect.signature(func).parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                       inspect.Parameter.POSITIONAL_OR_KEYWORD)
    )


# -- the decorator -------------------------------------------------------------------


def tool(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    handler: Callable[..., Any] | None = None,
    manual: bool = False,
    strict: bool | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Any:
    """Make a `Tool` from a function, a pydantic model, or explicit parts.

    - ``@allm.tool`` / ``@allm.tool(name=..., description=..., manual=..., strict=...)``
      on a function: schema from the signature, type hints and docstring.
    - ``allm.tool(Model, handler=fn)``: schema from a pydantic model class.
    - ``allm.tool(name=..., parameters={...}, handler=fn)`` or
      ``allm.tool(fn, parameters={...})``: a hand-written JSON schema.

    The decorator returns the `Tool` (its handler still calls the function).
    """
    opts: dict[str, Any] = dict(name=name, description=description, manual=manual,
                                strict=strict, metadata=dict(metadata or {}),
                                localns=_caller_locals())
    if fn is None:
        if parameters is not None or handler is not None:
            return _from_parts(handler, parameters, opts)

        def decorate(func: Callable[..., Any]) -> Tool:
            return _dispatch(func, parameters, handler, {**opts, "localns": _caller_locals()})

        return decorate
    return _dispatch(fn, parameters, handler, opts)


def _caller_locals() -> dict[str, Any] | None:
    # With `from __future__ import annotations`, hints of a function defined inside
    # another function name local classes; resolve them in the defining scope.
    frame = sys._getframe(2)
    return None if frame.f_code.co_name == "<module>" else dict(frame.f_locals)


def _dispatch(
    fn: Any, parameters: Mapping[str, Any] | None, handler: Callable[..., Any] | None,
    opts: dict[str, Any],
) -> Tool:
    if isinstance(fn, type) and _is_pydantic_model(fn):
        return _from_model(fn, handler, opts)
    if not callable(fn):
        raise TypeError(f"allm.tool expects a function or a pydantic model class, got {fn!r}")
    if parameters is not None:
        return _from_parts(fn, parameters, opts)
    return _from_function(fn, opts)


def _from_parts(
    handler: Callable[..., Any] | None, parameters: Mapping[str, Any] | None,
    opts: dict[str, Any],
) -> Tool:
    name = opts["name"] or (getattr(handler, "__name__", None) if handler else None)
    if not name:
        raise ValueError("allm.tool: a name is required")
    summary, _ = parse_docstring(inspect.getdoc(handler) if handler else None)
    schema = dict(parameters) if parameters is not None else {"type": "object",
                                                              "properties": {}}
    bound = None
    if handler is not None:
        bound = BoundHandler(handler, "raw", pass_context=_positional_count(handler) >= 2,
                             schema=schema)
    return Tool(name=name, description=opts["description"] or summary, parameters=schema,
                handler=bound, manual=opts["manual"], strict=opts["strict"],
                metadata=opts["metadata"])


def _from_model(model: type[Any], handler: Callable[..., Any] | None,
                opts: dict[str, Any]) -> Tool:
    handler_name = getattr(handler, "__name__", "") if handler else ""
    name = opts["name"] or (handler_name if handler_name.isidentifier() else None) \
        or _snake(model.__name__)
    summary, _ = parse_docstring(inspect.getdoc(handler) if handler else None)
    description = opts["description"] or summary or _model_doc(model)
    bound = None
    if handler is not None:
        bound = BoundHandler(handler, "model", model=model,
                             pass_context=_positional_count(handler) >= 2)
    return Tool(name=name, description=description, parameters=model_schema(model),
                handler=bound, manual=opts["manual"], strict=opts["strict"],
                metadata=opts["metadata"])


def _from_function(func: Callable[..., Any], opts: dict[str, Any]) -> Tool:
    from pydantic import Field, create_model

    summary, arg_docs = parse_docstring(inspect.getdoc(func))
    hints = _hints(func, opts.get("localns"))
    context_param: str | None = None
    fields: dict[str, Any] = {}
    params = [p for p in inspect.signature(func).parameters.values()
              if p.kind not in (inspect.Parameter.VAR_POSITIONAL,
                                inspect.Parameter.VAR_KEYWORD)]
    for p in params:
        annotation = hints.get(p.name, p.annotation)
        if annotation is ToolContext or annotation == "ToolContext" or p.name == "ctx":
            context_param = p.name
            continue
        if annotation is inspect.Parameter.empty:
            annotation = Any
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (annotation, Field(default, description=arg_docs.get(p.name)))
    name = opts["name"] or func.__name__
    description = opts["description"] or summary
    if len(fields) == 1:
        (only, (annotation, _)), = fields.items()
        if isinstance(annotation, type) and _is_pydantic_model(annotation):
            ordered = [p.name for p in params]
            bound = BoundHandler(func, "model", model=annotation,
                                 pass_context=context_param is not None
                                 and ordered.index(context_param) > ordered.index(only))
            if context_param is not None and not bound.pass_context:
                raise TypeError(f"tool {name!r}: put the context parameter second")
            return Tool(name=name, description=description or _model_doc(annotation),
                        parameters=model_schema(annotation), handler=bound,
                        manual=opts["manual"], strict=opts["strict"],
                        metadata=opts["metadata"])
    model = create_model(f"{name}_arguments", **fields)
    bound = BoundHandler(func, "kwargs", model=model, context_param=context_param)
    return Tool(name=name, description=description, parameters=model_schema(model),
                handler=bound, manual=opts["manual"], strict=opts["strict"],
                metadata=opts["metadata"])


def _hints(func: Callable[..., Any], localns: dict[str, Any] | None) -> dict[str, Any]:
    """Resolved annotations; one that cannot be resolved becomes `Any` (a schema
    without a type beats refusing the whole tool)."""
    try:
        return typing.get_type_hints(func, localns=localns, include_extras=True)
    except Exception:
        pass
    out: dict[str, Any] = {}
    globalns = getattr(func, "__globals__", {})
    for name, annotation in getattr(func, "__annotations__", {}).items():
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, globalns, localns or {})
            except Exception:
                annotation = Any
            if isinstance(annotation, str):  # a quoted annotation under postponed hints
                annotation = Any
        out[name] = annotation
    return out


def model_schema(model: Any) -> dict[str, Any]:
    """A pydantic model's JSON schema without pydantic's generated titles."""
    schema: dict[str, Any] = model.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)  # the model's docstring is the tool's description
    _strip_titles(schema)
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def _strip_titles(node: Any) -> None:
    if isinstance(node, dict):
        for key in ("properties", "$defs", "definitions", "patternProperties"):
            sub = node.get(key)
            if isinstance(sub, dict):
                for child in sub.values():
                    if isinstance(child, dict) and isinstance(child.get("title"), str):
                        child.pop("title")
                    _strip_titles(child)
        for key in ("items", "additionalProperties", "not"):
            if isinstance(node.get(key), dict):
                node[key].pop("title", None)
                _strip_titles(node[key])
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for child in node.get(key) or ():
                if isinstance(child, dict):
                    child.pop("title", None)
                    _strip_titles(child)


def _is_pydantic_model(cls: type[Any]) -> bool:
    # Checked without importing pydantic: a class is a model iff pydantic's
    # BaseModel is in its MRO.
    return any(c.__name__ == "BaseModel" and c.__module__.startswith("pydantic")
               for c in cls.__mro__)


def _model_doc(model: type[Any]) -> str:
    doc = model.__dict__.get("__doc__")
    return parse_docstring(inspect.cleandoc(doc))[0] if isinstance(doc, str) else ""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# -- docstrings ----------------------------------------------------------------------

_SECTIONS = re.compile(
    r"^(args|arguments|parameters|params|keyword args|returns?|yields?|raises?|"
    r"examples?|notes?|see also|attributes)\s*:?\s*$", re.IGNORECASE)
_ARG_LINE = re.compile(r"^\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_NUMPY_ARG = re.compile(r"^\*{0,2}(\w+)\s*(?::\s*(.*))?$")
_SPHINX = re.compile(r"^:param\s+(?:[\w\[\], ]+\s+)?(\w+):\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(description, {argument: description}) from a Google, numpy or Sphinx docstring.

    The description is the text before the first section, paragraphs kept.
    """
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    desc: list[str] = []
    args: dict[str, str] = {}
    i = 0
    while i < len(lines) and not _SECTIONS.match(lines[i].strip()) \
            and not lines[i].lstrip().startswith(":"):
        desc.append(lines[i])
        i += 1
    section: str | None = None
    current: str | None = None
    base_indent = 0
    numpy = False
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        i += 1
        if not stripped:
            continue
        sphinx = _SPHINX.match(stripped)
        if sphinx:
            section, current = "sphinx", sphinx.group(1)
            args[current] = sphinx.group(2).strip()
            continue
        if _SECTIONS.match(stripped) and len(raw) - len(raw.lstrip()) == 0:
            header = stripped.rstrip(":").lower()
            section = "args" if header in {"args", "arguments", "parameters", "params",
                                           "keyword args"} else "other"
            numpy = i < len(lines) and set(lines[i].strip()) == {"-"}
            if numpy:
                i += 1
            current, base_indent = None, -1
            continue
        if section not in ("args", "sphinx"):
            continue
        indent = len(raw) - len(raw.lstrip())
        if base_indent < 0:
            base_indent = indent
        match = (_NUMPY_ARG if numpy else _ARG_LINE).match(stripped)
        if indent <= base_indent and match and section == "args":
            current = match.group(1)
            args[current] = "" if numpy else match.group(3).strip()
        elif current is not None:
            args[current] = (args[current] + " " + stripped).strip()
    text = "\n".join(desc).strip()
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "\n\n".join(paragraphs), args
